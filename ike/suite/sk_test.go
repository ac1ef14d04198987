package suite

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

// skSuite is one SK transform combination under test.
type skSuite struct {
	encr  uint16
	bits  int
	integ uint16
}

func (s skSuite) String() string {
	if s.integ == wire.IntegNone {
		return encrToken(s.encr, s.bits)
	}
	return encrToken(s.encr, s.bits) + "-" + tokenFor(integTokens, s.integ, "integ")
}

var skSuites = []skSuite{
	{wire.EncrAESGCM8, 128, wire.IntegNone},
	{wire.EncrAESGCM8, 256, wire.IntegNone},
	{wire.EncrAESGCM12, 128, wire.IntegNone},
	{wire.EncrAESGCM12, 256, wire.IntegNone},
	{wire.EncrAESGCM16, 128, wire.IntegNone},
	{wire.EncrAESGCM16, 192, wire.IntegNone},
	{wire.EncrAESGCM16, 256, wire.IntegNone},
	{wire.EncrChaCha20Poly1305, 0, wire.IntegNone},
	{wire.EncrAESCBC, 128, wire.IntegHMACSHA196},
	{wire.EncrAESCBC, 128, wire.IntegHMACSHA2256128},
	{wire.EncrAESCBC, 192, wire.IntegHMACSHA2384192},
	{wire.EncrAESCBC, 256, wire.IntegHMACSHA2512256},
}

func testRand(seed byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{seed}) }

