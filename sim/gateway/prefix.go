package gateway

import (
	"net/netip"
	"slices"
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

// summarize returns the fewest prefixes whose union is exactly the union
// of ps: prefixes inside others are dropped and sibling pairs merged into
// their parent, repeatedly. The result is sorted (IPv4 first, then by
// address).
func summarize(ps []netip.Prefix) []netip.Prefix {
	sorted := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if p.IsValid() {
			sorted = append(sorted, p.Masked())
		}
	}
	sortPrefixes(sorted)
	// Sorted by address, then shortest first: a prefix inside another
	// lies inside the last one kept (those kept are disjoint).
	byLen := map[int]map[netip.Prefix]bool{}
	var last netip.Prefix
	for _, p := range sorted {
		if last.IsValid() && last.Addr().Is4() == p.Addr().Is4() && last.Bits() <= p.Bits() && last.Contains(p.Addr()) {
			continue
		}
		last = p
		if byLen[p.Bits()] == nil {
			byLen[p.Bits()] = map[netip.Prefix]bool{}
		}
		byLen[p.Bits()][p] = true
	}
	// Merge siblings, longest prefixes first, so that merged parents can
	// merge again.
	for n := 128; n >= 1; n-- {
		set := byLen[n]
		for _, p := range sortedKeys(set) {
			if !set[p] {
				continue
			}
			parent := netip.PrefixFrom(p.Addr(), n-1).Masked()
			sib := sibling(p)
			if !set[sib] {
				continue
			}
			delete(set, p)
			delete(set, sib)
			if byLen[n-1] == nil {
				byLen[n-1] = map[netip.Prefix]bool{}
			}
			byLen[n-1][parent] = true
		}
	}
	var out []netip.Prefix
	for _, set := range byLen {
		for p := range set {
			out = append(out, p)
		}
	}
	sortPrefixes(out)
	return out
}

// sibling returns the other half of p's parent.
func sibling(p netip.Prefix) netip.Prefix {
	a := p.Addr().AsSlice()
	i := p.Bits() - 1
	a[i/8] ^= 0x80 >> (i % 8)
	s, _ := netip.AddrFromSlice(a)
	return netip.PrefixFrom(s, p.Bits())
}

func sortedKeys(set map[netip.Prefix]bool) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sortPrefixes(out)
	return out
}

// sortPrefixes orders IPv4 before IPv6, then by address, then shorter
// first.
func sortPrefixes(ps []netip.Prefix) {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if a.Addr().Is4() != b.Addr().Is4() {
			if a.Addr().Is4() {
				return -1
			}
			return 1
		}
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
}

// prefixSet answers "is this prefix inside one of the set's prefixes" in
// one map lookup per prefix length in use.
type prefixSet struct {
	byLen map[int]map[netip.Prefix]bool
	lens  []int
}

func newPrefixSet(ps []netip.Prefix) *prefixSet {
	s := &prefixSet{byLen: map[int]map[netip.Prefix]bool{}}
	for _, p := range ps {
		n := p.Bits()
		if p.Addr().Is6() {
			n += 1000 // keep the families apart
		}
		if s.byLen[n] == nil {
			s.byLen[n] = map[netip.Prefix]bool{}
			s.lens = append(s.lens, n)
		}
		s.byLen[n][p.Masked()] = true
	}
	slices.Sort(s.lens)
	return s
}

// covers reports whether p lies inside one of the set's prefixes.
func (s *prefixSet) covers(p netip.Prefix) bool {
	if s == nil {
		return false
	}
	off := 0
	if p.Addr().Is6() {
		off = 1000
	}
	for _, n := range s.lens {
		if n < off || n-off > p.Bits() || (off == 0 && n >= 1000) {
			continue
		}
		q, err := p.Addr().Prefix(n - off)
		if err == nil && s.byLen[n][q] {
			return true
		}
	}
	return false
}
