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
	return appendIPHeader(dst, src, dstAddr, ProtoESP, esp)
}

func appendIPHeader(dst []byte, src, dstAddr netip.Addr, proto uint8, payload []byte) ([]byte, error) {
	switch {
	case src.Is4() && dstAddr.Is4():
		tot := ipv4HeaderSize + len(payload)
		if tot > 0xffff {
			return dst, DropTooBig
		}
		ret, h := sliceForAppend(dst, tot)
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
		copy(h[ipv4HeaderSize:], payload)
		return ret, nil
	case src.Is6() && dstAddr.Is6() && !src.Is4In6() && !dstAddr.Is4In6():
		if len(payload) > 0xffff {
			return dst, DropTooBig
		}
		ret, h := sliceForAppend(dst, ipv6HeaderSize+len(payload))
		h[0], h[1], h[2], h[3] = 0x60, 0, 0, 0
		binary.BigEndian.PutUint16(h[4:6], uint16(len(payload)))
		h[6] = proto
		h[7] = defaultTTL
		s6, d6 := src.As16(), dstAddr.As16()
		copy(h[8:24], s6[:])
		copy(h[24:40], d6[:])
		copy(h[ipv6HeaderSize:], payload)
		return ret, nil
	}
	return dst, errors.New("esp: outer addresses must both be IPv4 or both IPv6")
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
