package esp

import "encoding/binary"

// Transport mode (RFC 4303 Section 3.1.1): ESP goes between the IP header
// and the upper-layer protocol. pqlab supports IPv4 with any options and
// IPv6 without extension headers in front of ESP, over raw IP. ESP in UDP
// in transport mode (RFC 3948 Section 3.1.2, with its checksum fix-ups
// after NAT) is not implemented.

// SealTransport appends to dst the IP packet pkt with its payload protected
// by ESP: the IP header is kept, its protocol becomes 50 and its length and
// checksum are recomputed. The packet must lie within the SA's selectors
// and must not be a fragment (RFC 4303 Section 3.3.4 applies ESP to whole
// datagrams).
func (sa *OutboundSA) SealTransport(dst, pkt []byte) ([]byte, error) {
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
	if hl+sa.SealedLen(len(payload)) > limit {
		return dst, sa.drops.drop(DropTooBig)
	}
	seq, err := sa.nextSeq()
	if err != nil {
		return dst, sa.drops.drop(err.(DropReason))
	}
	withHdr := append(dst, pkt[:hl]...)
	out, err := sa.seal(withHdr, seq, nil, proto, payload, 0, -1)
	if err != nil {
		sa.wasted.Add(1)
		return dst, err
	}
	setTransportHeader(out[len(dst):], hl, ProtoESP)
	sa.account(seq, len(payload))
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
// packet whose protocol is 50. The restored IP packet (header with the
// original protocol, the decrypted payload) is appended to dst and checked
// against the SA's selectors (RFC 4301 Section 5.2, step 4).
func (sa *InboundSA) OpenTransport(dst, pkt []byte) ([]byte, error) {
	if sa.cfg.Mode != ModeTransport {
		return dst, errNotTransport
	}
	if len(pkt) < 1 {
		return dst, sa.drops.drop(DropMalformed)
	}
	var hl, tot int
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
		if pkt[9] != ProtoESP {
			return dst, sa.drops.drop(DropNextHeader)
		}
	case 6:
		if len(pkt) < ipv6HeaderSize {
			return dst, sa.drops.drop(DropMalformed)
		}
		hl = ipv6HeaderSize
		tot = hl + int(binary.BigEndian.Uint16(pkt[4:6]))
		if tot > len(pkt) {
			return dst, sa.drops.drop(DropMalformed)
		}
		if pkt[6] != ProtoESP {
			return dst, sa.drops.drop(DropNextHeader)
		}
	default:
		return dst, sa.drops.drop(DropMalformed)
	}
	withHdr := append(dst, pkt[:hl]...)
	out, nh, seq, err := sa.open(withHdr, pkt[hl:tot], false)
	if err != nil {
		return dst, err
	}
	h := out[len(dst):]
	setTransportHeader(h, hl, nh)
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
