package auth

import (
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/pqlab/pqlab/ike/wire"
)

// Signer produces our AUTH payload. The engine builds the signed octets
// (RFC 7296 Section 2.15, with the IntAuth values of RFC 9242 Section 3.3
// appended after IKE_INTERMEDIATE) and calls Sign; it puts method and data
// into the AUTH payload and Certificates() into CERT payloads.
type Signer interface {
	// Sign returns the Auth Method and Authentication Data over octets.
	// peerHashes is the list from the peer's SIGNATURE_HASH_ALGORITHMS
	// notify, nil when it sent none. rand may be nil: every method
	// implemented here is deterministic (see PrivateKey).
	Sign(rand io.Reader, octets []byte, peerHashes []wire.HashAlgorithm) (wire.AuthMethod, []byte, error)
	// Certificates returns the DER certificates to send in CERT payloads
	// with encoding wire.CertX509Signature, end entity first; nil for
	// shared keys.
	Certificates() [][]byte
}

// Verifier checks a peer's AUTH payload over the octets the peer must have
// signed.
type Verifier interface {
	Verify(method wire.AuthMethod, authData, octets []byte) error
}

// PRF is the negotiated pseudorandom function, prf(key, data) (RFC 7296
// Section 2.13). The engine passes the suite's implementation.
type PRF func(key, data []byte) []byte

// keyPad is the constant of RFC 7296 Section 2.15, without a terminator.
const keyPad = "Key Pad for IKEv2"

// PSK authenticates with a shared secret (Auth Method 2): AUTH =
// prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>) (RFC 7296
// Section 2.15). It is both a Signer and a Verifier.
type PSK struct {
	Secret []byte
	PRF    PRF
}

var (
	_ Signer   = (*PSK)(nil)
	_ Verifier = (*PSK)(nil)
	_ Signer   = (*CertSigner)(nil)
	_ Verifier = (*SignatureVerifier)(nil)
)

func (p *PSK) compute(octets []byte) ([]byte, error) {
	if p == nil || p.PRF == nil || len(p.Secret) == 0 {
		return nil, fmt.Errorf("auth: shared key or PRF not configured: %w", ErrUnsupportedAlgorithm)
	}
	return p.PRF(p.PRF(p.Secret, []byte(keyPad)), octets), nil
}

// Sign returns wire.AuthSharedKey and the AUTH value; rand and peerHashes
// are not used.
func (p *PSK) Sign(_ io.Reader, octets []byte, _ []wire.HashAlgorithm) (wire.AuthMethod, []byte, error) {
	v, err := p.compute(octets)
	return wire.AuthSharedKey, v, err
}

// Certificates returns nil.
func (p *PSK) Certificates() [][]byte { return nil }

// Verify recomputes the AUTH value and compares in constant time.
func (p *PSK) Verify(method wire.AuthMethod, authData, octets []byte) error {
	if method != wire.AuthSharedKey {
		return fmt.Errorf("auth: peer used auth method %d where a shared key is configured: %w", method, ErrKeyMismatch)
	}
	want, err := p.compute(octets)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, authData) != 1 {
		return fmt.Errorf("auth: shared-key AUTH value does not match: %w", ErrBadSignature)
	}
	return nil
}

// CertSigner signs with a private key and sends its certificate chain.
type CertSigner struct {
	Key *PrivateKey
	// Chain holds DER certificates, end entity first (its key must be
	// Key's public key), then intermediates if the peer may not have them.
	Chain [][]byte
	// NoLegacy forbids the RFC 4754 methods 9 and 10; an ECDSA key then
	// fails towards a peer that announced no usable hash.
	NoLegacy bool
}

// NewCertSigner checks that chain[0] certifies key and returns a signer.
func NewCertSigner(key *PrivateKey, chain ...[]byte) (*CertSigner, error) {
	if key == nil {
		return nil, fmt.Errorf("auth: no private key: %w", ErrKeyMismatch)
	}
	if len(chain) > 0 {
		c, err := ParseCertificate(chain[0])
		if err != nil {
			return nil, err
		}
		if !c.PublicKey.Equal(key.Public()) {
			return nil, fmt.Errorf("auth: end-entity certificate %q does not hold the signing key: %w", c.SubjectCommonName, ErrKeyMismatch)
		}
	}
	return &CertSigner{Key: key, Chain: chain}, nil
}

