package lab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pqlab/pqlab/cmd/internal/results"
	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/sim"
	"github.com/pqlab/pqlab/sim/gateway"
	"github.com/pqlab/pqlab/sim/topology"
)

// Realtime configures a real-time data-plane run (RunRealtime).
type Realtime struct {
	// From and To are gateways with at least two LAN hosts each (default:
	// the first initiator and its first peer). TCP bulk from From-h1 to
	// To-h1 crosses the ESP tunnel; From-h2 to To-h2 is forwarded in the
	// clear through the same gateways, links and fabric: the baseline.
	From, To string
	// Window is each measurement's length (default 2 s), after a warm-up
	// of Warmup (default 300 ms) that is not counted.
	Window, Warmup time.Duration
	// Rounds is the number of ESP and plain measurements, interleaved
	// (default 3 of each).
	Rounds int
	// Setup bounds the wait for the tunnel (default 30 s).
	Setup time.Duration
}

// RealtimeDefaults are the defaults of Realtime's zero fields.
var RealtimeDefaults = Realtime{Window: 2 * time.Second, Warmup: 300 * time.Millisecond, Rounds: 3, Setup: 30 * time.Second}

// realtimeGap separates measurements so that one flow's tail does not
// overlap the next.
const realtimeGap = 200 * time.Millisecond

// Ports of the bulk transfers.
const (
	portBulkESP   = 5001
	portBulkPlain = 5002
)

// ipTCPOverhead is the IPv4 and TCP header octets of a full segment.
const ipTCPOverhead = 40

// RunRealtime runs a topology on the wall clock (sim.NewRealtimeScheduler)
// and measures data-plane throughput: TCP bulk through the ESP tunnel
// between a LAN host behind rt.From and one behind rt.To, and, interleaved
// in the same run, plain forwarding between two other LAN hosts of the
// same gateways. The tunnel carries only the first hosts' /30s (the Child
// SA's traffic selectors), so the second pair's packets take the same
// gateways in the clear. Segments are capped so that inner packets fit the
// tunnel MTU (no fragmentation on either path). The node CPU models only
// count in real time; the host's processors do the work.
//
// The record holds one results.Throughput (median Gbit/s of the ESP
// windows, the plain median as the baseline); Params list each window. A
// real-time run is not deterministic.
func RunRealtime(spec Spec, rt Realtime) (*results.Run, error) {
	rt = realtimeDefaults(rt)
	top, err := Load(spec)
	if err != nil {
		return nil, err
	}
	seed := top.Seed
	if spec.Seed != 0 {
		seed = spec.Seed
	}
	if err := pickPair(top, &rt); err != nil {
		return nil, err
	}
	peers, err := models.LoadPeers(filepath.Join(modelsDir(spec), "peers"))
	if err != nil {
		return nil, err
	}
	b, err := topology.Build(top, topology.BuildOptions{Seed: seed, Realtime: true})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	h1 := func(gw string) netip.Addr { return b.Addr(gw + "-h1") }
	h2 := func(gw string) netip.Addr { return b.Addr(gw + "-h2") }
	lan := func(n *topology.Node) []netip.Prefix {
		if n.Name == rt.From || n.Name == rt.To {
			return []netip.Prefix{netip.PrefixFrom(h1(n.Name), 30).Masked()}
		}
		if n.LAN.IsValid() {
			return []netip.Prefix{n.LAN}
		}
		return []netip.Prefix{netip.PrefixFrom(b.Addr(n.Name), 32)}
	}
	p, err := planIKE(top, peers, "pqlab-"+top.Name, b.Addr, lan, spec.Warn)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	gws := map[string]*gateway.Gateway{}
	suiteName := ""
	hooks := gateway.Hooks{Event: func(g *gateway.Gateway, _ time.Time, ev ike.Event) {
		if ev.Kind == ike.EventChildSAInstalled && g.Name() == rt.From && ev.Child != nil && suiteName == "" {
			s := ev.Child.Suite
			suiteName = strings.TrimSuffix(s.String(), "-noesn")
		}
	}}
	for _, n := range top.Gateways() {
		g, err := gateway.New(b.Nodes[n.Name], gateway.Config{Engine: p.configs[n.Name], Addr: b.Addr(n.Name), Hooks: hooks})
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		gws[n.Name] = g
	}
	mss := int(gateway.DefaultTunnelMTU) - ipTCPOverhead
	to := b.Nodes[rt.To+"-h1"]
	sinkESP, err := to.ListenTCPSink(netip.AddrPortFrom(h1(rt.To), portBulkESP), mss)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer sinkESP.Close()
	sinkPlain, err := b.Nodes[rt.To+"-h2"].ListenTCPSink(netip.AddrPortFrom(h2(rt.To), portBulkPlain), mss)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer sinkPlain.Close()
	if err := b.Start(); err != nil {
		return nil, err
	}

	// Bring the tunnels up and wait for From's Child SA.
	net := b.Net
	s := net.Scheduler()
	net.At(0, func() {
		for _, n := range top.Gateways() {
			for _, peer := range p.initiate[n.Name] {
				if _, err := gws[n.Name].Initiate(peer); err != nil && spec.Warn != nil {
					spec.Warn(err.Error())
				}
			}
		}
	})
	for gws[rt.From].ChildSAs() == 0 || gws[rt.To].ChildSAs() == 0 {
		if s.Elapsed() > rt.Setup {
			return nil, fmt.Errorf("lab: realtime: no Child SA between %s and %s after %v", rt.From, rt.To, rt.Setup)
		}
		net.Run(s.Elapsed() + 10*time.Millisecond)
	}

	// Interleaved windows: ESP, plain, plain, ESP, ESP, plain ... so that
	// neither flow always runs first.
	type window struct {
		esp                bool
		bulk               *sim.TCPBulk
		b0, b1             uint64
		t0, t1             time.Time
		espSent0, espSent1 uint64
	}
	var windows []*window
	for i := 0; i < rt.Rounds; i++ {
		first := i%2 == 0
		windows = append(windows, &window{esp: first}, &window{esp: !first})
	}
	at := s.Elapsed() + realtimeGap
	var startErr error
	for _, w := range windows {
		w := w
		src, sink, dst := rt.From+"-h2", sinkPlain, netip.AddrPortFrom(h2(rt.To), portBulkPlain)
		if w.esp {
			src, sink, dst = rt.From+"-h1", sinkESP, netip.AddrPortFrom(h1(rt.To), portBulkESP)
		}
		node := b.Nodes[src]
		net.At(at, func() {
			bulk, err := node.StartTCPBulk(dst, sim.TCPBulkOptions{MSS: mss, Abort: true})
			if err != nil && startErr == nil {
				startErr = err
			}
			w.bulk = bulk
		})
		net.At(at+rt.Warmup, func() {
			w.b0, w.t0, w.espSent0 = sink.Bytes(), time.Now(), gws[rt.From].Stats().ESPSent
		})
		net.At(at+rt.Warmup+rt.Window, func() {
			w.b1, w.t1, w.espSent1 = sink.Bytes(), time.Now(), gws[rt.From].Stats().ESPSent
			if w.bulk != nil {
				w.bulk.Halt()
			}
		})
		at += rt.Warmup + rt.Window + realtimeGap
	}
	net.Run(at)
	if startErr != nil {
		return nil, fmt.Errorf("lab: realtime: %w", startErr)
	}
	var espG, plainG []float64
	for _, w := range windows {
		if err := w.bulk.Stop(); err != nil {
			return nil, fmt.Errorf("lab: realtime: bulk transfer: %w", err)
		}
		gbps := float64(w.b1-w.b0) * 8 / w.t1.Sub(w.t0).Seconds() / 1e9
		sealed := w.espSent1 - w.espSent0
		// A window's packets went through ESP or they did not: the plain
		// flow must not touch the tunnel (pings of the topology may).
		if w.esp {
			// (Half: packets in flight at either end of the window are
			// sealed in one window and counted in another.)
			if want := (w.b1 - w.b0) / uint64(mss) / 2; sealed < want {
				return nil, fmt.Errorf("lab: realtime: %d ESP packets sealed for %d octets of tunnel traffic", sealed, w.b1-w.b0)
			}
			espG = append(espG, gbps)
		} else {
			if sealed > (w.b1-w.b0)/uint64(mss)/100 {
				return nil, fmt.Errorf("lab: realtime: the plain flow was sealed (%d ESP packets)", sealed)
			}
			plainG = append(plainG, gbps)
		}
	}
	if suiteName == "" {
		suiteName = "unknown"
	}
	run := &results.Run{
		Name:       spec.Name,
		Topology:   spec.Topology,
		Seed:       int64(seed),
		DurationNs: int64(s.Elapsed()),
		Params:     map[string]string{},
		Throughput: []results.Throughput{{Cipher: suiteName, PacketSize: mss + ipTCPOverhead,
			Gbps: median(espG), BaselineGbps: median(plainG)}},
	}
	if run.Name == "" {
		run.Name = top.Name + " realtime"
	}
	for k, v := range spec.Params {
		run.Params[k] = v
	}
	run.Params["mode"] = "realtime"
	run.Params["flow"] = fmt.Sprintf("tcp %s-h1 -> %s-h1 (esp), %s-h2 -> %s-h2 (plain)", rt.From, rt.To, rt.From, rt.To)
	run.Params["esp_gbps"] = joinFloats(espG)
	run.Params["plain_gbps"] = joinFloats(plainG)
	run.Params["window"] = rt.Window.String()
	return run, nil
}

