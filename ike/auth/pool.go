package auth

import (
	"bytes"
	"fmt"
	"time"

	"github.com/pqlab/pqlab/ike/wire"
)

// MaxChainCertificates bounds the certificates a peer may send (end entity
// plus intermediates); more are rejected before any signature is checked.
const MaxChainCertificates = 8

// Pool is a set of trust anchors (CA certificates). The zero value is an
// empty pool. A Pool is not safe for concurrent modification; once filled it
// may be used by many goroutines.
type Pool struct {
	anchors []*Certificate
}

// NewPool returns a pool holding the given certificates.
func NewPool(anchors ...*Certificate) *Pool {
	return &Pool{anchors: append([]*Certificate(nil), anchors...)}
}

// Add adds a trust anchor.
func (p *Pool) Add(c *Certificate) { p.anchors = append(p.anchors, c) }

// AddDER parses and adds a DER trust anchor.
func (p *Pool) AddDER(der []byte) error {
	c, err := ParseCertificate(der)
	if err != nil {
		return err
	}
	p.Add(c)
	return nil
}

// Len returns the number of trust anchors.
func (p *Pool) Len() int { return len(p.anchors) }

// VerifyOptions are the inputs of certificate verification.
type VerifyOptions struct {
	// Time is when the certificates must be valid; required (never the
	// wall clock: the caller's notion of now).
	Time time.Time
	// Identity, when set, is the peer's IDx, which must name the end-entity
	// certificate (Certificate.MatchIdentity).
	Identity *Identity
	// Hashes, for VerifyAuth, are the hash algorithms we announced; nil
	// means SupportedHashes().
	Hashes []wire.HashAlgorithm
}

// Verify validates a peer's certificates, as received in CERT payloads
// (end entity first, then intermediates in any order), against the pool at
// opts.Time and returns the end-entity certificate. Each certificate on the
// path must be valid at that time and signed by the next; every issuer must
// be a CA (basicConstraints cA, keyCertSign if keyUsage is present) within
// its pathLenConstraint; the end entity, if it has keyUsage, must allow
// digitalSignature (RFC 4945 Section 5.1.3.2). The anchor is any pool
// certificate whose subject equals the issuer name and whose key verifies
// the signature; anchors are also checked for validity. No revocation
// checking is done.
func (p *Pool) Verify(certs [][]byte, opts VerifyOptions) (*Certificate, error) {
	if opts.Time.IsZero() {
		return nil, fmt.Errorf("auth: verification time not set: %w", ErrValidity)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("auth: peer sent no certificate: %w", ErrUnknownIssuer)
	}
	if len(certs) > MaxChainCertificates {
		return nil, fmt.Errorf("auth: peer sent %d certificates, at most %d accepted: %w", len(certs), MaxChainCertificates, ErrMalformed)
	}
	parsed := make([]*Certificate, len(certs))
	for i, der := range certs {
		c, err := ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		parsed[i] = c
	}
	leaf := parsed[0]
	if leaf.HasKeyUsage && leaf.KeyUsage&(KeyUsageDigitalSignature|KeyUsageContentCommitment) == 0 {
		return nil, fmt.Errorf("auth: end-entity certificate %q key usage forbids signatures: %w", leaf.SubjectCommonName, ErrNotAuthorized)
	}
	if opts.Identity != nil {
		if err := leaf.MatchIdentity(*opts.Identity); err != nil {
			return nil, err
		}
	}
	if err := p.buildPath(leaf, parsed[1:], opts.Time); err != nil {
		return nil, err
	}
	return leaf, nil
}

// buildPath walks from the end entity to a trust anchor.
func (p *Pool) buildPath(leaf *Certificate, intermediates []*Certificate, now time.Time) error {
	cur := leaf
	used := make([]bool, len(intermediates))
	for depth := 0; ; depth++ {
		if err := cur.ValidAt(now); err != nil {
			return err
		}
		// A pinned anchor: the certificate itself is in the pool.
		for _, a := range p.anchors {
			if bytes.Equal(a.Raw, cur.Raw) {
				return nil
			}
		}
		var lastErr error
		for _, a := range p.anchors {
			if !bytes.Equal(a.RawSubject, cur.RawIssuer) {
				continue
			}
			if err := checkIssuer(a, depth); err != nil {
				lastErr = err
				continue
			}
			if err := cur.CheckSignatureFrom(a); err != nil {
				lastErr = err
				continue
			}
			return a.ValidAt(now)
		}
		next := -1
		for i, c := range intermediates {
			if used[i] || !bytes.Equal(c.RawSubject, cur.RawIssuer) {
				continue
			}
			if err := checkIssuer(c, depth); err != nil {
				lastErr = err
				continue
			}
			if err := cur.CheckSignatureFrom(c); err != nil {
				lastErr = err
				continue
			}
			next = i
			break
		}
		if next < 0 {
			if lastErr != nil {
				return lastErr
			}
			return fmt.Errorf("auth: issuer of certificate %q is neither trusted nor sent: %w", cur.SubjectCommonName, ErrUnknownIssuer)
		}
		used[next] = true
		cur = intermediates[next]
	}
}

// checkIssuer checks that c may issue a certificate with depth
// intermediate CAs below it (RFC 5280 Section 4.2.1.9).
func checkIssuer(c *Certificate, depth int) error {
	if !c.BasicConstraintsValid || !c.IsCA {
		return fmt.Errorf("auth: issuer %q is not a CA: %w", c.SubjectCommonName, ErrNotAuthorized)
	}
	if c.HasKeyUsage && c.KeyUsage&KeyUsageCertSign == 0 {
		return fmt.Errorf("auth: issuer %q key usage lacks keyCertSign: %w", c.SubjectCommonName, ErrNotAuthorized)
	}
	if c.MaxPathLen >= 0 && depth > c.MaxPathLen {
		return fmt.Errorf("auth: issuer %q path length %d exceeds its constraint %d: %w", c.SubjectCommonName, depth, c.MaxPathLen, ErrNotAuthorized)
	}
	return nil
}

// VerifyAuth authenticates a peer in one step: it validates certs with
// Verify (chain, time, identity) and then checks the AUTH payload (method,
// authData) over octets with the end-entity key, accepting only hashes in
// opts.Hashes for method 14. It returns the end-entity certificate.
func (p *Pool) VerifyAuth(method wire.AuthMethod, authData, octets []byte, certs [][]byte, opts VerifyOptions) (*Certificate, error) {
	leaf, err := p.Verify(certs, opts)
	if err != nil {
		return nil, err
	}
	v := SignatureVerifier{Key: leaf.PublicKey, Hashes: opts.Hashes}
	if err := v.Verify(method, authData, octets); err != nil {
		return nil, err
	}
	return leaf, nil
}
