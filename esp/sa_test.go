package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

func TestRoundTripAllSuites(t *testing.T) {
	for _, s0 := range suites {
		for _, esn := range []bool{false, true} {
			s := s0
			s.ESN = esn
			t.Run(s.String(), func(t *testing.T) {
				out, in := newPair(t, s, 1)
				for _, n := range []int{44, 45, 46, 47, 100, 1400, 8900} {
					for _, v6 := range []bool{false, true} {
						src, dst := a1, a2
						if v6 {
							src, dst = b1, b2
						}
						inner := ipPacket(src, dst, ProtoUDP, 1000, 2000, n)
						dst0 := []byte("prefix")
						pkt, err := out.SealTunnel(dst0, inner)
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(pkt[:6], []byte("prefix")) {
							t.Fatal("Seal did not append")
						}
						pkt = pkt[6:]
						if len(pkt) != out.SealedLen(n) {
							t.Fatalf("len %d, SealedLen %d", len(pkt), out.SealedLen(n))
						}
						if ct := len(pkt) - out.HeaderLen() - out.t.icvLen; ct%out.t.align != 0 {
							t.Fatalf("ciphertext %d not aligned to %d", ct, out.t.align)
						}
						if len(pkt) > n+s.MaxOverhead() || len(pkt) < n+s.Overhead() {
							t.Fatalf("overhead %d outside [%d,%d]", len(pkt)-n, s.Overhead(), s.MaxOverhead())
						}
						got, err := in.OpenTunnel([]byte("x"), pkt)
						if err != nil {
							t.Fatalf("n=%d v6=%v: %v", n, v6, err)
						}
						if !bytes.Equal(got[1:], inner) {
							t.Fatalf("n=%d: inner packet differs", n)
						}
					}
				}
				// In-place open and the low-level Seal/Open pair.
				inner := ipPacket(a1, a2, ProtoTCP, 1, 2, 300)
				pkt, _ := out.SealTunnel(nil, inner)
				got, err := in.OpenTunnelInPlace(pkt)
				if err != nil || !bytes.Equal(got, inner) {
					t.Fatalf("in place: %v", err)
				}
				pkt, err = out.Seal(nil, 253, []byte("experimental payload"))
				if err != nil {
					t.Fatal(err)
				}
				pl, nh, err := in.Open(nil, pkt)
				if err != nil || nh != 253 || string(pl) != "experimental payload" {
					t.Fatalf("Open = %q, %d, %v", pl, nh, err)
				}
				oc, ic := out.Counters(), in.Counters()
				if oc.PacketsOut != 16 || ic.PacketsIn != 16 || oc.BytesOut != ic.BytesIn || oc.TotalDrops()+ic.TotalDrops() != 0 {
					t.Fatalf("counters out %+v in %+v", oc, ic)
				}
			})
		}
	}
}

func TestSealZeroCopyPayload(t *testing.T) {
	out, in := newPair(t, suites[0], 2)
	inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 200)
	buf := make([]byte, 0, 512)
	copy(buf[out.HeaderLen():cap(buf)], inner) // payload placed where Seal wants it
	pkt, err := out.Seal(buf, ProtoIPIP, buf[out.HeaderLen():out.HeaderLen()+len(inner)])
	if err != nil {
		t.Fatal(err)
	}
	got, err := in.OpenTunnel(nil, pkt)
	if err != nil || !bytes.Equal(got, inner) {
		t.Fatalf("%v", err)
	}
}

// TestSealPayloadOverlappingHeader places the payload where a header with
// a shorter IV would end, so that the header and IV overlap its start.
func TestSealPayloadOverlappingHeader(t *testing.T) {
	for _, s := range suites {
		out, in := newPair(t, s, 2)
		inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 200)
		for _, shift := range []int{-8, -1, 1, 8} {
			buf := make([]byte, 512)
			at := 24 + shift
			copy(buf[at:], inner)
			pkt, err := out.SealTunnel(buf[at-out.HeaderLen()-shift:][:0], buf[at:at+len(inner)])
			if err != nil {
				t.Fatal(err)
			}
			got, err := in.OpenTunnel(nil, pkt)
			if err != nil || !bytes.Equal(got, inner) {
				t.Fatalf("%v shift %d: %v", s, shift, err)
			}
		}
	}
}

