package esp

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
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
	rawSealed   [][][]byte // coresRing raw AEAD ciphertexts per SA (the open baseline)
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
		raw := make([][]byte, coresRing)
		for k := range raw {
			raw[k] = o.t.aead.Seal(nil, make([]byte, nonceSize), inner, make([]byte, 8))
		}
		f.out, f.in = append(f.out, o), append(f.in, in)
		f.inner, f.sealed = append(f.inner, inner), append(f.sealed, ring)
		f.rawSealed = append(f.rawSealed, raw)
	}
	return f
}

// rewind lets inbound SA i accept its ring again.
func (f *coresFixture) rewind(i int) {
	resetWindow(f.in[i])
}

// BenchmarkESPCores shows ESP throughput growing with cores across many
// SAs: 1400-octet packets spread over 256 SAs by GOMAXPROCS goroutines,
// each owning its share of the SAs as a multi-queue data plane would. Each
// iteration is one round that measures, interleaved, the raw baseline and
// the case at GOMAXPROCS 1 and then 2 (coresRound packets each); the best
// round of each counts, since the machines are shared and drift. Cases:
//
//	seal      OutboundSA.SealTunnel on the goroutine's SAs
//	set-seal  OutboundSet.SealTunnel: SA selection by destination, then seal
//	open      InboundSA.OpenTunnel
//	db-open   DB.Open: SA lookup by SPI, then open
//
// and raw is the SAs' own AEADs sealing 1400 octets (seal cases) or
// opening as many 1400-octet ciphertexts per SA as the open cases read,
// so that both touch the same amount of memory (open cases). Metrics (inner
// octets): MB/s-1p and MB/s-2p, raw-MB/s-1p and raw-MB/s-2p, of-raw-1p and
// of-raw-2p (the case over raw at the same GOMAXPROCS), x2p (the case's
// throughput at GOMAXPROCS 2 over 1).
func BenchmarkESPCores(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two cores")
	}
	for _, s := range benchSuites[:3] {
		f := newCoresFixture(b, s)
		for _, mode := range []string{"seal", "set-seal", "open", "db-open"} {
			b.Run(fmt.Sprintf("%v/%s", s, mode), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
				best := map[string]time.Duration{}
				keep := func(k string, d time.Duration) {
					if old, ok := best[k]; !ok || d < old {
						best[k] = d
					}
				}
				raw := "raw-seal"
				if mode == "open" || mode == "db-open" {
					raw = "raw-open"
				}
				for i := 0; i < b.N; i++ {
					for _, procs := range []int{1, 2} {
						keep(fmt.Sprint("raw", procs), coresMeasure(b, f, raw, procs))
						keep(fmt.Sprint(mode, procs), coresMeasure(b, f, mode, procs))
					}
				}
				rate := func(k string) float64 { return float64(coresRound*coresSize) / best[k].Seconds() / 1e6 }
				b.ReportMetric(rate(mode+"1"), "MB/s-1p")
				b.ReportMetric(rate(mode+"2"), "MB/s-2p")
				b.ReportMetric(rate("raw1"), "raw-MB/s-1p")
				b.ReportMetric(rate("raw2"), "raw-MB/s-2p")
				b.ReportMetric(rate(mode+"1")/rate("raw1"), "of-raw-1p")
				b.ReportMetric(rate(mode+"2")/rate("raw2"), "of-raw-2p")
				b.ReportMetric(rate(mode+"2")/rate(mode+"1"), "x2p")
			})
		}
	}
}

// coresRound is the packets of one measurement.
const coresRound = 16384

// coresMeasure processes coresRound packets with procs goroutines at
// GOMAXPROCS procs and returns the wall time.
func coresMeasure(b *testing.B, f *coresFixture, mode string, procs int) time.Duration {
	runtime.GOMAXPROCS(procs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for id := 0; id < procs; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := coresWorker(f, mode, id, procs, coresRound/procs); err != nil {
				b.Error(err)
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return time.Since(t0)
}

// coresWorker is one goroutine of BenchmarkESPCores: it processes n
// packets on SAs id, id+procs, id+2*procs ...
func coresWorker(f *coresFixture, mode string, id, procs, n int) error {
	var mine []int
	for i := id; i < coresSAs; i += procs {
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
	set := f.outDB.Outbound(0)
	for k := 0; k < n; k++ {
		i := mine[k%len(mine)]
		var err error
		switch mode {
		case "raw-seal":
			buf = f.out[i].t.aead.Seal(buf[:0], nonce, pt, aad)
		case "raw-open":
			ct := f.rawSealed[i][next[i]%coresRing]
			next[i]++
			buf, err = f.out[i].t.aead.Open(buf[:0], nonce, ct, aad)
		case "seal":
			_, err = f.out[i].SealTunnel(buf, f.inner[i])
		case "set-seal":
			_, _, err = set.SealTunnel(buf, f.inner[i])
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
			return err
		}
	}
	return nil
}
