package gateway

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/sim"
	"github.com/pqlab/pqlab/sim/topology"
)

const twoSites = `name = "t"
seed = 7
duration = "20s"

[[node]]
name = "inet"
kind = "internet"

[[node]]
name = "gw-a"
kind = "gateway"
cpu = "cloud-vm-4"
lan_hosts = 1

[[node]]
name = "gw-b"
kind = "gateway"
cpu = "branch-appliance"
lan_hosts = 1

[[link]]
a = "gw-a"
b = "inet"
delay = "5ms"

[[link]]
a = "gw-b"
b = "inet"
delay = "15ms"
`

type pair struct {
	b      *topology.Built
	a, r   *Gateway
	events map[string][]ike.Event
	sent   map[string]int
	cost   map[string]time.Duration
}

func loadPeer(t testing.TB, name string) *models.Peer {
	t.Helper()
	p, err := models.LoadPeer("../../models/peers/" + name + ".toml")
	require.NoError(t, err)
	return p
}

// newPair builds two-sites with gw-a initiating to gw-b.
func newPair(t testing.TB, src string, proposals []string) *pair {
	t.Helper()
	return newPairRoutes(t, src, proposals, RouteAuto)
}

// newPairRoutes is newPair with the gateways' route mode.
func newPairRoutes(t testing.TB, src string, proposals []string, routes RouteMode) *pair {
	t.Helper()
	top, err := topology.Parse("t.toml", []byte(src), topology.LoadOptions{ModelsDir: "../../models"})
	require.NoError(t, err)
	b, err := topology.Build(top, topology.BuildOptions{})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	p := &pair{b: b, events: map[string][]ike.Event{}, sent: map[string]int{}, cost: map[string]time.Duration{}}
	hooks := Hooks{
		Event: func(g *Gateway, _ time.Time, ev ike.Event) { p.events[g.Name()] = append(p.events[g.Name()], ev) },
		Sent:  func(g *Gateway, _ time.Time, d ike.Datagram) { p.sent[g.Name()]++ },
		Cost:  func(g *Gateway, _ ike.SAID, c time.Duration) { p.cost[g.Name()] += c },
	}
	sw := loadPeer(t, "strongswan-6")
	lanA, lanB := top.Node("gw-a").LAN, top.Node("gw-b").LAN
	mk := func(name, peer string, ini bool, local, remote netip.Prefix) *Gateway {
		c := Connection{Peer: peer, Initiate: ini, LocalTS: []netip.Prefix{local}, RemoteTS: []netip.Prefix{remote}}
		if ini {
			c.Remote = b.Addr(peer)
		}
		cfg, err := EngineConfig(sw, NodeSpec{Name: name, Addr: b.Addr(name), Proposals: proposals, PSK: "secret", Connections: []Connection{c}})
		require.NoError(t, err)
		g, err := New(b.Nodes[name], Config{Engine: cfg, Addr: b.Addr(name), Hooks: hooks, Routes: routes})
		require.NoError(t, err)
		return g
	}
	p.a = mk("gw-a", "gw-b", true, lanA, lanB)
	p.r = mk("gw-b", "gw-a", false, lanB, lanA)
	return p
}

