package authtest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/pqlab/pqlab/ike/auth"
)

// TestDeterministic: the same seed gives the same certificates byte for
// byte (ECDSA included: RFC 6979), another seed gives other ones.
func TestDeterministic(t *testing.T) {
	for _, k := range auth.KeyTypes {
		a, err := New([]byte("seed one"), k)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := New([]byte("seed one"), k)
		c, _ := New([]byte("seed two"), k)
		for i, pair := range [][3][]byte{
			{a.CA.DER, b.CA.DER, c.CA.DER},
			{a.Initiator.DER, b.Initiator.DER, c.Initiator.DER},
			{a.Responder.DER, b.Responder.DER, c.Responder.DER},
		} {
			if !bytes.Equal(pair[0], pair[1]) {
				t.Errorf("%v cert %d: same seed, different DER", k, i)
			}
			if bytes.Equal(pair[0], pair[2]) {
				t.Errorf("%v cert %d: different seeds, same DER", k, i)
			}
		}
		if bytes.Equal(a.Initiator.DER, a.Responder.DER) || a.Initiator.Key.Public().Equal(a.Responder.Key.Public()) {
			t.Errorf("%v: initiator and responder share a certificate or key", k)
		}
	}
}

// TestGolden pins the fixture of seed "pqlab" so that a change in key
// derivation, encoding or signing, which would change every simulation's
// wire bytes, shows up here. Sizes are those reported to experiments.
func TestGolden(t *testing.T) {
	golden := map[auth.KeyType]struct {
		ca, ee int
		eeHash string
	}{
		auth.KeyEd25519:   {348, 422, "1d7c0b40e658dc0c"},
		auth.KeyECDSAP256: {417, 490, "8bd53db6a682985f"},
		auth.KeyECDSAP384: {478, 551, "61c3b175e613837c"},
		auth.KeyMLDSA44:   {4012, 4084, "dcc820058ee1a84a"},
		auth.KeyMLDSA65:   {5541, 5613, "f1815b992d08f76b"},
		auth.KeyMLDSA87:   {7499, 7571, "3892070a672797d7"},
	}
	for _, k := range auth.KeyTypes {
		f, err := New([]byte("pqlab"), k)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(f.Initiator.DER)
		t.Logf("%-10v CA %5d  EE %5d  EE sha256 %x", k, len(f.CA.DER), len(f.Initiator.DER), sum[:8])
		g := golden[k]
		if len(f.CA.DER) != g.ca || len(f.Initiator.DER) != g.ee || fmt.Sprintf("%x", sum[:8]) != g.eeHash {
			t.Errorf("%v: CA %d EE %d octets (sha256 %x), golden %d %d %s", k, len(f.CA.DER), len(f.Initiator.DER), sum[:8], g.ca, g.ee, g.eeHash)
		}
	}
}

func TestFixtureVerifies(t *testing.T) {
	for _, k := range auth.KeyTypes {
		f, err := New([]byte("pqlab"), k)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []*Entity{f.Initiator, f.Responder} {
			if _, err := f.CA.Pool().Verify(e.Chain, auth.VerifyOptions{Time: ValidTime, Identity: &e.ID}); err != nil {
				t.Errorf("%v %s: %v", k, e.Cert.SubjectCommonName, err)
			}
			if e.Cert.NotBefore != NotBefore || e.Cert.NotAfter != NotAfter || e.Key.Type() != k {
				t.Errorf("%v: validity or key type", k)
			}
		}
	}
}
