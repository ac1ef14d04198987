package esp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// IP protocol numbers the data plane looks at.
const (
	ProtoHopByHop uint8 = 0
	ProtoICMP     uint8 = 1
	ProtoIPIP     uint8 = 4 // next header of an IPv4 packet in tunnel mode
	ProtoTCP      uint8 = 6
	ProtoUDP      uint8 = 17
	ProtoIPv6     uint8 = 41 // next header of an IPv6 packet in tunnel mode
	ProtoRouting  uint8 = 43
	ProtoFragment uint8 = 44
	ProtoESP      uint8 = 50
	ProtoICMPv6   uint8 = 58
	ProtoNoNext   uint8 = 59 // dummy packet (RFC 4303 Section 2.6)
	ProtoDestOpts uint8 = 60
	ProtoSCTP     uint8 = 132
	ProtoUDPLite  uint8 = 136

	ipv4HeaderSize = 20
	ipv6HeaderSize = 40
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
	a := start.AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	end, _ := netip.AddrFromSlice(a)
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
		!s.Start.Is4In6() && !s.End.Is4In6() && s.Start.Compare(s.End) <= 0
}

// Flow is what the selectors see of an IP packet (RFC 4301 Section 4.4.1.1).
type Flow struct {
	Src, Dst netip.Addr
	Proto    uint8 // upper-layer protocol after IPv6 extension headers
	// SrcPort and DstPort hold TCP/UDP/SCTP ports; for ICMP and ICMPv6
	// both hold Type<<8|Code.
	SrcPort, DstPort uint16
	HasPorts         bool // false for non-initial fragments, truncated headers, other protocols
	Len              int  // total length from the IP header
}

// ParseFlow reads the addresses, protocol and ports of an IPv4 or IPv6
// packet. It checks that the header's length fields fit within pkt.
func ParseFlow(pkt []byte) (Flow, error) {
	var f flow
	if err := parseFlow(pkt, &f); err != nil {
		return Flow{}, err
	}
	return f.export(), nil
}

// ipKey is an address as a 128-bit number (IPv4 in the low 32 bits),
// compared faster than netip.Addr on the data path.
type ipKey struct{ hi, lo uint64 }

