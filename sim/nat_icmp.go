package sim

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// ICMPv4 message types a NAT translates as errors (RFC 792; RFC 5508,
// Section 4.1).
const (
	icmpHeaderLen          = 8
	icmpTypeEchoReply      = 0
	icmpTypeDestUnreach    = 3
	icmpCodeFragNeeded     = 4  // "fragmentation needed and DF set" (RFC 792, RFC 1191)
	icmpErrorTTL           = 64 // TTL of errors the NAT originates
	icmpTypeEchoRequest    = 8
	icmpTypeTimeExceeded   = 11
	icmpTypeParamProblem   = 12
	icmpInnerTransportMin  = 8 // RFC 792: the error carries 64 bits of the original datagram's data
	ipv4FlagsOffsetMask    = 0x1fff
	ipv4TotalLengthOffset  = 2
	ipv4FragmentWordOffset = 6
)

// isICMPError reports whether pkt (an IPv4 packet described by pi) is an
// ICMP error message: destination unreachable (including "fragmentation
// needed", RFC 1191), time exceeded or parameter problem.
func isICMPError(pi PacketInfo, pkt []byte) bool {
	if pi.Protocol != ipProtoICMP || len(pkt) < pi.HeaderLen+icmpHeaderLen {
		return false
	}
	switch pkt[pi.HeaderLen] {
	case icmpTypeDestUnreach, icmpTypeTimeExceeded, icmpTypeParamProblem:
		return true
	}
	return false
}

// icmpEmbedded locates the datagram embedded in an ICMP error: the slice
// holding it (from its IP header to the end of the message), its protocol
// and the offsets, within that slice, of its source and destination ports
// (UDP) or echo identifier, and of its transport checksum. It reports false
// when the embedded datagram is not a translatable IPv4 UDP or ICMP echo
// header with at least the first 8 bytes of its transport header
// (RFC 5508, Section 4.2).
func icmpEmbedded(pi PacketInfo, pkt []byte) (inner []byte, proto uint8, so, do, co int, ok bool) {
	end := len(pkt)
	if tl := int(binary.BigEndian.Uint16(pkt[ipv4TotalLengthOffset:])); tl >= pi.HeaderLen+icmpHeaderLen && tl < end {
		end = tl
	}
	inner = pkt[pi.HeaderLen+icmpHeaderLen : end]
	if len(inner) < ipv4MinHeaderLen || inner[0]>>4 != 4 {
		return nil, 0, 0, 0, 0, false
	}
	ihl := int(inner[0]&0x0f) * 4
	if ihl < ipv4MinHeaderLen || len(inner) < ihl+icmpInnerTransportMin {
		return nil, 0, 0, 0, 0, false
	}
	if binary.BigEndian.Uint16(inner[ipv4FragmentWordOffset:])&ipv4FlagsOffsetMask != 0 {
		return nil, 0, 0, 0, 0, false // not the first fragment: no transport header
	}
	proto = inner[9]
	switch proto {
	case ipProtoUDP:
		return inner, proto, ihl, ihl + 2, ihl + 6, true
	case ipProtoICMP:
		if t := inner[ihl]; t != icmpTypeEchoRequest && t != icmpTypeEchoReply {
			return nil, 0, 0, 0, 0, false
		}
		return inner, proto, ihl + 4, ihl + 4, ihl + 2, true
	}
	return nil, 0, 0, 0, 0, false
}

