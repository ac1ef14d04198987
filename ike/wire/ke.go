package wire

import "encoding/binary"

// KE is the Key Exchange payload (RFC 7296 Section 3.4). For ML-KEM the
// initiator's Data is the encapsulation key and the responder's the
// ciphertext (draft-ietf-ipsecme-ikev2-mlkem); for ECP groups it is X | Y
// (RFC 5903), for Curve25519 the 32-octet public value (RFC 8031).
type KE struct {
	// Method is the Key Exchange Method Num (formerly Diffie-Hellman Group
	// Num; RFC 9370 Section 2.2.1), e.g. KECurve25519 or KEMLKEM768.
	Method uint16
	Data   []byte
}

// keFixedLen is the Method Num and RESERVED fields.
const keFixedLen = 4

// Type implements Payload.
func (p *KE) Type() PayloadType { return PayloadKE }

// Append implements Payload.
func (p *KE) Append(b []byte, next PayloadType) ([]byte, error) {
	b, start := beginPayload(b, next, false)
	b = append(b, byte(p.Method>>8), byte(p.Method), 0, 0)
	b = append(b, p.Data...)
	return endPayload(b, start, PayloadKE)
}

// ParseKE parses a KE payload, generic header included, from the start of b
// and returns it with the octets consumed. Data aliases b.
func ParseKE(b []byte) (*KE, int, error) {
	body, n, err := payloadBody(b, PayloadKE)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < keFixedLen {
		return nil, 0, errSyntaxf(PayloadKE, "body of %d octets", len(body))
	}
	return &KE{Method: binary.BigEndian.Uint16(body), Data: orNil(body[keFixedLen:])}, n, nil
}
