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
// 1400 octets, the size of the goal, on one SA and, as a hub sees
// them, on 256 SAs taking turns packet by packet (16 packets each in
// flight; the raw side then opens as many ciphertexts with the 256 SAs'
// own AEADs, so that both read the same amount of memory).
func BenchmarkESPvsRaw(b *testing.B) {
	for _, s := range benchSuites {
		if !s.AEAD() {
			continue
		}
		for _, sas := range []int{1, 256} {
			b.Run(fmt.Sprintf("%v/1400/open/sas=%d", s, sas), func(b *testing.B) { benchRatio(b, s, 1400, false, sas) })
			b.Run(fmt.Sprintf("%v/1400/seal/sas=%d", s, sas), func(b *testing.B) { benchRatio(b, s, 1400, true, sas) })
		}
	}
}

func benchRatio(b *testing.B, s Suite, n int, seal bool, nSA int) {
	outs := make([]*OutboundSA, nSA)
	ins := make([]*InboundSA, nSA)
	for i := range outs {
		outs[i], ins[i] = newPair(b, s, uint64(i+1))
	}
	inner := ipPacket(a1, a2, ProtoUDP, 1, 2, n)
	ring := max(openRing, 16*nSA) // packet k belongs to SA k % nSA
	pkts := make([][]byte, ring)
	cts := make([][]byte, ring)
	nonce := make([]byte, nonceSize)
	aad := make([]byte, 8)
	pt := make([]byte, n)
	for k := range pkts {
		pkts[k], _ = outs[k%nSA].SealTunnel(nil, inner)
		cts[k] = ins[k%nSA].t.aead.Seal(nil, nonce, pt, aad)
	}
	espBuf := make([]byte, 0, n+128)
	rawBuf := make([]byte, 0, n+128)
	var espT, rawT time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i+ratioBatch > ring {
			for _, in := range ins {
				resetWindow(in)
			}
			i = 0
		}
		t0 := time.Now()
		for k := i; k < i+ratioBatch; k++ {
			if seal {
				outs[k%nSA].t.aead.Seal(rawBuf, nonce, pt, aad)
			} else if _, err := ins[k%nSA].t.aead.Open(rawBuf, nonce, cts[k], aad); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for k := i; k < i+ratioBatch; k++ {
			var err error
			if seal {
				_, err = outs[k%nSA].SealTunnel(espBuf, inner)
			} else {
				_, err = ins[k%nSA].OpenTunnel(espBuf, pkts[k])
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
