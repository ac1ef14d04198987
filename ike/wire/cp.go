package wire

import "encoding/binary"

// CP is the Configuration payload (RFC 7296 Section 3.15).
type CP struct {
	CFGType    CFGType
	Attributes []CPAttribute
}

// CPAttribute is a Configuration Attribute (RFC 7296 Section 3.15.1), e.g.
// INTERNAL_IP4_ADDRESS (1) with an empty or 4-octet Value.
type CPAttribute struct {
	// Type is the Attribute Type (15 bits; the reserved high bit is
	// ignored on receipt and sent as zero).
	Type  uint16
	Value []byte
}

// Sizes of the CP payload (RFC 7296 Section 3.15).
const (
	cpFixedLen = 4 // CFG Type and RESERVED
	// CPAttributeHeaderLen is the Attribute Type and Length fields.
	CPAttributeHeaderLen = 4
)

// Type implements Payload.
func (p *CP) Type() PayloadType { return PayloadCP }

// Append implements Payload.
func (p *CP) Append(b []byte, next PayloadType) ([]byte, error) {
	if len(p.Attributes) > MaxCPAttributes {
		return b, errSyntaxf(PayloadCP, "%d attributes, at most %d", len(p.Attributes), MaxCPAttributes)
	}
	b, start := beginPayload(b, next, false)
	b = append(b, byte(p.CFGType), 0, 0, 0)
	for _, a := range p.Attributes {
		if a.Type > 0x7fff || len(a.Value) > 0xffff {
			return b[:start], errSyntaxf(PayloadCP, "attribute type %#x with %d octets", a.Type, len(a.Value))
		}
		b = binary.BigEndian.AppendUint16(b, a.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return endPayload(b, start, PayloadCP)
}

// ParseCP parses a CP payload, generic header included, from the start of b
// and returns it with the octets consumed. Values alias b.
func ParseCP(b []byte) (*CP, int, error) {
	body, n, err := payloadBody(b, PayloadCP)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < cpFixedLen {
		return nil, 0, errSyntaxf(PayloadCP, "body of %d octets", len(body))
	}
	p := &CP{CFGType: CFGType(body[0])}
	rest := body[cpFixedLen:]
	for len(rest) > 0 {
		if len(p.Attributes) == MaxCPAttributes {
			return nil, 0, errSyntaxf(PayloadCP, "more than %d attributes", MaxCPAttributes)
		}
		if len(rest) < CPAttributeHeaderLen {
			return nil, 0, errSyntax(PayloadCP, "truncated attribute header")
		}
		length := int(binary.BigEndian.Uint16(rest[2:4]))
		if CPAttributeHeaderLen+length > len(rest) {
			return nil, 0, errSyntaxf(PayloadCP, "attribute Length %d exceeds the payload", length)
		}
		p.Attributes = append(p.Attributes, CPAttribute{
			Type:  binary.BigEndian.Uint16(rest[0:2]) & 0x7fff,
			Value: orNil(rest[CPAttributeHeaderLen : CPAttributeHeaderLen+length]),
		})
		rest = rest[CPAttributeHeaderLen+length:]
	}
	return p, n, nil
}
