package wire

// Auth is the Authentication payload (RFC 7296 Section 3.8).
type Auth struct {
	Method AuthMethod
	Data   []byte
}

// authFixedLen is the Auth Method and RESERVED fields.
const authFixedLen = 4

// Type implements Payload.
func (p *Auth) Type() PayloadType { return PayloadAUTH }

// Append implements Payload.
func (p *Auth) Append(b []byte, next PayloadType) ([]byte, error) {
	b, start := beginPayload(b, next, false)
	b = append(b, byte(p.Method), 0, 0, 0)
	b = append(b, p.Data...)
	return endPayload(b, start, PayloadAUTH)
}

// ParseAuth parses an AUTH payload, generic header included, from the start
// of b and returns it with the octets consumed. Data aliases b.
func ParseAuth(b []byte) (*Auth, int, error) {
	body, n, err := payloadBody(b, PayloadAUTH)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < authFixedLen {
		return nil, 0, errSyntaxf(PayloadAUTH, "body of %d octets", len(body))
	}
	return &Auth{Method: AuthMethod(body[0]), Data: orNil(body[authFixedLen:])}, n, nil
}
