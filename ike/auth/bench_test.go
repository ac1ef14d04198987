package auth_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/auth/authtest"
)

// benchOctets is about the size of real InitiatorSignedOctets with a hybrid
// IKE_SA_INIT (about 1.2 KB message, 32-octet nonce, 48-octet MACed ID).
var benchOctets = make([]byte, 1300)

// BenchmarkSign measures one AUTH payload signature (method 14) per
// operation, for each key type. The octets change every iteration: ML-DSA
// signing is deterministic and its rejection loop runs a message-dependent
// number of rounds, so a fixed message would time a single draw.
func BenchmarkSign(b *testing.B) {
	for _, k := range auth.KeyTypes {
		b.Run(k.String(), func(b *testing.B) {
			f := fixture(b, k)
			s := f.Initiator.Signer()
			hashes := auth.SupportedHashes()
			octets := bytes.Clone(benchOctets)
			var n uint64
			b.ReportAllocs()
			for b.Loop() {
				n++
				binary.BigEndian.PutUint64(octets, n)
				if _, _, err := s.Sign(nil, octets, hashes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify measures the verification of one AUTH payload with a
// known public key.
func BenchmarkVerify(b *testing.B) {
	for _, k := range auth.KeyTypes {
		b.Run(k.String(), func(b *testing.B) {
			f := fixture(b, k)
			m, data, _ := f.Initiator.Signer().Sign(nil, benchOctets, auth.SupportedHashes())
			v := &auth.SignatureVerifier{Key: f.Initiator.Key.Public()}
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Verify(m, data, benchOctets); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyAuth measures what a responder does per peer: parse and
// validate the certificate against the CA (one certificate signature),
// match the identity and verify the AUTH signature.
func BenchmarkVerifyAuth(b *testing.B) {
	for _, k := range auth.KeyTypes {
		b.Run(k.String(), func(b *testing.B) {
			f := fixture(b, k)
			m, data, _ := f.Initiator.Signer().Sign(nil, benchOctets, auth.SupportedHashes())
			pool := f.CA.Pool()
			opts := auth.VerifyOptions{Time: authtest.ValidTime, Identity: &f.Initiator.ID}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pool.VerifyAuth(m, data, benchOctets, f.Initiator.Chain, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
