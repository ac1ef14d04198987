package auth

import (
	encasn1 "encoding/asn1"
	"encoding/hex"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Error classes. Every error returned by this package wraps exactly one of
// them, so the engine can map failures to notifies and counters with
// errors.Is; the message says what was wrong. All of them mean
// AUTHENTICATION_FAILED (24) on the wire, except ErrMalformed in a peer's
// payload, which the engine may answer with INVALID_SYNTAX (7).
var (
	// ErrMalformed: an encoding (AUTH data, certificate, ID payload body,
	// notify data) does not parse.
	ErrMalformed = errors.New("malformed")
	// ErrUnsupportedAlgorithm: an algorithm, key type or auth method we do
	// not implement.
	ErrUnsupportedAlgorithm = errors.New("unsupported algorithm")
	// ErrHashNotAllowed: the peer signed with a hash we did not announce, or
	// the peer announced no hash our key can use.
	ErrHashNotAllowed = errors.New("hash algorithm not negotiated")
	// ErrKeyMismatch: the algorithm or method does not fit the key.
	ErrKeyMismatch = errors.New("algorithm does not match key")
	// ErrBadSignature: a signature or shared-key AUTH value does not verify.
	ErrBadSignature = errors.New("verification failed")
	// ErrUnknownIssuer: no path from the end-entity certificate to the pool.
	ErrUnknownIssuer = errors.New("unknown issuer")
	// ErrValidity: a certificate is not valid at the verification time.
	ErrValidity = errors.New("outside validity period")
	// ErrNotAuthorized: a certificate may not be used as it is (not a CA,
	// key usage, path length, unhandled critical extension).
	ErrNotAuthorized = errors.New("certificate use not authorized")
	// ErrIdentityMismatch: the IDx payload does not match the certificate.
	ErrIdentityMismatch = errors.New("identity mismatch")
)

// describeAlgorithmIdentifier renders an AlgorithmIdentifier for an error
// message: its OID when it parses, otherwise (a prefix of) its hex.
func describeAlgorithmIdentifier(der []byte) string {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	var oid encasn1.ObjectIdentifier
	if s.ReadASN1(&seq, asn1.SEQUENCE) && seq.ReadASN1ObjectIdentifier(&oid) {
		if len(seq) > 0 {
			return oid.String() + " with parameters"
		}
		return oid.String()
	}
	const max = 16
	if len(der) > max {
		return hex.EncodeToString(der[:max]) + "..."
	}
	return hex.EncodeToString(der)
}
