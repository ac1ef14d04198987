package topology

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkBuildHubSpoke10000 loads and builds hub-spoke-10000.toml (10,000
// branch gateways with one LAN host each, a hub and the Internet fabric:
// 20,002 gVisor stacks), runs 30 s of virtual time with every LAN host
// pinging the hub's, and reports heap per stack and the wall time of each
// phase.
func BenchmarkBuildHubSpoke10000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		t0 := time.Now()
		top, err := Load("../../topologies/hub-spoke-10000.toml", LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		tLoad := time.Since(t0)
		built, err := Build(top, BuildOptions{})
		if err != nil {
			b.Fatal(err)
		}
		tBuild := time.Since(t0) - tLoad
		runtime.GC()
		runtime.ReadMemStats(&m1)
		stacks := float64(len(built.Nodes))
		b.ReportMetric(stacks, "stacks")
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/stacks/1024, "KiB/stack")
		b.ReportMetric(tLoad.Seconds(), "load-s")
		b.ReportMetric(tBuild.Seconds(), "build-s")
		t1 := time.Now()
		if err := built.Start(); err != nil {
			b.Fatal(err)
		}
		built.Net.Run(30 * time.Second)
		b.ReportMetric(time.Since(t1).Seconds(), "run30s-s")
		var sent, recv uint64
		for _, ps := range built.Pingers {
			st := ps[0].Stats()
			sent += st.Sent
			recv += st.Received
		}
		b.ReportMetric(float64(sent), "pings")
		b.ReportMetric(float64(recv), "replies")
		b.ReportMetric(float64(built.Net.Scheduler().Fired()), "events")
		built.Close()
	}
}
