package esp

import "encoding/binary"

// Transport mode (RFC 4303 Section 3.1.1): ESP goes between the IP header
// and the upper-layer protocol. pqlab supports IPv4 with any options and
// IPv6 without extension headers in front of ESP, over raw IP or in UDP
// (RFC 3948 Section 3.1.1); after decapsulation of a UDP-encapsulated
// packet the inner TCP or UDP checksum is fixed up for the addresses the
// receiver sees, which NAT may have changed (RFC 3948 Section 3.1.2).

// SealTransport appends to dst the IP packet pkt with its payload protected
// by ESP: the IP header is kept, its protocol becomes 50 and its length and
// checksum are recomputed. The packet must lie within the SA's selectors
// and must not be a fragment (RFC 4303 Section 3.3.4 applies ESP to whole
// datagrams).
func (sa *OutboundSA) SealTransport(dst, pkt []byte) ([]byte, error) {
	return sa.sealTransport(dst, pkt, false, 0, 0)
}

// SealTransportUDP is SealTransport with the ESP packet carried in UDP
// from port sport to port dport (RFC 3948 Section 3.1.1): the IP header is
// kept with protocol 17, followed by a UDP header and the ESP packet. The
// UDP checksum is zero over IPv4 (RFC 3948 Section 2.1) and computed over
// IPv6 (RFC 8200 Section 8.1).
func (sa *OutboundSA) SealTransportUDP(dst, pkt []byte, sport, dport uint16) ([]byte, error) {
	return sa.sealTransport(dst, pkt, true, sport, dport)
}

func (sa *OutboundSA) sealTransport(dst, pkt []byte, udp bool, sport, dport uint16) ([]byte, error) {
	if sa.cfg.Mode != ModeTransport {
		return dst, errNotTransport
	}
	var f flow
	if err := parseFlow(pkt, &f); err != nil {
		return dst, sa.drops.drop(DropMalformed)
	}
	pkt = pkt[:f.length]
	var hl int
	var proto uint8
	if !f.v6 {
		if f.fragmented {
			return dst, sa.drops.drop(DropMalformed)
		}
		hl = int(pkt[0]&0x0f) * 4
		proto = pkt[9]
	} else {
		hl = ipv6HeaderSize
		proto = pkt[6]
		switch proto {
		case ProtoHopByHop, ProtoRouting, ProtoFragment, ProtoDestOpts:
			return dst, sa.drops.drop(DropNextHeader)
		}
	}
	if !matchFlow(&f, sa.local, sa.remote) {
		return dst, sa.drops.drop(DropSelector)
	}
	payload := pkt[hl:]
	limit := 0xffff
	if f.v6 {
		limit += ipv6HeaderSize // the IPv6 length field excludes the fixed header
	}
	encap := 0
	if udp {
		encap = UDPHeaderSize
	}
	if hl+encap+sa.SealedLen(len(payload)) > limit {
		return dst, sa.drops.drop(DropTooBig)
	}
	withHdr := append(dst, pkt[:hl]...)
	withHdr = append(withHdr, make([]byte, encap)...)
	out, err := sa.sealNext(withHdr, proto, payload, 0)
	if err != nil {
		return dst, err
	}
	h := out[len(dst):]
	if !udp {
		setTransportHeader(h, hl, ProtoESP)
	} else {
		setTransportHeader(h, hl, ProtoUDP)
		u := h[hl:]
		binary.BigEndian.PutUint16(u[0:2], sport)
		binary.BigEndian.PutUint16(u[2:4], dport)
		binary.BigEndian.PutUint16(u[4:6], uint16(len(u)))
		if f.v6 {
			setUDP6Checksum(h, f.src.addr(true), f.dst.addr(true))
		}
	}
	return out, nil
}

// setTransportHeader rewrites the protocol, length and (IPv4) checksum of
// the IP header at the front of packet h, whose header is hl octets.
func setTransportHeader(h []byte, hl int, proto uint8) {
	if h[0]>>4 == 4 {
		h[9] = proto
		binary.BigEndian.PutUint16(h[2:4], uint16(len(h)))
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:12], ipv4Checksum(h[:hl]))
		return
	}
	h[6] = proto
	binary.BigEndian.PutUint16(h[4:6], uint16(len(h)-ipv6HeaderSize))
}