func TestTFCPadding(t *testing.T) {
	for _, s := range []Suite{suites[0], suites[3]} {
		oc, ic := pairConfig(t, s, 3)
		oc.TFCPadTo = 1000
		out, _ := NewOutboundSA(oc)
		in, _ := NewInboundSA(ic)
		for _, n := range []int{60, 999, 1000, 1200} {
			inner := ipPacket(a1, a2, ProtoUDP, 1, 2, n)
			pkt, err := out.SealTunnel(nil, inner)
			if err != nil {
				t.Fatal(err)
			}
			want := out.sealedLen(max(n, 1000), 0)
			if len(pkt) != want {
				t.Fatalf("%v n=%d: sealed %d octets, want %d", s, n, len(pkt), want)
			}
			got, err := in.OpenTunnel(nil, pkt)
			if err != nil || !bytes.Equal(got, inner) {
				t.Fatalf("%v n=%d: %v", s, n, err)
			}
		}
	}
}

func TestTransportMode(t *testing.T) {
	for _, s := range []Suite{suites[1], suites[2], suites[3]} {
		oc, ic := pairConfig(t, s, 4)
		oc.Mode, ic.Mode = ModeTransport, ModeTransport
		out, _ := NewOutboundSA(oc)
		in, _ := NewInboundSA(ic)
		for _, pair := range [][2]netip.Addr{{a1, a2}, {b1, b2}} {
			pkt := ipPacket(pair[0], pair[1], ProtoTCP, 80, 443, 333)
			prot, err := out.SealTransport(nil, pkt)
			if err != nil {
				t.Fatal(err)
			}
			src, dst, espPkt, err := ParseRawESP(prot)
			if err != nil || src != pair[0] || dst != pair[1] {
				t.Fatalf("protected packet: %v %v %v", src, dst, err)
			}
			if pair[0].Is4() && ipv4Checksum(prot[:20]) != 0 {
				t.Fatal("bad IPv4 checksum after SealTransport")
			}
			if spi, _ := PeekSPI(espPkt); spi != oc.SPI {
				t.Fatalf("SPI %x", spi)
			}
			got, err := in.OpenTransport(nil, prot)
			if err != nil || !bytes.Equal(got, pkt) {
				t.Fatalf("%v: OpenTransport: %v\n got %x\nwant %x", s, err, got, pkt)
			}
		}
		// Tunnel calls on a transport SA and vice versa are refused.
		if _, err := out.SealTunnel(nil, ipPacket(a1, a2, ProtoUDP, 1, 2, 50)); err == nil {
			// SealTunnel is mode-agnostic at the ESP layer but the peer
			// must reject it: a transport SA never yields inner packets.
			tp, _ := out.SealTunnel(nil, ipPacket(a1, a2, ProtoUDP, 1, 2, 50))
			if _, err := in.OpenTunnel(nil, tp); !errors.Is(err, DropNextHeader) {
				t.Fatalf("tunnel packet on transport SA: %v", err)
			}
		}
		tun, _ := newPair(t, s, 5)
		if _, err := tun.SealTransport(nil, ipPacket(a1, a2, ProtoUDP, 1, 2, 50)); err == nil {
			t.Fatal("SealTransport on a tunnel SA succeeded")
		}
	}
}

