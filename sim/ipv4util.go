package sim

import (
	"encoding/binary"
	"sort"
	"time"
)

// ipv4Fragment splits an IPv4 datagram into fragments that fit mtu
// (RFC 791, Section 3.2, fragmentation procedure). pkt may itself be a
// fragment: offsets continue from its offset and the last piece keeps its MF
// flag. Every fragment repeats the whole header, options included (the
// simulated stacks send none). It returns nil if the header leaves no room
// for data within mtu.
func ipv4Fragment(pkt []byte, mtu int) [][]byte {
	if len(pkt) <= mtu {
		return [][]byte{pkt}
	}
	hl := int(pkt[0]&0x0f) * 4
	step := (mtu - hl) &^ 7
	if step <= 0 || hl < ipv4MinHeaderLen || hl > len(pkt) || pkt[0]>>4 != 4 {
		return nil
	}
	ff := binary.BigEndian.Uint16(pkt[6:8])
	baseOff := int(ff&0x1fff) * 8
	lastMF := ff&0x2000 != 0
	data := pkt[hl:]
	var out [][]byte
	for off := 0; off < len(data); off += step {
		end := min(off+step, len(data))
		f := make([]byte, hl+end-off)
		copy(f, pkt[:hl])
		copy(f[hl:], data[off:end])
		binary.BigEndian.PutUint16(f[2:4], uint16(len(f)))
		nff := ff&0x4000 | uint16((baseOff+off)/8)
		if end < len(data) || lastMF {
			nff |= 0x2000
		}
		binary.BigEndian.PutUint16(f[6:8], nff)
		setIPv4Checksum(f[:hl])
		out = append(out, f)
	}
	return out
}

// checksumAdjust updates a ones'-complement checksum for a 16-bit word
// changing from old to new (RFC 1624, equation 3: HC' = ~(~HC + ~m + m')).
func checksumAdjust(sum, old, new uint16) uint16 {
	s := uint32(^sum) + uint32(^old) + uint32(new)
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// decrementTTL decrements the IPv4 TTL or IPv6 hop limit, fixing the IPv4
// header checksum. It reports false when the packet must be dropped.
func decrementTTL(pkt []byte, v6 bool) bool {
	if v6 {
		if pkt[7] <= 1 {
			return false
		}
		pkt[7]--
		return true
	}
	if pkt[8] <= 1 {
		return false
	}
	old := binary.BigEndian.Uint16(pkt[8:10])
	pkt[8]--
	binary.BigEndian.PutUint16(pkt[10:12], checksumAdjust(binary.BigEndian.Uint16(pkt[10:12]), old, binary.BigEndian.Uint16(pkt[8:10])))
	return true
}

// Reassembly limits of a middlebox (NAT) that reassembles IPv4 datagrams.
const (
	// ReassemblyTimeout is how long a middlebox keeps an incomplete
	// datagram, like gVisor's and Linux's IPv4 default (30 s).
	ReassemblyTimeout = 30 * time.Second
	// maxReassemblies bounds the datagrams being reassembled at once.
	maxReassemblies = 256
	maxDatagram     = 65535
)

type fragPiece struct {
	off  int
	data []byte
}

type reassembly struct {
	first   []byte // header of the fragment with offset 0
	pieces  []fragPiece
	total   int // payload length, known once the last fragment arrived
	started time.Duration
	bytes   int
}

// reassembler rebuilds IPv4 datagrams from fragments with bounded memory.
type reassembler struct {
	m map[fragKey]*reassembly
}

// add takes a fragment and returns the whole datagram once complete.
func (r *reassembler) add(now time.Duration, pi PacketInfo, pkt []byte) ([]byte, bool) {
	if r.m == nil {
		r.m = make(map[fragKey]*reassembly)
	}
	for k, a := range r.m {
		if now-a.started > ReassemblyTimeout {
			delete(r.m, k)
		}
	}
	k := fragKey{pi.Src, pi.Dst, pi.FragID, pi.Protocol}
	a := r.m[k]
	if a == nil {
		if len(r.m) >= maxReassemblies {
			return nil, false
		}
		a = &reassembly{started: now, total: -1}
		r.m[k] = a
	}
	data := pkt[pi.HeaderLen:]
	if pi.FragOffset+len(data) > maxDatagram || a.bytes+len(data) > maxDatagram {
		delete(r.m, k)
		return nil, false
	}
	if pi.FragOffset == 0 {
		a.first = append([]byte(nil), pkt[:pi.HeaderLen]...)
	}
	if !pi.MoreFragments {
		a.total = pi.FragOffset + len(data)
	}
	a.pieces = append(a.pieces, fragPiece{pi.FragOffset, append([]byte(nil), data...)})
	a.bytes += len(data)
	if a.first == nil || a.total < 0 {
		return nil, false
	}
	sort.Slice(a.pieces, func(i, j int) bool { return a.pieces[i].off < a.pieces[j].off })
	reach := 0
	for _, p := range a.pieces {
		if p.off > reach {
			return nil, false // a hole
		}
		reach = max(reach, p.off+len(p.data))
	}
	if reach < a.total {
		return nil, false
	}
	buf := make([]byte, a.total)
	for _, p := range a.pieces {
		if p.off < a.total {
			copy(buf[p.off:], p.data)
		}
	}
	delete(r.m, k)
	out := append(a.first, buf...)
	binary.BigEndian.PutUint16(out[2:4], uint16(len(out)))
	ff := binary.BigEndian.Uint16(out[6:8])
	binary.BigEndian.PutUint16(out[6:8], ff&0x4000) // keep DF, clear MF and offset
	setIPv4Checksum(out[:len(a.first)])
	return out, true
}