func keyOf(a netip.Addr) ipKey {
	if a.Is4() {
		b := a.As4()
		return ipKey{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return ipKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (k ipKey) addr(v6 bool) netip.Addr {
	if !v6 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

func (k ipKey) less(o ipKey) bool { return k.hi < o.hi || (k.hi == o.hi && k.lo < o.lo) }

func (k ipKey) cmp(o ipKey) int {
	switch {
	case k.hi < o.hi:
		return -1
	case k.hi > o.hi:
		return 1
	case k.lo < o.lo:
		return -1
	case k.lo > o.lo:
		return 1
	}
	return 0
}

// flow is the data-path form of Flow.
type flow struct {
	v6         bool
	hasPorts   bool
	proto      uint8
	sport      uint16
	dport      uint16
	length     int
	src, dst   ipKey
	fragmented bool // IPv4 MF or offset set
}

func (f *flow) export() Flow {
	return Flow{Src: f.src.addr(f.v6), Dst: f.dst.addr(f.v6), Proto: f.proto,
		SrcPort: f.sport, DstPort: f.dport, HasPorts: f.hasPorts, Len: f.length}
}

func flowOf(F *Flow) flow {
	return flow{v6: !F.Src.Is4(), hasPorts: F.HasPorts, proto: F.Proto, sport: F.SrcPort,
		dport: F.DstPort, length: F.Len, src: keyOf(F.Src), dst: keyOf(F.Dst)}
}

func parseFlow(pkt []byte, f *flow) error {
	if len(pkt) < 1 {
		return DropMalformed
	}
	var rest []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderSize {
			return DropMalformed
		}
		ihl := int(pkt[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(pkt[2:4]))
		if ihl < ipv4HeaderSize || tot < ihl || tot > len(pkt) {
			return DropMalformed
		}
		frag := binary.BigEndian.Uint16(pkt[6:8])
		f.v6, f.hasPorts, f.sport, f.dport = false, false, 0, 0
		f.length, f.proto, f.fragmented = tot, pkt[9], frag&0x3fff != 0
		f.src = ipKey{0, uint64(binary.BigEndian.Uint32(pkt[12:16]))}
		f.dst = ipKey{0, uint64(binary.BigEndian.Uint32(pkt[16:20]))}
		if frag&0x1fff != 0 {
			return nil // non-initial fragment: no ports
		}
		rest = pkt[ihl:tot]
	case 6:
		if len(pkt) < ipv6HeaderSize {
			return DropMalformed
		}
		tot := ipv6HeaderSize + int(binary.BigEndian.Uint16(pkt[4:6]))
		if tot > len(pkt) {
			return DropMalformed
		}
		*f = flow{v6: true, length: tot,
			src: ipKey{binary.BigEndian.Uint64(pkt[8:16]), binary.BigEndian.Uint64(pkt[16:24])},
			dst: ipKey{binary.BigEndian.Uint64(pkt[24:32]), binary.BigEndian.Uint64(pkt[32:40])}}
		nh := pkt[6]
		rest = pkt[ipv6HeaderSize:tot]
	ext:
		for {
			switch nh {
			case ProtoHopByHop, ProtoRouting, ProtoDestOpts:
				if len(rest) < 8 || (int(rest[1])+1)*8 > len(rest) {
					f.proto = nh
					return nil
				}
				nh, rest = rest[0], rest[(int(rest[1])+1)*8:]
			case ProtoFragment:
				if len(rest) < 8 {
					f.proto = nh
					return nil
				}
				off := binary.BigEndian.Uint16(rest[2:4]) &^ 7
				nh, rest = rest[0], rest[8:]
				if off != 0 {
					f.proto = nh
					return nil
				}
			default:
				break ext
			}
		}
		f.proto = nh
	default:
		return DropMalformed
	}
	switch f.proto {
	case ProtoTCP, ProtoUDP, ProtoSCTP, ProtoUDPLite:
		if len(rest) >= 4 {
			f.sport = binary.BigEndian.Uint16(rest[0:2])
			f.dport = binary.BigEndian.Uint16(rest[2:4])
			f.hasPorts = true
		}
	case ProtoICMP, ProtoICMPv6:
		if len(rest) >= 2 {
			f.sport = uint16(rest[0])<<8 | uint16(rest[1])
			f.dport = f.sport
			f.hasPorts = true
		}
	}
	return nil
}

// csel is the data-path form of a Selector.
type csel struct {
	v6         bool
	anyPort    bool
	opaque     bool
	proto      uint8
	sport      uint16
	eport      uint16
	start, end ipKey
}

func compile(ts []Selector) []csel {
	out := make([]csel, len(ts))
	for i, s := range ts {
		out[i] = csel{v6: !s.Start.Is4(), proto: s.Proto, sport: s.StartPort, eport: s.EndPort,
			anyPort: s.StartPort == 0 && s.EndPort == 0xffff, opaque: s.StartPort > s.EndPort,
			start: keyOf(s.Start), end: keyOf(s.End)}
	}
	return out
}

func (s *csel) match(f *flow, a ipKey, port uint16) bool {
	if s.v6 != f.v6 || (s.proto != 0 && s.proto != f.proto) || a.less(s.start) || s.end.less(a) {
		return false
	}
	if f.hasPorts {
		return s.sport <= port && port <= s.eport
	}
	return s.anyPort || s.opaque
}

// matchFlow reports whether the flow's source lies in one of srcTS and its
// destination in one of dstTS. A Child SA covers the cross product of its
// TSi and TSr sets (RFC 7296 Section 2.9). Empty lists match nothing.
func matchFlow(f *flow, srcTS, dstTS []csel) bool {
	ok := false
	for i := range srcTS {
		if srcTS[i].match(f, f.src, f.sport) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for i := range dstTS {
		if dstTS[i].match(f, f.dst, f.dport) {
			return true
		}
	}
	return false
}

// fast4 is a shortcut through the selector check for the most common
// tunnel-mode packet: IPv4 without options, not fragmented, and an SA
// whose IPv4 selectors on each side are one address range with any
// protocol and port (what a route-based tunnel between two subnets
// negotiates). check accepts only packets the full check (parseFlow and
// matchFlow) would accept; everything else takes the full path.
type fast4 struct {
	on           bool
	srcLo, srcHi uint32
	dstLo, dstHi uint32
}

// newFast4 builds the shortcut for packets from srcTS to dstTS; it stays
// off unless each list has exactly one IPv4 selector and it covers every
// protocol and port.
func newFast4(srcTS, dstTS []csel) fast4 {
	src, ok1 := only4(srcTS)
	dst, ok2 := only4(dstTS)
	if !ok1 || !ok2 {
		return fast4{}
	}
	return fast4{on: true, srcLo: uint32(src.start.lo), srcHi: uint32(src.end.lo),
		dstLo: uint32(dst.start.lo), dstHi: uint32(dst.end.lo)}
}

func only4(ts []csel) (csel, bool) {
	var one csel
	n := 0
	for _, s := range ts {
		if !s.v6 {
			one, n = s, n+1
		}
	}
	return one, n == 1 && one.proto == 0 && one.anyPort
}

// check returns the inner packet's total length and true if the shortcut
// applies and the packet matches.
func (q *fast4) check(pkt []byte, nh uint8) (int, bool) {
	if !q.on || nh != ProtoIPIP || len(pkt) < ipv4HeaderSize || pkt[0] != 0x45 {
		return 0, false
	}
	tot := int(binary.BigEndian.Uint16(pkt[2:4]))
	src := binary.BigEndian.Uint32(pkt[12:16])
	dst := binary.BigEndian.Uint32(pkt[16:20])
	if tot < ipv4HeaderSize || tot > len(pkt) ||
		src < q.srcLo || src > q.srcHi || dst < q.dstLo || dst > q.dstHi {
		return 0, false
	}
	return tot, true
}
