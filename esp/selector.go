package esp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// IP protocol numbers the data plane looks at.
const (
	ProtoHopByHop  uint8 = 0
	ProtoICMP      uint8 = 1
	ProtoIPIP      uint8 = 4 // next header of an IPv4 packet in tunnel mode
	ProtoTCP       uint8 = 6
	ProtoUDP       uint8 = 17
	ProtoIPv6      uint8 = 41 // next header of an IPv6 packet in tunnel mode
	ProtoRouting   uint8 = 43
	ProtoFragment  uint8 = 44
	ProtoESP       uint8 = 50
	ProtoAH        uint8 = 51
	ProtoICMPv6    uint8 = 58
	ProtoNoNext    uint8 = 59 // dummy packet (RFC 4303 Section 2.6)
	ProtoDestOpts  uint8 = 60
	ProtoMobility  uint8 = 135
	ProtoSCTP      uint8 = 132
	ProtoUDPLite   uint8 = 136
	ipv4HeaderSize       = 20
	ipv6HeaderSize       = 40
)

// Selector is one IKEv2 traffic selector (RFC 7296 Section 3.13.1): an
// address range, an IP protocol (0: any) and a port range. For ICMP and
// ICMPv6 the port is Type<<8 | Code (RFC 4301 Section 4.4.1.1). A port
// range with StartPort > EndPort (the OPAQUE selector 65535..0) matches
// only packets whose ports are unavailable.
type Selector struct {
	Proto              uint8
	StartPort, EndPort uint16
	Start, End         netip.Addr
}

// SelectorFromPrefix returns a selector covering prefix with any protocol
// and port.
func SelectorFromPrefix(p netip.Prefix) Selector {
	p = p.Masked()
	start := p.Addr()
	end := start
	a := start.AsSlice()
	bitsLen := len(a) * 8
	for i := p.Bits(); i < bitsLen; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	end, _ = netip.AddrFromSlice(a)
	return Selector{StartPort: 0, EndPort: 0xffff, Start: start, End: end}
}

// String formats the selector like strongSwan's TS notation.
func (s Selector) String() string {
	return fmt.Sprintf("%s-%s[%d/%d-%d]", s.Start, s.End, s.Proto, s.StartPort, s.EndPort)
}

// Valid reports whether the selector's addresses are of one family and in
// order.
func (s Selector) Valid() bool {
	return s.Start.IsValid() && s.End.IsValid() && s.Start.Is4() == s.End.Is4() &&
		s.Start.Compare(s.End) <= 0
}

// matchAddr reports whether a lies within the selector's range.
func (s *Selector) matchAddr(a netip.Addr) bool {
	return a.Is4() == s.Start.Is4() && s.Start.Compare(a) <= 0 && a.Compare(s.End) <= 0
}

// matchProtoPort checks protocol and one port of a flow.
func (s *Selector) matchProtoPort(f *Flow, port uint16) bool {
	if s.Proto != 0 && s.Proto != f.Proto {
		return false
	}
	if s.StartPort == 0 && s.EndPort == 0xffff {
		return true
	}
	if !f.HasPorts {
		return s.StartPort > s.EndPort // OPAQUE
	}
	return s.StartPort <= port && port <= s.EndPort
}

// Flow is what the selectors see of an IP packet (RFC 4301 Section 4.4.1.1).
type Flow struct {
	Src, Dst netip.Addr
	Proto    uint8 // upper-layer protocol after IPv6 extension headers
	// SrcPort and DstPort hold TCP/UDP/SCTP ports; for ICMP and ICMPv6
	// SrcPort is Type<<8|Code and DstPort the same value.
	SrcPort, DstPort uint16
	HasPorts         bool // false for non-initial fragments, truncated headers, other protocols
	Len              int  // total length from the IP header
}

// ParseFlow reads the addresses, protocol and ports of an IPv4 or IPv6
// packet. It checks that the header's length fields fit within pkt.
func ParseFlow(pkt []byte) (Flow, error) {
	var f Flow
	if len(pkt) < 1 {
		return f, DropMalformed
	}
	var rest []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderSize {
			return f, DropMalformed
		}
		ihl := int(pkt[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(pkt[2:4]))
		if ihl < ipv4HeaderSize || tot < ihl || tot > len(pkt) {
			return f, DropMalformed
		}
		f.Len = tot
		f.Proto = pkt[9]
		f.Src = netip.AddrFrom4([4]byte(pkt[12:16]))
		f.Dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		if binary.BigEndian.Uint16(pkt[6:8])&0x1fff != 0 {
			return f, nil // non-initial fragment: no ports
		}
		rest = pkt[ihl:tot]
	case 6:
		if len(pkt) < ipv6HeaderSize {
			return f, DropMalformed
		}
		pl := int(binary.BigEndian.Uint16(pkt[4:6]))
		if ipv6HeaderSize+pl > len(pkt) {
			return f, DropMalformed
		}
		f.Len = ipv6HeaderSize + pl
		f.Src = netip.AddrFrom16([16]byte(pkt[8:24]))
		f.Dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		nh := pkt[6]
		rest = pkt[ipv6HeaderSize:f.Len]
	ext:
		for {
			switch nh {
			case ProtoHopByHop, ProtoRouting, ProtoDestOpts:
				if len(rest) < 8 {
					f.Proto = nh
					return f, nil
				}
				l := (int(rest[1]) + 1) * 8
				if l > len(rest) {
					f.Proto = nh
					return f, nil
				}
				nh, rest = rest[0], rest[l:]
			case ProtoFragment:
				if len(rest) < 8 {
					f.Proto = nh
					return f, nil
				}
				off := binary.BigEndian.Uint16(rest[2:4]) &^ 7
				nh, rest = rest[0], rest[8:]
				if off != 0 {
					f.Proto = nh
					return f, nil
				}
			default:
				break ext
			}
		}
		f.Proto = nh
	default:
		return f, DropMalformed
	}
	switch f.Proto {
	case ProtoTCP, ProtoUDP, ProtoSCTP, ProtoUDPLite:
		if len(rest) >= 4 {
			f.SrcPort = binary.BigEndian.Uint16(rest[0:2])
			f.DstPort = binary.BigEndian.Uint16(rest[2:4])
			f.HasPorts = true
		}
	case ProtoICMP, ProtoICMPv6:
		if len(rest) >= 2 {
			f.SrcPort = uint16(rest[0])<<8 | uint16(rest[1])
			f.DstPort = f.SrcPort
			f.HasPorts = true
		}
	}
	return f, nil
}

// matchSelectors reports whether the flow's source lies in one of srcTS and
// its destination in one of dstTS. A Child SA covers the cross product of
// its TSi and TSr sets (RFC 7296 Section 2.9). Empty lists match nothing.
func matchSelectors(f *Flow, srcTS, dstTS []Selector) bool {
	ok := false
	for i := range srcTS {
		if srcTS[i].matchAddr(f.Src) && srcTS[i].matchProtoPort(f, f.SrcPort) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for i := range dstTS {
		if dstTS[i].matchAddr(f.Dst) && dstTS[i].matchProtoPort(f, f.DstPort) {
			return true
		}
	}
	return false
}
