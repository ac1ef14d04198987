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
