package esp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// ESP in UDP (RFC 3948) and raw ESP framing.
const (
	// NATTPort is the UDP port shared by IKE and ESP in UDP (RFC 3948
	// Section 2, RFC 7296 Section 2.23).
	NATTPort = 4500
	// NonESPMarkerSize is the length of the all-zero marker in front of IKE
	// messages on port 4500 (RFC 3948 Section 2.2).
	NonESPMarkerSize = 4
	// KeepaliveByte is the single octet of a NAT-keepalive packet (RFC 3948
	// Section 2.3).
	KeepaliveByte = 0xff
	// UDPHeaderSize is the UDP header in front of an ESP-in-UDP packet.
	UDPHeaderSize = 8
	defaultTTL    = 64
)

// UDPClass is what a UDP/4500 payload carries.
type UDPClass uint8

// UDP/4500 payload classes (RFC 3948 Section 2).
const (
	UDPInvalid   UDPClass = iota // too short to be anything valid
	UDPESP                       // ESP packet starting with a non-zero SPI
	UDPIKE                       // IKE message behind the non-ESP marker
	UDPKeepalive                 // NAT-keepalive (single 0xFF octet)
)

// String returns the class name.
func (c UDPClass) String() string {
	switch c {
	case UDPInvalid:
		return "invalid"
	case UDPESP:
		return "esp"
	case UDPIKE:
		return "ike"
	case UDPKeepalive:
		return "keepalive"
	}
	return "UDPClass(" + strconv.Itoa(int(c)) + ")"
}

// ClassifyUDP demultiplexes a UDP payload received on port 4500 (RFC 3948
// Sections 2.2 and 2.3). For UDPIKE the returned slice is the IKE message
// without the non-ESP marker; for UDPESP it is the whole payload (the ESP
// packet); otherwise it is nil. The result aliases payload.
func ClassifyUDP(payload []byte) (UDPClass, []byte) {
	switch {
	case len(payload) == 1 && payload[0] == KeepaliveByte:
		return UDPKeepalive, nil
	case len(payload) >= NonESPMarkerSize && binary.BigEndian.Uint32(payload) == 0:
		return UDPIKE, payload[NonESPMarkerSize:]
	case len(payload) >= HeaderSize:
		return UDPESP, payload
	}
	return UDPInvalid, nil
}

// AppendNonESPMarker appends the non-ESP marker and an IKE message, the
// form IKE takes on port 4500.
func AppendNonESPMarker(dst, ikeMsg []byte) []byte {
	dst = append(dst, 0, 0, 0, 0)
	return append(dst, ikeMsg...)
}

// AppendKeepalive appends a NAT-keepalive payload (RFC 3948 Section 2.3).
func AppendKeepalive(dst []byte) []byte { return append(dst, KeepaliveByte) }

// PeekSPI returns the SPI of an ESP packet.
func PeekSPI(pkt []byte) (uint32, bool) {
	if len(pkt) < HeaderSize {
		return 0, false
	}
	return binary.BigEndian.Uint32(pkt), true
}

// AppendRawESP appends an IPv4 or IPv6 packet with protocol / next header
// 50 carrying esp from src to dstAddr (RFC 4303 Section 2; TTL or hop
// limit 64, IPv4 with DF set and ID 0 as RFC 6864 allows for atomic
// datagrams).
func AppendRawESP(dst []byte, src, dstAddr netip.Addr, esp []byte) ([]byte, error) {
	return appendIPHeader(dst, src, dstAddr, ProtoESP, esp, len(esp))
}