func kinds(evs []ike.Event) []ike.EventKind {
	var out []ike.EventKind
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

func TestHybridHandshakeAndPing(t *testing.T) {
	p := newPair(t, twoSites, []string{"aes256gcm16-prfsha384-x25519-ke1_mlkem768"})
	net := p.b.Net
	net.At(time.Second, func() {
		_, err := p.a.Initiate("gw-b")
		require.NoError(t, err)
	})
	host := p.b.Nodes["gw-a-h1"]
	pg, err := host.Ping(p.b.Addr("gw-b-h1"), sim.PingOptions{Count: 5, Interval: time.Second, Start: 3 * time.Second})
	require.NoError(t, err)
	net.Run(10 * time.Second)

	require.Equal(t, []ike.EventKind{ike.EventIKESAEstablished, ike.EventChildSAInstalled}, kinds(p.events["gw-a"]))
	require.Equal(t, []ike.EventKind{ike.EventIKESAEstablished, ike.EventChildSAInstalled}, kinds(p.events["gw-b"]))
	require.Equal(t, 1, p.a.ChildSAs())
	require.Equal(t, 1, p.r.ChildSAs())
	require.Equal(t, "aes256gcm16-prfsha384-x25519-ke1_mlkem768", p.events["gw-a"][0].Suite.String())
	ch := p.events["gw-a"][1].Child
	require.False(t, ch.Encap, "no NAT: raw ESP")

	st := pg.Stats()
	require.EqualValues(t, 5, st.Sent)
	require.EqualValues(t, 5, st.Received, "pings through the tunnel")
	sa, sb := p.a.Stats(), p.r.Stats()
	require.EqualValues(t, 5, sa.ESPSent)
	require.EqualValues(t, 5, sa.ESPReceived)
	require.EqualValues(t, 5, sb.ESPSent)
	require.EqualValues(t, 5, sb.ESPReceived)
	require.Zero(t, sa.ESPDropped+sb.ESPDropped)
	require.EqualValues(t, 5, p.a.Tunnel().TxPackets.Load())
	require.Zero(t, sa.CostErrors+sb.CostErrors, "every operation has a cost")
	// RTT: 2*(5+15) ms on the wire each way plus CPU time for ESP.
	require.Greater(t, st.MinRTT, 40*time.Millisecond)
	require.Less(t, st.MinRTT, 45*time.Millisecond)

	// IKE_SA_INIT, IKE_INTERMEDIATE (the ML-KEM-768 key fits one
	// 1280-octet datagram), IKE_AUTH: three requests, three responses.
	require.Equal(t, 3, p.sent["gw-a"])
	require.Equal(t, 3, p.sent["gw-b"])
	require.Positive(t, p.cost["gw-a"])
	require.Greater(t, p.cost["gw-b"], p.cost["gw-a"], "the branch appliance is slower")
	m, ok := p.a.Engine().Metrics(p.events["gw-a"][0].SA)
	require.True(t, ok)
	require.EqualValues(t, 3, m.RoundTrips)
}

// tunnelRoutes returns the destinations the gateway's stack routes into
// its tunnel NIC.
func tunnelRoutes(g *Gateway) []string {
	var out []string
	for _, r := range g.Node().Stack().GetRouteTable() {
		if r.NIC == g.Tunnel().ID() {
			out = append(out, r.Destination.String())
		}
	}
	return out
}

func TestSummaryRoutes(t *testing.T) {
	for _, mode := range []RouteMode{RoutePerChild, RouteSummary} {
		t.Run(mode.String(), func(t *testing.T) {
			p := newPairRoutes(t, twoSites, []string{"aes256gcm16-prfsha384-x25519-ke1_mlkem768"}, mode)
			lanA := p.b.Topology.Node("gw-a").LAN
			if mode == RouteSummary {
				require.Equal(t, []netip.Prefix{lanA}, p.r.SummaryRoutes())
				require.Equal(t, []string{lanA.String()}, tunnelRoutes(p.r), "routed before any SA")
			} else {
				require.Empty(t, p.r.SummaryRoutes())
				require.Empty(t, tunnelRoutes(p.r))
			}
			net := p.b.Net
			// A ping from gw-b's LAN before the SA: in the clear with
			// per-child routes, dropped in the tunnel with summary routes.
			early, err := p.b.Nodes["gw-b-h1"].Ping(p.b.Addr("gw-a-h1"), sim.PingOptions{Count: 1, Start: 500 * time.Millisecond})
			require.NoError(t, err)
			net.At(time.Second, func() {
				_, err := p.a.Initiate("gw-b")
				require.NoError(t, err)
			})
			pg, err := p.b.Nodes["gw-a-h1"].Ping(p.b.Addr("gw-b-h1"), sim.PingOptions{Count: 3, Interval: time.Second, Start: 3 * time.Second})
			require.NoError(t, err)
			net.Run(8 * time.Second)
			require.EqualValues(t, 3, pg.Stats().Received)
			require.Equal(t, []string{lanA.String()}, tunnelRoutes(p.r), "one route either way once the SA is up")
			if mode == RouteSummary {
				require.Zero(t, early.Stats().Received)
				require.EqualValues(t, 1, p.r.Stats().ESPDropped, "no SA yet")
			} else {
				require.EqualValues(t, 1, early.Stats().Received)
			}
			// A crash takes every route; a restart brings the summary back.
			p.r.Crash()
			require.Empty(t, tunnelRoutes(p.r))
			require.NoError(t, p.r.Restart())
			if mode == RouteSummary {
				require.Equal(t, []string{lanA.String()}, tunnelRoutes(p.r))
			} else {
				require.Empty(t, tunnelRoutes(p.r))
			}
		})
	}
}

func TestSummaryRefusesOwnAddress(t *testing.T) {
	top, err := topology.Parse("t.toml", []byte(twoSites), topology.LoadOptions{ModelsDir: "../../models"})
	require.NoError(t, err)
	b, err := topology.Build(top, topology.BuildOptions{})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	all := netip.MustParsePrefix("0.0.0.0/0")
	c := Connection{Peer: "gw-b", Initiate: true, Remote: b.Addr("gw-b"), LocalTS: []netip.Prefix{top.Node("gw-a").LAN}, RemoteTS: []netip.Prefix{all}}
	cfg, err := EngineConfig(loadPeer(t, "strongswan-6"), NodeSpec{Name: "gw-a", Addr: b.Addr("gw-a"), PSK: "s", Connections: []Connection{c}})
	require.NoError(t, err)
	_, err = New(b.Nodes["gw-a"], Config{Engine: cfg, Addr: b.Addr("gw-a"), Routes: RouteSummary})
	require.ErrorContains(t, err, "summary routes would capture")
}

func TestSummarize(t *testing.T) {
	p := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	require.Equal(t, p("10.0.0.0/22"), summarize(p("10.0.3.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.0.0/24", "10.0.2.128/25")))
	require.Equal(t, p("10.0.0.0/23", "10.0.2.0/24"), summarize(p("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24")))
	require.Equal(t, p("10.0.1.0/24", "10.0.2.0/24"), summarize(p("10.0.1.0/24", "10.0.2.0/24")), "not siblings")
	require.Equal(t, p("10.0.0.0/24", "fd00::/63"), summarize(p("fd00::/64", "10.0.0.0/24", "fd00:0:0:1::/64")))
	require.Nil(t, summarize(nil))

	// 10,000 spoke LANs numbered from 10.0.1.0/24 (hub-spoke topologies)
	// become a handful of routes.
	var lans []netip.Prefix
	for i := 1; i <= 10000; i++ {
		lans = append(lans, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	sum := summarize(lans)
	require.Len(t, sum, 18) // 10.0.1.0/24 ... 10.39.16.0/24: two prefixes per bit of the range
	set := newPrefixSet(sum)
	for _, l := range lans {
		require.True(t, set.covers(l), l)
	}
	require.False(t, set.covers(p("10.0.0.0/24")[0]))
	require.False(t, set.covers(p("10.39.17.0/24")[0]))
	require.False(t, set.covers(p("10.0.0.0/8")[0]), "wider than the summary")

	// Random sets in a small space: the union is unchanged, the result
	// disjoint and without mergeable siblings.
	r := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 200; trial++ {
		var ps []netip.Prefix
		for i := r.IntN(30); i >= 0; i-- {
			a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(256))})
			ps = append(ps, netip.PrefixFrom(a, 22+r.IntN(11)).Masked())
		}
		sum := summarize(ps)
		in := func(set []netip.Prefix, a netip.Addr) bool {
			for _, q := range set {
				if q.Contains(a) {
					return true
				}
			}
			return false
		}
		for i := 0; i < 1024; i++ {
			a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
			require.Equal(t, in(ps, a), in(sum, a), "trial %d: %v", trial, a)
		}
		for i, x := range sum {
			for j, y := range sum {
				if i != j {
					require.False(t, x.Overlaps(y), "%v %v", x, y)
					require.NotEqual(t, sibling(x), y)
				}
			}
		}
	}
}

