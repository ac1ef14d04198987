package auth

import (
	"fmt"
)

// RFC 7427 Section 3: the Authentication Data of the Digital Signature
// method (14) is
//
//	ASN.1 Length (1 octet) | AlgorithmIdentifier (DER) | Signature Value
//
// where the length counts the AlgorithmIdentifier only.
const (
	asn1LengthSize = 1
	// MaxAuthDataSize bounds the Authentication Data we accept: the largest
	// signature we support (ML-DSA-87, 4627 octets) plus its identifier,
	// rounded up. Anything longer is rejected before any work is done.
	MaxAuthDataSize = 8192
)

// AppendSignatureAuthData appends the RFC 7427 Section 3 Authentication
// Data for signature sig of algorithm alg.
func AppendSignatureAuthData(b []byte, alg SignatureAlgorithm, sig []byte) ([]byte, error) {
	if !alg.Valid() {
		return nil, fmt.Errorf("auth: signature algorithm %v: %w", alg, ErrUnsupportedAlgorithm)
	}
	id := sigAlgIDs[alg]
	b = append(b, byte(len(id)))
	b = append(b, id...)
	return append(b, sig...), nil
}

// ParseSignatureAuthData splits RFC 7427 Authentication Data into the
// signature algorithm and the signature value. The returned signature aliases
// data. Errors wrap ErrMalformed for a broken layout and
// ErrUnsupportedAlgorithm for an AlgorithmIdentifier we do not know.
func ParseSignatureAuthData(data []byte) (SignatureAlgorithm, []byte, error) {
	if len(data) > MaxAuthDataSize {
		return 0, nil, fmt.Errorf("auth: Authentication Data of %d octets exceeds %d: %w", len(data), MaxAuthDataSize, ErrMalformed)
	}
	if len(data) < asn1LengthSize {
		return 0, nil, fmt.Errorf("auth: empty Authentication Data: %w", ErrMalformed)
	}
	n := int(data[0])
	if n == 0 || asn1LengthSize+n > len(data) {
		return 0, nil, fmt.Errorf("auth: ASN.1 Length %d does not fit Authentication Data of %d octets: %w", n, len(data), ErrMalformed)
	}
	alg, err := ParseAlgorithmIdentifier(data[asn1LengthSize : asn1LengthSize+n])
	if err != nil {
		return 0, nil, err
	}
	sig := data[asn1LengthSize+n:]
	if len(sig) == 0 {
		return 0, nil, fmt.Errorf("auth: %v Authentication Data carries no signature: %w", alg, ErrMalformed)
	}
	return alg, sig, nil
}