func TestRawFraming(t *testing.T) {
	esp := []byte{1, 2, 3, 4, 0, 0, 0, 1, 9, 9}
	for _, p := range [][2]netip.Addr{
		{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")},
		{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")},
	} {
		pkt, err := AppendRawESP(nil, p[0], p[1], esp)
		if err != nil {
			t.Fatal(err)
		}
		s, d, e, err := ParseRawESP(pkt)
		if err != nil || s != p[0] || d != p[1] || !bytes.Equal(e, esp) {
			t.Fatalf("%v %v %x %v", s, d, e, err)
		}
		for i := range len(pkt) {
			if _, _, _, err := ParseRawESP(pkt[:i]); err == nil {
				t.Fatalf("truncated raw packet of %d octets parsed", i)
			}
		}
	}
	if _, err := AppendRawESP(nil, a1, b2, esp); err == nil {
		t.Fatal("mixed families accepted")
	}
}

func TestUDPFraming(t *testing.T) {
	payload := []byte("esp-in-udp payload, odd length")
	for _, p := range [][2]netip.AddrPort{
		{netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500")},
		{netip.MustParseAddrPort("[2001:db8::1]:4500"), netip.MustParseAddrPort("[2001:db8::2]:4500")},
	} {
		pkt, err := AppendUDP([]byte{9}, p[0], p[1], payload)
		if err != nil {
			t.Fatal(err)
		}
		pkt = pkt[1:]
		s, d, pl, err := ParseUDP(pkt)
		if err != nil || s != p[0] || d != p[1] || !bytes.Equal(pl, payload) {
			t.Fatalf("%v %v %q %v", s, d, pl, err)
		}
		if p[0].Addr().Is4() {
			if ipv4Checksum(pkt[:20]) != 0 || binary.BigEndian.Uint16(pkt[26:28]) != 0 {
				t.Fatal("IPv4 header checksum wrong or UDP checksum not zero")
			}
		} else if fold(sumBytes(pseudoSum6(p[0].Addr(), p[1].Addr(), ProtoUDP, len(pkt)-40), pkt[40:])) != 0xffff {
			t.Fatal("IPv6 UDP checksum wrong")
		}
		// Prepending in place gives the same packet.
		buf := make([]byte, OuterHeadroom+len(payload))
		copy(buf[OuterHeadroom:], payload)
		pre, err := PrependUDP(buf, OuterHeadroom, p[0], p[1])
		if err != nil || !bytes.Equal(pre, pkt) {
			t.Fatalf("PrependUDP: %v\n got %x\nwant %x", err, pre, pkt)
		}
		raw, _ := AppendRawESP(nil, p[0].Addr(), p[1].Addr(), payload)
		copy(buf[OuterHeadroom:], payload)
		if pre, err := PrependRawESP(buf, OuterHeadroom, p[0].Addr(), p[1].Addr()); err != nil || !bytes.Equal(pre, raw) {
			t.Fatalf("PrependRawESP: %v", err)
		}
		if _, err := PrependUDP(buf, 10, p[0], p[1]); err == nil {
			t.Fatal("PrependUDP without headroom")
		}
		for i := range len(pkt) {
			if _, _, _, err := ParseUDP(pkt[:i]); err == nil {
				t.Fatalf("truncated UDP packet of %d octets parsed", i)
			}
		}
	}
}

func TestSelectorsEnforced(t *testing.T) {
	oc, ic := pairConfig(t, suites[0], 6)
	// Narrow: only UDP to port 53 on the remote side, IPv4 only.
	oc.Local = []Selector{SelectorFromPrefix(mustPrefix("10.1.0.0/16"))}
	oc.Remote = []Selector{{Proto: ProtoUDP, StartPort: 53, EndPort: 53,
		Start: netip.MustParseAddr("10.2.0.0"), End: netip.MustParseAddr("10.2.255.255")}}
	ic.Local, ic.Remote = oc.Remote, oc.Local
	out, _ := NewOutboundSA(oc)
	in, _ := NewInboundSA(ic)
	// A wide-open sender to forge packets the narrow SA must refuse.
	wideCfg := oc
	wideCfg.Local, wideCfg.Remote = []Selector{SelectorFromPrefix(mustPrefix("0.0.0.0/0")), SelectorFromPrefix(mustPrefix("::/0"))},
		[]Selector{SelectorFromPrefix(mustPrefix("0.0.0.0/0")), SelectorFromPrefix(mustPrefix("::/0"))}
	wide, _ := NewOutboundSA(wideCfg)

	cases := []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"dns", ipPacket(a1, a2, ProtoUDP, 4000, 53, 80), true},
		{"wrong port", ipPacket(a1, a2, ProtoUDP, 4000, 54, 80), false},
		{"wrong proto", ipPacket(a1, a2, ProtoTCP, 4000, 53, 80), false},
		{"wrong dst", ipPacket(a1, netip.MustParseAddr("10.3.0.1"), ProtoUDP, 4000, 53, 80), false},
		{"wrong src", ipPacket(netip.MustParseAddr("10.9.0.1"), a2, ProtoUDP, 4000, 53, 80), false},
		{"ipv6", ipPacket(b1, b2, ProtoUDP, 4000, 53, 80), false},
	}
	for _, c := range cases {
		_, err := out.SealTunnel(nil, c.pkt)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, DropSelector)) {
			t.Errorf("outbound %s: %v", c.name, err)
		}
		pkt, err := wide.SealTunnel(nil, c.pkt)
		if err != nil {
			t.Fatal(err)
		}
		_, err = in.OpenTunnel(nil, pkt)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, DropSelector)) {
			t.Errorf("inbound %s: %v", c.name, err)
		}
	}
	if got := out.Counters().Dropped(DropSelector); got != 5 {
		t.Errorf("outbound selector drops %d, want 5", got)
	}
	if got := in.Counters().Dropped(DropSelector); got != 5 {
		t.Errorf("inbound selector drops %d, want 5", got)
	}
}

