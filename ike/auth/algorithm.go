package auth

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/pqlab/pqlab/ike/wire"
)

// KeyType is the algorithm of a signing key pair, that is of the subject
// public key of a certificate.
type KeyType uint8

// Key types.
const (
	KeyEd25519   KeyType = 1 + iota // Ed25519 (RFC 8032, RFC 8410)
	KeyECDSAP256                    // ECDSA on NIST P-256 (RFC 5480)
	KeyECDSAP384                    // ECDSA on NIST P-384 (RFC 5480)
	KeyMLDSA44                      // ML-DSA-44 (FIPS 204, RFC 9881)
	KeyMLDSA65                      // ML-DSA-65 (FIPS 204, RFC 9881)
	KeyMLDSA87                      // ML-DSA-87 (FIPS 204, RFC 9881)
)

// KeyTypes lists every supported key type, classical first.
var KeyTypes = []KeyType{KeyEd25519, KeyECDSAP256, KeyECDSAP384, KeyMLDSA44, KeyMLDSA65, KeyMLDSA87}

// Raw public key sizes: the contents of the subjectPublicKey BIT STRING.
const (
	Ed25519PublicKeySize = 32                    // RFC 8410 Section 4
	P256PublicKeySize    = 65                    // uncompressed point, SEC 1 Section 2.3.3
	P384PublicKeySize    = 97                    // uncompressed point
	MLDSA44PublicKeySize = mldsa44.PublicKeySize // 1312, FIPS 204 Table 2
	MLDSA65PublicKeySize = mldsa65.PublicKeySize // 1952
	MLDSA87PublicKeySize = mldsa87.PublicKeySize // 2592
	MLDSA44SignatureSize = mldsa44.SignatureSize // 2420
	MLDSA65SignatureSize = mldsa65.SignatureSize // 3309
	MLDSA87SignatureSize = mldsa87.SignatureSize // 4627
	Ed25519SignatureSize = 64                    // RFC 8032 Section 5.1.6
	P256RawSignatureSize = 64                    // r | s, RFC 4754 Section 7
	P384RawSignatureSize = 96                    // r | s
	SeedSize             = 32                    // bytes of seed per private key
	mldsaSeedSize        = mldsa65.SeedSize      // 32, the xi of FIPS 204 Algorithm 6
)

// String returns the key type's usual name.
func (k KeyType) String() string {
	switch k {
	case KeyEd25519:
		return "Ed25519"
	case KeyECDSAP256:
		return "ECDSA-P256"
	case KeyECDSAP384:
		return "ECDSA-P384"
	case KeyMLDSA44:
		return "ML-DSA-44"
	case KeyMLDSA65:
		return "ML-DSA-65"
	case KeyMLDSA87:
		return "ML-DSA-87"
	}
	return fmt.Sprintf("KeyType(%d)", uint8(k))
}

// Valid reports whether k is a supported key type.
func (k KeyType) Valid() bool { return k >= KeyEd25519 && k <= KeyMLDSA87 }

// IsMLDSA reports whether k is one of the ML-DSA parameter sets.
func (k KeyType) IsMLDSA() bool { return k >= KeyMLDSA44 && k <= KeyMLDSA87 }

// PublicKeySize is the size of the raw public key (the subjectPublicKey bits).
func (k KeyType) PublicKeySize() int {
	switch k {
	case KeyEd25519:
		return Ed25519PublicKeySize
	case KeyECDSAP256:
		return P256PublicKeySize
	case KeyECDSAP384:
		return P384PublicKeySize
	case KeyMLDSA44:
		return MLDSA44PublicKeySize
	case KeyMLDSA65:
		return MLDSA65PublicKeySize
	case KeyMLDSA87:
		return MLDSA87PublicKeySize
	}
	return 0
}

// SignatureAlgorithms lists the RFC 7427 signature algorithms a key of type
// k can produce, in our order of preference.
func (k KeyType) SignatureAlgorithms() []SignatureAlgorithm {
	switch k {
	case KeyEd25519:
		return []SignatureAlgorithm{SigEd25519}
	case KeyECDSAP256:
		return []SignatureAlgorithm{SigECDSAWithSHA256, SigECDSAWithSHA384, SigECDSAWithSHA512}
	case KeyECDSAP384:
		return []SignatureAlgorithm{SigECDSAWithSHA384, SigECDSAWithSHA512, SigECDSAWithSHA256}
	case KeyMLDSA44:
		return []SignatureAlgorithm{SigMLDSA44}
	case KeyMLDSA65:
		return []SignatureAlgorithm{SigMLDSA65}
	case KeyMLDSA87:
		return []SignatureAlgorithm{SigMLDSA87}
	}
	return nil
}

