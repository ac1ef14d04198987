package interop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"time"
)

// KeyAlg is the public-key algorithm of a test certificate.
type KeyAlg uint8

// Key algorithms for test certificates.
const (
	KeyECDSAP256 KeyAlg = iota + 1
	KeyECDSAP384
	KeyEd25519
	KeyRSA2048
)

// String returns the algorithm's name.
func (a KeyAlg) String() string {
	switch a {
	case KeyECDSAP256:
		return "ECDSA-P256"
	case KeyECDSAP384:
		return "ECDSA-P384"
	case KeyEd25519:
		return "Ed25519"
	case KeyRSA2048:
		return "RSA-2048"
	}
	return fmt.Sprintf("KeyAlg(%d)", uint8(a))
}

// certValidity is how long test certificates are valid (from an hour in the past, for clock skew).
const certValidity = 24 * time.Hour

func newKey(alg KeyAlg, rnd io.Reader) (crypto.Signer, error) {
	switch alg {
	case KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rnd)
	case KeyECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rnd)
	case KeyEd25519:
		_, k, err := ed25519.GenerateKey(rnd)
		return k, err
	case KeyRSA2048:
		return rsa.GenerateKey(rnd, 2048)
	}
	return nil, fmt.Errorf("interop: unknown key algorithm %v", alg)
}

// CA is a throw-away certification authority for interop tests.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// PEM is the CA certificate, for the peers' x509ca directories.
	PEM []byte
	now time.Time
}

// NewCA creates a self-signed CA certificate with key algorithm alg and common name cn, valid
// around now.
func NewCA(alg KeyAlg, cn string, now time.Time) (*CA, error) {
	key, err := newKey(alg, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("interop: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"pqlab interop"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("interop: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("interop: CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, PEM: pemBlock("CERTIFICATE", der), now: now}, nil
}

// Issue creates an end-entity certificate for the DNS name dns (also its common name, and the IKE
// identity to use with it) with key algorithm alg. extraSANs further DNS names pad the
// certificate, to make it large enough to need IKE fragmentation. It returns the certificate and
// its PKCS#8 private key, both PEM.
func (ca *CA) Issue(alg KeyAlg, dns string, extraSANs int) (certPEM, keyPEM []byte, err error) {
	key, err := newKey(alg, rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("interop: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, fmt.Errorf("interop: serial: %w", err)
	}
	names := []string{dns}
	for i := 0; i < extraSANs; i++ {
		names = append(names, fmt.Sprintf("pad%04d.%s", i, dns))
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dns, Organization: []string{"pqlab interop"}},
		DNSNames:     names,
		NotBefore:    ca.now.Add(-time.Hour),
		NotAfter:     ca.now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("interop: certificate: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("interop: private key: %w", err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", p8), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
