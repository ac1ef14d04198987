package topology

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/sim"
)

func build(t *testing.T, file string) *Built {
	t.Helper()
	top, err := Load("../../topologies/"+file, LoadOptions{})
	require.NoError(t, err)
	b, err := Build(top, BuildOptions{})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b
}

func TestBuildTwoSites(t *testing.T) {
	b := build(t, "two-sites.toml")
	require.NoError(t, b.Start())
	b.Net.Run(30 * time.Second)
	ps := b.Pingers["gw-a-h1"]
	require.Len(t, ps, 1)
	st := ps[0].Stats()
	require.EqualValues(t, 26, st.Sent)
	require.GreaterOrEqual(t, st.Received, uint64(25))
	// fibre 2 ms + DSL 8 ms each way, plus jitter and serialization.
	require.InDelta(t, float64(20*time.Millisecond), float64(st.MeanRTT()), float64(3*time.Millisecond))
	require.Equal(t, KindGateway, b.Topology.Node("gw-a").Kind)
	require.Equal(t, "gw-b", b.Topology.Node("gw-a").Engine.Peers[0])
	require.Equal(t, RoleInitiator, b.Topology.Node("gw-a").Engine.Role)
	require.True(t, b.Topology.Node("gw-a").LAN.Contains(b.Addr("gw-a-h1")))
	require.EqualValues(t, 1492, b.Links["gw-b-inet"].MTU())
}

func TestBuildHubSpoke10(t *testing.T) {
	b := build(t, "hub-spoke-10.toml")
	require.NoError(t, b.Start())
	b.Net.Run(60 * time.Second)
	require.Len(t, b.Pingers, 10)
	var delays []time.Duration
	for i := 1; i <= 10; i++ {
		n := b.Topology.Node(fmt.Sprintf("branch-%02d", i))
		require.NotNil(t, n)
		st := b.Pingers[n.Name+"-h1"][0].Stats()
		require.GreaterOrEqual(t, st.Sent, uint64(4))
		require.GreaterOrEqual(t, st.Received+1, st.Sent, "at most one loss on DSL")
		up := b.Links[n.Name+"-inet"].Impairments(0).Delay
		require.GreaterOrEqual(t, up, 10*time.Millisecond)
		require.LessOrEqual(t, up, 120*time.Millisecond)
		delays = append(delays, up)
		// RTT = 2 x (branch uplink + hub link 0.5 ms), plus DSL jitter of
		// up to 1 ms each way and serialization.
		require.InDelta(t, float64(2*(up+500*time.Microsecond)), float64(st.MinRTT), float64(3*time.Millisecond))
	}
	require.NotEqual(t, delays[0], delays[1], "delays are drawn per branch")
}

func TestBuildNATBranches(t *testing.T) {
	b := build(t, "nat-branches.toml")
	require.NoError(t, b.Start())
	b.Net.Run(40 * time.Second)
	require.Len(t, b.NATs, 5)
	for name, nat := range b.NATs {
		st := nat.Stats()
		require.Positive(t, st.Outbound, name)
		require.Positive(t, st.Inbound, name)
		require.Equal(t, "30s", nat.Config().Timeout.String())
	}
	for _, ps := range b.Pingers {
		st := ps[0].Stats()
		require.Positive(t, st.Received)
	}
	// The hub sees the branches from their NATs' outside addresses.
	nat := b.NATs["branch-1-nat"]
	require.True(t, b.Topology.Links[0].Subnet.IsValid())
	require.Equal(t, nat.Config().External, b.linkAddr(t, "branch-1-nat-inet", 0))
}

func (b *Built) linkAddr(t *testing.T, link string, side int) netip.Addr {
	for _, lk := range b.Topology.Links {
		if lk.Name == link {
			return hostAddr(lk.Subnet, side)
		}
	}
	t.Fatalf("no link %s", link)
	return netip.Addr{}
}

func TestBuildFragmentDropping(t *testing.T) {
	b := build(t, "fragment-dropping.toml")
	require.NoError(t, b.Start())
	b.Net.Run(10 * time.Second)
	sink := b.Sinks["gw-b-h1:9000"]
	require.NotNil(t, sink)
	require.Zero(t, sink.Stats().Received, "1428-byte datagrams are fragmented at the 1280 link and dropped")
	st := b.Links["isp-gw-b"].Stats(0)
	require.Positive(t, st.Drops[sim.DropFragment])
	require.Equal(t, st.Drops[sim.DropFragment], st.Fragments)
	require.Positive(t, b.Links["gw-a-isp"].Stats(0).Delivered)

	// The same path carries datagrams that fit in 1280 bytes.
	top, err := Load("../../topologies/fragment-dropping.toml", LoadOptions{})
	require.NoError(t, err)
	top.Node("gw-a-h1").Traffic[0].Size = 1200
	b2, err := Build(top, BuildOptions{})
	require.NoError(t, err)
	defer b2.Close()
	require.NoError(t, b2.Start())
	b2.Net.Run(10 * time.Second)
	require.EqualValues(t, 9, b2.Sinks["gw-b-h1:9000"].Stats().Received)
	require.Zero(t, b2.Links["isp-gw-b"].Stats(0).Fragments)
}

