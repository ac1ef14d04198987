package driver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/wire"
)

// Credentials are the certificate-based authentication of one connection, read from PEM: the
// private key and certificate chain this end signs with, and the trust anchors that the peer's
// certificates must chain to.
type Credentials struct {
	Signer auth.Signer
	Trust  *auth.Pool
	// CAs are the trust anchors, for the CERTREQ payloads (ike.AuthConfig.CertReqCAs): peers such
	// as strongSwan send their certificate only when asked for one of its CAs.
	CAs []*auth.Certificate
}

// LoadCredentials reads a private key (PKCS#8 "PRIVATE KEY" or SEC 1 "EC PRIVATE KEY"; Ed25519,
// ECDSA P-256 or P-384), the certificate chain sent in CERT payloads (leaf first; several PEM
// blocks or files), and trust anchors (CA certificates). keyFile may be empty for a connection that
// only verifies certificates.
func LoadCredentials(keyFile string, certFiles, caFiles []string) (*Credentials, error) {
	c := &Credentials{Trust: auth.NewPool()}
	for _, f := range caFiles {
		ders, err := readPEMCerts(f)
		if err != nil {
			return nil, err
		}
		for _, der := range ders {
			ca, err := auth.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("driver: %s: %w", f, err)
			}
			c.Trust.Add(ca)
			c.CAs = append(c.CAs, ca)
		}
	}
	if keyFile == "" {
		if len(certFiles) > 0 {
			return nil, errors.New("driver: certificates without a private key")
		}
		return c, nil
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	key, err := ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("driver: %s: %w", keyFile, err)
	}
	var chain [][]byte
	for _, f := range certFiles {
		ders, err := readPEMCerts(f)
		if err != nil {
			return nil, err
		}
		chain = append(chain, ders...)
	}
	if len(chain) == 0 {
		return nil, errors.New("driver: a private key needs its certificate")
	}
	if c.Signer, err = NewKeySigner(key, chain...); err != nil {
		return nil, err
	}
	return c, nil
}

func readPEMCerts(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	var out [][]byte
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			out = append(out, blk.Bytes)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("driver: %s: no PEM CERTIFICATE", path)
	}
	return out, nil
}

// ParsePrivateKeyPEM parses the first private key block of a PEM file: PKCS#8 (Ed25519 or ECDSA)
// or SEC 1 (ECDSA).
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key")
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("unsupported private key %T", k)
			}
			return s, nil
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(blk.Bytes)
		}
	}
}

// NewKeySigner returns an auth.Signer for a standard-library private key (Ed25519 or ECDSA P-256 or
// P-384) with its certificate chain (leaf first), after checking that the leaf holds the key.
// Ed25519 keys sign through auth.PrivateKey itself; ECDSA keys through KeySigner.
func NewKeySigner(key crypto.Signer, chain ...[]byte) (auth.Signer, error) {
	if len(chain) == 0 {
		return nil, errors.New("driver: no certificate")
	}
	leaf, err := auth.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("driver: certificate: %w", err)
	}
	var typ auth.KeyType
	switch k := key.(type) {
	case ed25519.PrivateKey:
		pk, err := auth.NewPrivateKeyFromSeed(auth.KeyEd25519, k.Seed())
		if err != nil {
			return nil, err
		}
		return auth.NewCertSigner(pk, chain...)
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			typ = auth.KeyECDSAP256
		case elliptic.P384():
			typ = auth.KeyECDSAP384
		default:
			return nil, fmt.Errorf("driver: ECDSA curve %s not supported", k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("driver: private key %T not supported", key)
	}
	raw, err := key.Public().(*ecdsa.PublicKey).Bytes()
	if err != nil {
		return nil, err
	}
	pub, err := auth.NewPublicKey(typ, raw)
	if err != nil {
		return nil, err
	}
	if !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("driver: certificate %q does not hold the private key", leaf.SubjectCommonName)
	}
	return &KeySigner{Key: key, Type: typ, Chain: chain}, nil
}

// KeySigner signs AUTH payloads with an ECDSA crypto.Signer (a key from a file or a hardware
// token): RFC 7427 Digital Signature (method 14) with the hash auth.ChooseSignatureAlgorithm
// picks from the peer's SIGNATURE_HASH_ALGORITHMS, or the RFC 4754 method 9 or 10 when the peer
// announced none.
type KeySigner struct {
	Key   crypto.Signer
	Type  auth.KeyType // auth.KeyECDSAP256 or auth.KeyECDSAP384
	Chain [][]byte
}

var _ auth.Signer = (*KeySigner)(nil)

// Certificates returns the chain for the CERT payloads.
func (s *KeySigner) Certificates() [][]byte { return s.Chain }

// Sign signs the AUTH octets (RFC 7296 Section 2.15).
func (s *KeySigner) Sign(rand io.Reader, octets []byte, peerHashes []wire.HashAlgorithm) (wire.AuthMethod, []byte, error) {
	if alg, ok := auth.ChooseSignatureAlgorithm(s.Type, peerHashes); ok {
		sig, err := s.sign(rand, hashOf(alg.Hash()), octets)
		if err != nil {
			return 0, nil, err
		}
		data, err := auth.AppendSignatureAuthData(nil, alg, sig)
		return wire.AuthDigitalSignature, data, err
	}
	// RFC 4754 Section 7: r and s as fixed-length big-endian integers; the hash is fixed by the
	// curve (SHA-256 for P-256, SHA-384 for P-384).
	method, h, size := wire.AuthECDSA256, crypto.SHA256, 32
	if s.Type == auth.KeyECDSAP384 {
		method, h, size = wire.AuthECDSA384, crypto.SHA384, 48
	}
	der, err := s.sign(rand, h, octets)
	if err != nil {
		return 0, nil, err
	}
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	r, ss := new(big.Int), new(big.Int)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !seq.ReadASN1Integer(r) || !seq.ReadASN1Integer(ss) ||
		r.Sign() <= 0 || ss.Sign() <= 0 || r.BitLen() > 8*size || ss.BitLen() > 8*size {
		return 0, nil, errors.New("driver: unexpected ECDSA signature encoding")
	}
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	ss.FillBytes(out[size:])
	return method, out, nil
}

func (s *KeySigner) sign(rand io.Reader, h crypto.Hash, msg []byte) ([]byte, error) {
	if h == 0 {
		return nil, errors.New("driver: no hash for ECDSA")
	}
	d := h.New()
	d.Write(msg)
	sig, err := s.Key.Sign(rand, d.Sum(nil), h)
	if err != nil {
		return nil, fmt.Errorf("driver: signing: %w", err)
	}
	return sig, nil
}

// hashOf maps an RFC 7427 hash algorithm to Go's.
func hashOf(h wire.HashAlgorithm) crypto.Hash {
	switch h {
	case wire.HashSHA2256:
		return crypto.SHA256
	case wire.HashSHA2384:
		return crypto.SHA384
	case wire.HashSHA2512:
		return crypto.SHA512
	}
	return 0
}