// OpenTransport opens a transport-mode packet: pkt is the received IP
// packet whose protocol is 50, or, unless the SA's Path says EncapRaw,
// 17 with the ESP packet in UDP (RFC 3948 Section 3.1.1). The restored IP
// packet (header with the original protocol, the decrypted payload) is
// appended to dst and checked against the SA's selectors (RFC 4301
// Section 5.2, step 4). For a UDP-encapsulated packet carrying TCP or UDP,
// the upper-layer checksum is first made valid for the addresses in the
// received IP header (RFC 3948 Section 3.1.2): updated incrementally from
// the SA's OrigAddrs when set, recomputed otherwise; an IPv4 UDP checksum
// of zero (none) stays zero.
func (sa *InboundSA) OpenTransport(dst, pkt []byte) ([]byte, error) {
	if sa.cfg.Mode != ModeTransport {
		return dst, errNotTransport
	}
	if len(pkt) < 1 {
		return dst, sa.drops.drop(DropMalformed)
	}
	var hl, tot int
	var proto uint8
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderSize {
			return dst, sa.drops.drop(DropMalformed)
		}
		hl = int(pkt[0]&0x0f) * 4
		tot = int(binary.BigEndian.Uint16(pkt[2:4]))
		if hl < ipv4HeaderSize || tot < hl || tot > len(pkt) {
			return dst, sa.drops.drop(DropMalformed)
		}
		proto = pkt[9]
	case 6:
		if len(pkt) < ipv6HeaderSize {
			return dst, sa.drops.drop(DropMalformed)
		}
		hl = ipv6HeaderSize
		tot = hl + int(binary.BigEndian.Uint16(pkt[4:6]))
		if tot > len(pkt) {
			return dst, sa.drops.drop(DropMalformed)
		}
		proto = pkt[6]
	default:
		return dst, sa.drops.drop(DropMalformed)
	}
	body := pkt[hl:tot]
	udp := false
	switch {
	case proto == ProtoESP:
	case proto == ProtoUDP && sa.cfg.Path.Encap == EncapUDP:
		if len(body) < UDPHeaderSize {
			return dst, sa.drops.drop(DropMalformed)
		}
		ul := int(binary.BigEndian.Uint16(body[4:6]))
		if ul < UDPHeaderSize || ul > len(body) {
			return dst, sa.drops.drop(DropMalformed)
		}
		if c, _ := ClassifyUDP(body[UDPHeaderSize:ul]); c != UDPESP {
			return dst, sa.drops.drop(DropMalformed)
		}
		body, udp = body[UDPHeaderSize:ul], true
	default:
		return dst, sa.drops.drop(DropNextHeader)
	}
	withHdr := append(dst, pkt[:hl]...)
	out, nh, seq, err := sa.open(withHdr, body, false)
	if err != nil {
		return dst, err
	}
	h := out[len(dst):]
	setTransportHeader(h, hl, nh)
	if udp && !fixTransportChecksum(h, hl, nh, sa.cfg.OrigAddrs) {
		return dst, sa.drops.drop(DropMalformed)
	}
	var f flow
	if err := parseFlow(h, &f); err != nil {
		return dst, sa.drops.drop(DropMalformed)
	}
	if !matchFlow(&f, sa.remote, sa.local) {
		return dst, sa.drops.drop(DropSelector)
	}
	if err := sa.commit(seq, len(h)-hl, true); err != nil {
		return dst, err
	}
	return out, nil
}

// Offsets of the checksum field in the TCP and UDP headers.
const (
	tcpChecksumOff = 16
	udpChecksumOff = 6
)

// fixTransportChecksum makes the TCP or UDP checksum of the restored
// transport-mode packet h (IP header of hl octets, upper-layer protocol
// proto) valid for the addresses in h, which NAT may have rewritten after
// the sender computed it (RFC 3948 Section 3.1.2). With orig valid and of
// h's family, the checksum is updated incrementally (RFC 1624 Equation 3):
// the original addresses are taken out and the received ones put in.
// Otherwise it is recomputed over the whole segment. An IPv4 UDP checksum
// of zero means none was sent and is left alone. Other protocols are not
// touched. It returns false if the segment is too short for its header.
func fixTransportChecksum(h []byte, hl int, proto uint8, orig OrigAddrs) bool {
	var off int
	switch proto {
	case ProtoTCP:
		off = tcpChecksumOff
	case ProtoUDP:
		off = udpChecksumOff
	default:
		return true
	}
	seg := h[hl:]
	if len(seg) < off+2 {
		return false
	}
	v4 := h[0]>>4 == 4
	var src, dst []byte
	if v4 {
		src, dst = h[12:16], h[16:20]
	} else {
		src, dst = h[8:24], h[24:40]
	}
	old := binary.BigEndian.Uint16(seg[off:])
	if proto == ProtoUDP && v4 && old == 0 {
		return true
	}
	var c uint16
	if orig.valid() && orig.Src.Is4() == v4 {
		var os, od []byte
		if v4 {
			s4, d4 := orig.Src.As4(), orig.Dst.As4()
			os, od = s4[:], d4[:]
		} else {
			s6, d6 := orig.Src.As16(), orig.Dst.As16()
			os, od = s6[:], d6[:]
		}
		// ~HC' = ~HC + sum(~m) + sum(m'), all in one's complement.
		sum := uint32(^old)
		sum = sumBytes(sum, src)
		sum = sumBytes(sum, dst)
		sum += sumComplement(os) + sumComplement(od)
		c = ^fold(sum)
	} else {
		seg[off], seg[off+1] = 0, 0
		sum := uint32(proto) + uint32(len(seg)>>16) + uint32(len(seg)&0xffff)
		sum = sumBytes(sum, src)
		sum = sumBytes(sum, dst)
		c = ^fold(sumBytes(sum, seg))
	}
	if proto == ProtoUDP && c == 0 {
		c = 0xffff // zero means "no checksum" in UDP (RFC 768)
	}
	binary.BigEndian.PutUint16(seg[off:], c)
	return true
}

// sumComplement returns the sum of the one's complements of the 16-bit
// words of b (an even number of octets).
func sumComplement(b []byte) uint32 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(^binary.BigEndian.Uint16(b[i:]))
	}
	return sum
}