func TestSelectorDetails(t *testing.T) {
	icmp := Selector{Proto: ProtoICMP, StartPort: 8 << 8, EndPort: 8<<8 | 0xff,
		Start: netip.MustParseAddr("0.0.0.0"), End: netip.MustParseAddr("255.255.255.255")}
	echo := ipPacket(a1, a2, ProtoICMP, 8<<8, 0, 64)
	reply := ipPacket(a1, a2, ProtoICMP, 0, 0, 64)
	for _, c := range []struct {
		pkt  []byte
		want bool
	}{{echo, true}, {reply, false}} {
		f, err := ParseFlow(c.pkt)
		if err != nil {
			t.Fatal(err)
		}
		if got := selMatches(icmp, &f); got != c.want {
			t.Errorf("ICMP type %d: match %v", c.pkt[20], got)
		}
	}
	// Non-initial fragment: no ports; only ANY or OPAQUE port ranges match.
	frag := ipPacket(a1, a2, ProtoUDP, 1, 53, 64)
	binary.BigEndian.PutUint16(frag[6:8], 100)
	f, _ := ParseFlow(frag)
	if f.HasPorts {
		t.Fatal("fragment has ports")
	}
	opaque := Selector{Proto: ProtoUDP, StartPort: 0xffff, EndPort: 0, Start: a2, End: a2}
	port53 := Selector{Proto: ProtoUDP, StartPort: 53, EndPort: 53, Start: a2, End: a2}
	if !selMatches(opaque, &f) || selMatches(port53, &f) {
		t.Fatal("OPAQUE handling wrong")
	}
	// IPv6 extension headers are walked to the upper layer.
	p := ipPacket(b1, b2, ProtoHopByHop, 0, 0, 80)
	hbh := p[40:]
	hbh[0], hbh[1] = ProtoTCP, 0 // 8-octet hop-by-hop header, then TCP
	binary.BigEndian.PutUint16(hbh[8:], 1234)
	binary.BigEndian.PutUint16(hbh[10:], 22)
	f, err := ParseFlow(p)
	if err != nil || f.Proto != ProtoTCP || f.SrcPort != 1234 || f.DstPort != 22 {
		t.Fatalf("IPv6 ext header walk: %+v %v", f, err)
	}
	sel := SelectorFromPrefix(mustPrefix("10.2.128.0/17"))
	if sel.Start.String() != "10.2.128.0" || sel.End.String() != "10.2.255.255" {
		t.Fatalf("SelectorFromPrefix: %v", sel)
	}
}