// translateICMPError translates an ICMP error about a translated flow
// (RFC 5508, Section 4.2; RFC 4787, Section 9). From the outside
// (side 1), the error concerns a datagram the NAT sent out: its outer
// destination and the embedded datagram's source address and port become the
// inside host's. From the inside (side 0), the error concerns a datagram the
// NAT delivered inside: its outer source and the embedded datagram's
// destination address and port become the external ones. The embedded IP
// header checksum and transport checksum are updated incrementally
// (RFC 1624) and the ICMP checksum is recomputed. Errors with an invalid
// ICMP checksum or matching no live mapping are dropped and counted; errors
// never refresh a mapping (RFC 5508, Section 4.2).
func (nat *NAT) translateICMPError(now time.Duration, side int, pi PacketInfo, pkt []byte) bool {
	inner, proto, so, do, co, ok := icmpEmbedded(pi, pkt)
	if !ok || icmpSum(pkt[pi.HeaderLen:pi.HeaderLen+icmpHeaderLen+len(inner)]) != 0xffff {
		nat.drop(NATDropICMPError)
		return false
	}
	udp := proto == ipProtoUDP
	innerSrc := netip.AddrFrom4([4]byte(inner[12:16]))
	innerDst := netip.AddrFrom4([4]byte(inner[16:20]))
	ext := nat.cfg.External
	if side == 1 {
		if pi.Dst != ext || innerSrc != ext {
			nat.drop(NATDropICMPError)
			return false
		}
		m := nat.byPort[natPortKey{proto, binary.BigEndian.Uint16(inner[so:])}]
		if m == nil || now-m.last > nat.cfg.Timeout {
			nat.drop(NATDropICMPError)
			return false
		}
		// The embedded datagram must be one the inside host sent
		// through this mapping.
		if udp {
			if _, sent := m.eps[netip.AddrPortFrom(innerDst, binary.BigEndian.Uint16(inner[do:]))]; !sent {
				nat.drop(NATDropICMPError)
				return false
			}
		} else if _, sent := m.addrs[innerDst]; !sent {
			nat.drop(NATDropICMPError)
			return false
		}
		setAddr(pkt, 16, 0, m.key.inside.Addr(), false)
		setAddr(inner, 12, co, m.key.inside.Addr(), udp)
		rewriteWord(inner, so, co, m.key.inside.Port(), udp)
	} else {
		remote := netip.AddrPortFrom(innerSrc, binary.BigEndian.Uint16(inner[so:]))
		if !udp {
			remote = netip.AddrPortFrom(innerSrc, 0)
		}
		inside := netip.AddrPortFrom(innerDst, binary.BigEndian.Uint16(inner[do:]))
		m := nat.byInside[nat.key(proto, inside, remote)]
		if m == nil || now-m.last > nat.cfg.Timeout {
			nat.drop(NATDropICMPError)
			return false
		}
		setAddr(pkt, 12, 0, ext, false)
		setAddr(inner, 16, co, ext, udp)
		rewriteWord(inner, do, co, m.external, udp)
	}
	setICMPChecksum(pkt[pi.HeaderLen : pi.HeaderLen+icmpHeaderLen+len(inner)])
	nat.stats.ICMPErrors++
	return true
}

// icmpSum is the ones' complement sum of msg (RFC 1071); it is 0xffff
// over a message with a valid checksum.
func icmpSum(msg []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(msg); i += 2 {
		sum += uint32(msg[i])<<8 | uint32(msg[i+1])
	}
	if len(msg)%2 == 1 {
		sum += uint32(msg[len(msg)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// setICMPChecksum recomputes an ICMPv4 message's checksum (RFC 792): the
// ones' complement of the ones' complement sum of the whole message.
func setICMPChecksum(msg []byte) {
	msg[2], msg[3] = 0, 0
	binary.BigEndian.PutUint16(msg[2:4], ^icmpSum(msg))
}

// fragNeededQuote is the most a "fragmentation needed" error quotes of the
// datagram: the error stays within 576 octets (RFC 1812, Section 4.3.2.3).
const fragNeededQuote = 576 - ipv4MinHeaderLen - icmpHeaderLen

// fragNeeded builds the IPv4 ICMP "destination unreachable, fragmentation
// needed and DF set" error (RFC 792; type 3, code 4) from src to dst about
// datagram orig, with the next-hop MTU in the low 16 bits of the second
// word (RFC 1191, Section 4). It quotes orig's header and as much of its
// data as fits.
func fragNeeded(src, dst netip.Addr, orig []byte, mtu int) []byte {
	quote := orig[:min(len(orig), fragNeededQuote)]
	pkt := make([]byte, ipv4MinHeaderLen+icmpHeaderLen+len(quote))
	h := pkt[:ipv4MinHeaderLen]
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[ipv4TotalLengthOffset:], uint16(len(pkt)))
	h[8] = icmpErrorTTL
	h[9] = ipProtoICMP
	s4, d4 := src.As4(), dst.As4()
	copy(h[12:16], s4[:])
	copy(h[16:20], d4[:])
	binary.BigEndian.PutUint16(h[10:12], ^icmpSum(h))
	msg := pkt[ipv4MinHeaderLen:]
	msg[0], msg[1] = icmpTypeDestUnreach, icmpCodeFragNeeded
	binary.BigEndian.PutUint16(msg[6:8], uint16(mtu))
	copy(msg[icmpHeaderLen:], quote)
	setICMPChecksum(msg)
	return pkt
}
