package wire

import "encoding/binary"

// EncryptedFragment is the Encrypted Fragment payload, SKF (RFC 7383
// Section 2.5): one fragment of an SK payload, sealed on its own.
type EncryptedFragment struct {
	// FirstPayload is the Next Payload field: the first inner payload type of
	// the whole message in fragment 1, zero in the other fragments.
	FirstPayload PayloadType
	// Number is the Fragment Number, 1..Total.
	Number uint16
	// Total is the Total Fragments, at least 1.
	Total uint16
	// Body is IV, ciphertext and ICV of this fragment.
	Body []byte
}

// Type implements Payload.
func (p *EncryptedFragment) Type() PayloadType { return PayloadSKF }

// Append implements Payload; next is ignored, FirstPayload is written.
func (p *EncryptedFragment) Append(b []byte, next PayloadType) ([]byte, error) {
	if err := checkFragmentNumbers(p.Number, p.Total); err != nil {
		return b, err
	}
	b, start := beginPayload(b, p.FirstPayload, false)
	b = binary.BigEndian.AppendUint16(b, p.Number)
	b = binary.BigEndian.AppendUint16(b, p.Total)
	b = append(b, p.Body...)
	return endPayload(b, start, PayloadSKF)
}

// checkFragmentNumbers applies RFC 7383 Section 2.5: neither field is zero
// and the Fragment Number does not exceed Total Fragments.
func checkFragmentNumbers(number, total uint16) error {
	if number == 0 || total == 0 || number > total {
		return errSyntaxf(PayloadSKF, "fragment %d of %d", number, total)
	}
	return nil
}

// ParseEncryptedFragment parses an SKF payload, generic header included, from
// the start of b and returns it with the octets consumed. Body aliases b.
func ParseEncryptedFragment(b []byte) (*EncryptedFragment, int, error) {
	body, n, err := payloadBody(b, PayloadSKF)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < SKFHeaderLen-GenericHeaderLen {
		return nil, 0, errSyntaxf(PayloadSKF, "body of %d octets", len(body))
	}
	p := &EncryptedFragment{
		FirstPayload: PayloadType(b[0]),
		Number:       binary.BigEndian.Uint16(body[0:2]),
		Total:        binary.BigEndian.Uint16(body[2:4]),
		Body:         orNil(body[4:]),
	}
	if err := checkFragmentNumbers(p.Number, p.Total); err != nil {
		return nil, 0, err
	}
	return p, n, nil
}
