package wire

// CertReq is the Certificate Request payload (RFC 7296 Section 3.7). For
// X.509 certificates Data is a concatenation of 20-octet SHA-1 hashes of CA
// public keys.
type CertReq struct {
	Encoding CertEncoding
	Data     []byte
}

// Type implements Payload.
func (p *CertReq) Type() PayloadType { return PayloadCERTREQ }

// Append implements Payload.
func (p *CertReq) Append(b []byte, next PayloadType) ([]byte, error) {
	b, start := beginPayload(b, next, false)
	b = append(b, byte(p.Encoding))
	b = append(b, p.Data...)
	return endPayload(b, start, PayloadCERTREQ)
}

// ParseCertReq parses a CERTREQ payload, generic header included, from the
// start of b and returns it with the octets consumed. Data aliases b.
func ParseCertReq(b []byte) (*CertReq, int, error) {
	enc, data, n, err := parseEncodingData(b, PayloadCERTREQ)
	if err != nil {
		return nil, 0, err
	}
	return &CertReq{Encoding: enc, Data: data}, n, nil
}