func realtimeDefaults(rt Realtime) Realtime {
	d := RealtimeDefaults
	if rt.Window <= 0 {
		rt.Window = d.Window
	}
	if rt.Warmup <= 0 {
		rt.Warmup = d.Warmup
	}
	if rt.Rounds <= 0 {
		rt.Rounds = d.Rounds
	}
	if rt.Setup <= 0 {
		rt.Setup = d.Setup
	}
	return rt
}

// pickPair fills in and checks the gateways of a real-time run.
func pickPair(top *topology.Topology, rt *Realtime) error {
	if rt.From == "" {
		for _, n := range top.Gateways() {
			if (n.Engine.Role == topology.RoleInitiator || n.Engine.Role == topology.RoleBoth) && len(n.Engine.Peers) > 0 {
				rt.From = n.Name
				if rt.To == "" {
					rt.To = n.Engine.Peers[0]
				}
				break
			}
		}
	}
	for _, gw := range []string{rt.From, rt.To} {
		n := top.Node(gw)
		if n == nil || n.Kind != topology.KindGateway {
			return fmt.Errorf("lab: realtime: %q is not a gateway of %s", gw, top.Path)
		}
		for _, h := range []string{gw + "-h1", gw + "-h2"} {
			if top.Node(h) == nil {
				return fmt.Errorf("lab: realtime: gateway %s needs two LAN hosts (lan_hosts = 2): no %s", gw, h)
			}
		}
	}
	if rt.From == rt.To {
		return fmt.Errorf("lab: realtime: from and to are both %s", rt.From)
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func joinFloats(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, strconv.FormatFloat(x, 'f', 3, 64))
	}
	return strings.Join(parts, " ")
}