// appendIPHeader appends an IP header for a payload of n octets followed
// by the first octets of that payload, first.
func appendIPHeader(dst []byte, src, dstAddr netip.Addr, proto uint8, first []byte, n int) ([]byte, error) {
	switch {
	case src.Is4() && dstAddr.Is4():
		tot := ipv4HeaderSize + n
		if tot > 0xffff {
			return dst, DropTooBig
		}
		ret, h := sliceForAppend(dst, ipv4HeaderSize+len(first))
		h[0] = 0x45
		h[1] = 0
		binary.BigEndian.PutUint16(h[2:4], uint16(tot))
		binary.BigEndian.PutUint16(h[4:6], 0)
		binary.BigEndian.PutUint16(h[6:8], 0x4000) // DF
		h[8] = defaultTTL
		h[9] = proto
		h[10], h[11] = 0, 0
		s4, d4 := src.As4(), dstAddr.As4()
		copy(h[12:16], s4[:])
		copy(h[16:20], d4[:])
		binary.BigEndian.PutUint16(h[10:12], ipv4Checksum(h[:ipv4HeaderSize]))
		copy(h[ipv4HeaderSize:], first)
		return ret, nil
	case src.Is6() && dstAddr.Is6() && !src.Is4In6() && !dstAddr.Is4In6():
		if n > 0xffff {
			return dst, DropTooBig
		}
		ret, h := sliceForAppend(dst, ipv6HeaderSize+len(first))
		h[0], h[1], h[2], h[3] = 0x60, 0, 0, 0
		binary.BigEndian.PutUint16(h[4:6], uint16(n))
		h[6] = proto
		h[7] = defaultTTL
		s6, d6 := src.As16(), dstAddr.As16()
		copy(h[8:24], s6[:])
		copy(h[24:40], d6[:])
		copy(h[ipv6HeaderSize:], first)
		return ret, nil
	}
	return dst, errors.New("esp: outer addresses must both be IPv4 or both IPv6")
}

// AppendUDP appends an IPv4 or IPv6 packet carrying payload in UDP from src
// to dst, for a gateway that writes ESP-in-UDP (RFC 3948 Section 2.1) or
// keepalives directly to its outer interface. Over IPv4 the UDP checksum is
// zero, as RFC 3948 Section 2.1 recommends for ESP in UDP; over IPv6 it is
// computed (RFC 8200 Section 8.1).
func AppendUDP(dst []byte, src, dstAddr netip.AddrPort, payload []byte) ([]byte, error) {
	n := UDPHeaderSize + len(payload)
	if n > 0xffff {
		return dst, DropTooBig
	}
	start := len(dst)
	var udp [UDPHeaderSize]byte
	binary.BigEndian.PutUint16(udp[0:2], src.Port())
	binary.BigEndian.PutUint16(udp[2:4], dstAddr.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(n))
	out, err := appendIPHeader(dst, src.Addr(), dstAddr.Addr(), ProtoUDP, udp[:], n)
	if err != nil {
		return dst, err
	}
	out = append(out, payload...)
	if src.Addr().Is6() {
		setUDP6Checksum(out[start:], src.Addr(), dstAddr.Addr())
	}
	return out, nil
}

// OuterHeadroom is the most octets PrependUDP and PrependRawESP write in
// front of a packet: an IPv6 header and a UDP header.
const OuterHeadroom = ipv6HeaderSize + UDPHeaderSize

// PrependUDP frames buf[off:] (an ESP packet, a keepalive or a marked IKE
// message) as the payload of a UDP datagram from src to dst, writing the
// IP and UDP headers into buf[:off] (which must have room for them, at most
// OuterHeadroom octets), and returns the whole IP packet, a sub-slice of
// buf. Checksums as in AppendUDP.
func PrependUDP(buf []byte, off int, src, dst netip.AddrPort) ([]byte, error) {
	ipLen := ipv4HeaderSize
	if src.Addr().Is6() {
		ipLen = ipv6HeaderSize
	}
	start := off - ipLen - UDPHeaderSize
	if start < 0 || off > len(buf) {
		return nil, errors.New("esp: no headroom for the outer headers")
	}
	payload := buf[off:]
	n := UDPHeaderSize + len(payload)
	if n > 0xffff {
		return nil, DropTooBig
	}
	var udp [UDPHeaderSize]byte
	binary.BigEndian.PutUint16(udp[0:2], src.Port())
	binary.BigEndian.PutUint16(udp[2:4], dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(n))
	if _, err := appendIPHeader(buf[start:start], src.Addr(), dst.Addr(), ProtoUDP, udp[:], n); err != nil {
		return nil, err
	}
	pkt := buf[start:]
	if src.Addr().Is6() {
		setUDP6Checksum(pkt, src.Addr(), dst.Addr())
	}
	return pkt, nil
}