// Certificates returns the chain.
func (s *CertSigner) Certificates() [][]byte { return s.Chain }

// legacyMethod returns the RFC 4754 method and algorithm for an ECDSA key.
func legacyMethod(k KeyType) (wire.AuthMethod, SignatureAlgorithm, bool) {
	switch k {
	case KeyECDSAP256:
		return wire.AuthECDSA256, SigECDSAWithSHA256, true
	case KeyECDSAP384:
		return wire.AuthECDSA384, SigECDSAWithSHA384, true
	}
	return 0, 0, false
}

// Sign uses Digital Signature (14) with the algorithm ChooseSignatureAlgorithm
// picks for peerHashes. When the peer announced no usable hash (or nothing,
// as an RFC 7427-unaware peer does), an ECDSA key falls back to method 9 or
// 10 (RFC 4754, r|s signature) unless NoLegacy is set; Ed25519 and ML-DSA
// have no such method and fail with ErrHashNotAllowed.
func (s *CertSigner) Sign(_ io.Reader, octets []byte, peerHashes []wire.HashAlgorithm) (wire.AuthMethod, []byte, error) {
	if s == nil || s.Key == nil {
		return 0, nil, fmt.Errorf("auth: no private key: %w", ErrKeyMismatch)
	}
	if alg, ok := ChooseSignatureAlgorithm(s.Key.Type(), peerHashes); ok {
		sig, err := s.Key.SignMessage(alg, octets)
		if err != nil {
			return 0, nil, err
		}
		data, err := AppendSignatureAuthData(make([]byte, 0, 1+len(sigAlgIDs[alg])+len(sig)), alg, sig)
		return wire.AuthDigitalSignature, data, err
	}
	if method, alg, ok := legacyMethod(s.Key.Type()); ok && !s.NoLegacy {
		sig, err := s.Key.signRaw(alg, octets)
		return method, sig, err
	}
	return 0, nil, fmt.Errorf("auth: peer announced hash algorithms %v, none usable with a %v key: %w", peerHashes, s.Key.Type(), ErrHashNotAllowed)
}

// SignatureVerifier verifies a peer's signature-based AUTH payload with the
// public key from its (already validated) certificate.
type SignatureVerifier struct {
	Key *PublicKey
	// Hashes are the hash algorithms we announced in SIGNATURE_HASH_ALGORITHMS;
	// a Digital Signature AUTH payload using another hash is rejected.
	// nil means SupportedHashes().
	Hashes []wire.HashAlgorithm
	// NoLegacy rejects the RFC 4754 methods 9 and 10.
	NoLegacy bool
}

// Verify accepts Digital Signature (14) with any algorithm that fits the key
// and a hash we announced, and methods 9 and 10 for P-256 and P-384 keys.
func (v *SignatureVerifier) Verify(method wire.AuthMethod, authData, octets []byte) error {
	if v == nil || v.Key == nil {
		return fmt.Errorf("auth: no peer public key: %w", ErrKeyMismatch)
	}
	switch method {
	case wire.AuthDigitalSignature:
		alg, sig, err := ParseSignatureAuthData(authData)
		if err != nil {
			return err
		}
		hashes := v.Hashes
		if hashes == nil {
			hashes = SupportedHashes()
		}
		if !hashListed(hashes, alg.Hash()) {
			return fmt.Errorf("auth: peer signed with %v, whose hash %d we did not announce: %w", alg, alg.Hash(), ErrHashNotAllowed)
		}
		return v.Key.VerifyMessage(alg, octets, sig)
	case wire.AuthECDSA256, wire.AuthECDSA384:
		m, alg, ok := legacyMethod(v.Key.Type())
		if !ok || m != method {
			return fmt.Errorf("auth: auth method %d does not fit a %v key: %w", method, v.Key.Type(), ErrKeyMismatch)
		}
		if v.NoLegacy {
			return fmt.Errorf("auth: RFC 4754 auth method %d not accepted: %w", method, ErrUnsupportedAlgorithm)
		}
		return v.Key.verifyRaw(alg, octets, authData)
	case wire.AuthSharedKey:
		return fmt.Errorf("auth: peer used a shared key where a certificate is required: %w", ErrKeyMismatch)
	}
	return fmt.Errorf("auth: auth method %d: %w", method, ErrUnsupportedAlgorithm)
}