func TestBadPacketsDroppedAndCounted(t *testing.T) {
	for _, s := range []Suite{suites[0], suites[2], suites[3]} {
		t.Run(s.String(), func(t *testing.T) {
			db := &DB{}
			oc, ic := pairConfig(t, s, 7)
			out, err := NewOutboundSA(oc)
			if err != nil {
				t.Fatal(err)
			}
			in, err := db.AddInbound(testNow, ic)
			if err != nil {
				t.Fatal(err)
			}
			inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 120)
			good, err := out.SealTunnel(nil, inner)
			if err != nil {
				t.Fatal(err)
			}
			want := map[DropReason]uint64{} // expected drops on the SA
			expect := func(name string, pkt []byte, r DropReason, onSA bool) {
				t.Helper()
				_, _, err := db.Open(nil, pkt)
				if r == 0 {
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					return
				}
				if !errors.Is(err, r) {
					t.Fatalf("%s: got %v, want %v", name, err, r)
				}
				if onSA {
					want[r]++
				}
			}
			// Every truncation of a valid packet fails cleanly.
			for i := 0; i < len(good); i++ {
				_, _, err := db.Open(nil, good[:i])
				if err == nil {
					t.Fatalf("truncated to %d accepted", i)
				}
				var r DropReason
				if !errors.As(err, &r) {
					t.Fatalf("truncated to %d: %v is not a DropReason", i, err)
				}
				if i >= HeaderSize {
					want[r]++
				}
			}
			// Tampering with any single octet fails authentication (or
			// the SPI lookup when the SPI octets change).
			for i := 0; i < len(good); i++ {
				bad := bytes.Clone(good)
				bad[i] ^= 0x40
				_, _, err := db.Open(nil, bad)
				switch {
				case i < SPISize:
					if !errors.Is(err, DropBadSPI) {
						t.Fatalf("SPI octet %d: %v", i, err)
					}
				case i < HeaderSize:
					// Changed sequence number: authentication fails.
					if !errors.Is(err, DropAuth) {
						t.Fatalf("seq octet %d: %v", i, err)
					}
					want[DropAuth]++
				default:
					if !errors.Is(err, DropAuth) {
						t.Fatalf("octet %d: %v", i, err)
					}
					want[DropAuth]++
				}
			}
			expect("good", good, 0, false)
			expect("replayed", good, DropReplay, true)

			// Authenticated packets with broken trailers.
			blk := out.t.align
			mk := func(seq uint64, body []byte, pad []byte, nh byte) []byte {
				pt := append(bytes.Clone(body), pad...)
				pt = append(pt, byte(len(pad)), nh)
				for len(pt)%blk != 0 { // keep CBC aligned by growing the body
					pt = append([]byte{0x45}, pt...)
				}
				return sealPlain(out, seq, pt)
			}
			expect("pad bytes", mk(10, inner, []byte{1, 2, 9, 4}, ProtoIPIP), DropBadPadding, true)
			badLen := sealPlain(out, 11, bytes.Repeat([]byte{0xff}, blk)) // pad length 255 > payload
			expect("pad length", badLen, DropBadPadding, true)
			expect("next header", mk(12, []byte("abcd"), nil, ProtoTCP), DropNextHeader, true)
			expect("dummy", mk(13, []byte("abcd"), nil, ProtoNoNext), DropDummy, true)
			expect("garbage inner", mk(14, bytes.Repeat([]byte{0x47}, 40), nil, ProtoIPIP), DropMalformed, true)
			expect("unknown SPI", append([]byte{0xde, 0xad, 0xbe, 0xef}, good[4:]...), DropBadSPI, false)
			expect("too short", good[:3], DropMalformed, false)

			c := in.Counters()
			for r, n := range want {
				if c.Dropped(r) != n {
					t.Errorf("SA %v drops = %d, want %d", r, c.Dropped(r), n)
				}
			}
			if c.PacketsIn != 1 {
				t.Errorf("PacketsIn %d", c.PacketsIn)
			}
			dc := db.Counters()
			if dc.Dropped(DropBadSPI) == 0 || dc.Dropped(DropMalformed) == 0 {
				t.Errorf("DB counters %+v", dc)
			}
		})
	}
}

