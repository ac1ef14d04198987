package esp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// fuzzDB holds one inbound SA per suite family with known keys, so that
// seeds made with the matching outbound SAs authenticate.
func fuzzDB(t testing.TB) (*DB, []*OutboundSA) {
	db := &DB{}
	var outs []*OutboundSA
	for i, s := range []Suite{suites[0], suites[2], suites[3]} {
		s.ESN = i == 1
		oc, ic := pairConfig(t, s, 100+uint64(i))
		ic.ReplayWindow = -1 // let the fuzzer replay seeds
		if _, err := db.AddInbound(testNow, ic); err != nil {
			t.Fatal(err)
		}
		o, err := NewOutboundSA(oc)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
	}
	return db, outs
}

// FuzzOpen feeds arbitrary bytes to the decapsulation path: it must never
// panic, every failure must be a DropReason, and a success must yield an
// inner packet within the selectors.
func FuzzOpen(f *testing.F) {
	db, outs := fuzzDB(f)
	for _, o := range outs {
		for _, n := range []int{24, 60, 1400} {
			p, err := o.SealTunnel(nil, ipPacket(a1, a2, ProtoUDP, 1, 2, n))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(p)
			f.Add(p[:len(p)-1])
		}
	}
	for _, c := range loadChildren(f) {
		for _, p := range c.Packets {
			f.Add(unhex(f, p.Hex))
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		orig := bytes.Clone(pkt)
		inner, sa, err := db.Open(make([]byte, 0, 64), pkt)
		if !bytes.Equal(pkt, orig) {
			t.Fatal("Open modified its input")
		}
		if err != nil {
			var r DropReason
			if !errors.As(err, &r) {
				t.Fatalf("error %v is not a DropReason", err)
			}
			return
		}
		fl, err := ParseFlow(inner)
		if err != nil || !sa.Matches(&fl) || fl.Len != len(inner) {
			t.Fatalf("accepted inner packet %x: %v", inner, err)
		}
		// In place gives the same answer.
		got, _, err := db.OpenInPlace(bytes.Clone(pkt))
		if err != nil || !bytes.Equal(got, inner) {
			t.Fatalf("in place: %v", err)
		}
	})
}

// FuzzOpenPlaintext authenticates arbitrary plaintexts (trailer included)
// so that the fuzzer reaches the padding, next-header and inner-packet
// checks behind the ICV.
func FuzzOpenPlaintext(f *testing.F) {
	db, outs := fuzzDB(f)
	inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 40)
	f.Add(uint8(0), append(bytes.Clone(inner), 1, 2, 2, 4))
	f.Add(uint8(1), append(bytes.Clone(inner), 0, 4))
	f.Add(uint8(2), append(bytes.Clone(inner), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 14, 4))
	f.Add(uint8(0), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, which uint8, pt []byte) {
		o := outs[int(which)%len(outs)]
		if len(pt)%o.t.align != 0 || len(pt) < TrailerSize {
			return
		}
		pkt := sealPlain(o, 5, pt)
		out, _, err := db.Open(nil, pkt)
		if err != nil {
			var r DropReason
			if !errors.As(err, &r) {
				t.Fatalf("error %v is not a DropReason", err)
			}
			return
		}
		if !bytes.HasPrefix(pt, out) {
			t.Fatalf("inner %x is not a prefix of the plaintext", out)
		}
	})
}

// FuzzClassifyUDP checks the UDP/4500 demultiplexer on arbitrary payloads.
func FuzzClassifyUDP(f *testing.F) {
	f.Add([]byte{0xff})
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{1, 2, 3, 4, 0, 0, 0, 1, 5})
	f.Fuzz(func(t *testing.T, p []byte) {
		c, rest := ClassifyUDP(p)
		switch c {
		case UDPKeepalive:
			if len(p) != 1 || p[0] != 0xff {
				t.Fatal("keepalive")
			}
		case UDPIKE:
			if len(p) < 4 || !bytes.Equal(p[:4], []byte{0, 0, 0, 0}) || !bytes.Equal(rest, p[4:]) {
				t.Fatal("ike")
			}
		case UDPESP:
			spi, ok := PeekSPI(rest)
			if !ok || spi == 0 || !bytes.Equal(rest, p) {
				t.Fatal("esp")
			}
		case UDPInvalid:
			if len(p) >= 8 || (len(p) >= 4 && bytes.Equal(p[:4], []byte{0, 0, 0, 0})) {
				t.Fatalf("valid payload %x called invalid", p)
			}
		}
	})
}

