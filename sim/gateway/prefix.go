package gateway

import (
	"net/netip"
)

// maxRoutePrefixes bounds the prefixes one selector range turns into.
const maxRoutePrefixes = 256

// rangePrefixes returns the shortest list of prefixes that exactly covers
// the address range [start, end] (at most maxRoutePrefixes of them).
func rangePrefixes(start, end netip.Addr) []netip.Prefix {
	start, end = start.Unmap(), end.Unmap()
	if !start.IsValid() || !end.IsValid() || start.Is4() != end.Is4() || end.Less(start) {
		return nil
	}
	bits := start.BitLen()
	var out []netip.Prefix
	for len(out) < maxRoutePrefixes {
		// The largest aligned block at start that ends at or before end.
		n := bits
		for n > 0 {
			p := netip.PrefixFrom(start, n-1)
			if p.Masked().Addr() != start || lastOf(p).Compare(end) > 0 {
				break
			}
			n--
		}
		p := netip.PrefixFrom(start, n)
		out = append(out, p)
		last := lastOf(p)
		if last == end {
			break
		}
		start = last.Next()
	}
	return out
}

// lastOf returns the last address of a prefix.
func lastOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	r, _ := netip.AddrFromSlice(a)
	return r
}

// prefixMask returns the netmask of p as bytes.
func prefixMask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}
