package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// l4Packet builds an IP packet carrying a TCP or UDP segment with a valid
// checksum for its addresses (computed here independently of the code
// under test, word by word over the pseudo-header and segment).
func l4Packet(src, dst netip.Addr, proto uint8, n int) []byte {
	p := ipPacket(src, dst, proto, 1234, 5678, n)
	hl := ipv4HeaderSize
	if src.Is6() {
		hl = ipv6HeaderSize
	}
	seg := p[hl:]
	if proto == ProtoUDP {
		binary.BigEndian.PutUint16(seg[4:6], uint16(len(seg)))
	} else {
		seg[12] = 5 << 4 // data offset: 20 octets
	}
	off := map[uint8]int{ProtoTCP: 16, ProtoUDP: 6}[proto]
	seg[off], seg[off+1] = 0, 0
	c := ^l4Sum(src, dst, proto, seg)
	if c == 0 && proto == ProtoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[off:], c)
	return p
}

// l4Sum is the folded one's complement sum of the pseudo-header for
// src, dst, proto and the segment seg.
func l4Sum(src, dst netip.Addr, proto uint8, seg []byte) uint16 {
	var b []byte
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	b = append(b, 0, proto, byte(len(seg)>>8), byte(len(seg)))
	b = append(b, seg...)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var s uint64
	for i := 0; i < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// l4Valid reports whether the TCP or UDP checksum of IP packet p is valid
// for p's addresses.
func l4Valid(p []byte) bool {
	var src, dst netip.Addr
	var proto uint8
	var seg []byte
	if p[0]>>4 == 4 {
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		proto, seg = p[9], p[ipv4HeaderSize:]
	} else {
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		proto, seg = p[6], p[ipv6HeaderSize:]
	}
	return l4Sum(src, dst, proto, seg) == 0xffff
}

// natRewrite rewrites the source and destination of the outer IP header
// and the UDP source port of an ESP-in-UDP packet, as a NAT on the path
// would (fixing the IPv4 header checksum, leaving the zero UDP checksum).
func natRewrite(t *testing.T, p []byte, src, dst netip.Addr, sport uint16) []byte {
	t.Helper()
	p = bytes.Clone(p)
	hl := ipv4HeaderSize
	if p[0]>>4 == 4 {
		copy(p[12:16], src.AsSlice())
		copy(p[16:20], dst.AsSlice())
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:12], ipv4Checksum(p[:20]))
	} else {
		hl = ipv6HeaderSize
		copy(p[8:24], src.AsSlice())
		copy(p[24:40], dst.AsSlice())
	}
	binary.BigEndian.PutUint16(p[hl:], sport)
	if p[0]>>4 == 6 {
		setUDP6Checksum(p, src, dst) // a NAT66 keeps the UDP checksum valid
	}
	return p
}