// FuzzParseFlow checks that the IP, UDP and raw-ESP parsers never read past
// their input.
func FuzzParseFlow(f *testing.F) {
	f.Add(ipPacket(a1, a2, ProtoTCP, 1, 2, 40))
	f.Add(ipPacket(b1, b2, ProtoUDP, 1, 2, 60))
	udp, _ := AppendUDP(nil, netip.MustParseAddrPort("[2001:db8::1]:4500"), netip.MustParseAddrPort("[2001:db8::2]:4500"), []byte{1, 2, 3})
	f.Add(udp)
	raw, _ := AppendRawESP(nil, a1, a2, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(raw)
	f.Fuzz(func(t *testing.T, p []byte) {
		fl, err := ParseFlow(p)
		if err == nil && (fl.Len > len(p) || !fl.Src.IsValid()) {
			t.Fatalf("flow %+v from %d octets", fl, len(p))
		}
		if _, _, pl, err := ParseUDP(p); err == nil && len(pl) > len(p) {
			t.Fatal("UDP payload longer than the packet")
		}
		if _, _, e, err := ParseRawESP(p); err == nil && len(e) > len(p) {
			t.Fatal("ESP longer than the packet")
		}
	})
}

// fuzzTransport returns transport-mode SA pairs for FuzzOpenTransport: an
// ESP-in-UDP SA per suite family (one with ESN, one that knows the
// sender's original addresses, RFC 3948 Section 3.1.2) and one raw-ESP SA.
func fuzzTransport(t testing.TB) ([]*InboundSA, []*OutboundSA) {
	var ins []*InboundSA
	var outs []*OutboundSA
	for i, s := range []Suite{suites[0], suites[2], suites[3], suites[1]} {
		s.ESN = i == 1
		oc, ic := pairConfig(t, s, 200+uint64(i))
		oc.Mode, ic.Mode = ModeTransport, ModeTransport
		ic.ReplayWindow = -1 // let the fuzzer replay seeds
		if i == 2 {
			ic.OrigAddrs = OrigAddrs{Src: a1, Dst: a2}
		}
		if i == 3 {
			oc.Path.Encap, ic.Path.Encap = EncapRaw, EncapRaw
		}
		o, err := NewOutboundSA(oc)
		if err != nil {
			t.Fatal(err)
		}
		in, err := NewInboundSA(ic)
		if err != nil {
			t.Fatal(err)
		}
		ins, outs = append(ins, in), append(outs, o)
	}
	return ins, outs
}

// FuzzOpenTransport feeds arbitrary IP packets to transport-mode
// decapsulation (raw ESP and ESP in UDP, RFC 4303 Section 3.1.1, RFC 3948
// Section 3.1.1): it must never panic nor modify its input, every failure
// must be a DropReason, and an accepted packet must be a whole IP packet
// within the SA's selectors whose TCP or UDP checksum, when ESP came in
// UDP, is valid for the addresses it arrived with.
func FuzzOpenTransport(f *testing.F) {
	ins, outs := fuzzTransport(f)
	for i, o := range outs {
		udp := ins[i].Path().Encap == EncapUDP
		for _, p := range [][]byte{
			l4Packet(a1, a2, ProtoTCP, 60),
			l4Packet(a1, a2, ProtoUDP, 333),
			l4Packet(b1, b2, ProtoUDP, 61),
			l4Packet(b1, b2, ProtoTCP, 1400),
			ipPacket(a1, a2, ProtoICMP, 0, 0, 40),
		} {
			var prot []byte
			var err error
			if udp {
				prot, err = o.SealTransportUDP(nil, p, NATTPort, NATTPort)
			} else {
				prot, err = o.SealTransport(nil, p)
			}
			if err != nil {
				f.Fatal(err)
			}
			if _, err := ins[i].OpenTransport(nil, prot); err != nil {
				f.Fatalf("seed %d does not open: %v", i, err)
			}
			f.Add(uint8(i), prot)
			f.Add(uint8(i), prot[:len(prot)-1])
		}
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0x45})
	f.Add(uint8(2), []byte{0x60, 0, 0, 0, 0, 8, 17, 64})
	f.Fuzz(func(t *testing.T, which uint8, pkt []byte) {
		sa := ins[int(which)%len(ins)]
		orig := bytes.Clone(pkt)
		got, err := sa.OpenTransport(make([]byte, 0, 64), pkt)
		if !bytes.Equal(pkt, orig) {
			t.Fatal("OpenTransport modified its input")
		}
		if err != nil {
			var r DropReason
			if !errors.As(err, &r) {
				t.Fatalf("error %v is not a DropReason", err)
			}
			return
		}
		fl, err := ParseFlow(got)
		if err != nil || !sa.Matches(&fl) || fl.Len != len(got) {
			t.Fatalf("accepted packet %x: %v", got, err)
		}
		v4 := got[0]>>4 == 4
		hl, proto := ipv6HeaderSize, got[6]
		if v4 {
			hl, proto = int(got[0]&0x0f)*4, got[9]
		}
		if sa.Path().Encap != EncapUDP || (proto != ProtoTCP && proto != ProtoUDP) {
			return
		}
		if v4 && (hl != ipv4HeaderSize || got[6]&0x3f != 0 || got[7] != 0) {
			return // options or a fragment: not what l4Valid reads
		}
		if proto == ProtoUDP && v4 && got[hl+udpChecksumOff] == 0 && got[hl+udpChecksumOff+1] == 0 {
			return // no checksum sent (RFC 768)
		}
		if !l4Valid(got) {
			t.Fatalf("inner checksum invalid after decapsulation: %x", got)
		}
	})
}
