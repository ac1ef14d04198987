package auth_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pqlab/pqlab/ike/auth"
)

// TestOpenSSLCrossCheck hands our certificates and AUTH signatures for
// every key type to OpenSSL (through pyca/cryptography, see
// testdata/opensslcheck.py), which must parse the certificates, recognise
// the key type (ML-DSA per RFC 9881), verify the issuer's signature over
// tbsCertificate and our signature over the message. Skipped when python3
// with an ML-DSA-capable cryptography package is not installed; the
// committed testdata/openssl_vectors.json covers the other direction
// without Python (TestOpenSSLVectors).
func TestOpenSSLCrossCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python3")
	}
	if err := exec.Command("python3", "-c", "from cryptography.hazmat.primitives.asymmetric import mldsa; mldsa.MLDSA44PrivateKey.generate()").Run(); err != nil {
		t.Skipf("python3 with ML-DSA-capable pyca/cryptography not available: %v", err)
	}
	dir := t.TempDir()
	msg := []byte("pqlab signed octets for the OpenSSL cross-check")
	wantKeyClass := map[auth.KeyType]string{
		auth.KeyEd25519: "Ed25519PublicKey", auth.KeyECDSAP256: "ECPublicKey", auth.KeyECDSAP384: "ECPublicKey",
		auth.KeyMLDSA44: "MLDSA44PublicKey", auth.KeyMLDSA65: "MLDSA65PublicKey", auth.KeyMLDSA87: "MLDSA87PublicKey",
	}
	for _, k := range auth.KeyTypes {
		f := fixture(t, k)
		sig, err := f.Initiator.Key.SignMessage(k.SignatureAlgorithms()[0], msg)
		if err != nil {
			t.Fatal(err)
		}
		for ext, b := range map[string][]byte{".ca.der": f.CA.DER, ".ee.der": f.Initiator.DER, ".msg": msg, ".sig": sig} {
			if err := os.WriteFile(filepath.Join(dir, k.String()+ext), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	out, err := exec.Command("python3", "testdata/opensslcheck.py", "check", dir).Output()
	if err != nil {
		t.Fatalf("opensslcheck.py: %v", err)
	}
	var res map[string]struct {
		Parsed, CertSignatureOK, MessageSignatureOK bool
		KeyClass, SigAlgOID, Error                  string
		SAN                                         []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range auth.KeyTypes {
		r := res[k.String()]
		if !r.Parsed || !r.CertSignatureOK || !r.MessageSignatureOK || r.Error != "" {
			t.Errorf("%v: OpenSSL: %+v", k, r)
		}
		if r.KeyClass != wantKeyClass[k] {
			t.Errorf("%v: OpenSSL sees a %s", k, r.KeyClass)
		}
		if !slices.Equal(r.SAN, []string{"initiator.pqlab.test", "192.0.2.1", "2001:db8::1"}) {
			t.Errorf("%v: OpenSSL reads subjectAltName %v", k, r.SAN)
		}
	}
}
