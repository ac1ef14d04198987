package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// PrivateKey is a signing key of one of the supported key types.
//
// Signing is deterministic: Ed25519 by construction, ECDSA per RFC 6979
// (Go's crypto/ecdsa deterministic mode), ML-DSA in the deterministic variant
// of FIPS 204 (rnd = 0^256) unless Hedged is set. A seeded run therefore
// produces the same AUTH payloads and certificates every time.
type PrivateKey struct {
	typ  KeyType
	ed   ed25519.PrivateKey
	ec   *ecdsa.PrivateKey
	ml44 *mldsa44.PrivateKey
	ml65 *mldsa65.PrivateKey
	ml87 *mldsa87.PrivateKey
	pub  *PublicKey

	// Hedged makes ML-DSA signing use the hedged variant of FIPS 204 with
	// 256 bits from the system random source (circl reads crypto/rand
	// itself, so the randomness cannot be injected). The draft prefers
	// hedged signing; deterministic is the default here because it keeps
	// simulations reproducible. Both verify alike.
	Hedged bool
}

// NewPrivateKeyFromSeed derives a key of type t from a 32-octet seed:
//   - Ed25519: the seed is the RFC 8032 private key;
//   - ML-DSA: the seed is xi of ML-DSA.KeyGen_internal (FIPS 204 Algorithm 6),
//     the seed form of RFC 9881 private keys;
//   - ECDSA: the scalar is HMAC-SHA-256 (P-256) or HMAC-SHA-384 (P-384) keyed
//     with the seed over "pqlab ecdsa scalar" and a counter octet, the first
//     candidate in [1, n-1].
func NewPrivateKeyFromSeed(t KeyType, seed []byte) (*PrivateKey, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("auth: key seed of %d octets, want %d: %w", len(seed), SeedSize, ErrMalformed)
	}
	k := &PrivateKey{typ: t}
	switch t {
	case KeyEd25519:
		k.ed = ed25519.NewKeyFromSeed(seed)
	case KeyECDSAP256, KeyECDSAP384:
		curve, h, size := elliptic.P256(), sha256.New, 32
		if t == KeyECDSAP384 {
			curve, h, size = elliptic.P384(), sha512.New384, 48
		}
		for ctr := 0; ; ctr++ {
			if ctr == 256 {
				return nil, fmt.Errorf("auth: no valid %v scalar from seed: %w", t, ErrMalformed)
			}
			m := hmac.New(h, seed)
			m.Write([]byte("pqlab ecdsa scalar"))
			m.Write([]byte{byte(ctr)})
			cand := m.Sum(nil)[:size]
			if priv, err := ecdsa.ParseRawPrivateKey(curve, cand); err == nil {
				k.ec = priv
				break
			}
		}
	case KeyMLDSA44, KeyMLDSA65, KeyMLDSA87:
		var xi [mldsaSeedSize]byte
		copy(xi[:], seed)
		switch t {
		case KeyMLDSA44:
			_, k.ml44 = mldsa44.NewKeyFromSeed(&xi)
		case KeyMLDSA65:
			_, k.ml65 = mldsa65.NewKeyFromSeed(&xi)
		default:
			_, k.ml87 = mldsa87.NewKeyFromSeed(&xi)
		}
	default:
		return nil, fmt.Errorf("auth: key type %v: %w", t, ErrUnsupportedAlgorithm)
	}
	k.pub = k.derivePublic()
	return k, nil
}

// GeneratePrivateKey reads SeedSize octets from rand and derives a key of
// type t from them with NewPrivateKeyFromSeed.
func GeneratePrivateKey(t KeyType, rand io.Reader) (*PrivateKey, error) {
	seed := make([]byte, SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("auth: reading key seed: %w", err)
	}
	return NewPrivateKeyFromSeed(t, seed)
}