func TestOpenRejectsOverlap(t *testing.T) {
	out, in := newPair(t, suites[0], 8)
	pkt, _ := out.SealTunnel(make([]byte, 0, 2048), ipPacket(a1, a2, ProtoUDP, 1, 2, 100))
	if _, err := in.OpenTunnel(pkt[:0], pkt); err == nil {
		t.Fatal("overlapping dst accepted")
	}
	// The packet is still acceptable (the window was not advanced).
	if _, err := in.OpenTunnel(nil, pkt); err != nil {
		t.Fatal(err)
	}
}

func TestSequenceExhaustion(t *testing.T) {
	for _, esn := range []bool{false, true} {
		s := suites[0]
		s.ESN = esn
		db := &DB{}
		oc, ic := pairConfig(t, s, 9)
		out, err := db.AddOutbound(testNow, oc)
		if err != nil {
			t.Fatal(err)
		}
		in, _ := NewInboundSA(ic)
		max := out.maxSeq
		out.seq.Store(max - 3)
		inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 64)
		// Put the receiver's window just below so it accepts the last ones.
		setTop(in, max-10)
		for i := 0; i < 3; i++ {
			pkt, err := out.SealTunnel(nil, inner)
			if err != nil {
				t.Fatalf("esn=%v packet %d: %v", esn, i, err)
			}
			if _, err := in.OpenTunnel(nil, pkt); err != nil {
				t.Fatalf("esn=%v open %d: %v", esn, i, err)
			}
		}
		if out.Seq() != max {
			t.Fatalf("seq %d", out.Seq())
		}
		if _, err := out.SealTunnel(nil, inner); !errors.Is(err, DropSeqExhausted) {
			t.Fatalf("esn=%v: after the last number: %v", esn, err)
		}
		if out.Seq() != max {
			t.Fatal("sequence number wrapped")
		}
		ev := drainEvents(db)
		wantEv := []Event{
			{Kind: EventSoft, Limit: LimitSequence, Dir: Outbound, SPI: oc.SPI},
			{Kind: EventHard, Limit: LimitSequence, Dir: Outbound, SPI: oc.SPI},
		}
		if fmt.Sprint(ev) != fmt.Sprint(wantEv) {
			t.Fatalf("events %v, want %v", ev, wantEv)
		}
		if !out.Expired() || db.Outbound(0).Select(&Flow{Src: a1, Dst: a2}) != nil {
			t.Fatal("exhausted SA still selected")
		}
	}
}

func TestSuiteErrors(t *testing.T) {
	bad := []Suite{
		{Encr: wire.EncrAESGCM16, KeyBits: 192},
		{Encr: wire.EncrAESGCM16, KeyBits: 128, Integ: wire.IntegHMACSHA2256128},
		{Encr: wire.EncrAESCBC, KeyBits: 128},
		{Encr: wire.EncrAESCTR, KeyBits: 128, Integ: wire.IntegHMACSHA2256128},
		{Encr: wire.EncrAESCBC, KeyBits: 128, Integ: wire.IntegHMACSHA196},
		{Encr: wire.EncrChaCha20Poly1305, KeyBits: 128},
	}
	for _, s := range bad {
		if _, _, err := s.KeyLengths(); err == nil {
			t.Errorf("%v accepted", s)
		}
	}
	oc, _ := pairConfig(t, suites[0], 10)
	oc.Keys.Encr = oc.Keys.Encr[:10]
	if _, err := NewOutboundSA(oc); err == nil {
		t.Error("short key accepted")
	}
	oc, _ = pairConfig(t, suites[3], 10)
	oc.Rand = nil
	if _, err := NewOutboundSA(oc); err == nil {
		t.Error("CBC without Rand accepted")
	}
	oc, _ = pairConfig(t, suites[0], 10)
	oc.SPI = 0
	if _, err := NewOutboundSA(oc); err == nil {
		t.Error("SPI 0 accepted")
	}
	if _, _, err := SplitKEYMAT(make([]byte, 39), suites[0]); err == nil {
		t.Error("short KEYMAT accepted")
	}
}

