package lab

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pqlab/pqlab/cmd/internal/results"
	"github.com/pqlab/pqlab/sim/topology"
)

// hubSpoke is the scale topology: one hub, branches on DSL with one LAN
// host each, every branch bringing up a hybrid x25519 + ML-KEM-768 IKE SA
// and Child SA to the hub and pinging the hub's LAN host through it.
const hubSpoke = "../../../topologies/hub-spoke-10000.toml"

// scaleBranches are the branch counts BenchmarkScale runs by default;
// PQLAB_SCALE_BRANCHES (a comma-separated list, e.g. "100000") replaces
// them.
var scaleBranches = []int{1000, 10000}

// BenchmarkScale is the Scale benchmark of issue 5: hub-spoke-10000.toml
// with group[branch].count set to each of scaleBranches, the whole run
// (load, build, 120 s of virtual time) timed on the wall clock. It reports
//
//	wall-s          wall time of the run
//	peak-rss-MiB    peak resident set (VmHWM, reset before each run)
//	peak-heap-MiB   peak Go heap (live and unswept objects, sampled every 20 ms)
//	live-heap-MiB   peak live Go heap (marked by a GC cycle)
//	live-KiB/node   peak live Go heap per gVisor stack (gateways and LAN hosts)
//	rss-KiB/node    peak RSS per gVisor stack
//	handshakes/s    established IKE + Child SAs per wall second
//	established     established handshakes (must equal the branch count)
//	hub-allup-s     virtual time at which the hub's last tunnel came up
//	hub-cpu-s       CPU time charged to the hub's cores (virtual)
//
// make bench runs it; go test does not (it is a benchmark). Unless
// GOMEMLIMIT is set, it sets a soft memory limit of 80 % of the machine's
// memory: 100,000 branches hold about 10.5 GiB live, and the default
// GOGC=100 would let the heap double past a 24 GiB machine before
// collecting.
func BenchmarkScale(b *testing.B) {
	SetMemoryLimit()
	counts := scaleBranches
	if s := os.Getenv("PQLAB_SCALE_BRANCHES"); s != "" {
		counts = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("PQLAB_SCALE_BRANCHES: bad count %q", f)
			}
			counts = append(counts, n)
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("branches=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				scaleRun(b, n)
			}
		})
	}
}

// scaleResult is what one scale run measured.
type scaleResult struct {
	wall        time.Duration
	peakRSS     uint64 // bytes
	peakHeap    uint64 // bytes
	peakLive    uint64 // bytes
	stacks      int
	established int
	hubAllUp    time.Duration
	hubCPU      time.Duration
}

func scaleRun(b *testing.B, branches int) {
	spec := Spec{Topology: hubSpoke, Overrides: Overrides{"group[branch].count": int64(branches)}}
	top, err := Load(spec)
	if err != nil {
		b.Fatal(err)
	}
	stacks := 0
	for _, n := range top.Nodes {
		if n.Kind != topology.KindInternet && n.Kind != topology.KindNAT {
			stacks++
		}
	}
	top = nil
	runtime.GC()
	resetPeakRSS()
	sampler := startHeapSampler(20 * time.Millisecond)
	b.ResetTimer()
	t0 := time.Now()
	run, err := Run(spec)
	wall := time.Since(t0)
	b.StopTimer()
	peakHeap, peakLive := sampler.stop()
	if err != nil {
		b.Fatal(err)
	}
	res := scaleResult{wall: wall, peakRSS: peakRSS(), peakHeap: peakHeap, peakLive: peakLive, stacks: stacks}
	for _, h := range run.Handshakes {
		if h.Outcome == OutcomeEstablished {
			res.established++
		}
	}
	for _, ns := range run.Nodes {
		if ns.Name == "hub" {
			res.hubAllUp = time.Duration(ns.AllUpNs)
			res.hubCPU = time.Duration(ns.CPUNs)
		}
	}
	report(b, res)
	if res.established != branches {
		b.Errorf("%d of %d branches established (first failure: %s)", res.established, branches, firstFailure(run))
	}
}

