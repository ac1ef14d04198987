package suite

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

// BenchmarkKE measures each key exchange method's three steps: Initiate
// (key generation), Respond (key generation and DH, or ML-KEM
// encapsulation with the key check) and Complete (DH, or decapsulation).
func BenchmarkKE(b *testing.B) {
	for _, m := range Methods() {
		st, pubI, err := m.Initiate(testRand(1))
		if err != nil {
			b.Fatal(err)
		}
		pubR, _, err := m.Respond(testRand(2), pubI)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(m.Name()+"/Initiate", func(b *testing.B) {
			r := testRand(3)
			for b.Loop() {
				if _, _, err := m.Initiate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.Name()+"/Respond", func(b *testing.B) {
			r := testRand(4)
			for b.Loop() {
				if _, _, err := m.Respond(r, pubI); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.Name()+"/Complete", func(b *testing.B) {
			for b.Loop() {
				if _, err := st.Complete(pubR); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSK measures SK protect and unprotect of 100 and 1200 octets of
// inner payloads with every transform.
func BenchmarkSK(b *testing.B) {
	for i, s := range skSuites {
		tx, rx := newTestSK(b, s, byte(10*i))
		for _, n := range []int{100, 1200} {
			pt := bytes.Repeat([]byte{0x5c}, n)
			hdr := testHeader(tx.SealedLen(n))
			buf := make([]byte, 0, len(hdr)+tx.SealedLen(n)+16)
			b.Run(fmt.Sprintf("%v/Seal/%d", s, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := tx.Seal(append(buf[:0], hdr...), pt); err != nil {
						b.Fatal(err)
					}
				}
			})
			msg, _ := tx.Seal(bytes.Clone(hdr), pt)
			b.Run(fmt.Sprintf("%v/Open/%d", s, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := rx.Open(msg[:len(hdr)], msg[len(hdr):]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkKeySchedule measures the derivations of a hybrid handshake with
// AES-GCM-256 and PRF-HMAC-SHA2-384: SKEYSEED and the seven keys, one
// IKE_INTERMEDIATE update, and a Child SA's KEYMAT.
func BenchmarkKeySchedule(b *testing.B) {
	s := Suite{Protocol: wire.ProtocolIKE, Encr: wire.EncrAESGCM16, EncrKeyBits: 256, PRF: wire.PRFHMACSHA2384,
		KE: wire.KECurve25519, AddKE: [MaxAddKE]uint16{wire.KEMLKEM768}}
	child := Suite{Protocol: wire.ProtocolESP, Encr: wire.EncrAESGCM16, EncrKeyBits: 256}
	ni, nr, spi, ss := rep(1, 32), rep(2, 32), rep(3, 8), rep(4, 32)
	prf, _ := s.PRFAlg()
	k0, _ := s.InitialKeys(ss, ni, nr, spi, spi)
	b.Run("Initial", func(b *testing.B) {
		for b.Loop() {
			s.InitialKeys(ss, ni, nr, spi, spi)
		}
	})
	b.Run("Intermediate", func(b *testing.B) {
		for b.Loop() {
			s.IntermediateKeys(k0, ss, ni, nr, spi, spi)
		}
	})
	b.Run("Child", func(b *testing.B) {
		for b.Loop() {
			child.ChildKeys(prf, k0.D, nil, ni, nr)
		}
	})
}