func (k *PrivateKey) derivePublic() *PublicKey {
	p := &PublicKey{typ: k.typ}
	switch k.typ {
	case KeyEd25519:
		p.ed = k.ed.Public().(ed25519.PublicKey)
		p.raw = bytes.Clone(p.ed)
	case KeyECDSAP256, KeyECDSAP384:
		p.ec = &k.ec.PublicKey
		p.raw, _ = p.ec.Bytes() // cannot fail for a valid private key
	case KeyMLDSA44:
		p.ml44 = k.ml44.Public().(*mldsa44.PublicKey)
		p.raw = p.ml44.Bytes()
	case KeyMLDSA65:
		p.ml65 = k.ml65.Public().(*mldsa65.PublicKey)
		p.raw = p.ml65.Bytes()
	case KeyMLDSA87:
		p.ml87 = k.ml87.Public().(*mldsa87.PublicKey)
		p.raw = p.ml87.Bytes()
	}
	return p
}

// Type returns the key type.
func (k *PrivateKey) Type() KeyType { return k.typ }

// Public returns the public half of the key.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// SignMessage signs msg with algorithm alg as RFC 7427 Section 3 defines for
// the AUTH payload and RFC 5280 for certificates: ECDSA hashes msg with the
// algorithm's hash and returns a DER Ecdsa-Sig-Value (RFC 3279); Ed25519
// signs msg itself (RFC 8420); ML-DSA signs msg itself in pure mode with an
// empty context string (draft-ietf-ipsecme-ikev2-pqc-auth Section 3.2).
func (k *PrivateKey) SignMessage(alg SignatureAlgorithm, msg []byte) ([]byte, error) {
	if !alg.KeyTypeOK(k.typ) {
		return nil, fmt.Errorf("auth: cannot sign %v with a %v key: %w", alg, k.typ, ErrKeyMismatch)
	}
	switch k.typ {
	case KeyEd25519:
		return ed25519.Sign(k.ed, msg), nil
	case KeyECDSAP256, KeyECDSAP384:
		h := alg.cryptoHash()
		d := h.New()
		d.Write(msg)
		// A nil random source selects RFC 6979 deterministic signatures.
		return k.ec.Sign(nil, d.Sum(nil), h)
	case KeyMLDSA44:
		sig := make([]byte, mldsa44.SignatureSize)
		return sig, mldsa44.SignTo(k.ml44, msg, nil, k.Hedged, sig)
	case KeyMLDSA65:
		sig := make([]byte, mldsa65.SignatureSize)
		return sig, mldsa65.SignTo(k.ml65, msg, nil, k.Hedged, sig)
	case KeyMLDSA87:
		sig := make([]byte, mldsa87.SignatureSize)
		return sig, mldsa87.SignTo(k.ml87, msg, nil, k.Hedged, sig)
	}
	return nil, fmt.Errorf("auth: key type %v: %w", k.typ, ErrUnsupportedAlgorithm)
}

// signRaw produces an RFC 4754 signature (auth methods 9 and 10): r and s as
// fixed-length big-endian integers, concatenated.
func (k *PrivateKey) signRaw(alg SignatureAlgorithm, msg []byte) ([]byte, error) {
	der, err := k.SignMessage(alg, msg)
	if err != nil {
		return nil, err
	}
	size := (k.ec.Curve.Params().BitSize + 7) / 8
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	var r, ss []byte
	if !s.ReadASN1(&seq, asn1.SEQUENCE) || !readUnsigned(&seq, &r) || !readUnsigned(&seq, &ss) || len(r) > size || len(ss) > size {
		return nil, fmt.Errorf("auth: unexpected ECDSA signature encoding: %w", ErrMalformed)
	}
	out := make([]byte, 2*size)
	copy(out[size-len(r):size], r)
	copy(out[2*size-len(ss):], ss)
	return out, nil
}

// readUnsigned reads a non-negative DER INTEGER as big-endian bytes without
// leading zeros.
func readUnsigned(s *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !s.ReadASN1(&v, asn1.INTEGER) || len(v) == 0 || v[0]&0x80 != 0 {
		return false
	}
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	*out = v
	return true
}