// TestTransportUDPNAT: transport mode in UDP through a NAT that rewrites
// both addresses. The inner TCP/UDP checksum, valid for the sender's
// addresses, must come out valid for the receiver's (RFC 3948 Section
// 3.1.2), both from the original addresses (incremental update) and
// without them (recomputation).
func TestTransportUDPNAT(t *testing.T) {
	type fam struct{ priv, pub, peerPub, peerPriv netip.Addr }
	fams := []fam{
		{a1, netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("198.51.100.7"), a2},
		{b1, netip.MustParseAddr("2001:db8:1::9"), netip.MustParseAddr("2001:db8:2::7"), b2},
	}
	all := []Selector{SelectorFromPrefix(mustPrefix("0.0.0.0/0")), SelectorFromPrefix(mustPrefix("::/0"))}
	for _, s := range []Suite{suites[1], suites[3]} {
		for _, fa := range fams {
			for _, useOA := range []bool{true, false} {
				for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
					oc, ic := pairConfig(t, s, 7)
					oc.Mode, ic.Mode = ModeTransport, ModeTransport
					// After NAT the receiver sees the sender's public
					// address; transport-mode selectors follow (RFC 7296
					// Section 2.23.1).
					ic.Local, ic.Remote = all, all
					oc.Local, oc.Remote = all, all
					if useOA {
						ic.OrigAddrs = OrigAddrs{Src: fa.priv, Dst: fa.peerPub}
					}
					out, err := NewOutboundSA(oc)
					if err != nil {
						t.Fatal(err)
					}
					in, err := NewInboundSA(ic)
					if err != nil {
						t.Fatal(err)
					}
					for _, n := range []int{60, 61, 333, 1400} {
						// The sender addresses the peer's public address.
						pkt := l4Packet(fa.priv, fa.peerPub, proto, n)
						if !l4Valid(pkt) {
							t.Fatal("test packet has a bad checksum")
						}
						prot, err := out.SealTransportUDP(nil, pkt, NATTPort, NATTPort)
						if err != nil {
							t.Fatal(err)
						}
						sp, dp, espPkt, err := ParseUDP(prot)
						if err != nil || sp.Addr() != fa.priv || dp.Addr() != fa.peerPub || sp.Port() != NATTPort || dp.Port() != NATTPort {
							t.Fatalf("sealed packet: %v %v %v", sp, dp, err)
						}
						if c, _ := ClassifyUDP(espPkt); c != UDPESP {
							t.Fatalf("sealed payload classified %v", c)
						}
						if fa.priv.Is4() && ipv4Checksum(prot[:20]) != 0 {
							t.Fatal("bad IPv4 header checksum")
						}
						if fa.priv.Is6() && !l4Valid(prot) {
							t.Fatal("bad outer UDP checksum over IPv6")
						}
						natted := natRewrite(t, prot, fa.pub, fa.peerPriv, 40001)
						got, err := in.OpenTransport(nil, natted)
						if err != nil {
							t.Fatalf("%v %v oa=%v proto=%d n=%d: %v", s, fa.priv, useOA, proto, n, err)
						}
						// The packet as the receiver sees it: NATed
						// addresses, the original upper-layer segment
						// apart from its checksum.
						want := bytes.Clone(pkt)
						hl := ipv4HeaderSize
						if fa.priv.Is4() {
							copy(want[12:16], fa.pub.AsSlice())
							copy(want[16:20], fa.peerPriv.AsSlice())
							want[10], want[11] = 0, 0
							binary.BigEndian.PutUint16(want[10:12], ipv4Checksum(want[:20]))
						} else {
							hl = ipv6HeaderSize
							copy(want[8:24], fa.pub.AsSlice())
							copy(want[24:40], fa.peerPriv.AsSlice())
						}
						if l4Valid(want) {
							t.Fatal("NAT left the inner checksum valid: the test proves nothing")
						}
						off := map[uint8]int{ProtoTCP: 16, ProtoUDP: 6}[proto]
						if len(got) != len(want) || !bytes.Equal(got[:hl+off], want[:hl+off]) || !bytes.Equal(got[hl+off+2:], want[hl+off+2:]) {
							t.Fatalf("restored packet\n got %x\nwant %x", got, want)
						}
						if !l4Valid(got) {
							t.Fatalf("%v %v oa=%v proto=%d n=%d: inner checksum invalid after decapsulation", s, fa.priv, useOA, proto, n)
						}
					}
				}
			}
		}
	}
}

// TestTransportUDPZeroChecksum: an IPv4 UDP datagram sent without a
// checksum keeps none; a raw-ESP SA refuses UDP framing; short or
// non-ESP UDP payloads are malformed.
func TestTransportUDPZeroChecksum(t *testing.T) {
	oc, ic := pairConfig(t, suites[1], 8)
	oc.Mode, ic.Mode = ModeTransport, ModeTransport
	out, _ := NewOutboundSA(oc)
	in, _ := NewInboundSA(ic)
	pkt := ipPacket(a1, a2, ProtoUDP, 9, 10, 100)
	binary.BigEndian.PutUint16(pkt[24:26], 80)
	pkt[26], pkt[27] = 0, 0
	prot, err := out.SealTransportUDP(nil, pkt, NATTPort, NATTPort)
	if err != nil {
		t.Fatal(err)
	}
	got, err := in.OpenTransport(nil, prot)
	if err != nil || !bytes.Equal(got, pkt) {
		t.Fatalf("%v\n got %x\nwant %x", err, got, pkt)
	}
	// Truncated UDP framing and an IKE message are malformed.
	short := bytes.Clone(prot[:24])
	binary.BigEndian.PutUint16(short[2:4], 24)
	if _, err := in.OpenTransport(nil, short); !errors.Is(err, DropMalformed) {
		t.Fatalf("short UDP: %v", err)
	}
	ike := bytes.Clone(prot)
	copy(ike[28:32], []byte{0, 0, 0, 0})
	if _, err := in.OpenTransport(nil, ike); !errors.Is(err, DropMalformed) {
		t.Fatalf("non-ESP marker: %v", err)
	}
	// An SA set up for raw ESP does not take ESP in UDP.
	ic2 := ic
	ic2.Path.Encap = EncapRaw
	raw, _ := NewInboundSA(ic2)
	if _, err := raw.OpenTransport(nil, prot); !errors.Is(err, DropNextHeader) {
		t.Fatalf("UDP framing on a raw SA: %v", err)
	}
}
