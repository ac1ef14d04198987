package wire

import (
	"encoding/binary"
	"net/netip"
)

// Traffic selector sizes (RFC 7296 Section 3.13.1).
const (
	tsPayloadFixedLen = 4 // Number of TSs and RESERVED
	// TSHeaderLen is TS Type, IP Protocol ID and Selector Length.
	TSHeaderLen = 4
	// TSIPv4Len and TSIPv6Len are the Selector Lengths of the two address
	// range types: header, two ports and two addresses.
	TSIPv4Len = TSHeaderLen + 4 + 2*4
	TSIPv6Len = TSHeaderLen + 4 + 2*16
)

// TS is a Traffic Selector payload, TSi or TSr (RFC 7296 Section 3.13).
type TS struct {
	// Responder selects TSr (45); false is TSi (44).
	Responder bool
	Selectors []TrafficSelector
}

// TrafficSelector is one Traffic Selector (RFC 7296 Section 3.13.1).
type TrafficSelector struct {
	Type TSType
	// IPProtocol is the IP Protocol ID; 0 means any protocol.
	IPProtocol uint8
	// StartPort and EndPort give the port range (0..65535 for any).
	StartPort, EndPort uint16
	// Start and End give the address range: IPv4 addresses for
	// TSIPv4AddrRange, IPv6 for TSIPv6AddrRange.
	Start, End netip.Addr
	// Data holds the octets after the 4-octet selector header for a type
	// this codec does not interpret (e.g. TS_SECLABEL of RFC 9478); the
	// second octet of such a selector is kept in IPProtocol. The engine
	// decides whether it can accept such a selector.
	Data []byte
}

// Type implements Payload.
func (p *TS) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

// Append implements Payload.
func (p *TS) Append(b []byte, next PayloadType) ([]byte, error) {
	t := p.Type()
	if len(p.Selectors) > MaxTrafficSelectors {
		return b, errSyntaxf(t, "%d selectors, at most %d", len(p.Selectors), MaxTrafficSelectors)
	}
	b, start := beginPayload(b, next, false)
	b = append(b, byte(len(p.Selectors)), 0, 0, 0)
	for i := range p.Selectors {
		var err error
		if b, err = p.Selectors[i].append(b, t); err != nil {
			return b[:start], err
		}
	}
	return endPayload(b, start, t)
}

func (s *TrafficSelector) append(b []byte, t PayloadType) ([]byte, error) {
	switch s.Type {
	case TSIPv4AddrRange, TSIPv6AddrRange:
		want4 := s.Type == TSIPv4AddrRange
		if !s.Start.IsValid() || !s.End.IsValid() || s.Start.Is4() != want4 || s.End.Is4() != want4 {
			return b, errSyntaxf(t, "%v selector with addresses %v and %v", s.Type, s.Start, s.End)
		}
		length := uint16(TSIPv6Len)
		if want4 {
			length = TSIPv4Len
		}
		b = append(b, byte(s.Type), s.IPProtocol)
		b = binary.BigEndian.AppendUint16(b, length)
		b = binary.BigEndian.AppendUint16(b, s.StartPort)
		b = binary.BigEndian.AppendUint16(b, s.EndPort)
		b = append(b, s.Start.AsSlice()...)
		return append(b, s.End.AsSlice()...), nil
	}
	if len(s.Data) > 0xffff-TSHeaderLen {
		return b, errSyntaxf(t, "selector of %d octets", len(s.Data))
	}
	b = append(b, byte(s.Type), s.IPProtocol)
	b = binary.BigEndian.AppendUint16(b, uint16(TSHeaderLen+len(s.Data)))
	return append(b, s.Data...), nil
}

// ParseTSi parses a TSi payload, generic header included, from the start of
// b and returns it with the octets consumed. The Number of TSs must match the
// selectors, which must fill the payload exactly.
func ParseTSi(b []byte) (*TS, int, error) { return parseTS(b, PayloadTSi) }

// ParseTSr is ParseTSi for TSr.
func ParseTSr(b []byte) (*TS, int, error) { return parseTS(b, PayloadTSr) }

func parseTS(b []byte, t PayloadType) (*TS, int, error) {
	body, n, err := payloadBody(b, t)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < tsPayloadFixedLen {
		return nil, 0, errSyntaxf(t, "body of %d octets", len(body))
	}
	num := int(body[0])
	if num > MaxTrafficSelectors {
		return nil, 0, errSyntaxf(t, "%d selectors, at most %d", num, MaxTrafficSelectors)
	}
	rest := body[tsPayloadFixedLen:]
	if num*TSHeaderLen > len(rest) {
		return nil, 0, errSyntaxf(t, "%d selectors do not fit in %d octets", num, len(rest))
	}
	p := &TS{Responder: t == PayloadTSr}
	if num > 0 {
		p.Selectors = make([]TrafficSelector, 0, num)
	}
	for range num {
		if len(rest) < TSHeaderLen {
			return nil, 0, errSyntax(t, "truncated selector header")
		}
		length := int(binary.BigEndian.Uint16(rest[2:4]))
		if length < TSHeaderLen || length > len(rest) {
			return nil, 0, errSyntaxf(t, "Selector Length %d out of range", length)
		}
		s := TrafficSelector{Type: TSType(rest[0]), IPProtocol: rest[1]}
		sel := rest[TSHeaderLen:length]
		switch s.Type {
		case TSIPv4AddrRange, TSIPv6AddrRange:
			addrLen := 4
			if s.Type == TSIPv6AddrRange {
				addrLen = 16
			}
			if len(sel) != 4+2*addrLen {
				return nil, 0, errSyntaxf(t, "%v selector of %d octets", s.Type, length)
			}
			s.StartPort = binary.BigEndian.Uint16(sel[0:2])
			s.EndPort = binary.BigEndian.Uint16(sel[2:4])
			s.Start, _ = netip.AddrFromSlice(sel[4 : 4+addrLen])
			s.End, _ = netip.AddrFromSlice(sel[4+addrLen:])
		default:
			s.Data = orNil(sel)
		}
		p.Selectors = append(p.Selectors, s)
		rest = rest[length:]
	}
	if len(rest) != 0 {
		return nil, 0, errSyntaxf(t, "%d octets after the last selector", len(rest))
	}
	return p, n, nil
}
