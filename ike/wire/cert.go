package wire

// Cert is the Certificate payload (RFC 7296 Section 3.6).
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

// Type implements Payload.
func (p *Cert) Type() PayloadType { return PayloadCERT }

// Append implements Payload.
func (p *Cert) Append(b []byte, next PayloadType) ([]byte, error) {
	b, start := beginPayload(b, next, false)
	b = append(b, byte(p.Encoding))
	b = append(b, p.Data...)
	return endPayload(b, start, PayloadCERT)
}

// ParseCert parses a CERT payload, generic header included, from the start
// of b and returns it with the octets consumed. Data aliases b.
func ParseCert(b []byte) (*Cert, int, error) {
	enc, data, n, err := parseEncodingData(b, PayloadCERT)
	if err != nil {
		return nil, 0, err
	}
	return &Cert{Encoding: enc, Data: data}, n, nil
}

// parseEncodingData parses the body shared by CERT and CERTREQ: one octet of
// encoding, then data.
func parseEncodingData(b []byte, t PayloadType) (CertEncoding, []byte, int, error) {
	body, n, err := payloadBody(b, t)
	if err != nil {
		return 0, nil, 0, err
	}
	if len(body) < 1 {
		return 0, nil, 0, errSyntax(t, "no Cert Encoding")
	}
	return CertEncoding(body[0]), orNil(body[1:]), n, nil
}
