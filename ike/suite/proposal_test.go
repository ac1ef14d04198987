package suite

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

func mustParse(t *testing.T, proto wire.ProtocolID, s string) *Proposal {
	t.Helper()
	p, err := ParseProposal(proto, s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return p
}

func TestParseProposal(t *testing.T) {
	ike, esp := wire.ProtocolIKE, wire.ProtocolESP
	var addKE = func(l ...[]uint16) (a [MaxAddKE][]uint16) {
		copy(a[:], l)
		return a
	}
	for _, c := range []struct {
		proto wire.ProtocolID
		in    string
		want  Proposal
	}{
		{ike, "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_none", Proposal{Protocol: ike,
			Encr: []EncrTransform{{wire.EncrAESGCM16, 256}}, PRF: []uint16{wire.PRFHMACSHA2384},
			KE: []uint16{wire.KECurve25519}, AddKE: addKE([]uint16{wire.KEMLKEM768}, []uint16{wire.KENone})}},
		{ike, "aes128-sha256-modp2048", Proposal{Protocol: ike,
			Encr: []EncrTransform{{wire.EncrAESCBC, 128}}, PRF: []uint16{wire.PRFHMACSHA2256},
			Integ: []uint16{wire.IntegHMACSHA2256128}, KE: []uint16{wire.KEMODP2048}}},
		{esp, "aes256gcm16-x25519-ke1_mlkem768", Proposal{Protocol: esp,
			Encr: []EncrTransform{{wire.EncrAESGCM16, 256}}, KE: []uint16{wire.KECurve25519},
			AddKE: addKE([]uint16{wire.KEMLKEM768}), ESN: []uint16{wire.ESNNo}}},
		{esp, "aes128-sha256-esn-noesn", Proposal{Protocol: esp,
			Encr: []EncrTransform{{wire.EncrAESCBC, 128}}, Integ: []uint16{wire.IntegHMACSHA2256128},
			ESN: []uint16{wire.ESNYes, wire.ESNNo}}},
		{ike, "aes128gcm16-aes256gcm16-prfsha256-x25519-ecp256", Proposal{Protocol: ike,
			Encr: []EncrTransform{{wire.EncrAESGCM16, 128}, {wire.EncrAESGCM16, 256}}, PRF: []uint16{wire.PRFHMACSHA2256},
			KE: []uint16{wire.KECurve25519, wire.KEECP256}}},
		// Integrity names in an AEAD IKE proposal supply the PRF and are dropped.
		{ike, "AES256GCM16-SHA384-ECP384", Proposal{Protocol: ike,
			Encr: []EncrTransform{{wire.EncrAESGCM16, 256}}, PRF: []uint16{wire.PRFHMACSHA2384}, KE: []uint16{wire.KEECP384}}},
		{ike, "aes-aes192-sha1-sha512-curve25519-x448-mlkem512", Proposal{Protocol: ike,
			Encr: []EncrTransform{{wire.EncrAESCBC, 128}, {wire.EncrAESCBC, 192}},
			PRF:  []uint16{wire.PRFHMACSHA1, wire.PRFHMACSHA2512}, Integ: []uint16{wire.IntegHMACSHA196, wire.IntegHMACSHA2512256},
			KE: []uint16{wire.KECurve25519, wire.KECurve448, wire.KEMLKEM512}}},
		{esp, "chacha20poly1305-aes128gcm8-aes256gcm12-aes128gcm-modp3072-modp4096-ecp521", Proposal{Protocol: esp,
			Encr: []EncrTransform{{wire.EncrChaCha20Poly1305, 0}, {wire.EncrAESGCM8, 128}, {wire.EncrAESGCM12, 256}, {wire.EncrAESGCM16, 128}},
			KE:   []uint16{wire.KEMODP3072, wire.KEMODP4096, wire.KEECP521}, ESN: []uint16{wire.ESNNo}}},
		{ike, "aes256gcm16-prfsha384-ecp256-ke1_mlkem768-ke1_mlkem1024-ke1_none-ke7_mlkem512", Proposal{Protocol: ike,
			Encr: []EncrTransform{{wire.EncrAESGCM16, 256}}, PRF: []uint16{wire.PRFHMACSHA2384}, KE: []uint16{wire.KEECP256},
			AddKE: addKE([]uint16{wire.KEMLKEM768, wire.KEMLKEM1024, wire.KENone}, nil, nil, nil, nil, nil, []uint16{wire.KEMLKEM512})}},
	} {
		got := mustParse(t, c.proto, c.in)
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.in, *got, c.want)
		}
		// String writes what ParseProposal reads back.
		again := mustParse(t, c.proto, got.String())
		if !reflect.DeepEqual(again, got) {
			t.Errorf("%q: String %q parses to %+v", c.in, got.String(), again)
		}
	}
}