// certSignatureAlgorithm is the algorithm a key of type k uses to sign
// certificates: the curve's natural hash for ECDSA (RFC 5758 Section 3.2).
func (k KeyType) certSignatureAlgorithm() SignatureAlgorithm {
	if algs := k.SignatureAlgorithms(); len(algs) > 0 {
		return algs[0]
	}
	return 0
}

// SignatureAlgorithm is a signature algorithm as named by the ASN.1
// AlgorithmIdentifier of RFC 7427 Section 3 and of X.509 certificates.
type SignatureAlgorithm uint8

// Signature algorithms.
const (
	SigEd25519         SignatureAlgorithm = 1 + iota // id-Ed25519, RFC 8410; RFC 8420 in IKEv2
	SigECDSAWithSHA256                               // ecdsa-with-SHA256, RFC 5758 Section 3.2
	SigECDSAWithSHA384                               // ecdsa-with-SHA384
	SigECDSAWithSHA512                               // ecdsa-with-SHA512
	SigMLDSA44                                       // id-ml-dsa-44, RFC 9881; pure, empty context
	SigMLDSA65                                       // id-ml-dsa-65
	SigMLDSA87                                       // id-ml-dsa-87
)

// sigAlgIDs holds the DER AlgorithmIdentifier of each signature algorithm.
// Parameters are absent for all of them (RFC 5758 Section 3.2, RFC 8410
// Section 3, RFC 9881 Section 2). The encodings equal RFC 7427 Appendix A,
// RFC 8420 Appendix A and draft-ietf-ipsecme-ikev2-pqc-auth Appendix B.
var sigAlgIDs = [...][]byte{
	SigEd25519:         {0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70},
	SigECDSAWithSHA256: {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02},
	SigECDSAWithSHA384: {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03},
	SigECDSAWithSHA512: {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04},
	SigMLDSA44:         {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11},
	SigMLDSA65:         {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12},
	SigMLDSA87:         {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x13},
}

// String returns the algorithm's ASN.1 name.
func (s SignatureAlgorithm) String() string {
	switch s {
	case SigEd25519:
		return "Ed25519"
	case SigECDSAWithSHA256:
		return "ecdsa-with-SHA256"
	case SigECDSAWithSHA384:
		return "ecdsa-with-SHA384"
	case SigECDSAWithSHA512:
		return "ecdsa-with-SHA512"
	case SigMLDSA44:
		return "ML-DSA-44"
	case SigMLDSA65:
		return "ML-DSA-65"
	case SigMLDSA87:
		return "ML-DSA-87"
	}
	return fmt.Sprintf("SignatureAlgorithm(%d)", uint8(s))
}

// Valid reports whether s is a supported signature algorithm.
func (s SignatureAlgorithm) Valid() bool { return s >= SigEd25519 && s <= SigMLDSA87 }

// AlgorithmIdentifier returns the DER encoding of the algorithm's
// AlgorithmIdentifier (a copy), or nil for an unknown algorithm.
func (s SignatureAlgorithm) AlgorithmIdentifier() []byte {
	if !s.Valid() {
		return nil
	}
	return bytes.Clone(sigAlgIDs[s])
}

// Hash is the RFC 7427 hash algorithm the signature uses, the value that
// must appear in the peer's SIGNATURE_HASH_ALGORITHMS list. Ed25519 and
// ML-DSA sign the octets themselves: Identity (RFC 8420 Section 2,
// draft-ietf-ipsecme-ikev2-pqc-auth Section 3.2.1).
func (s SignatureAlgorithm) Hash() wire.HashAlgorithm {
	switch s {
	case SigECDSAWithSHA256:
		return wire.HashSHA2256
	case SigECDSAWithSHA384:
		return wire.HashSHA2384
	case SigECDSAWithSHA512:
		return wire.HashSHA2512
	case SigEd25519, SigMLDSA44, SigMLDSA65, SigMLDSA87:
		return wire.HashIdentity
	}
	return 0
}