func TestBuildDualHubFailover(t *testing.T) {
	b := build(t, "dual-hub-failover.toml")
	var got []Event
	b.OnEvent = func(ev Event) { got = append(got, ev) }
	require.NoError(t, b.Start())
	sink := func() uint64 { return b.Sinks["hub1-h1:9000"].Stats().Received }
	b.Net.Run(30 * time.Second)
	before := sink()
	require.Positive(t, before)
	b.Net.Run(89 * time.Second)
	during := sink()
	require.Less(t, during-before, uint64(20), "only packets in flight at 30 s arrive")
	b.Net.Run(120 * time.Second)
	require.Greater(t, sink()-during, uint64(1000), "traffic resumes at 90 s")
	require.Len(t, got, 3)
	require.Equal(t, EventFailover, got[1].Action)
	require.Equal(t, "hub2", got[1].Value)
}

func TestBuildIPv6(t *testing.T) {
	src := `seed = 1
ipv6 = true
[[node]]
name = "inet"
kind = "internet"
[[node]]
name = "a"
kind = "gateway"
lan_hosts = 2
[[node]]
name = "b"
kind = "router"
lan_hosts = 1
[[link]]
a = "a"
b = "inet"
delay = "5ms"
[[link]]
a = "b"
b = "inet"
delay = "7ms"
[[link]]
a = "x"
b = "inet"
mtu = 1000
[[node]]
name = "x"
`
	top, err := Parse("v6.toml", []byte(src), LoadOptions{ModelsDir: "../../models"})
	require.NoError(t, err)
	b, err := Build(top, BuildOptions{})
	require.NoError(t, err)
	defer b.Close()
	require.True(t, b.Addr6("a-h2").IsValid())
	require.False(t, b.Addr6("x").IsValid(), "no IPv6 on a 1000-byte link")
	require.True(t, top.Node("a").LAN6.Contains(b.Addr6("a-h2")))
	p6, err := b.Nodes["a-h2"].Ping(b.Addr6("b-h1"), sim.PingOptions{Count: 3, Interval: 100 * time.Millisecond})
	require.NoError(t, err)
	p4, err := b.Nodes["x"].Ping(b.Addr("a-h1"), sim.PingOptions{Count: 3, Interval: 100 * time.Millisecond})
	require.NoError(t, err)
	b.Net.Run(2 * time.Second)
	require.EqualValues(t, 3, p6.Stats().Received)
	require.Equal(t, 24*time.Millisecond, p6.Stats().MinRTT)
	require.EqualValues(t, 3, p4.Stats().Received)
	require.Equal(t, 10*time.Millisecond, p4.Stats().MinRTT)
}

// TestCompactLANs shrinks the LAN pool to four /24s: five gateways with
// LAN hosts then get compact LANs (a /29 for one host, a /28 for two),
// and the network still routes between them.
func TestCompactLANs(t *testing.T) {
	saved := LANPool
	LANPool = netip.MustParsePrefix("10.9.0.0/22")
	t.Cleanup(func() { LANPool = saved })
	src := `name = "compact"
duration = "5s"

[[node]]
name = "inet"
kind = "internet"

[[node]]
name = "big"
kind = "router"
lan_hosts = 2

[[link]]
a = "big"
b = "inet"

[[group]]
name = "g"
count = 4
kind = "router"
lan_hosts = 1

  [group.uplink]
  to = "inet"

  [[group.traffic]]
  kind = "ping"
  to = "big-h2"
  start = "1s"
  count = 3
`
	top, err := Parse("compact.toml", []byte(src), LoadOptions{ModelsDir: "../../models"})
	require.NoError(t, err)
	require.Equal(t, "10.9.0.0/28", top.Node("big").LAN.String())
	var lans []string
	for i := 1; i <= 4; i++ {
		lans = append(lans, top.Node(fmt.Sprintf("g-%d", i)).LAN.String())
	}
	require.Equal(t, []string{"10.9.0.16/29", "10.9.0.24/29", "10.9.0.32/29", "10.9.0.40/29"}, lans)
	b, err := Build(top, BuildOptions{})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, b.Start())
	b.Net.Run(5 * time.Second)
	for i := 1; i <= 4; i++ {
		n := fmt.Sprintf("g-%d-h1", i)
		require.True(t, top.Node(fmt.Sprintf("g-%d", i)).LAN.Contains(b.Addr(n)))
		require.EqualValues(t, 3, b.Pingers[n][0].Stats().Received, n)
	}

	// Without the shortage, LANs stay /24s.
	LANPool = saved
	top, err = Parse("compact.toml", []byte(src), LoadOptions{ModelsDir: "../../models"})
	require.NoError(t, err)
	require.Equal(t, 24, top.Node("g-4").LAN.Bits())
}
