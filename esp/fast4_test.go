package esp

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestFast4AgreesWithFullCheck: whatever the IPv4 shortcut accepts, the
// full selector check accepts with the same length, over random packets
// and selector sets, including sets the shortcut must refuse to cover.
func TestFast4AgreesWithFullCheck(t *testing.T) {
	r := rand.New(seeded(7))
	addr := func() netip.Addr {
		// Addresses from a small space, so that ranges often match.
		return netip.AddrFrom4([4]byte{10, byte(r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(256))})
	}
	sel := func() Selector {
		a, b := addr(), addr()
		if b.Less(a) {
			a, b = b, a
		}
		s := Selector{Start: a, End: b, StartPort: 0, EndPort: 0xffff}
		switch r.IntN(12) {
		case 0:
			s.Proto = ProtoUDP
		case 1:
			s.StartPort, s.EndPort = 1, 1000
		case 2:
			s.StartPort, s.EndPort = 0xffff, 0 // OPAQUE
		}
		return s
	}
	list := func() []Selector {
		var ts []Selector
		for range 1 + r.IntN(2)*r.IntN(3) {
			ts = append(ts, sel())
		}
		if r.IntN(3) == 0 {
			ts = append(ts, SelectorFromPrefix(netip.MustParsePrefix("fd00::/16")))
		}
		return ts
	}
	on, took := 0, 0
	for range 2000 {
		src, dst := compile(list()), compile(list())
		q := newFast4(src, dst)
		if q.on {
			on++
		}
		for range 50 {
			p := make([]byte, 20+r.IntN(40))
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			p[0] = 0x45
			if r.IntN(8) == 0 {
				p[0] = byte(0x40 | r.IntN(16))
			}
			if r.IntN(4) != 0 { // mostly clean fragments fields and a fitting length
				binary.BigEndian.PutUint16(p[6:8], 0)
				binary.BigEndian.PutUint16(p[2:4], uint16(20+r.IntN(len(p)-19)))
			}
			p[9] = []uint8{ProtoUDP, ProtoTCP, ProtoICMP, 99}[r.IntN(4)]
			s, d := addr().As4(), addr().As4()
			copy(p[12:16], s[:])
			copy(p[16:20], d[:])
			n, ok := q.check(p, ProtoIPIP)
			if !ok {
				continue
			}
			took++
			var f flow
			if err := parseFlow(p, &f); err != nil || !matchFlow(&f, src, dst) || f.length != n {
				t.Fatalf("fast path accepted %x (len %d) that the full check refuses (err %v, len %d)", p[:20], n, err, f.length)
			}
		}
	}
	if on == 0 || took == 0 {
		t.Fatalf("the shortcut was never exercised (on %d, took %d)", on, took)
	}
	t.Logf("shortcut on for %d of 2000 selector sets, took %d packets", on, took)
}