// TestHubSummaryRoutes: a hub with 70 spokes (RouteAuto picks summary
// routes at AutoSummaryPeers) keeps a handful of tunnel routes whatever
// the number of Child SAs, and every spoke's pings cross the tunnels.
func TestHubSummaryRoutes(t *testing.T) {
	const spokes = 70
	src := `name = "hub70"
seed = 3
duration = "30s"

[[node]]
name = "inet"
kind = "internet"

[[node]]
name = "hub"
kind = "gateway"
cpu = "hub-server"
lan_hosts = 1

[[link]]
a = "hub"
b = "inet"
delay = "1ms"

[[group]]
name = "s"
count = 70
kind = "gateway"
cpu = "branch-appliance"
lan_hosts = 1

  [group.uplink]
  to = "inet"
  delay = "uniform(5ms,20ms)"

  [[group.traffic]]
  kind = "ping"
  to = "hub-h1"
  start = "5s"
  interval = "1s"
  count = 3
`
	top, err := topology.Parse("hub70.toml", []byte(src), topology.LoadOptions{ModelsDir: "../../models"})
	require.NoError(t, err)
	b, err := topology.Build(top, topology.BuildOptions{})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	sw := loadPeer(t, "strongswan-6")
	proposals := []string{"aes256gcm16-prfsha384-x25519-ke1_mlkem768"}
	hubLAN := top.Node("hub").LAN
	var hubConns []Connection
	var spokeGws []*Gateway
	for i := 1; i <= spokes; i++ {
		name := fmt.Sprintf("s-%02d", i)
		lan := top.Node(name).LAN
		hubConns = append(hubConns, Connection{Peer: name, LocalTS: []netip.Prefix{hubLAN}, RemoteTS: []netip.Prefix{lan}})
		cfg, err := EngineConfig(sw, NodeSpec{Name: name, Addr: b.Addr(name), Proposals: proposals, PSK: "k",
			Connections: []Connection{{Peer: "hub", Initiate: true, Remote: b.Addr("hub"), LocalTS: []netip.Prefix{lan}, RemoteTS: []netip.Prefix{hubLAN}}}})
		require.NoError(t, err)
		g, err := New(b.Nodes[name], Config{Engine: cfg, Addr: b.Addr(name)})
		require.NoError(t, err)
		spokeGws = append(spokeGws, g)
	}
	cfg, err := EngineConfig(sw, NodeSpec{Name: "hub", Addr: b.Addr("hub"), Proposals: proposals, PSK: "k", Connections: hubConns})
	require.NoError(t, err)
	hub, err := New(b.Nodes["hub"], Config{Engine: cfg, Addr: b.Addr("hub")})
	require.NoError(t, err)
	sum := hub.SummaryRoutes()
	require.NotEmpty(t, sum)
	require.Less(t, len(sum), 10, "70 consecutive /24s summarise to a few prefixes: %v", sum)
	require.Empty(t, spokeGws[0].SummaryRoutes(), "one connection: per-child routes")
	require.NoError(t, b.Start())
	b.Net.At(time.Second, func() {
		for _, g := range spokeGws {
			_, err := g.Initiate("hub")
			require.NoError(t, err)
		}
	})
	b.Net.Run(10 * time.Second)
	require.Equal(t, spokes, hub.ChildSAs())
	require.Len(t, tunnelRoutes(hub), len(sum), "no route per Child SA")
	for i := 1; i <= spokes; i++ {
		st := b.Pingers[fmt.Sprintf("s-%02d-h1", i)][0].Stats()
		require.EqualValues(t, 3, st.Received, "spoke %d", i)
	}
	require.EqualValues(t, 3*spokes, hub.Stats().ESPSent)
}