func TestParseProposalErrors(t *testing.T) {
	for _, c := range []struct {
		proto wire.ProtocolID
		in    string
		msg   string
	}{
		{wire.ProtocolIKE, "aes256gcm16-prfsha384-x25519-foo", `unknown transform "foo"`},
		{wire.ProtocolIKE, "aes256gcm16-prfsha384-x25519-ke1_kyber768", `unknown key exchange method "kyber768"`},
		{wire.ProtocolIKE, "aes256gcm16-prfsha384-x25519-ke8_mlkem768", `unknown transform "ke8_mlkem768"`},
		{wire.ProtocolIKE, "aes256gcm16-x25519", "needs a PRF"},
		{wire.ProtocolIKE, "aes256gcm16-prfsha256", "needs a key exchange method"},
		{wire.ProtocolIKE, "aes128-prfsha256-x25519", "needs an integrity algorithm"},
		{wire.ProtocolESP, "aes128", "needs an integrity algorithm"},
		{wire.ProtocolIKE, "aes128-aes128gcm16-sha256-x25519", "AEAD and non-AEAD"},
		{wire.ProtocolIKE, "aes128gcm16-prfsha256-x25519-esn", "ESN belongs to ESP"},
		{wire.ProtocolESP, "aes128gcm16-prfsha256", "PRF belongs to IKE"},
		{wire.ProtocolESP, "", "empty proposal"},
		{wire.ProtocolESP, "aes128gcm16--x25519", "empty transform name"},
		{wire.ProtocolESP, "sha256-x25519", "no encryption algorithm"},
		{wire.ProtocolESP, "aes512gcm16", `unknown transform "aes512gcm16"`},
		{wire.ProtocolESP, "aes128ctr-sha256", `unknown transform "aes128ctr"`},
		{wire.ProtocolAH, "sha256", "not supported"},
	} {
		_, err := ParseProposal(c.proto, c.in)
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "suite: ") {
			t.Errorf("%q: err %v, want %q", c.in, err, c.msg)
		}
	}
	if ps, err := ParseProposals(wire.ProtocolESP, "aes128gcm16, aes256-sha256-esn"); err != nil || len(ps) != 2 {
		t.Errorf("ParseProposals: %v %v", ps, err)
	}
	if _, err := ParseProposals(wire.ProtocolESP, "aes128gcm16,bogus"); err == nil {
		t.Error("ParseProposals accepted a bad proposal")
	}
}

func TestSelect(t *testing.T) {
	ike := wire.ProtocolIKE
	local := mustParse(t, ike, "aes256gcm16-aes128gcm16-prfsha384-prfsha256-x25519-ecp256-ke1_mlkem768-ke1_none")
	for _, c := range []struct {
		offer string
		want  string // Suite.String, "" for no match
	}{
		{"aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519"},
		{"aes128gcm16-aes256gcm16-prfsha256-prfsha384-ecp256-x25519-ke1_mlkem768", "aes256gcm16-prfsha384-x25519-ke1_mlkem768"},
		{"aes256gcm16-prfsha384-x25519-ke1_mlkem1024", ""}, // no NONE in the offer
		{"aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_none", "aes256gcm16-prfsha384-x25519"},
		{"aes256gcm16-prfsha384-x25519-ke2_mlkem768", ""}, // ADDKE2 not accepted
		{"aes256gcm12-prfsha384-x25519", ""},
		{"aes256gcm16-prfsha512-x25519", ""},
		{"aes256gcm16-prfsha384-modp2048", ""},
		{"aes256-sha256-x25519", ""},
	} {
		s, ok := local.Select(mustParse(t, ike, c.offer))
		got := ""
		if ok {
			got = s.String()
			if err := s.Validate(); err != nil {
				t.Errorf("%q: selected invalid suite: %v", c.offer, err)
			}
			if !local.Contains(&s) || !mustParse(t, ike, c.offer).Contains(&s) {
				t.Errorf("%q: selected suite not contained in both proposals", c.offer)
			}
		}
		if got != c.want {
			t.Errorf("offer %q: selected %q, want %q", c.offer, got, c.want)
		}
	}

	// Mandatory ML-KEM: no match without it.
	strict := mustParse(t, ike, "aes256gcm16-prfsha384-ecp384-ke1_mlkem1024")
	if _, ok := strict.Select(mustParse(t, ike, "aes256gcm16-prfsha384-ecp384")); ok {
		t.Error("mandatory ADDKE1 matched an offer without it")
	}
	// CBC needs a common integrity algorithm.
	cbc := mustParse(t, ike, "aes128-sha256-x25519")
	if _, ok := cbc.Select(mustParse(t, ike, "aes128-sha384-prfsha256-x25519")); ok {
		t.Error("CBC matched without a common integrity algorithm")
	}
	// ESP: ESN and PFS groups.
	esp := mustParse(t, wire.ProtocolESP, "aes128-sha256-esn")
	if _, ok := esp.Select(mustParse(t, wire.ProtocolESP, "aes128-sha256")); ok {
		t.Error("esn matched noesn")
	}
	s, ok := mustParse(t, wire.ProtocolESP, "aes128-sha256-modp2048-esn-noesn").Select(mustParse(t, wire.ProtocolESP, "aes128-sha256-noesn-modp2048"))
	if !ok || s.String() != "aes128-sha256-modp2048-noesn" {
		t.Errorf("ESP select: %v %v", s.String(), ok)
	}
	if _, ok := esp.Select(mustParse(t, ike, "aes128-sha256-x25519")); ok {
		t.Error("ESP proposal matched an IKE proposal")
	}
	// ChaCha20-Poly1305 has no key length: 0 and 256 are the same.
	cc := mustParse(t, wire.ProtocolESP, "chacha20poly1305")
	if !cc.Contains(&Suite{Protocol: wire.ProtocolESP, Encr: wire.EncrChaCha20Poly1305, EncrKeyBits: 256}) {
		t.Error("chacha20poly1305 with 256-bit key length not contained")
	}
}

