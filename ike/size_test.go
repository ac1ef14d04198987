package ike

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// establishMany has one initiator engine set up n IKE SAs (each with one
// Child SA) with one responder engine and returns the responder.
func establishMany(t testing.TB, n int, proposal string) *Engine {
	ini, resp := wbPeers()
	ini.IKEProposals = []string{proposal}
	resp.IKEProposals = []string{proposal}
	ini.Children = ini.Children[:1]
	resp.Children = resp.Children[:1]
	b, err := NewEngine(Config{Peers: []PeerConfig{resp}, CookieThreshold: -1}, seededReader(7))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewEngine(Config{}, seededReader(8))
	if err != nil {
		t.Fatal(err)
	}
	p := &wbPair{a: a, b: b, now: t0r}
	for i := 0; i < n; i++ {
		// Distinct initiator addresses, as a hub sees its branches.
		ini.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}), 500)
		if _, err := a.Initiate(p.now, ini); err != nil {
			t.Fatal(err)
		}
		p.settle()
		p.evA, p.evB = p.evA[:0], p.evB[:0]
	}
	if st := b.Stats(); st.IKESAs != n || st.ChildSAs != n || st.HalfOpen != 0 {
		t.Fatalf("responder holds %+v", st)
	}
	return b
}

func heapInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// perSAHeap returns the heap held per established responder IKE SA with
// one Child SA.
func perSAHeap(t testing.TB, n int, proposal string) float64 {
	base := heapInUse()
	b := establishMany(t, n, proposal)
	used := heapInUse()
	runtime.KeepAlive(b)
	return float64(used-base) / float64(n)
}

// TestHeapPerSA reports the heap an established IKE SA with one Child SA
// costs a responder (all engine state: SA, keys and cipher state, cached
// last response, Child SA record, map and timer entries) and keeps it
// under a bound.
func TestHeapPerSA(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap of hundreds of handshakes")
	}
	const n = 400
	for _, prop := range []string{"aes256gcm16-prfsha384-x25519-ke1_mlkem768", "aes128-sha256-x25519"} {
		per := perSAHeap(t, n, prop)
		t.Logf("%s: %.0f bytes of heap per established responder IKE SA with one Child SA", prop, per)
		if per > 6*1024 {
			t.Errorf("%s: %.0f bytes per SA", prop, per)
		}
	}
}

// BenchmarkHeapPerSA reports the same figure as a benchmark metric.
func BenchmarkHeapPerSA(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(perSAHeap(b, 1000, "aes256gcm16-prfsha384-x25519-ke1_mlkem768"), "B/SA")
	}
}

var _ = fmt.Sprint
var _ = time.Second