// newTestSK returns two SKs with the same random keys (a sender and a
// receiver).
func newTestSK(t testing.TB, s skSuite, seed byte) (*SK, *SK) {
	t.Helper()
	r := testRand(seed)
	ek, err := EncrKeySize(s.encr, s.bits)
	if err != nil {
		t.Fatal(err)
	}
	ik, err := IntegKeySize(s.integ)
	if err != nil {
		t.Fatal(err)
	}
	ekey, ikey := make([]byte, ek), make([]byte, ik)
	r.Read(ekey)
	r.Read(ikey)
	a, err := NewSK(s.encr, s.bits, s.integ, ekey, ikey, testRand(seed+1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSK(s.encr, s.bits, s.integ, ekey, ikey, testRand(seed+2))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// testHeader returns an IKE header and SK generic header whose length
// fields count a body of bodyLen octets.
func testHeader(bodyLen int) []byte {
	h := make([]byte, ikeHeaderSize+genericHeaderSize)
	copy(h, "SPIiSPIiSPIrSPIr")
	h[16], h[17], h[18], h[19] = byte(wire.PayloadSK), 0x20, byte(wire.ExchangeIKEAuth), wire.FlagInitiator
	h[23] = 1
	total := len(h) + bodyLen
	h[24], h[25], h[26], h[27] = byte(total>>24), byte(total>>16), byte(total>>8), byte(total)
	h[28] = byte(wire.PayloadIDi)
	pl := genericHeaderSize + bodyLen
	h[30], h[31] = byte(pl>>8), byte(pl)
	return h
}

func TestSKRoundTrip(t *testing.T) {
	for i, s := range skSuites {
		t.Run(s.String(), func(t *testing.T) {
			tx, rx := newTestSK(t, s, byte(10*i))
			r := testRand(99)
			for n := 0; n <= 300; n += 1 + n/7 {
				pt := make([]byte, n)
				r.Read(pt)
				body := tx.SealedLen(n)
				hdr := testHeader(body)
				msg, err := tx.Seal(bytes.Clone(hdr), pt)
				if err != nil {
					t.Fatal(err)
				}
				if len(msg) != len(hdr)+body {
					t.Fatalf("n=%d: sealed %d octets, SealedLen says %d", n, len(msg)-len(hdr), body)
				}
				if (body-tx.IVSize()-tx.ICVSize())%tx.BlockSize() != 0 {
					t.Fatalf("n=%d: encrypted part not block-aligned", n)
				}
				if got := tx.MaxPlaintext(body); got < n || tx.SealedLen(got) > body {
					t.Fatalf("n=%d: MaxPlaintext(%d) = %d", n, body, got)
				}
				if got := tx.MaxPlaintext(body - 1); got >= n || (got >= 0 && tx.SealedLen(got) > body-1) {
					t.Fatalf("n=%d: MaxPlaintext(%d) = %d", n, body-1, got)
				}
				out, err := rx.Open(msg[:len(hdr)], msg[len(hdr):])
				if err != nil {
					t.Fatalf("n=%d: %v", n, err)
				}
				if !bytes.Equal(out, pt) {
					t.Fatalf("n=%d: round trip differs", n)
				}
			}
		})
	}
}

func TestSKTamperAndTruncation(t *testing.T) {
	for i, s := range skSuites {
		t.Run(s.String(), func(t *testing.T) {
			tx, rx := newTestSK(t, s, byte(10*i))
			pt := []byte("inner payloads of an IKE message, long enough for two CBC blocks")
			hdr := testHeader(tx.SealedLen(len(pt)))
			msg, err := tx.Seal(bytes.Clone(hdr), pt)
			if err != nil {
				t.Fatal(err)
			}
			h, body := msg[:len(hdr)], msg[len(hdr):]
			for pos := range len(msg) {
				bad := bytes.Clone(msg)
				bad[pos] ^= 1 << (pos % 8)
				if _, err := rx.Open(bad[:len(h)], bad[len(h):]); !errors.Is(err, ErrSKIntegrity) && !errors.Is(err, ErrSKMalformed) {
					t.Fatalf("bit flip at %d accepted (err %v)", pos, err)
				}
			}
			for n := range len(body) {
				if _, err := rx.Open(h, body[:n]); err == nil {
					t.Fatalf("body truncated to %d octets accepted", n)
				}
			}
			if _, err := rx.Open(h, append(bytes.Clone(body), 0)); err == nil {
				t.Fatal("body with an extra octet accepted")
			}
			if _, err := rx.Open(h[:len(h)-1], body); !errors.Is(err, ErrSKIntegrity) {
				t.Fatalf("shortened associated data: err %v", err)
			}
			// Wrong key.
			other, _ := newTestSK(t, s, byte(10*i+5))
			if _, err := other.Open(h, body); !errors.Is(err, ErrSKIntegrity) {
				t.Fatalf("other key: err %v", err)
			}
		})
	}
}

// An authenticated body whose Pad Length exceeds the decrypted data is
// malformed, not a panic.
func TestSKBadPadLength(t *testing.T) {
	for i, s := range skSuites {
		tx, rx := newTestSK(t, s, byte(10*i))
		hdr := testHeader(0)
		iv := make([]byte, tx.IVSize())
		for _, inner := range [][]byte{
			{1},                                     // Pad Length 1, nothing before it
			append(bytes.Repeat([]byte{7}, 15), 16), // Pad Length 16 of 15 octets
			append(bytes.Repeat([]byte{7}, 31), 255),
		} {
			if len(inner)%tx.BlockSize() != 0 {
				continue
			}
			out := tx.finish(append(tx.begin(bytes.Clone(hdr), iv, len(inner)), inner...), len(hdr), len(hdr)+len(iv))
			if _, err := rx.Open(out[:len(hdr)], out[len(hdr):]); !errors.Is(err, ErrSKMalformed) {
				t.Errorf("%v: inner %x: err %v, want ErrSKMalformed", s, inner, err)
			}
		}
		// The largest valid Pad Length leaves an empty plaintext.
		inner := append(bytes.Repeat([]byte{7}, 31), 31)
		out := tx.finish(append(tx.begin(bytes.Clone(hdr), iv, len(inner)), inner...), len(hdr), len(hdr)+len(iv))
		if pt, err := rx.Open(out[:len(hdr)], out[len(hdr):]); err != nil || len(pt) != 0 {
			t.Errorf("%v: all padding: %x, %v", s, pt, err)
		}
	}
}

func TestSKIVs(t *testing.T) {
	for i, s := range skSuites {
		tx, _ := newTestSK(t, s, byte(10*i))
		seen := map[string]bool{}
		var prev []byte
		for range 100 {
			msg, err := tx.Seal(testHeader(tx.SealedLen(1)), []byte{1})
			if err != nil {
				t.Fatal(err)
			}
			iv := msg[ikeHeaderSize+genericHeaderSize:][:tx.IVSize()]
			if seen[string(iv)] {
				t.Fatalf("%v: IV repeated", s)
			}
			seen[string(iv)] = true
			if tx.aead != nil && prev != nil {
				// A counter: each IV is the previous one plus one.
				if fmt.Sprintf("%x", inc(prev)) != fmt.Sprintf("%x", iv) {
					t.Fatalf("%v: IV %x after %x", s, iv, prev)
				}
			}
			prev = bytes.Clone(iv)
		}
	}
}

func inc(b []byte) []byte {
	b = bytes.Clone(b)
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			break
		}
	}
	return b
}

func TestSKIVExhausted(t *testing.T) {
	tx, _ := newTestSK(t, skSuites[6], 1)
	tx.ivUsed.Store(maxAEADMessages)
	if _, err := tx.Seal(testHeader(tx.SealedLen(0)), nil); !errors.Is(err, ErrIVExhausted) {
		t.Fatalf("err %v, want ErrIVExhausted", err)
	}
}

// AES-GCM with 8- and 12-octet ICVs is AES-GCM with the tag truncated
// (RFC 5282 Section 3, NIST SP 800-38D Section 5.2.1.2): same ciphertext,
// tag a prefix of the 16-octet one. The 16-octet variant is checked against
// strongSwan's datagrams in strongswan_test.go.
func TestGCMTruncatedTags(t *testing.T) {
	key := bytes.Repeat([]byte{0x5a}, 36)
	iv := []byte("8octetIV")
	hdr := testHeader(0)
	pt := []byte("some inner payloads")
	full, err := NewSK(wire.EncrAESGCM16, 256, wire.IntegNone, key, nil, testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	want := full.seal(bytes.Clone(hdr), pt, iv, nil)
	for _, id := range []uint16{wire.EncrAESGCM8, wire.EncrAESGCM12} {
		c, err := NewSK(id, 256, wire.IntegNone, key, nil, testRand(1))
		if err != nil {
			t.Fatal(err)
		}
		got := c.seal(bytes.Clone(hdr), pt, iv, nil)
		if !bytes.Equal(got, want[:len(want)-16+c.ICVSize()]) {
			t.Errorf("transform %d: %x, want prefix of %x", id, got, want)
		}
		if _, err := c.Open(hdr, got[len(hdr):]); err != nil {
			t.Errorf("transform %d: %v", id, err)
		}
	}
}

// ChaCha20-Poly1305 as RFC 7634 uses it (nonce = salt | IV) against the AEAD
// test vector of RFC 8439 Section 2.8.2: salt 07000000, IV 4041424344454647.
// SK appends a Pad Length octet to the inner payloads; the vector's last
// plaintext octet '.' (46) serves as one, preceded by 46 octets of padding.
func TestChaCha20Poly1305Vector(t *testing.T) {
	key := append(unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"), 0x07, 0, 0, 0)
	aad := unhex(t, "50515253c0c1c2c3c4c5c6c7")
	iv := unhex(t, "4041424344454647")
	msg := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want := unhex(t, `d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b
		1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
		3ff4def08e4b7a9de576d26586cec64b6116 1ae10b594f09e26a7e902ecbd0600691`)
	c, err := NewSK(wire.EncrChaCha20Poly1305, 0, wire.IntegNone, key, nil, testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	n := len(msg) - 1 - int(msg[len(msg)-1])
	got := c.seal(bytes.Clone(aad), msg[:n], iv, msg[n:len(msg)-1])
	eq(t, "sealed", got, concat(aad, iv, want))
	pt, err := c.Open(aad, got[len(aad):])
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "opened", pt, msg[:n])
}

func TestNewSKErrors(t *testing.T) {
	r := testRand(1)
	for _, c := range []struct {
		name       string
		encr       uint16
		bits       int
		integ      uint16
		ekey, ikey int
		rand       bool
	}{
		{"no rand", wire.EncrAESGCM16, 128, 0, 20, 0, false},
		{"unknown encr", 99, 128, 0, 20, 0, true},
		{"gcm bad bits", wire.EncrAESGCM16, 100, 0, 20, 0, true},
		{"gcm short key", wire.EncrAESGCM16, 128, 0, 16, 0, true},
		{"gcm with integ", wire.EncrAESGCM16, 128, wire.IntegHMACSHA2256128, 20, 32, true},
		{"cbc without integ", wire.EncrAESCBC, 128, 0, 16, 0, true},
		{"cbc short integ key", wire.EncrAESCBC, 128, wire.IntegHMACSHA2256128, 16, 31, true},
		{"chacha with bits", wire.EncrChaCha20Poly1305, 128, 0, 36, 0, true},
	} {
		var rr *rand.ChaCha8
		if c.rand {
			rr = r
		}
		var err error
		if rr == nil {
			_, err = NewSK(c.encr, c.bits, c.integ, make([]byte, c.ekey), make([]byte, c.ikey), nil)
		} else {
			_, err = NewSK(c.encr, c.bits, c.integ, make([]byte, c.ekey), make([]byte, c.ikey), rr)
		}
		if err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// FuzzSKOpen feeds arbitrary associated data and bodies to Open with fixed
// keys of every transform: it must never panic, and whatever it accepts
// must have been sealed with those keys.
func FuzzSKOpen(f *testing.F) {
	var txs, rxs []*SK
	for i, s := range skSuites {
		tx, rx := newTestSK(f, s, byte(10*i))
		txs, rxs = append(txs, tx), append(rxs, rx)
	}
	for i, tx := range txs {
		pt := bytes.Repeat([]byte{byte(i)}, 3*i)
		hdr := testHeader(tx.SealedLen(len(pt)))
		msg, _ := tx.Seal(bytes.Clone(hdr), pt)
		f.Add(uint8(i), msg[:len(hdr)], msg[len(hdr):])
	}
	f.Add(uint8(0), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, which uint8, header, body []byte) {
		rx := rxs[int(which)%len(rxs)]
		orig := bytes.Clone(body)
		pt, err := rx.Open(header, body)
		if !bytes.Equal(orig, body) {
			t.Fatal("Open modified its input")
		}
		if err == nil && len(pt) > len(body) {
			t.Fatal("plaintext longer than body")
		}
	})
}
