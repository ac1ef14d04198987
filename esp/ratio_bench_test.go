package esp

import (
	"fmt"
	"testing"
	"time"
)

// ratioBatch is how many packets each side of BenchmarkESPvsRaw processes
// between clock reads.
const ratioBatch = 64

// BenchmarkESPvsRaw measures ESP tunnel-mode Open and Seal and the raw
// AEAD primitive in alternating batches of ratioBatch packets within one
// benchmark, so that both see the same machine state (frequency, noisy
// neighbours), and reports the ESP speed as a percentage of the raw one
// (esp/raw-%) next to the per-packet times. It covers the AEAD suites at
// 1400 octets, the size of the goal.
func BenchmarkESPvsRaw(b *testing.B) {
	for _, s := range benchSuites {
		if !s.AEAD() {
			continue
		}
		b.Run(fmt.Sprintf("%v/1400/open", s), func(b *testing.B) { benchRatio(b, s, 1400, false) })
		b.Run(fmt.Sprintf("%v/1400/seal", s), func(b *testing.B) { benchRatio(b, s, 1400, true) })
	}
}

func benchRatio(b *testing.B, s Suite, n int, seal bool) {
	out, in := newPair(b, s, 1)
	a := in.t.aead
	inner := ipPacket(a1, a2, ProtoUDP, 1, 2, n)
	pkts := make([][]byte, openRing)
	cts := make([][]byte, openRing)
	nonce := make([]byte, nonceSize)
	aad := make([]byte, 8)
	pt := make([]byte, n)
	for i := range pkts {
		pkts[i], _ = out.SealTunnel(nil, inner)
		cts[i] = a.Seal(nil, nonce, pt, aad)
	}
	espBuf := make([]byte, 0, n+128)
	rawBuf := make([]byte, 0, n+128)
	var espT, rawT time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i+ratioBatch > openRing {
			resetWindow(in)
			i = 0
		}
		t0 := time.Now()
		for k := i; k < i+ratioBatch; k++ {
			if seal {
				a.Seal(rawBuf, nonce, pt, aad)
			} else if _, err := a.Open(rawBuf, nonce, cts[k], aad); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for k := i; k < i+ratioBatch; k++ {
			var err error
			if seal {
				_, err = out.SealTunnel(espBuf, inner)
			} else {
				_, err = in.OpenTunnel(espBuf, pkts[k])
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		rawT += t1.Sub(t0)
		espT += t2.Sub(t1)
		i += ratioBatch
	}
	pkts64 := float64(b.N) * ratioBatch
	b.ReportMetric(float64(rawT.Nanoseconds())/pkts64, "raw-ns/pkt")
	b.ReportMetric(float64(espT.Nanoseconds())/pkts64, "esp-ns/pkt")
	b.ReportMetric(100*float64(rawT)/float64(espT), "esp/raw-%")
}