func TestSuite(t *testing.T) {
	s := Suite{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 256, PRF: wire.PRFHMACSHA2384,
		KE: wire.KECurve25519, AddKE: [MaxAddKE]uint16{wire.KEMLKEM768, 0, wire.KEMLKEM512}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := s.KeyExchanges(); !reflect.DeepEqual(got, []uint16{31, 36, 35}) {
		t.Errorf("KeyExchanges %v", got)
	}
	if got := s.AdditionalKeyExchanges(); !reflect.DeepEqual(got, []uint16{36, 35}) {
		t.Errorf("AdditionalKeyExchanges %v", got)
	}
	if l, _ := s.KeyLengths(); l != (KeyLengths{D: 48, P: 48, A: 0, E: 36}) {
		t.Errorf("KeyLengths %+v", l)
	}
	if s.String() != "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke3_mlkem512" || !s.IsAEAD() {
		t.Errorf("String %q", s.String())
	}
	c := Suite{Protocol: wire.ProtocolESP, Encr: wire.EncrAESCBC, EncrKeyBits: 192, Integ: wire.IntegHMACSHA2384192, ESN: true}
	if l, _ := c.KeyLengths(); l != (KeyLengths{A: 48, E: 24}) || c.String() != "aes192-sha384-esn" {
		t.Errorf("ESP %+v %q", l, c.String())
	}
	for _, bad := range []Suite{
		{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 256, PRF: 6},                                  // no KE
		{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 256, KE: 31},                                  // no PRF
		{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 256, PRF: 6, KE: 31, Integ: 12},               // AEAD + integ
		{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESCBC, EncrKeyBits: 128, PRF: 6, KE: 31},                            // CBC without integ
		{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 64, PRF: 6, KE: 31},                           // key length
		{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 256, PRF: 6, KE: 99},                          // unknown KE
		{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 256, PRF: 6, KE: 31, AddKE: [7]uint16{0, 77}}, // unknown ADDKE
		{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 256, PRF: 6, KE: 31, ESN: true},               // ESN in IKE
		{Protocol: wire.ProtocolESP, Encr: wire.EncrAESGCM16, EncrKeyBits: 256, PRF: 6},                                  // PRF in ESP
		{Protocol: wire.ProtocolAH, Encr: wire.EncrAESGCM16, EncrKeyBits: 256},
		{Protocol: wire.ProtocolESP, Encr: wire.EncrAESCTR, EncrKeyBits: 128, Integ: 12},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	// Keys need an IKE suite and 8-octet SPIs.
	if _, err := c.InitialKeys([]byte("g"), []byte("ni"), []byte("nr"), make([]byte, 8), make([]byte, 8)); err == nil {
		t.Error("InitialKeys with an ESP suite")
	}
	if _, err := s.InitialKeys([]byte("g"), []byte("ni"), []byte("nr"), make([]byte, 4), make([]byte, 8)); err == nil {
		t.Error("InitialKeys with a 4-octet SPI")
	}
	if _, err := s.RekeyKeys(keMustPRF(t, 6), make([]byte, 48), nil, []byte("ni"), []byte("nr"), make([]byte, 8), make([]byte, 8)); err == nil {
		t.Error("RekeyKeys without a key exchange")
	}
}

func keMustPRF(t *testing.T, id uint16) *PRF {
	t.Helper()
	p, err := PRFByID(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIntAuthData(t *testing.T) {
	hdr := testHeader(100)
	hdr[ikeNextPayloadOff] = byte(wire.PayloadSKF)
	d, err := IntAuthData(hdr, wire.PayloadKE, []byte("abc"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 28+4+3 || d[16] != byte(wire.PayloadSK) || d[27] != 35 || d[28] != byte(wire.PayloadKE) || d[29] != 0 || d[31] != 7 || string(d[32:]) != "abc" {
		t.Errorf("A|P %x", d)
	}
	if hdr[16] != byte(wire.PayloadSKF) {
		t.Error("IntAuthData modified its input")
	}
	if _, err := IntAuthData(hdr[:27], wire.PayloadKE, nil); err == nil {
		t.Error("short header accepted")
	}
	if _, err := IntAuthData(hdr, wire.PayloadKE, make([]byte, 0xffff-3)); err == nil {
		t.Error("oversized inner payloads accepted")
	}
	if got := IntAuthOctets([]byte{1}, []byte{2}, 0x01020304); string(got) != "\x01\x02\x01\x02\x03\x04" {
		t.Errorf("IntAuthOctets %x", got)
	}
}
