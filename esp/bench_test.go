package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

var benchSizes = []int{64, 512, 1400, 8900}

// openRing is how many distinct packets the open benchmarks cycle through.
const openRing = 256

var benchSuites = []Suite{
	{Encr: wire.EncrAESGCM16, KeyBits: 128},
	{Encr: wire.EncrAESGCM16, KeyBits: 256},
	{Encr: wire.EncrChaCha20Poly1305},
	{Encr: wire.EncrAESCBC, KeyBits: 128, Integ: wire.IntegHMACSHA2256128},
}

// BenchmarkESP reports, for each suite and inner packet size, the raw
// primitive (AEAD Seal/Open with an 8-octet AAD, or AES-CBC plus
// HMAC-SHA-256 over the same octets) next to ESP tunnel-mode encapsulation
// and decapsulation (selector checks, sequence numbers, trailer, replay
// window, counters). Throughput is in inner-packet bytes.
func BenchmarkESP(b *testing.B) {
	for _, s := range benchSuites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d/raw-seal", s, n), func(b *testing.B) { benchRaw(b, s, n, true) })
			b.Run(fmt.Sprintf("%v/%d/esp-seal", s, n), func(b *testing.B) { benchSeal(b, s, n) })
			b.Run(fmt.Sprintf("%v/%d/raw-open", s, n), func(b *testing.B) { benchRaw(b, s, n, false) })
			b.Run(fmt.Sprintf("%v/%d/esp-open", s, n), func(b *testing.B) { benchOpen(b, s, n) })
		}
	}
}

func benchSeal(b *testing.B, s Suite, n int) {
	out, _ := newPair(b, s, 1)
	inner := ipPacket(a1, a2, ProtoUDP, 1, 2, n)
	buf := make([]byte, 0, n+128)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := out.SealTunnel(buf, inner); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOpen(b *testing.B, s Suite, n int) {
	out, in := newPair(b, s, 1)
	inner := ipPacket(a1, a2, ProtoUDP, 1, 2, n)
	const ring = openRing
	pkts := make([][]byte, ring)
	for i := range pkts {
		pkts[i], _ = out.SealTunnel(nil, inner)
	}
	dst := make([]byte, 0, n+128)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == ring { // start over: forget the sequence numbers seen
			resetWindow(in)
			i = 0
		}
		if _, err := in.OpenTunnel(dst, pkts[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// benchRaw measures the bare primitive on n octets.
func benchRaw(b *testing.B, s Suite, n int, seal bool) {
	oc, _ := pairConfig(b, s, 1)
	t, err := newTransform(s, oc.Keys, true)
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, n)
	buf := make([]byte, n+64)
	nonce := make([]byte, nonceSize)
	aad := make([]byte, 8)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	if t.aead != nil {
		if seal {
			for b.Loop() {
				t.aead.Seal(buf[:0], nonce, pt, aad)
			}
			return
		}
		// Open cycles through as many ciphertexts as benchOpen does, so
		// that both read packets from the same cache level.
		cts := make([][]byte, openRing)
		for i := range cts {
			cts[i] = t.aead.Seal(nil, nonce, pt, aad)
		}
		i := 0
		for b.Loop() {
			if _, err := t.aead.Open(buf[:0], nonce, cts[i%openRing], aad); err != nil {
				b.Fatal(err)
			}
			i++
		}
		return
	}
	// AES-CBC then HMAC (encrypt-then-MAC), block-aligned.
	m := (n + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	pt = make([]byte, m)
	iv := make([]byte, aes.BlockSize)
	mac := make([]byte, 0, 64)
	dec := cipher.NewCBCDecrypter(t.block, iv)
	for b.Loop() {
		t.setIV(iv, true)
		if seal {
			t.cbc.CryptBlocks(buf[:m], pt)
			t.mac.Reset()
			t.mac.Write(buf[:m])
			mac = t.mac.Sum(mac[:0])
		} else {
			t.mac.Reset()
			t.mac.Write(pt)
			mac = t.mac.Sum(mac[:0])
			if !hmac.Equal(mac, mac) {
				b.Fatal()
			}
			dec.(interface{ SetIV([]byte) }).SetIV(iv)
			dec.CryptBlocks(buf[:m], pt)
		}
	}
}

// BenchmarkSealParallel seals 1400-octet packets on 256 SAs from as many
// goroutines as GOMAXPROCS allows, for GOMAXPROCS = 1 .. NumCPU, so one run
// shows how throughput grows with cores.
func BenchmarkSealParallel(b *testing.B) {
	for _, s := range benchSuites[:3] {
		for procs := 1; procs <= runtime.NumCPU(); procs++ {
			b.Run(fmt.Sprintf("%v/procs=%d", s, procs), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				const nSA = 256
				sas := make([]*OutboundSA, nSA)
				for i := range sas {
					sas[i], _ = newPair(b, s, uint64(i))
				}
				inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 1400)
				var next atomic.Uint32
				b.SetBytes(1400)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					buf := make([]byte, 0, 1600)
					k := next.Add(1)
					for pb.Next() {
						sa := sas[k%nSA]
						k += 7
						if _, err := sa.SealTunnel(buf, inner); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
