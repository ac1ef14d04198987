package wire

// Nonce data bounds (RFC 7296 Section 3.9).
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

// Nonce is the Nonce payload, Ni or Nr (RFC 7296 Section 3.9).
type Nonce struct {
	// Data is 16 to 256 octets; both Append and ParseNonce enforce this.
	Data []byte
}

// Type implements Payload.
func (p *Nonce) Type() PayloadType { return PayloadNonce }

// Append implements Payload.
func (p *Nonce) Append(b []byte, next PayloadType) ([]byte, error) {
	if len(p.Data) < MinNonceLen || len(p.Data) > MaxNonceLen {
		return b, errSyntaxf(PayloadNonce, "%d octets, want %d..%d", len(p.Data), MinNonceLen, MaxNonceLen)
	}
	b, start := beginPayload(b, next, false)
	b = append(b, p.Data...)
	return endPayload(b, start, PayloadNonce)
}

// ParseNonce parses a Nonce payload, generic header included, from the start
// of b and returns it with the octets consumed. Data aliases b.
func ParseNonce(b []byte) (*Nonce, int, error) {
	body, n, err := payloadBody(b, PayloadNonce)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < MinNonceLen || len(body) > MaxNonceLen {
		return nil, 0, errSyntaxf(PayloadNonce, "%d octets, want %d..%d", len(body), MinNonceLen, MaxNonceLen)
	}
	return &Nonce{Data: body}, n, nil
}