func report(b *testing.B, r scaleResult) {
	const mib = 1 << 20
	b.ReportMetric(r.wall.Seconds(), "wall-s")
	b.ReportMetric(float64(r.peakRSS)/mib, "peak-rss-MiB")
	b.ReportMetric(float64(r.peakHeap)/mib, "peak-heap-MiB")
	b.ReportMetric(float64(r.peakLive)/mib, "live-heap-MiB")
	b.ReportMetric(float64(r.peakLive)/1024/float64(r.stacks), "live-KiB/node")
	b.ReportMetric(float64(r.peakRSS)/1024/float64(r.stacks), "rss-KiB/node")
	b.ReportMetric(float64(r.established)/r.wall.Seconds(), "handshakes/s")
	b.ReportMetric(float64(r.established), "established")
	b.ReportMetric(r.hubAllUp.Seconds(), "hub-allup-s")
	b.ReportMetric(r.hubCPU.Seconds(), "hub-cpu-s")
}

func firstFailure(run *results.Run) string {
	for _, h := range run.Handshakes {
		if h.Outcome != OutcomeEstablished {
			return h.Initiator + ": " + h.Reason
		}
	}
	return "none recorded"
}

// resetPeakRSS resets the kernel's peak resident set of this process
// (Linux: writing 5 to clear_refs resets VmHWM).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM from /proc/self/status in bytes (0 if unknown).
func peakRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// heapSampler records the largest Go heap seen. With
// PQLAB_SCALE_HEAPPROFILE set to a file name it also writes a heap profile
// there each time the peak grows by a tenth, so the file ends up
// describing the heap near its peak (go tool pprof -sample_index
// inuse_space).
type heapSampler struct {
	done     chan struct{}
	wg       sync.WaitGroup
	peak     uint64 // heap objects, live and not yet swept
	peakLive uint64 // live heap marked by a GC cycle
}

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.WriteHeapProfile(f)
}

const (
	heapMetric = "/memory/classes/heap/objects:bytes"
	liveMetric = "/gc/heap/live:bytes"
)

func startHeapSampler(every time.Duration) *heapSampler {
	s := &heapSampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sample := []metrics.Sample{{Name: heapMetric}, {Name: liveMetric}}
		t := time.NewTicker(every)
		defer t.Stop()
		profile := os.Getenv("PQLAB_SCALE_HEAPPROFILE")
		var profiled uint64
		for {
			metrics.Read(sample)
			s.peak = max(s.peak, sample[0].Value.Uint64())
			s.peakLive = max(s.peakLive, sample[1].Value.Uint64())
			if profile != "" && s.peak > profiled+profiled/10 {
				profiled = s.peak
				writeHeapProfile(profile)
			}
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *heapSampler) stop() (peak, live uint64) {
	close(s.done)
	s.wg.Wait()
	return s.peak, s.peakLive
}

const realtimePair = "../../../topologies/realtime-pair.toml"

// TestRealtimeThroughput is a short real-time run: the tunnel comes up on
// the wall clock and both TCP flows move data, the ESP one sealed, the
// plain one not (RunRealtime checks that).
func TestRealtimeThroughput(t *testing.T) {
	run, err := RunRealtime(Spec{Topology: realtimePair}, Realtime{Window: 400 * time.Millisecond, Warmup: 300 * time.Millisecond, Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Throughput) != 1 {
		t.Fatalf("throughput records: %+v", run.Throughput)
	}
	tp := run.Throughput[0]
	if tp.Gbps <= 0 || tp.BaselineGbps <= 0 || tp.Cipher != "aes256gcm16" || tp.PacketSize != 1432 {
		t.Fatalf("throughput %+v", tp)
	}
	t.Logf("ESP %.3f Gbit/s, plain %.3f Gbit/s (%s)", tp.Gbps, tp.BaselineGbps, run.Params["flow"])
}

// BenchmarkRealtimeThroughput is the end-to-end data-plane benchmark of
// issue 4 on the simulator: TCP bulk between LAN hosts of realtime-pair.toml
// through the ESP tunnel, and plain forwarding through the same gateways
// as the baseline, three 2-second windows of each, interleaved. It
// reports the medians.
func BenchmarkRealtimeThroughput(b *testing.B) {
	for i := 0; i < b.N; i++ {
		run, err := RunRealtime(Spec{Topology: realtimePair}, Realtime{})
		if err != nil {
			b.Fatal(err)
		}
		tp := run.Throughput[0]
		b.ReportMetric(tp.Gbps, "esp-Gbit/s")
		b.ReportMetric(tp.BaselineGbps, "plain-Gbit/s")
		b.ReportMetric(tp.Gbps/tp.BaselineGbps, "esp/plain")
		b.Logf("%s: ESP windows %s, plain windows %s Gbit/s", tp.Cipher, run.Params["esp_gbps"], run.Params["plain_gbps"])
	}
}
