package sim

import (
	"encoding/binary"
	"net/netip"
)

// Sizes and offsets of the IP headers the simulator inspects.
const (
	ipv4MinHeaderLen = 20
	ipv6HeaderLen    = 40
	udpHeaderLen     = 8
	ipv6FragHdrLen   = 8

	ipProtoICMP     = 1
	ipProtoTCP      = 6
	ipProtoUDP      = 17
	ipProtoIPv6Frag = 44
	ipProtoICMPv6   = 58

	// maxIPv6ExtHeaders bounds the extension-header walk.
	maxIPv6ExtHeaders = 8
)

// PacketInfo is what the simulator reads from an IP header: enough to count
// and police fragments and to rewrite UDP for NAT.
type PacketInfo struct {
	Version  int
	Src, Dst netip.Addr
	// Protocol is the upper-layer protocol (after IPv6 extension headers).
	Protocol uint8
	// HeaderLen is the length of the IP header(s) before the upper layer
	// (or before the fragment payload).
	HeaderLen int
	// Fragment is true for an IP fragment: IPv4 with MF set or a non-zero
	// offset, IPv6 with a Fragment header (RFC 8200, Section 4.5).
	Fragment bool
	// FragOffset is the fragment offset in bytes; MoreFragments is MF / M.
	FragOffset    int
	MoreFragments bool
	// FragID is the identification field (IPv4: 16 bits; IPv6: 32 bits).
	FragID uint32
	// DontFragment is the IPv4 DF flag.
	DontFragment bool
}

// ParsePacket reads the IP header of pkt. It reports false if pkt is not a
// well-formed IPv4 or IPv6 header; it never reads beyond pkt.
func ParsePacket(pkt []byte) (PacketInfo, bool) {
	var pi PacketInfo
	if len(pkt) < 1 {
		return pi, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4MinHeaderLen {
			return pi, false
		}
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < ipv4MinHeaderLen || ihl > len(pkt) {
			return pi, false
		}
		pi.Version = 4
		pi.HeaderLen = ihl
		pi.Protocol = pkt[9]
		pi.Src = netip.AddrFrom4([4]byte(pkt[12:16]))
		pi.Dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		ff := binary.BigEndian.Uint16(pkt[6:8])
		pi.DontFragment = ff&0x4000 != 0
		pi.MoreFragments = ff&0x2000 != 0
		pi.FragOffset = int(ff&0x1fff) * 8
		pi.Fragment = pi.MoreFragments || pi.FragOffset != 0
		pi.FragID = uint32(binary.BigEndian.Uint16(pkt[4:6]))
		return pi, true
	case 6:
		if len(pkt) < ipv6HeaderLen {
			return pi, false
		}
		pi.Version = 6
		pi.Src = netip.AddrFrom16([16]byte(pkt[8:24]))
		pi.Dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		next := pkt[6]
		off := ipv6HeaderLen
	walk:
		for i := 0; i < maxIPv6ExtHeaders; i++ {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if off+2 > len(pkt) {
					return pi, false
				}
				n := (int(pkt[off+1]) + 1) * 8
				if off+n > len(pkt) {
					return pi, false
				}
				next = pkt[off]
				off += n
				continue
			case ipProtoIPv6Frag:
				if off+ipv6FragHdrLen > len(pkt) {
					return pi, false
				}
				fo := binary.BigEndian.Uint16(pkt[off+2 : off+4])
				pi.Fragment = true
				pi.FragOffset = int(fo &^ 7)
				pi.MoreFragments = fo&1 != 0
				pi.FragID = binary.BigEndian.Uint32(pkt[off+4 : off+8])
				next = pkt[off]
				off += ipv6FragHdrLen
				continue
			}
			break walk
		}
		pi.Protocol = next
		pi.HeaderLen = off
		return pi, true
	}
	return pi, false
}

// fragKey identifies the datagram a fragment belongs to (RFC 791, Section
// 3.2; RFC 8200, Section 4.5).
type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}
