package wire

// Encrypted is the Encrypted and Authenticated payload, SK (RFC 7296
// Section 3.14). The codec keeps it sealed: Body is IV, ciphertext (with
// padding and Pad Length inside) and ICV, which package suite opens. After
// decryption, ParsePayloads(FirstPayload, plaintext) parses the inner chain.
type Encrypted struct {
	// FirstPayload is the Next Payload field of the SK header: the type of
	// the first inner payload (PayloadNone for an empty inner chain).
	FirstPayload PayloadType
	Body         []byte
}

// Type implements Payload.
func (p *Encrypted) Type() PayloadType { return PayloadSK }

// Append implements Payload; next is ignored, FirstPayload is written.
func (p *Encrypted) Append(b []byte, next PayloadType) ([]byte, error) {
	b, start := beginPayload(b, p.FirstPayload, false)
	b = append(b, p.Body...)
	return endPayload(b, start, PayloadSK)
}

// ParseEncrypted parses an SK payload, generic header included, from the
// start of b and returns it with the octets consumed. Body aliases b.
func ParseEncrypted(b []byte) (*Encrypted, int, error) {
	body, n, err := payloadBody(b, PayloadSK)
	if err != nil {
		return nil, 0, err
	}
	return &Encrypted{FirstPayload: PayloadType(b[0]), Body: orNil(body)}, n, nil
}
