package wire

import "encoding/binary"

// Notify is the Notify payload (RFC 7296 Section 3.10).
type Notify struct {
	// Protocol is ProtocolNone when SPI is empty (RFC 7296 Section 3.10).
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

// notifyFixedLen is the Protocol ID, SPI Size and Notify Message Type fields.
const notifyFixedLen = 4

// Type implements Payload.
func (p *Notify) Type() PayloadType { return PayloadNotify }

// Append implements Payload.
func (p *Notify) Append(b []byte, next PayloadType) ([]byte, error) {
	if len(p.SPI) > 0xff {
		return b, errSyntaxf(PayloadNotify, "SPI of %d octets", len(p.SPI))
	}
	b, start := beginPayload(b, next, false)
	b = append(b, byte(p.Protocol), byte(len(p.SPI)), byte(p.NotifyType>>8), byte(p.NotifyType))
	b = append(b, p.SPI...)
	b = append(b, p.Data...)
	return endPayload(b, start, PayloadNotify)
}

// ParseNotify parses a Notify payload, generic header included, from the
// start of b and returns it with the octets consumed. SPI and Data alias b.
func ParseNotify(b []byte) (*Notify, int, error) {
	body, n, err := payloadBody(b, PayloadNotify)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < notifyFixedLen {
		return nil, 0, errSyntaxf(PayloadNotify, "body of %d octets", len(body))
	}
	spiSize := int(body[1])
	if len(body) < notifyFixedLen+spiSize {
		return nil, 0, errSyntaxf(PayloadNotify, "SPI Size %d exceeds the payload", spiSize)
	}
	return &Notify{
		Protocol:   ProtocolID(body[0]),
		NotifyType: NotifyType(binary.BigEndian.Uint16(body[2:4])),
		SPI:        orNil(body[notifyFixedLen : notifyFixedLen+spiSize]),
		Data:       orNil(body[notifyFixedLen+spiSize:]),
	}, n, nil
}
