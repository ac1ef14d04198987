package wire

// EAP is the Extensible Authentication payload (RFC 7296 Section 3.16). The
// EAP message (RFC 3748) is kept opaque.
type EAP struct {
	Message []byte
}

// Type implements Payload.
func (p *EAP) Type() PayloadType { return PayloadEAP }

// Append implements Payload.
func (p *EAP) Append(b []byte, next PayloadType) ([]byte, error) {
	b, start := beginPayload(b, next, false)
	b = append(b, p.Message...)
	return endPayload(b, start, PayloadEAP)
}

// ParseEAP parses an EAP payload, generic header included, from the start of
// b and returns it with the octets consumed. Message aliases b.
func ParseEAP(b []byte) (*EAP, int, error) {
	body, n, err := payloadBody(b, PayloadEAP)
	if err != nil {
		return nil, 0, err
	}
	return &EAP{Message: orNil(body)}, n, nil
}