// PrependRawESP frames buf[off:] as the payload of an IP protocol 50
// packet, writing the IP header into buf[:off], and returns the packet.
func PrependRawESP(buf []byte, off int, src, dst netip.Addr) ([]byte, error) {
	ipLen := ipv4HeaderSize
	if src.Is6() {
		ipLen = ipv6HeaderSize
	}
	start := off - ipLen
	if start < 0 || off > len(buf) {
		return nil, errors.New("esp: no headroom for the outer header")
	}
	if _, err := appendIPHeader(buf[start:start], src, dst, ProtoESP, nil, len(buf)-off); err != nil {
		return nil, err
	}
	return buf[start:], nil
}

func setUDP6Checksum(pkt []byte, src, dst netip.Addr) {
	seg := pkt[ipv6HeaderSize:]
	seg[6], seg[7] = 0, 0
	c := ^fold(sumBytes(pseudoSum6(src, dst, ProtoUDP, len(seg)), seg))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[6:8], c)
}

func pseudoSum6(src, dst netip.Addr, proto uint8, n int) uint32 {
	s, d := src.As16(), dst.As16()
	sum := sumBytes(0, s[:])
	sum = sumBytes(sum, d[:])
	return sum + uint32(n>>16) + uint32(n&0xffff) + uint32(proto)
}

func sumBytes(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// ParseUDP returns the addresses and payload of an IPv4 or IPv6 (without
// extension headers) UDP packet. Checksums are not verified.
func ParseUDP(pkt []byte) (src, dst netip.AddrPort, payload []byte, err error) {
	var f flow
	if err := parseFlow(pkt, &f); err != nil {
		return src, dst, nil, err
	}
	hl := ipv6HeaderSize
	if !f.v6 {
		hl = int(pkt[0]&0x0f) * 4
		if f.fragmented {
			return src, dst, nil, DropMalformed
		}
	} else if pkt[6] != ProtoUDP {
		return src, dst, nil, DropNextHeader
	}
	if f.proto != ProtoUDP {
		return src, dst, nil, DropNextHeader
	}
	seg := pkt[hl:f.length]
	if len(seg) < UDPHeaderSize {
		return src, dst, nil, DropMalformed
	}
	ul := int(binary.BigEndian.Uint16(seg[4:6]))
	if ul < UDPHeaderSize || ul > len(seg) {
		return src, dst, nil, DropMalformed
	}
	src = netip.AddrPortFrom(f.src.addr(f.v6), f.sport)
	dst = netip.AddrPortFrom(f.dst.addr(f.v6), f.dport)
	return src, dst, seg[UDPHeaderSize:ul], nil
}

// ParseRawESP returns the addresses and the ESP packet of an IPv4 or IPv6
// packet with protocol 50 (IPv6 without extension headers).
func ParseRawESP(pkt []byte) (src, dst netip.Addr, esp []byte, err error) {
	if len(pkt) < 1 {
		return src, dst, nil, DropMalformed
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderSize {
			return src, dst, nil, DropMalformed
		}
		ihl := int(pkt[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(pkt[2:4]))
		if ihl < ipv4HeaderSize || tot < ihl || tot > len(pkt) {
			return src, dst, nil, DropMalformed
		}
		if pkt[9] != ProtoESP {
			return src, dst, nil, DropNextHeader
		}
		if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 {
			return src, dst, nil, DropMalformed // fragments are reassembled first
		}
		src = netip.AddrFrom4([4]byte(pkt[12:16]))
		dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		return src, dst, pkt[ihl:tot], nil
	case 6:
		if len(pkt) < ipv6HeaderSize {
			return src, dst, nil, DropMalformed
		}
		tot := ipv6HeaderSize + int(binary.BigEndian.Uint16(pkt[4:6]))
		if tot > len(pkt) {
			return src, dst, nil, DropMalformed
		}
		if pkt[6] != ProtoESP {
			return src, dst, nil, DropNextHeader
		}
		src = netip.AddrFrom16([16]byte(pkt[8:24]))
		dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		return src, dst, pkt[ipv6HeaderSize:tot], nil
	}
	return src, dst, nil, DropMalformed
}

// ipv4Checksum returns the Internet checksum of an IPv4 header whose
// checksum field is zero (RFC 791, RFC 1071).
func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
