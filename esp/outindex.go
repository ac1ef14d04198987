package esp

import (
	"math/bits"
	"slices"
)

// The outbound SA set is indexed by destination (the SPD-S cache of
// RFC 4301 Section 4.4.2, keyed the way a route-based interface looks it
// up): every remote selector of an SA files the SA under the smallest
// prefix that covers the selector's address range, in a path-compressed
// binary trie (one for IPv4, one for IPv6). A lookup walks the trie along
// the destination address, at most one node per distinct enclosing prefix,
// and checks only the SAs filed on that path. A hub with 10,000 spokes
// finds a spoke's SA in about 15 node visits instead of 10,000 selector
// checks.
//
// The trie is persistent: a change copies the nodes on one path and
// publishes a new root, so readers never lock and a reader holding an old
// root sees a consistent older set.

// tnode is a trie node: the prefix key/plen (IPv4 keys in the top 32 bits
// of hi) and the SAs filed under exactly this prefix, most preferred
// (most recently added) first. A node with no SAs has two children.
type tnode struct {
	key   ipKey
	plen  uint8
	child [2]*tnode
	sas   []*OutboundSA
}

// outIndex is one published state of an OutboundSet.
type outIndex struct {
	v4, v6 *tnode
	// idle holds SAs without remote selectors: they match nothing, but
	// belong to the set.
	idle []*OutboundSA
}

// tkey places an address key in the trie's bit order.
func tkey(k ipKey, v6 bool) ipKey {
	if v6 {
		return k
	}
	return ipKey{hi: k.lo << 32}
}

// commonBits returns how many leading bits a and b share (128 if equal).
func commonBits(a, b ipKey) int {
	if x := a.hi ^ b.hi; x != 0 {
		return bits.LeadingZeros64(x)
	}
	return 64 + bits.LeadingZeros64(a.lo^b.lo)
}

// maskBits keeps the first n bits of k.
func maskBits(k ipKey, n int) ipKey {
	switch {
	case n >= 128:
		return k
	case n >= 64:
		k.lo &^= ^uint64(0) >> (n - 64)
		return k
	}
	return ipKey{hi: k.hi &^ (^uint64(0) >> n)}
}

// bitAt returns bit i (0 = most significant) of k.
func bitAt(k ipKey, i int) int {
	if i < 64 {
		return int(k.hi>>(63-i)) & 1
	}
	return int(k.lo>>(127-i)) & 1
}

// coverOf returns the smallest prefix covering a selector's range, in the
// trie's bit order.
func coverOf(s *csel) (ipKey, int) {
	start, end := tkey(s.start, s.v6), tkey(s.end, s.v6)
	n := commonBits(start, end)
	if !s.v6 {
		n = min(n, 32)
	}
	return maskBits(start, n), n
}

// tInsert returns the trie with sa filed under key/plen, first in
// preference.
func tInsert(n *tnode, key ipKey, plen int, sa *OutboundSA) *tnode {
	if n == nil {
		return &tnode{key: key, plen: uint8(plen), sas: []*OutboundSA{sa}}
	}
	c := min(commonBits(n.key, key), int(n.plen), plen)
	switch {
	case c == int(n.plen) && c == plen:
		if slices.Contains(n.sas, sa) {
			return n
		}
		m := *n
		m.sas = make([]*OutboundSA, 0, len(n.sas)+1)
		m.sas = append(append(m.sas, sa), n.sas...)
		return &m
	case c == int(n.plen): // n's prefix encloses key/plen
		m := *n
		d := bitAt(key, c)
		m.child[d] = tInsert(n.child[d], key, plen, sa)
		return &m
	case c == plen: // key/plen encloses n
		m := &tnode{key: key, plen: uint8(plen), sas: []*OutboundSA{sa}}
		m.child[bitAt(n.key, c)] = n
		return m
	}
	m := &tnode{key: maskBits(key, c), plen: uint8(c)}
	m.child[bitAt(key, c)] = &tnode{key: key, plen: uint8(plen), sas: []*OutboundSA{sa}}
	m.child[bitAt(n.key, c)] = n
	return m
}

// tRemove returns the trie without sa under key/plen.
func tRemove(n *tnode, key ipKey, plen int, sa *OutboundSA) *tnode {
	if n == nil || int(n.plen) > plen || commonBits(n.key, key) < int(n.plen) {
		return n
	}
	m := *n
	if int(n.plen) == plen {
		i := slices.Index(n.sas, sa)
		if i < 0 {
			return n
		}
		m.sas = slices.Delete(slices.Clone(n.sas), i, i+1)
		if len(m.sas) == 0 {
			m.sas = nil
		}
	} else {
		d := bitAt(key, int(n.plen))
		ch := tRemove(n.child[d], key, plen, sa)
		if ch == n.child[d] {
			return n
		}
		m.child[d] = ch
	}
	if len(m.sas) == 0 {
		switch {
		case m.child[0] == nil:
			return m.child[1]
		case m.child[1] == nil:
			return m.child[0]
		}
	}
	return &m
}

// lookup returns the most preferred live SA filed on dst's path whose
// selectors cover f.
func (x *outIndex) lookup(f *flow) *OutboundSA {
	n := x.v4
	if f.v6 {
		n = x.v6
	}
	dst := tkey(f.dst, f.v6)
	var best *OutboundSA
	for n != nil {
		if commonBits(n.key, dst) < int(n.plen) {
			break
		}
		for _, sa := range n.sas {
			if best != nil && sa.pref <= best.pref {
				break
			}
			if !sa.life.hard() && matchFlow(f, sa.local, sa.remote) {
				best = sa
				break
			}
		}
		if n.plen >= 128 {
			break
		}
		n = n.child[bitAt(dst, int(n.plen))]
	}
	return best
}

// with returns the index with sa added (filed under each remote selector).
func (x *outIndex) with(sa *OutboundSA) *outIndex {
	y := *x
	if len(sa.remote) == 0 {
		y.idle = append(slices.Clone(x.idle), sa)
	}
	for i := range sa.remote {
		key, plen := coverOf(&sa.remote[i])
		if sa.remote[i].v6 {
			y.v6 = tInsert(y.v6, key, plen, sa)
		} else {
			y.v4 = tInsert(y.v4, key, plen, sa)
		}
	}
	return &y
}

// without returns the index with sa removed.
func (x *outIndex) without(sa *OutboundSA) *outIndex {
	y := *x
	if i := slices.Index(x.idle, sa); i >= 0 {
		y.idle = slices.Delete(slices.Clone(x.idle), i, i+1)
	}
	for i := range sa.remote {
		key, plen := coverOf(&sa.remote[i])
		if sa.remote[i].v6 {
			y.v6 = tRemove(y.v6, key, plen, sa)
		} else {
			y.v4 = tRemove(y.v4, key, plen, sa)
		}
	}
	return &y
}

// all returns every SA of the index, most preferred first.
func (x *outIndex) all() []*OutboundSA {
	seen := map[*OutboundSA]bool{}
	var out []*OutboundSA
	var walk func(*tnode)
	walk = func(n *tnode) {
		if n == nil {
			return
		}
		for _, sa := range n.sas {
			if !seen[sa] {
				seen[sa] = true
				out = append(out, sa)
			}
		}
		walk(n.child[0])
		walk(n.child[1])
	}
	walk(x.v4)
	walk(x.v6)
	out = append(out, x.idle...)
	slices.SortFunc(out, func(a, b *OutboundSA) int {
		switch {
		case a.pref > b.pref:
			return -1
		case a.pref < b.pref:
			return 1
		}
		return 0
	})
	return out
}
