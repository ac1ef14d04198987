package esp

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// coresSAs is the number of SAs the multi-core benchmark spreads packets
// over (a hub's tunnel interface with that many spokes); coresRing the
// packets pre-sealed per SA for the open benchmarks.
const (
	coresSAs  = 256
	coresRing = 16
	coresSize = 1400
)

// coresFixture is coresSAs SA pairs in one DB per direction: outbound SA i
// covers 10.0.0.0/24 -> 10.1.i.0/24 (selected through the OutboundSet),
// inbound SA i opens what it seals.
type coresFixture struct {
	outDB, inDB *DB
	out         []*OutboundSA
	in          []*InboundSA
	inner       [][]byte   // one inner packet per SA (its destination)
	sealed      [][][]byte // coresRing packets per SA
}

func newCoresFixture(b *testing.B, s Suite) *coresFixture {
	f := &coresFixture{outDB: &DB{}, inDB: &DB{}}
	src := netip.MustParseAddr("10.0.0.2")
	for i := 0; i < coresSAs; i++ {
		oc, ic := pairConfig(b, s, uint64(100+i))
		lan := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 0}), 24)
		local := []Selector{SelectorFromPrefix(netip.MustParsePrefix("10.0.0.0/24"))}
		remote := []Selector{SelectorFromPrefix(lan)}
		oc.Local, oc.Remote = local, remote
		ic.Local, ic.Remote = remote, local
		ic.SPI = oc.SPI
		o, err := f.outDB.AddOutbound(testNow, oc)
		if err != nil {
			b.Fatal(err)
		}
		in, err := f.inDB.AddInbound(testNow, ic)
		if err != nil {
			b.Fatal(err)
		}
		inner := ipPacket(src, lan.Addr().Next(), ProtoUDP, 1, 2, coresSize)
		ring := make([][]byte, coresRing)
		for k := range ring {
			if ring[k], err = o.SealTunnel(nil, inner); err != nil {
				b.Fatal(err)
			}
		}
		f.out, f.in = append(f.out, o), append(f.in, in)
		f.inner, f.sealed = append(f.inner, inner), append(f.sealed, ring)
	}
	return f
}

// rewind lets inbound SA i accept its ring again.
func (f *coresFixture) rewind(i int) {
	sa := f.in[i]
	sa.mu.Lock()
	clear(sa.replay.ring)
	sa.replay.top = 0
	sa.top.Store(0)
	sa.mu.Unlock()
}

// BenchmarkESPCores shows ESP throughput growing with cores across many
// SAs: 1400-octet packets spread over 256 SAs by GOMAXPROCS goroutines
// (each owning its share of the SAs, as a multi-queue data plane would),
// for GOMAXPROCS 1 and 2 (up to NumCPU). For each suite, in the same run:
//
//	raw       the SAs' AEADs sealing 1400 octets (the baseline)
//	seal      OutboundSA.SealTunnel on the goroutine's SAs
//	set-seal  OutboundSet.SealTunnel: SA selection by destination, then seal
//	open      InboundSA.OpenTunnel
//	db-open   DB.Open: SA lookup by SPI, then open
//
// Metrics: MB/s (inner octets), x1proc = this case's throughput over the
// same case with GOMAXPROCS 1 (measured just before), of-raw = this case's
// throughput over raw's at the same GOMAXPROCS.
func BenchmarkESPCores(b *testing.B) {
	for _, s := range benchSuites[:3] {
		f := newCoresFixture(b, s)
		perOp := map[string]time.Duration{} // "mode/procs" -> time per packet
		for procs := 1; procs <= runtime.NumCPU(); procs++ {
			for _, mode := range []string{"raw", "seal", "set-seal", "open", "db-open"} {
				b.Run(fmt.Sprintf("%v/procs=%d/%s", s, procs, mode), func(b *testing.B) {
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
					b.SetBytes(coresSize)
					b.ReportAllocs()
					var gid atomic.Int32
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) { coresWorker(b, f, mode, int(gid.Add(1)-1), procs, pb) })
					b.StopTimer()
					d := b.Elapsed() / time.Duration(b.N)
					if b.N == 1 {
						return // the probe run: too short to compare
					}
					perOp[fmt.Sprintf("%s/%d", mode, procs)] = d
					if d1, ok := perOp[fmt.Sprintf("%s/1", mode)]; ok && procs > 1 {
						b.ReportMetric(float64(d1)/float64(d), "x1proc")
					}
					if dr, ok := perOp[fmt.Sprintf("raw/%d", procs)]; ok && mode != "raw" {
						b.ReportMetric(float64(dr)/float64(d), "of-raw")
					}
				})
			}
		}
	}
}

// coresWorker is one goroutine of BenchmarkESPCores: it works on SAs
// id, id+procs, id+2*procs ...
func coresWorker(b *testing.B, f *coresFixture, mode string, id, procs int, pb *testing.PB) {
	var mine []int
	for i := id % procs; i < coresSAs; i += procs {
		mine = append(mine, i)
		if mode == "open" || mode == "db-open" {
			f.rewind(i) // this goroutine owns SA i
		}
	}
	buf := make([]byte, 0, coresSize+128)
	pt := make([]byte, coresSize)
	nonce := make([]byte, nonceSize)
	aad := make([]byte, 8)
	next := make([]int, coresSAs) // ring position per SA
	k := 0
	for pb.Next() {
		i := mine[k%len(mine)]
		k++
		var err error
		switch mode {
		case "raw":
			buf = f.out[i].t.aead.Seal(buf[:0], nonce, pt, aad)
		case "seal":
			_, err = f.out[i].SealTunnel(buf, f.inner[i])
		case "set-seal":
			_, _, err = f.outDB.Outbound(0).SealTunnel(buf, f.inner[i])
		case "open", "db-open":
			if next[i] == coresRing {
				f.rewind(i)
				next[i] = 0
			}
			pkt := f.sealed[i][next[i]]
			next[i]++
			if mode == "open" {
				_, err = f.in[i].OpenTunnel(buf, pkt)
			} else {
				_, _, err = f.inDB.Open(buf, pkt)
			}
		}
		if err != nil {
			b.Error(err)
			return
		}
	}
}
