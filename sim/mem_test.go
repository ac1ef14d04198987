package sim

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
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
