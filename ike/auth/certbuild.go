package auth

import (
	"crypto/sha1"
	"crypto/x509/pkix"
	encasn1 "encoding/asn1"
	"fmt"
	"math/big"
	"net/netip"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// CertTemplate describes a certificate for CreateCertificate.
type CertTemplate struct {
	// SerialNumber must be positive (RFC 5280 Section 4.1.2.2).
	SerialNumber *big.Int
	Subject      pkix.Name
	NotBefore    time.Time
	NotAfter     time.Time
	// IsCA makes a CA certificate: basicConstraints cA=TRUE and key usage
	// keyCertSign|cRLSign|digitalSignature. Otherwise the certificate is an
	// end entity with key usage digitalSignature and no basicConstraints.
	IsCA bool
	// MaxPathLen is the CA's pathLenConstraint; negative means absent.
	MaxPathLen     int
	DNSNames       []string
	EmailAddresses []string
	IPAddresses    []netip.Addr
}

// CreateCertificate builds and signs a DER X.509 v3 certificate for the
// subject key. issuer and issuerKey are the issuing CA's certificate and
// key; a nil issuer makes a self-signed certificate, signed by issuerKey,
// which must then be the subject's own key.
//
// The signature algorithm follows the issuer key: Ed25519 (RFC 8410),
// ecdsa-with-SHA256 for P-256 and ecdsa-with-SHA384 for P-384 (RFC 5758),
// ML-DSA in pure mode with an empty context (RFC 9881 Section 3). Extensions,
// in order: basicConstraints (critical, CA only), keyUsage (critical),
// subjectKeyIdentifier (SHA-1 of the subjectPublicKey, RFC 5280 Section
// 4.2.1.2 method 1), authorityKeyIdentifier (when issued by a CA with a key
// identifier), subjectAltName. The result is deterministic for a given
// template and keys.
func CreateCertificate(t *CertTemplate, subject *PublicKey, issuer *Certificate, issuerKey *PrivateKey) ([]byte, error) {
	if t == nil || subject == nil || issuerKey == nil {
		return nil, fmt.Errorf("auth: CreateCertificate needs a template, a subject key and an issuer key: %w", ErrMalformed)
	}
	if t.SerialNumber == nil || t.SerialNumber.Sign() <= 0 {
		return nil, fmt.Errorf("auth: serial number must be positive: %w", ErrMalformed)
	}
	if !t.NotAfter.After(t.NotBefore) {
		return nil, fmt.Errorf("auth: NotAfter %v not after NotBefore %v: %w", t.NotAfter, t.NotBefore, ErrMalformed)
	}
	subjectName, err := encasn1.Marshal(t.Subject.ToRDNSequence())
	if err != nil {
		return nil, fmt.Errorf("auth: subject name: %v: %w", err, ErrMalformed)
	}
	issuerName, authorityKeyID := subjectName, []byte(nil)
	if issuer != nil {
		if !issuer.PublicKey.Equal(issuerKey.Public()) {
			return nil, fmt.Errorf("auth: issuer key does not match issuer certificate %q: %w", issuer.SubjectCommonName, ErrKeyMismatch)
		}
		issuerName, authorityKeyID = issuer.RawSubject, issuer.SubjectKeyID
	} else if !subject.Equal(issuerKey.Public()) {
		return nil, fmt.Errorf("auth: self-signed certificate needs the subject's own key: %w", ErrKeyMismatch)
	}
	sigAlg := issuerKey.Type().certSignatureAlgorithm()
	ski := sha1.Sum(subject.raw)

	var tbs cryptobyte.Builder
	tbs.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(2) // v3
		})
		b.AddASN1BigInt(t.SerialNumber)
		b.AddBytes(sigAlgIDs[sigAlg])
		b.AddBytes(issuerName)
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, t.NotBefore)
			addTime(b, t.NotAfter)
		})
		b.AddBytes(subjectName)
		b.AddBytes(subject.MarshalPKIX())
		b.AddASN1(asn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				if t.IsCA {
					addExtension(b, oidBasicConstraints, true, func(b *cryptobyte.Builder) {
						b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1Boolean(true)
							if t.MaxPathLen >= 0 {
								b.AddASN1Int64(int64(t.MaxPathLen))
							}
						})
					})
				}
				ku := KeyUsageDigitalSignature
				if t.IsCA {
					ku |= KeyUsageCertSign | KeyUsageCRLSign
				}
				addExtension(b, oidKeyUsage, true, func(b *cryptobyte.Builder) { addKeyUsage(b, ku) })
				addExtension(b, oidSubjectKeyID, false, func(b *cryptobyte.Builder) { b.AddASN1OctetString(ski[:]) })
				if len(authorityKeyID) > 0 {
					addExtension(b, oidAuthorityKeyID, false, func(b *cryptobyte.Builder) {
						b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(asn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(authorityKeyID) })
						})
					})
				}
				if len(t.DNSNames)+len(t.EmailAddresses)+len(t.IPAddresses) > 0 {
					addExtension(b, oidSubjectAltName, false, func(b *cryptobyte.Builder) {
						b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
							for _, e := range t.EmailAddresses {
								b.AddASN1(asn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(e)) })
							}
							for _, n := range t.DNSNames {
								b.AddASN1(asn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
							}
							for _, a := range t.IPAddresses {
								ip := a.Unmap().AsSlice()
								b.AddASN1(asn1.Tag(7).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ip) })
							}
						})
					})
				}
			})
		})
	})
	tbsDER, err := tbs.Bytes()
	if err != nil {
		return nil, fmt.Errorf("auth: encoding tbsCertificate: %v: %w", err, ErrMalformed)
	}
	sig, err := issuerKey.SignMessage(sigAlg, tbsDER)
	if err != nil {
		return nil, err
	}
	var cert cryptobyte.Builder
	cert.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		b.AddBytes(sigAlgIDs[sigAlg])
		b.AddASN1BitString(sig)
	})
	return cert.Bytes()
}

// addTime encodes UTCTime through 2049 and GeneralizedTime from 2050 (RFC
// 5280 Section 4.1.2.5), at one-second precision in UTC.
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC().Truncate(time.Second)
	if t.Year() >= 1950 && t.Year() < 2050 {
		b.AddASN1UTCTime(t)
	} else {
		b.AddASN1GeneralizedTime(t)
	}
}

func addExtension(b *cryptobyte.Builder, oid encasn1.ObjectIdentifier, critical bool, value cryptobyte.BuilderContinuation) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1(asn1.OCTET_STRING, value)
	})
}

// addKeyUsage encodes the KeyUsage BIT STRING in DER: bit 0 is the most
// significant bit of the first octet, trailing zero bits removed.
func addKeyUsage(b *cryptobyte.Builder, ku KeyUsage) {
	var octets [2]byte
	last := -1
	for i := 0; i < 9; i++ {
		if ku&(1<<i) != 0 {
			octets[i/8] |= 0x80 >> (i % 8)
			last = i
		}
	}
	n := last/8 + 1
	unused := 7 - last%8
	b.AddASN1(asn1.BIT_STRING, func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(unused))
		b.AddBytes(octets[:n])
	})
}
