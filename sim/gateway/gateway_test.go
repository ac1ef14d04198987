package gateway

import (
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
		g, err := New(b.Nodes[name], Config{Engine: cfg, Addr: b.Addr(name), Hooks: hooks})
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