// PublicKey is a verification key of one of the supported key types.
type PublicKey struct {
	typ  KeyType
	raw  []byte
	ed   ed25519.PublicKey
	ec   *ecdsa.PublicKey
	ml44 *mldsa44.PublicKey
	ml65 *mldsa65.PublicKey
	ml87 *mldsa87.PublicKey
}

// NewPublicKey parses a raw public key of type t: 32 octets for Ed25519, an
// uncompressed point for ECDSA, the packed FIPS 204 key for ML-DSA.
func NewPublicKey(t KeyType, raw []byte) (*PublicKey, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("auth: key type %v: %w", t, ErrUnsupportedAlgorithm)
	}
	if len(raw) != t.PublicKeySize() {
		return nil, fmt.Errorf("auth: %v public key of %d octets, want %d: %w", t, len(raw), t.PublicKeySize(), ErrMalformed)
	}
	p := &PublicKey{typ: t, raw: bytes.Clone(raw)}
	var err error
	switch t {
	case KeyEd25519:
		p.ed = ed25519.PublicKey(p.raw)
	case KeyECDSAP256:
		p.ec, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), p.raw)
	case KeyECDSAP384:
		p.ec, err = ecdsa.ParseUncompressedPublicKey(elliptic.P384(), p.raw)
	case KeyMLDSA44:
		p.ml44 = new(mldsa44.PublicKey)
		err = p.ml44.UnmarshalBinary(p.raw)
	case KeyMLDSA65:
		p.ml65 = new(mldsa65.PublicKey)
		err = p.ml65.UnmarshalBinary(p.raw)
	case KeyMLDSA87:
		p.ml87 = new(mldsa87.PublicKey)
		err = p.ml87.UnmarshalBinary(p.raw)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %v public key: %v: %w", t, err, ErrMalformed)
	}
	return p, nil
}

// Type returns the key type.
func (p *PublicKey) Type() KeyType { return p.typ }

// Bytes returns a copy of the raw public key (see NewPublicKey).
func (p *PublicKey) Bytes() []byte { return bytes.Clone(p.raw) }

// Equal reports whether p and q are the same key.
func (p *PublicKey) Equal(q *PublicKey) bool {
	return p != nil && q != nil && p.typ == q.typ && subtle.ConstantTimeCompare(p.raw, q.raw) == 1
}

// CryptoPublicKey returns the key as the Go type crypto/x509 uses
// (ed25519.PublicKey or *ecdsa.PublicKey), or the circl ML-DSA key.
func (p *PublicKey) CryptoPublicKey() crypto.PublicKey {
	switch p.typ {
	case KeyEd25519:
		return p.ed
	case KeyECDSAP256, KeyECDSAP384:
		return p.ec
	case KeyMLDSA44:
		return p.ml44
	case KeyMLDSA65:
		return p.ml65
	case KeyMLDSA87:
		return p.ml87
	}
	return nil
}

// VerifyMessage checks sig over msg for algorithm alg, the inverse of
// PrivateKey.SignMessage.
func (p *PublicKey) VerifyMessage(alg SignatureAlgorithm, msg, sig []byte) error {
	if !alg.KeyTypeOK(p.typ) {
		return fmt.Errorf("auth: %v signature with a %v key: %w", alg, p.typ, ErrKeyMismatch)
	}
	ok := false
	switch p.typ {
	case KeyEd25519:
		ok = len(sig) == ed25519.SignatureSize && ed25519.Verify(p.ed, msg, sig)
	case KeyECDSAP256, KeyECDSAP384:
		d := alg.cryptoHash().New()
		d.Write(msg)
		ok = ecdsa.VerifyASN1(p.ec, d.Sum(nil), sig)
	case KeyMLDSA44:
		ok = len(sig) == mldsa44.SignatureSize && mldsa44.Verify(p.ml44, msg, nil, sig)
	case KeyMLDSA65:
		ok = len(sig) == mldsa65.SignatureSize && mldsa65.Verify(p.ml65, msg, nil, sig)
	case KeyMLDSA87:
		ok = len(sig) == mldsa87.SignatureSize && mldsa87.Verify(p.ml87, msg, nil, sig)
	}
	if !ok {
		return fmt.Errorf("auth: %v signature (%d octets) over %d octets does not verify: %w", alg, len(sig), len(msg), ErrBadSignature)
	}
	return nil
}

