package auth

import (
	"bytes"
	encasn1 "encoding/asn1"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/pqlab/pqlab/ike/wire"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// MaxCertificateSize bounds a DER certificate we parse. The largest we make
// (ML-DSA-87 signed by ML-DSA-87) is about 7.5 KB.
const MaxCertificateSize = 32 * 1024

// maxSANEntries bounds the subjectAltName entries we keep.
const maxSANEntries = 256

// KeyUsage is the keyUsage extension (RFC 5280 Section 4.2.1.3) as bits:
// bit 0 (digitalSignature) is 1<<0, and so on.
type KeyUsage uint16

// Key usages.
const (
	KeyUsageDigitalSignature KeyUsage = 1 << iota
	KeyUsageContentCommitment
	KeyUsageKeyEncipherment
	KeyUsageDataEncipherment
	KeyUsageKeyAgreement
	KeyUsageCertSign
	KeyUsageCRLSign
	KeyUsageEncipherOnly
	KeyUsageDecipherOnly
)

// String lists the usages by their RFC 5280 names, "|"-separated.
func (ku KeyUsage) String() string {
	names := []string{"digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	var out []string
	for i, n := range names {
		if ku&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// Extension OIDs (RFC 5280 Section 4.2.1).
var (
	oidSubjectKeyID     = encasn1.ObjectIdentifier{2, 5, 29, 14}
	oidKeyUsage         = encasn1.ObjectIdentifier{2, 5, 29, 15}
	oidSubjectAltName   = encasn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasicConstraints = encasn1.ObjectIdentifier{2, 5, 29, 19}
	oidAuthorityKeyID   = encasn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtKeyUsage      = encasn1.ObjectIdentifier{2, 5, 29, 37}
	oidCommonName       = encasn1.ObjectIdentifier{2, 5, 4, 3}
)

// Certificate is a parsed X.509 v3 certificate (RFC 5280 Section 4.1),
// reduced to what IKEv2 authentication needs. It is parsed by this package
// for every key type, so ML-DSA certificates (RFC 9881) and classical ones
// take the same path.
type Certificate struct {
	Raw        []byte // the whole DER certificate
	RawTBS     []byte // tbsCertificate, the signed part
	RawIssuer  []byte // DER Name
	RawSubject []byte // DER Name
	// SerialNumber is the content of the serialNumber INTEGER.
	SerialNumber []byte
	NotBefore    time.Time
	NotAfter     time.Time
	PublicKey    *PublicKey
	// SignatureAlgorithm is the algorithm the issuer signed with.
	SignatureAlgorithm SignatureAlgorithm
	Signature          []byte
	// SubjectCommonName is the last commonName of the subject, for messages.
	SubjectCommonName string

	BasicConstraintsValid bool
	IsCA                  bool
	MaxPathLen            int // -1 when absent
	KeyUsage              KeyUsage
	HasKeyUsage           bool
	DNSNames              []string
	EmailAddresses        []string
	IPAddresses           []netip.Addr
	SubjectKeyID          []byte
	AuthorityKeyID        []byte
}

// ParseCertificate parses a DER certificate. It requires version 3, a
// signature and public key algorithm of this package, equal inner and outer
// signature algorithms, and rejects unknown critical extensions (RFC 5280
// Section 4.2). The certificate's data are copied.
func ParseCertificate(der []byte) (*Certificate, error) {
	if len(der) > MaxCertificateSize {
		return nil, fmt.Errorf("auth: certificate of %d octets exceeds %d: %w", len(der), MaxCertificateSize, ErrMalformed)
	}
	der = bytes.Clone(der)
	c := &Certificate{Raw: der, MaxPathLen: -1}
	input := cryptobyte.String(der)
	var cert, tbs, sigAlg cryptobyte.String
	// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
	if !input.ReadASN1(&cert, asn1.SEQUENCE) || !input.Empty() {
		return nil, malformed("certificate is not a single DER SEQUENCE")
	}
	if !cert.ReadASN1Element(&tbs, asn1.SEQUENCE) || !cert.ReadASN1Element(&sigAlg, asn1.SEQUENCE) ||
		!cert.ReadASN1BitStringAsBytes(&c.Signature) || !cert.Empty() {
		return nil, malformed("certificate outer structure")
	}
	c.RawTBS = tbs
	var err error
	if c.SignatureAlgorithm, err = ParseAlgorithmIdentifier(sigAlg); err != nil {
		return nil, err
	}
	if !tbs.ReadASN1(&tbs, asn1.SEQUENCE) {
		return nil, malformed("tbsCertificate")
	}
	// version [0] EXPLICIT Version DEFAULT v1: we require v3 (2).
	var version int64
	var verWrap cryptobyte.String
	var hasVersion bool
	if !tbs.ReadOptionalASN1(&verWrap, &hasVersion, asn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, malformed("version")
	}
	if !hasVersion || !verWrap.ReadASN1Int64WithTag(&version, asn1.INTEGER) || !verWrap.Empty() || version != 2 {
		return nil, malformed("not an X.509 v3 certificate")
	}
	var serial, innerSigAlg, issuer, validity, subject, spki cryptobyte.String
	if !tbs.ReadASN1(&serial, asn1.INTEGER) || len(serial) == 0 {
		return nil, malformed("serialNumber")
	}
	c.SerialNumber = serial
	if !tbs.ReadASN1Element(&innerSigAlg, asn1.SEQUENCE) || !bytes.Equal(innerSigAlg, sigAlg) {
		return nil, malformed("tbsCertificate signature algorithm differs from signatureAlgorithm")
	}
	if !tbs.ReadASN1Element(&issuer, asn1.SEQUENCE) {
		return nil, malformed("issuer")
	}
	c.RawIssuer = issuer
	if !tbs.ReadASN1(&validity, asn1.SEQUENCE) || !readTime(&validity, &c.NotBefore) || !readTime(&validity, &c.NotAfter) || !validity.Empty() {
		return nil, malformed("validity")
	}
	if !tbs.ReadASN1Element(&subject, asn1.SEQUENCE) {
		return nil, malformed("subject")
	}
	c.RawSubject = subject
	c.SubjectCommonName = commonName(subject)
	if !tbs.ReadASN1(&spki, asn1.SEQUENCE) {
		return nil, malformed("subjectPublicKeyInfo")
	}
	if c.PublicKey, err = parseSPKIContents(spki); err != nil {
		return nil, err
	}
	// issuerUniqueID [1] and subjectUniqueID [2] are skipped.
	if !tbs.SkipOptionalASN1(asn1.Tag(1).ContextSpecific()) || !tbs.SkipOptionalASN1(asn1.Tag(2).ContextSpecific()) {
		return nil, malformed("unique identifiers")
	}
	var extWrap cryptobyte.String
	var hasExt bool
	if !tbs.ReadOptionalASN1(&extWrap, &hasExt, asn1.Tag(3).Constructed().ContextSpecific()) || !tbs.Empty() {
		return nil, malformed("trailing data in tbsCertificate")
	}
	if hasExt {
		var exts cryptobyte.String
		if !extWrap.ReadASN1(&exts, asn1.SEQUENCE) || !extWrap.Empty() || exts.Empty() {
			return nil, malformed("extensions")
		}
		if err := c.parseExtensions(exts); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func malformed(what string) error {
	return fmt.Errorf("auth: certificate: %s: %w", what, ErrMalformed)
}

// readTime reads a UTCTime or GeneralizedTime (RFC 5280 Section 4.1.2.5).
func readTime(s *cryptobyte.String, t *time.Time) bool {
	switch {
	case s.PeekASN1Tag(asn1.UTCTime):
		return s.ReadASN1UTCTime(t)
	case s.PeekASN1Tag(asn1.GeneralizedTime):
		return s.ReadASN1GeneralizedTime(t)
	}
	return false
}

// commonName returns the last commonName attribute of a DER Name, "" if
// none or if it does not parse.
func commonName(name []byte) string {
	s := cryptobyte.String(name)
	var rdns cryptobyte.String
	if !s.ReadASN1(&rdns, asn1.SEQUENCE) {
		return ""
	}
	cn := ""
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, asn1.SET) {
			return cn
		}
		for !set.Empty() {
			var atv cryptobyte.String
			var oid encasn1.ObjectIdentifier
			var tag asn1.Tag
			var val cryptobyte.String
			if !set.ReadASN1(&atv, asn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) || !atv.ReadAnyASN1(&val, &tag) {
				return cn
			}
			if oid.Equal(oidCommonName) {
				cn = string(val)
			}
		}
	}
	return cn
}

// readOptionalBoolean reads a BOOLEAN DEFAULT FALSE (universal tag, not
// the explicit tagging cryptobyte's ReadOptionalASN1Boolean expects).
func readOptionalBoolean(s *cryptobyte.String, out *bool) bool {
	*out = false
	if !s.PeekASN1Tag(asn1.BOOLEAN) {
		return true
	}
	return s.ReadASN1Boolean(out)
}

func (c *Certificate) parseExtensions(exts cryptobyte.String) error {
	seen := map[string]bool{}
	for !exts.Empty() {
		var ext, value cryptobyte.String
		var oid encasn1.ObjectIdentifier
		var critical bool
		if !exts.ReadASN1(&ext, asn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
			!readOptionalBoolean(&ext, &critical) ||
			!ext.ReadASN1(&value, asn1.OCTET_STRING) || !ext.Empty() {
			return malformed("extension")
		}
		key := oid.String()
		if seen[key] {
			return malformed("duplicate extension " + key)
		}
		seen[key] = true
		var ok bool
		switch {
		case oid.Equal(oidBasicConstraints):
			ok = c.parseBasicConstraints(value)
		case oid.Equal(oidKeyUsage):
			ok = c.parseKeyUsage(value)
		case oid.Equal(oidSubjectAltName):
			ok = c.parseSAN(value)
		case oid.Equal(oidSubjectKeyID):
			ok = value.ReadASN1Bytes(&c.SubjectKeyID, asn1.OCTET_STRING) && value.Empty()
		case oid.Equal(oidAuthorityKeyID):
			ok = c.parseAKI(value)
		case oid.Equal(oidExtKeyUsage):
			// RFC 4945 Section 5.1.3.12 leaves extended key usage to local
			// policy; we do not restrict on it.
			var seq cryptobyte.String
			ok = value.ReadASN1(&seq, asn1.SEQUENCE) && value.Empty()
		default:
			if critical {
				return fmt.Errorf("auth: certificate %q: unhandled critical extension %s: %w", c.SubjectCommonName, key, ErrNotAuthorized)
			}
			ok = true
		}
		if !ok {
			return malformed("extension " + key)
		}
	}
	return nil
}

// parseBasicConstraints: SEQUENCE { cA BOOLEAN DEFAULT FALSE,
// pathLenConstraint INTEGER (0..MAX) OPTIONAL }.
func (c *Certificate) parseBasicConstraints(v cryptobyte.String) bool {
	var seq cryptobyte.String
	if !v.ReadASN1(&seq, asn1.SEQUENCE) || !v.Empty() || !readOptionalBoolean(&seq, &c.IsCA) {
		return false
	}
	if seq.PeekASN1Tag(asn1.INTEGER) {
		var n int64
		if !seq.ReadASN1Int64WithTag(&n, asn1.INTEGER) || n < 0 || n > 1<<16 {
			return false
		}
		c.MaxPathLen = int(n)
	}
	c.BasicConstraintsValid = true
	return seq.Empty()
}

// parseKeyUsage: KeyUsage ::= BIT STRING, bit 0 first.
func (c *Certificate) parseKeyUsage(v cryptobyte.String) bool {
	var bits encasn1.BitString
	if !v.ReadASN1BitString(&bits) || !v.Empty() || bits.BitLength > 16 {
		return false
	}
	for i := 0; i < bits.BitLength; i++ {
		if bits.At(i) == 1 {
			c.KeyUsage |= 1 << i
		}
	}
	c.HasKeyUsage = true
	return true
}

// parseSAN: GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName; we keep
// rfc822Name [1], dNSName [2] and iPAddress [7] and skip the others.
func (c *Certificate) parseSAN(v cryptobyte.String) bool {
	var names cryptobyte.String
	if !v.ReadASN1(&names, asn1.SEQUENCE) || !v.Empty() || names.Empty() {
		return false
	}
	n := 0
	for !names.Empty() {
		var val cryptobyte.String
		var tag asn1.Tag
		if !names.ReadAnyASN1(&val, &tag) {
			return false
		}
		if n++; n > maxSANEntries {
			return false
		}
		switch tag {
		case asn1.Tag(1).ContextSpecific():
			if !isIA5(val) {
				return false
			}
			c.EmailAddresses = append(c.EmailAddresses, string(val))
		case asn1.Tag(2).ContextSpecific():
			if !isIA5(val) {
				return false
			}
			c.DNSNames = append(c.DNSNames, string(val))
		case asn1.Tag(7).ContextSpecific():
			a, ok := netip.AddrFromSlice(val)
			if !ok {
				return false
			}
			c.IPAddresses = append(c.IPAddresses, a)
		}
	}
	return true
}

func isIA5(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// parseAKI: SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }.
func (c *Certificate) parseAKI(v cryptobyte.String) bool {
	var seq cryptobyte.String
	if !v.ReadASN1(&seq, asn1.SEQUENCE) || !v.Empty() {
		return false
	}
	var present bool
	var id cryptobyte.String
	if !seq.ReadOptionalASN1(&id, &present, asn1.Tag(0).ContextSpecific()) {
		return false
	}
	if present {
		c.AuthorityKeyID = id
	}
	return true
}

// CheckSignatureFrom verifies that parent's key signed c. It does not look
// at names, validity or constraints (Pool.Verify does).
func (c *Certificate) CheckSignatureFrom(parent *Certificate) error {
	if err := parent.PublicKey.VerifyMessage(c.SignatureAlgorithm, c.RawTBS, c.Signature); err != nil {
		return fmt.Errorf("auth: certificate %q not signed by %q: %w", c.SubjectCommonName, parent.SubjectCommonName, ErrBadSignature)
	}
	return nil
}

// ValidAt reports an error unless NotBefore <= t <= NotAfter.
func (c *Certificate) ValidAt(t time.Time) error {
	if t.Before(c.NotBefore) {
		return fmt.Errorf("auth: certificate %q not valid before %s (time %s): %w", c.SubjectCommonName, c.NotBefore.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339), ErrValidity)
	}
	if t.After(c.NotAfter) {
		return fmt.Errorf("auth: certificate %q expired at %s (time %s): %w", c.SubjectCommonName, c.NotAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339), ErrValidity)
	}
	return nil
}

// MatchIdentity checks that id names the certificate's subject (RFC 4945
// Section 3.1, RFC 7296 Section 3.5): ID_FQDN against a dNSName,
// ID_RFC822_ADDR against an rfc822Name, ID_IPV4/6_ADDR against an iPAddress
// of the subjectAltName, ID_DER_ASN1_DN against the subject DN byte for
// byte. ID_KEY_ID cannot match a certificate.
func (c *Certificate) MatchIdentity(id Identity) error {
	if err := id.Validate(); err != nil {
		return err
	}
	found := false
	switch id.Type {
	case wire.IDIPv4Addr, wire.IDIPv6Addr:
		want, _ := netip.AddrFromSlice(id.Data)
		for _, a := range c.IPAddresses {
			found = found || a == want
		}
	case wire.IDFQDN:
		for _, n := range c.DNSNames {
			found = found || strings.EqualFold(n, string(id.Data))
		}
	case wire.IDRFC822Addr:
		for _, e := range c.EmailAddresses {
			found = found || rfc822Equal(e, string(id.Data))
		}
	case wire.IDDERASN1DN:
		found = bytes.Equal(id.Data, c.RawSubject)
	default:
		return fmt.Errorf("auth: identity %v cannot be matched against a certificate: %w", id, ErrIdentityMismatch)
	}
	if !found {
		return fmt.Errorf("auth: identity %v not in certificate %q: %w", id, c.SubjectCommonName, ErrIdentityMismatch)
	}
	return nil
}