// cryptoHash is the Go hash of an ECDSA algorithm, 0 for the others.
func (s SignatureAlgorithm) cryptoHash() crypto.Hash {
	switch s {
	case SigECDSAWithSHA256:
		return crypto.SHA256
	case SigECDSAWithSHA384:
		return crypto.SHA384
	case SigECDSAWithSHA512:
		return crypto.SHA512
	}
	return 0
}

// KeyTypeOK reports whether a key of type k may produce signatures of
// algorithm s.
func (s SignatureAlgorithm) KeyTypeOK(k KeyType) bool {
	switch s {
	case SigEd25519:
		return k == KeyEd25519
	case SigECDSAWithSHA256, SigECDSAWithSHA384, SigECDSAWithSHA512:
		return k == KeyECDSAP256 || k == KeyECDSAP384
	case SigMLDSA44:
		return k == KeyMLDSA44
	case SigMLDSA65:
		return k == KeyMLDSA65
	case SigMLDSA87:
		return k == KeyMLDSA87
	}
	return false
}

// ParseAlgorithmIdentifier maps a DER AlgorithmIdentifier to a signature
// algorithm. Only the exact DER encodings (parameters absent) are accepted.
func ParseAlgorithmIdentifier(der []byte) (SignatureAlgorithm, error) {
	for s := SigEd25519; s <= SigMLDSA87; s++ {
		if bytes.Equal(der, sigAlgIDs[s]) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("auth: signature algorithm %s: %w", describeAlgorithmIdentifier(der), ErrUnsupportedAlgorithm)
}

// SupportedHashes returns the hash algorithms we announce in the
// SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 Section 4): the SHA-2 family for
// ECDSA and Identity (5) for Ed25519 (RFC 8420) and ML-DSA
// (draft-ietf-ipsecme-ikev2-pqc-auth Section 3.2.1, which makes announcing it
// mandatory). SHA-1 is not offered.
func SupportedHashes() []wire.HashAlgorithm {
	return []wire.HashAlgorithm{wire.HashSHA2256, wire.HashSHA2384, wire.HashSHA2512, wire.HashIdentity}
}

// AppendHashAlgorithms appends the Notification Data of a
// SIGNATURE_HASH_ALGORITHMS notify: each hash algorithm as 2 octets in
// network order (RFC 7427 Section 4).
func AppendHashAlgorithms(b []byte, hashes []wire.HashAlgorithm) []byte {
	for _, h := range hashes {
		b = binary.BigEndian.AppendUint16(b, uint16(h))
	}
	return b
}

// ParseHashAlgorithms parses the Notification Data of a
// SIGNATURE_HASH_ALGORITHMS notify. Unknown values are kept (they are simply
// never chosen); an odd length is an error.
func ParseHashAlgorithms(data []byte) ([]wire.HashAlgorithm, error) {
	if len(data)%2 != 0 {
		return nil, fmt.Errorf("auth: SIGNATURE_HASH_ALGORITHMS data of %d octets is not a list of 2-octet values: %w", len(data), ErrMalformed)
	}
	out := make([]wire.HashAlgorithm, 0, len(data)/2)
	for i := 0; i < len(data); i += 2 {
		out = append(out, wire.HashAlgorithm(binary.BigEndian.Uint16(data[i:])))
	}
	return out, nil
}

// ChooseSignatureAlgorithm picks the RFC 7427 signature algorithm a key of
// type k uses towards a peer that announced peerHashes: the first of
// k.SignatureAlgorithms() whose hash the peer listed. RFC 7427 Section 4: a
// signer uses only hash algorithms the peer announced; ML-DSA additionally
// must not be used with a peer that did not announce Identity
// (draft-ietf-ipsecme-ikev2-pqc-auth Section 3.2.1). ok is false when there
// is none, including when the peer sent no notify at all.
func ChooseSignatureAlgorithm(k KeyType, peerHashes []wire.HashAlgorithm) (alg SignatureAlgorithm, ok bool) {
	for _, s := range k.SignatureAlgorithms() {
		for _, h := range peerHashes {
			if h == s.Hash() {
				return s, true
			}
		}
	}
	return 0, false
}

// hashListed reports whether h is in list.
func hashListed(list []wire.HashAlgorithm, h wire.HashAlgorithm) bool {
	for _, x := range list {
		if x == h {
			return true
		}
	}
	return false
}
