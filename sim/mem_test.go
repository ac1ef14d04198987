package sim

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// BenchmarkNodes10k creates 10,000 nodes, each with one NIC, an IPv4
// address, a default route and a UDP socket, and reports the heap per node,
// with IPv4 and IPv6 in the stacks and with IPv4 only.
func BenchmarkNodes10k(b *testing.B) {
	b.Run("dual-stack", func(b *testing.B) { benchNodes(b, false) })
	b.Run("ipv4-only", func(b *testing.B) { benchNodes(b, true) })
}

func benchNodes(b *testing.B, v4only bool) {
	const count = 10000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		n := NewNetwork(NetworkConfig{Seed: 1})
		for j := 0; j < count; j++ {
			node, err := n.AddNode(NodeConfig{Name: fmt.Sprintf("n%d", j), IPv4Only: v4only})
			if err != nil {
				b.Fatal(err)
			}
			nic, err := node.AddNIC("eth0", 0)
			if err != nil {
				b.Fatal(err)
			}
			a := netip.AddrFrom4([4]byte{100, 64 + byte(j>>16), byte(j >> 8), byte(j)})
			if err := nic.AddAddress(netip.PrefixFrom(a, 10)); err != nil {
				b.Fatal(err)
			}
			if err := node.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), nic.ID()); err != nil {
				b.Fatal(err)
			}
			if _, err := node.ListenUDP(netip.AddrPortFrom(a, 500), nil); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/count/1024, "KiB/node")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		runtime.KeepAlive(n)
		n.Close()
	}
}

// BenchmarkUDPThroughRouter measures the simulator's own speed: one
// 1400-byte datagram per iteration from h1 through the gVisor router r to
// h2 (two links, three stacks, one socket read), in virtual time.
func BenchmarkUDPThroughRouter(b *testing.B) {
	lt := newLine(b, 1, Symmetric("", 1500, Impairments{Delay: time.Millisecond}), Symmetric("", 1500, Impairments{Delay: time.Millisecond}))
	got := 0
	_, err := lt.h2.ListenUDP(netip.MustParseAddrPort("10.0.2.2:9"), func(_, _ netip.AddrPort, _ []byte) { got++ })
	if err != nil {
		b.Fatal(err)
	}
	src, err := lt.h1.ListenUDP(netip.MustParseAddrPort("10.0.1.2:9"), nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 1400)
	dst := netip.MustParseAddrPort("10.0.2.2:9")
	s := lt.net.Scheduler()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := src.SendTo(dst, msg); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 {
			s.RunFor(10 * time.Millisecond)
		}
	}
	s.RunFor(time.Second)
	if got != b.N {
		b.Fatalf("received %d of %d", got, b.N)
	}
}