func TestUDPClassifier(t *testing.T) {
	cases := []struct {
		in   []byte
		want UDPClass
		rest []byte
	}{
		{[]byte{0xff}, UDPKeepalive, nil},
		{[]byte{0, 0, 0, 0, 1, 2, 3}, UDPIKE, []byte{1, 2, 3}},
		{[]byte{0, 0, 0, 0}, UDPIKE, []byte{}},
		{[]byte{0, 0, 0, 1, 0, 0, 0, 1}, UDPESP, []byte{0, 0, 0, 1, 0, 0, 0, 1}},
		{[]byte{0, 0, 0, 1, 0, 0, 0}, UDPInvalid, nil},
		{[]byte{0xfe}, UDPInvalid, nil},
		{nil, UDPInvalid, nil},
		{[]byte{0xff, 0xff}, UDPInvalid, nil},
	}
	for _, c := range cases {
		got, rest := ClassifyUDP(c.in)
		if got != c.want || !bytes.Equal(rest, c.rest) {
			t.Errorf("ClassifyUDP(%x) = %v %x, want %v %x", c.in, got, rest, c.want, c.rest)
		}
	}
	msg := []byte("IKE message")
	if c, rest := ClassifyUDP(AppendNonESPMarker(nil, msg)); c != UDPIKE || !bytes.Equal(rest, msg) {
		t.Error("marker round trip")
	}
	if c, _ := ClassifyUDP(AppendKeepalive(nil)); c != UDPKeepalive {
		t.Error("keepalive round trip")
	}
}

func TestZeroAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	for _, s := range []Suite{suites[0], suites[2], suites[3]} {
		out, in := newPair(t, s, 11)
		inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 1400)
		buf := make([]byte, 0, 2048)
		dec := make([]byte, 0, 2048)
		var pkt []byte
		allocs := testing.AllocsPerRun(200, func() {
			var err error
			pkt, err = out.SealTunnel(buf, inner)
			if err != nil {
				t.Fatal(err)
			}
			if _, err = in.OpenTunnel(dec, pkt); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %.1f allocations per Seal+Open", s, allocs)
		}
	}
}

// TestConcurrentSA seals from several goroutines on one SA and opens the
// shuffled packets from several goroutines on its peer.
func TestConcurrentSA(t *testing.T) {
	for _, s0 := range []Suite{suites[0], suites[3]} {
		s := s0
		s.ESN = true
		oc, ic := pairConfig(t, s, 50)
		ic.ReplayWindow = 4096
		out, _ := NewOutboundSA(oc)
		in, _ := NewInboundSA(ic)
		const workers, each = 4, 300
		pkts := make([][]byte, workers*each)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					p, err := out.SealTunnel(nil, ipPacket(a1, a2, ProtoUDP, uint16(w), uint16(i), 100))
					if err != nil {
						t.Error(err)
						return
					}
					pkts[w*each+i] = p
				}
			}()
		}
		wg.Wait()
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(pkts), func(i, j int) { pkts[i], pkts[j] = pkts[j], pkts[i] })
		var fails atomic.Int32
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 0, 256)
				for i := w; i < len(pkts); i += workers {
					if _, err := in.OpenTunnel(buf, pkts[i]); err != nil {
						fails.Add(1)
					}
					if _, err := in.OpenTunnel(buf, pkts[i]); err != DropReplay {
						fails.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		c := in.Counters()
		if fails.Load() != 0 || c.PacketsIn != workers*each || c.Dropped(DropReplay) != workers*each {
			t.Fatalf("%v: %d failures, counters %+v", s, fails.Load(), c)
		}
		if out.Seq() != workers*each || in.HighestSeq() != workers*each {
			t.Fatalf("seq %d, highest %d", out.Seq(), in.HighestSeq())
		}
	}
}