// verifyRaw checks an RFC 4754 r|s signature.
func (p *PublicKey) verifyRaw(alg SignatureAlgorithm, msg, sig []byte) error {
	size := (p.ec.Curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return fmt.Errorf("auth: RFC 4754 signature of %d octets, want %d: %w", len(sig), 2*size, ErrMalformed)
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addUnsigned(b, sig[:size])
		addUnsigned(b, sig[size:])
	})
	der, err := b.Bytes()
	if err != nil {
		return fmt.Errorf("auth: %v: %w", err, ErrMalformed)
	}
	return p.VerifyMessage(alg, msg, der)
}

// addUnsigned adds a big-endian unsigned integer as a DER INTEGER.
func addUnsigned(b *cryptobyte.Builder, v []byte) {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) {
		if len(v) > 0 && v[0]&0x80 != 0 {
			b.AddUint8(0)
		}
		b.AddBytes(v)
	})
}

// spkiAlgIDs holds the DER AlgorithmIdentifier of each key type inside a
// SubjectPublicKeyInfo: id-Ed25519 (RFC 8410 Section 3), id-ecPublicKey with
// the named curve (RFC 5480 Section 2.1.1), id-ml-dsa-* (RFC 9881 Section 4).
var spkiAlgIDs = [...][]byte{
	KeyEd25519: {0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70},
	KeyECDSAP256: {0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
		0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07},
	KeyECDSAP384: {0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
		0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22},
	KeyMLDSA44: {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11},
	KeyMLDSA65: {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12},
	KeyMLDSA87: {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x13},
}

// MarshalPKIX returns the DER SubjectPublicKeyInfo (RFC 5280 Section
// 4.1.2.7) of the key.
func (p *PublicKey) MarshalPKIX() []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(spkiAlgIDs[p.typ])
		b.AddASN1BitString(p.raw)
	})
	return b.BytesOrPanic() // lengths are bounded by the key sizes
}

// ParsePKIXPublicKey parses a DER SubjectPublicKeyInfo of a supported key
// type. The AlgorithmIdentifier must be the exact DER encoding the RFCs
// prescribe (parameters absent, or the named curve for ECDSA).
func ParsePKIXPublicKey(der []byte) (*PublicKey, error) {
	s := cryptobyte.String(der)
	var spki cryptobyte.String
	if !s.ReadASN1(&spki, asn1.SEQUENCE) || !s.Empty() {
		return nil, fmt.Errorf("auth: SubjectPublicKeyInfo is not a DER SEQUENCE: %w", ErrMalformed)
	}
	return parseSPKIContents(spki)
}

func parseSPKIContents(spki cryptobyte.String) (*PublicKey, error) {
	var algID cryptobyte.String
	var bits []byte
	if !spki.ReadASN1Element(&algID, asn1.SEQUENCE) || !spki.ReadASN1BitStringAsBytes(&bits) || !spki.Empty() {
		return nil, fmt.Errorf("auth: SubjectPublicKeyInfo does not parse: %w", ErrMalformed)
	}
	for _, t := range KeyTypes {
		if bytes.Equal(algID, spkiAlgIDs[t]) {
			return NewPublicKey(t, bits)
		}
	}
	return nil, fmt.Errorf("auth: public key algorithm %s: %w", describeAlgorithmIdentifier(algID), ErrUnsupportedAlgorithm)
}
