package wire

import "encoding/binary"

// Delete is the Delete payload (RFC 7296 Section 3.11). Deleting the IKE SA
// uses ProtocolIKE with SPISize 0 and no SPIs; Child SAs use ProtocolESP or
// ProtocolAH with SPISize 4 and the SPIs (the deleting side's inbound SPIs).
type Delete struct {
	Protocol ProtocolID
	SPISize  uint8
	// SPIs are each SPISize octets long. With SPISize 0 there are none.
	SPIs [][]byte
}

// deleteFixedLen is the Protocol ID, SPI Size and Num of SPIs fields.
const deleteFixedLen = 4

// Type implements Payload.
func (p *Delete) Type() PayloadType { return PayloadDelete }

// Append implements Payload.
func (p *Delete) Append(b []byte, next PayloadType) ([]byte, error) {
	if len(p.SPIs) > MaxDeleteSPIs {
		return b, errSyntaxf(PayloadDelete, "%d SPIs, at most %d", len(p.SPIs), MaxDeleteSPIs)
	}
	for _, spi := range p.SPIs {
		if len(spi) != int(p.SPISize) || p.SPISize == 0 {
			return b, errSyntaxf(PayloadDelete, "SPI of %d octets with SPI Size %d", len(spi), p.SPISize)
		}
	}
	b, start := beginPayload(b, next, false)
	b = append(b, byte(p.Protocol), p.SPISize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
	for _, spi := range p.SPIs {
		b = append(b, spi...)
	}
	return endPayload(b, start, PayloadDelete)
}

// ParseDelete parses a Delete payload, generic header included, from the
// start of b and returns it with the octets consumed. The SPIs must fill the
// payload exactly. SPIs alias b.
func ParseDelete(b []byte) (*Delete, int, error) {
	body, n, err := payloadBody(b, PayloadDelete)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < deleteFixedLen {
		return nil, 0, errSyntaxf(PayloadDelete, "body of %d octets", len(body))
	}
	p := &Delete{Protocol: ProtocolID(body[0]), SPISize: body[1]}
	num := int(binary.BigEndian.Uint16(body[2:4]))
	spis := body[deleteFixedLen:]
	if num > MaxDeleteSPIs {
		return nil, 0, errSyntaxf(PayloadDelete, "%d SPIs, at most %d", num, MaxDeleteSPIs)
	}
	if num > 0 && p.SPISize == 0 {
		return nil, 0, errSyntaxf(PayloadDelete, "%d SPIs of size 0", num)
	}
	if len(spis) != num*int(p.SPISize) {
		return nil, 0, errSyntaxf(PayloadDelete, "%d SPIs of %d octets in %d octets", num, p.SPISize, len(spis))
	}
	if num > 0 {
		p.SPIs = make([][]byte, num)
		for i := range p.SPIs {
			p.SPIs[i] = spis[i*int(p.SPISize) : (i+1)*int(p.SPISize) : (i+1)*int(p.SPISize)]
		}
	}
	return p, n, nil
}
