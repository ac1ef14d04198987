package esp

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// randAddr returns an address near the other random addresses, so that
// selectors overlap: IPv4 in 10.0.0.0/20 (and now and then anywhere),
// IPv6 in fd00::/116.
func randAddr(r *rand.Rand, v6 bool) netip.Addr {
	if !v6 {
		if r.IntN(16) == 0 {
			return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		}
		v := 10<<24 | r.Uint32()&0xfff
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := [16]byte{0: 0xfd}
	binary.BigEndian.PutUint16(b[14:], uint16(r.Uint32()&0xfff))
	return netip.AddrFrom16(b)
}

// randSelector returns a prefix, an arbitrary range or (rarely) the whole
// family, with or without a protocol and ports.
func randSelector(r *rand.Rand, v6 bool) Selector {
	var s Selector
	switch r.IntN(8) {
	case 0:
		s = SelectorFromPrefix(netip.PrefixFrom(randAddr(r, v6), 0))
	case 1, 2, 3:
		a, b := randAddr(r, v6), randAddr(r, v6)
		if b.Less(a) {
			a, b = b, a
		}
		s = Selector{Start: a, End: b, StartPort: 0, EndPort: 0xffff}
	default:
		bits := 32
		if v6 {
			bits = 128
		}
		s = SelectorFromPrefix(netip.PrefixFrom(randAddr(r, v6), bits-r.IntN(14)))
	}
	switch r.IntN(6) {
	case 0:
		s.Proto = ProtoTCP
	case 1:
		s.Proto, s.StartPort, s.EndPort = ProtoUDP, uint16(r.IntN(100)), uint16(100+r.IntN(100))
	case 2:
		s.StartPort, s.EndPort = 0xffff, 0 // OPAQUE
	}
	return s
}

func randSelectors(r *rand.Rand) []Selector {
	var out []Selector
	for i := r.IntN(4); i >= 0; i-- {
		out = append(out, randSelector(r, r.IntN(3) == 0))
	}
	if r.IntN(20) == 0 {
		return nil
	}
	return out
}

// TestOutboundIndexMatchesLinearScan checks the indexed SA selection
// against the definition (the first live SA, newest first, whose
// selectors cover the flow) over random adds, removals, hard expiries and
// flows.
func TestOutboundIndexMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base, _ := pairConfig(t, suites[0], 1)
	var db DB
	set := db.Outbound(3)
	var ref []*OutboundSA // newest first
	for step := 0; step < 600; step++ {
		switch op := r.IntN(20); {
		case op < 12 || len(ref) == 0:
			cfg := base
			cfg.IfID, cfg.SPI = 3, uint32(1000+step)
			cfg.Local = []Selector{SelectorFromPrefix(mustPrefix("0.0.0.0/0")), SelectorFromPrefix(mustPrefix("::/0"))}
			if r.IntN(4) == 0 {
				cfg.Local = randSelectors(r)
			}
			cfg.Remote = randSelectors(r)
			sa, err := db.AddOutbound(testNow, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref = append([]*OutboundSA{sa}, ref...)
		case op < 18:
			i := r.IntN(len(ref))
			if !db.RemoveOutbound(ref[i]) || db.RemoveOutbound(ref[i]) {
				t.Fatalf("step %d: RemoveOutbound", step)
			}
			ref = append(ref[:i], ref[i+1:]...)
		default:
			ref[r.IntN(len(ref))].life.fire(EventHard, LimitPackets)
		}
		if got := set.SAs(); fmt.Sprint(got) != fmt.Sprint(ref) {
			t.Fatalf("step %d: SAs() differs from the reference order", step)
		}
		for k := 0; k < 40; k++ {
			v6 := r.IntN(3) == 0
			f := Flow{Src: randAddr(r, v6), Dst: randAddr(r, v6), Proto: []uint8{ProtoTCP, ProtoUDP, ProtoICMP}[r.IntN(3)],
				SrcPort: uint16(r.IntN(250)), DstPort: uint16(r.IntN(250)), HasPorts: r.IntN(5) != 0}
			var want *OutboundSA
			for _, sa := range ref {
				if !sa.Expired() && sa.Matches(&f) {
					want = sa
					break
				}
			}
			if got := set.Select(&f); got != want {
				t.Fatalf("step %d: flow %+v: got SA %v, want %v", step, f, spiOf(got), spiOf(want))
			}
		}
	}
}

func spiOf(sa *OutboundSA) string {
	if sa == nil {
		return "none"
	}
	return fmt.Sprintf("%08x", sa.SPI())
}

// hubSet fills an outbound set the way a hub's tunnel interface is
// filled: one SA per spoke LAN (10.x.y.0/24), as in hub-spoke topologies.
func hubSet(b testing.TB, n int) (*DB, *OutboundSet, []Flow) {
	base, _ := pairConfig(b, suites[1], 1)
	db := &DB{}
	flows := make([]Flow, n)
	for i := 0; i < n; i++ {
		lan := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		cfg := base
		cfg.SPI = uint32(i + 1)
		cfg.Local = []Selector{SelectorFromPrefix(mustPrefix("10.255.0.0/24"))}
		cfg.Remote = []Selector{SelectorFromPrefix(lan)}
		if _, err := db.AddOutbound(testNow, cfg); err != nil {
			b.Fatal(err)
		}
		flows[i] = Flow{Src: netip.MustParseAddr("10.255.0.2"), Dst: lan.Addr().Next(), Proto: ProtoICMP, HasPorts: true}
	}
	return db, db.Outbound(0), flows
}

func TestOutboundIndexHub(t *testing.T) {
	_, set, flows := hubSet(t, 3000)
	for i, f := range flows {
		if sa := set.Select(&f); sa == nil || sa.SPI() != uint32(i+1) {
			t.Fatalf("spoke %d: got %s", i, spiOf(sa))
		}
	}
	if sa := set.Select(&Flow{Src: netip.MustParseAddr("10.255.0.2"), Dst: netip.MustParseAddr("10.200.0.1")}); sa != nil {
		t.Fatal("a flow to no spoke selected an SA")
	}
}

// BenchmarkOutboundSelect measures SA selection on a hub's interface with
// 10 and 10,000 spokes (one /24 SA each). Before the index the 10,000-SA
// case scanned every SA.
func BenchmarkOutboundSelect(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("sas=%d", n), func(b *testing.B) {
			_, set, flows := hubSet(b, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if set.Select(&flows[i%n]) == nil {
					b.Fatal("no SA")
				}
			}
		})
	}
}

// BenchmarkOutboundInstall measures installing and removing SAs in a set
// of 10,000 (the hub's bring-up and teardown).
func BenchmarkOutboundInstall(b *testing.B) {
	db, _, _ := hubSet(b, 10000)
	base, _ := pairConfig(b, suites[1], 1)
	base.Local = []Selector{SelectorFromPrefix(mustPrefix("10.255.0.0/24"))}
	base.Remote = []Selector{SelectorFromPrefix(mustPrefix("10.254.7.0/24"))}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		base.SPI = uint32(100000 + i)
		sa, err := db.AddOutbound(time.Time{}, base)
		if err != nil {
			b.Fatal(err)
		}
		db.RemoveOutbound(sa)
	}
}
