package ike

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// TrafficSelector is one traffic selector (RFC 7296 Section 3.13.1): an
// address range, an IP protocol (0: any) and a port range (for ICMP the
// ports carry type and code, Section 3.13.1).
//
// In TOML a selector is a string: a prefix ("10.1.0.0/16"), an address
// ("10.1.0.1"), or a range ("10.1.0.0-10.1.0.255"), optionally followed by
// "[proto]" or "[proto/port]" or "[proto/lo-hi]" where proto is "tcp",
// "udp", "icmp", "icmp6", "any" or a number, and port is a number.
type TrafficSelector struct {
	Start, End         netip.Addr
	Protocol           uint8
	StartPort, EndPort uint16
}

// IP protocol numbers used in selectors.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// ParseTrafficSelector parses a selector string (see TrafficSelector).
func ParseTrafficSelector(s string) (TrafficSelector, error) {
	ts := TrafficSelector{EndPort: 0xffff}
	addr, rest, hasProto := strings.Cut(s, "[")
	addr = strings.TrimSpace(addr)
	if hasProto {
		if !strings.HasSuffix(rest, "]") {
			return ts, fmt.Errorf("ike: traffic selector %q: missing ]", s)
		}
		if err := ts.parseProtoPort(rest[:len(rest)-1]); err != nil {
			return ts, fmt.Errorf("ike: traffic selector %q: %v", s, err)
		}
	}
	switch {
	case strings.Contains(addr, "/"):
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return ts, fmt.Errorf("ike: traffic selector %q: %v", s, err)
		}
		p = p.Masked()
		ts.Start, ts.End = p.Addr(), lastAddr(p)
	case strings.Contains(addr, "-"):
		lo, hi, _ := strings.Cut(addr, "-")
		a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
		b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a.Is4() != b.Is4() || b.Less(a) {
			return ts, fmt.Errorf("ike: traffic selector %q: bad address range", s)
		}
		ts.Start, ts.End = a, b
	default:
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return ts, fmt.Errorf("ike: traffic selector %q: %v", s, err)
		}
		ts.Start, ts.End = a, a
	}
	ts.Start, ts.End = ts.Start.Unmap(), ts.End.Unmap()
	return ts, nil
}

func (ts *TrafficSelector) parseProtoPort(s string) error {
	proto, port, hasPort := strings.Cut(s, "/")
	switch strings.ToLower(proto) {
	case "", "any", "%any":
		ts.Protocol = 0
	case "tcp":
		ts.Protocol = protoTCP
	case "udp":
		ts.Protocol = protoUDP
	case "icmp":
		ts.Protocol = protoICMP
	case "icmp6", "ipv6-icmp":
		ts.Protocol = protoICMPv6
	default:
		n, err := strconv.ParseUint(proto, 10, 8)
		if err != nil {
			return fmt.Errorf("bad protocol %q", proto)
		}
		ts.Protocol = uint8(n)
	}
	if !hasPort || port == "" || port == "%any" {
		return nil
	}
	lo, hi, isRange := strings.Cut(port, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return fmt.Errorf("bad port %q", lo)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return fmt.Errorf("bad port range %q", port)
		}
	}
	ts.StartPort, ts.EndPort = uint16(a), uint16(b)
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// MustTS is ParseTrafficSelector for constant strings; it panics on error.
func MustTS(s string) TrafficSelector {
	ts, err := ParseTrafficSelector(s)
	if err != nil {
		panic(err)
	}
	return ts
}

// UnmarshalText implements encoding.TextUnmarshaler (TOML strings).
func (ts *TrafficSelector) UnmarshalText(b []byte) error {
	v, err := ParseTrafficSelector(string(b))
	if err != nil {
		return err
	}
	*ts = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (ts TrafficSelector) MarshalText() ([]byte, error) { return []byte(ts.String()), nil }

// String formats the selector in the syntax ParseTrafficSelector reads.
func (ts TrafficSelector) String() string {
	var s string
	if p, ok := ts.prefix(); ok {
		s = p.String()
	} else {
		s = ts.Start.String() + "-" + ts.End.String()
	}
	if ts.Protocol == 0 && ts.StartPort == 0 && ts.EndPort == 0xffff {
		return s
	}
	s += "[" + strconv.Itoa(int(ts.Protocol))
	switch {
	case ts.StartPort == 0 && ts.EndPort == 0xffff:
	case ts.StartPort == ts.EndPort:
		s += "/" + strconv.Itoa(int(ts.StartPort))
	default:
		s += "/" + strconv.Itoa(int(ts.StartPort)) + "-" + strconv.Itoa(int(ts.EndPort))
	}
	return s + "]"
}

// prefix returns the range as a prefix when it is one.
func (ts TrafficSelector) prefix() (netip.Prefix, bool) {
	for bits := 0; bits <= ts.Start.BitLen(); bits++ {
		p := netip.PrefixFrom(ts.Start, bits)
		if p.Masked().Addr() == ts.Start && lastAddr(p) == ts.End {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// IsV6 reports whether the selector is an IPv6 range (TS_IPV6_ADDR_RANGE).
func (ts TrafficSelector) IsV6() bool { return ts.Start.Is6() }

// Valid reports whether the selector is well formed.
func (ts TrafficSelector) Valid() bool {
	return ts.Start.IsValid() && ts.End.IsValid() && ts.Start.Is4() == ts.End.Is4() &&
		!ts.End.Less(ts.Start) && ts.StartPort <= ts.EndPort
}

// Intersect returns the selector covering what both a and b cover, and
// false if they share nothing (RFC 7296 Section 2.9 narrowing).
func (a TrafficSelector) Intersect(b TrafficSelector) (TrafficSelector, bool) {
	if a.Start.Is4() != b.Start.Is4() {
		return TrafficSelector{}, false
	}
	out := a
	switch {
	case a.Protocol == b.Protocol:
	case a.Protocol == 0:
		out.Protocol = b.Protocol
	case b.Protocol == 0:
	default:
		return TrafficSelector{}, false
	}
	if b.Start.Compare(out.Start) > 0 {
		out.Start = b.Start
	}
	if b.End.Compare(out.End) < 0 {
		out.End = b.End
	}
	out.StartPort = max(a.StartPort, b.StartPort)
	out.EndPort = min(a.EndPort, b.EndPort)
	if out.End.Less(out.Start) || out.EndPort < out.StartPort {
		return TrafficSelector{}, false
	}
	return out, true
}

// Contains reports whether a covers all of b.
func (a TrafficSelector) Contains(b TrafficSelector) bool {
	c, ok := a.Intersect(b)
	return ok && c == b
}

// narrow intersects every proposed selector with every configured one, in
// the order of the proposal, dropping duplicates (RFC 7296 Section 2.9).
func narrow(proposed, configured []TrafficSelector) []TrafficSelector {
	var out []TrafficSelector
	for _, p := range proposed {
		for _, c := range configured {
			x, ok := p.Intersect(c)
			if !ok {
				continue
			}
			dup := false
			for _, o := range out {
				if o == x {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, x)
			}
		}
	}
	return out
}

// subsetOf reports whether every selector in got is covered by one in offered:
// what an initiator checks in the narrowed selectors of a response.
func subsetOf(got, offered []TrafficSelector) bool {
	for _, g := range got {
		ok := false
		for _, o := range offered {
			if o.Contains(g) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return len(got) > 0
}
