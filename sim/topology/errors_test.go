package topology

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/sim"
)

const base = `name = "t"
seed = 3
duration = "10s"

[[node]]
name = "inet"
kind = "internet"

[[node]]
name = "a"
kind = "gateway"
lan_hosts = 1

[[link]]
a = "a"
b = "inet"
delay = "5ms"
`

func parse(t *testing.T, src string) (*Topology, error) {
	t.Helper()
	return Parse("topologies/t.toml", []byte(src), LoadOptions{ModelsDir: "../../models"})
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown top key", base + "colour = 1\n", "topologies/t.toml:18: link.colour: unknown key"},
		{"unknown node key", strings.Replace(base, `kind = "gateway"`, "kind = \"gateway\"\nspeed = 3", 1), "topologies/t.toml:12: node.speed: unknown key"},
		{"unknown link key", base + "latency = \"5ms\"\n", "topologies/t.toml:18: link.latency: unknown key"},
		{"syntax", base + "[[link]\n", "topologies/t.toml:19:"},
		{"type", strings.Replace(base, `lan_hosts = 1`, `lan_hosts = "one"`, 1), "topologies/t.toml:12: node.lan_hosts: incompatible types"},
		{"bad delay", strings.Replace(base, `delay = "5ms"`, `delay = "5 parsecs"`, 1), `topologies/t.toml:17: link[0].delay: bad duration "5 parsecs"`},
		{"delay without unit", strings.Replace(base, `delay = "5ms"`, `delay = 5`, 1), `topologies/t.toml:17: link[0].delay: a duration needs a unit`},
		{"loss range", base + "loss = 1.5\n", "topologies/t.toml:18: link[0].loss: probability 1.5 outside [0, 1]"},
		{"loss percent", base + "loss = \"150%\"\n", "link[0].loss: probability 1.5 outside"},
		{"no node", strings.Replace(base, `b = "inet"`, `b = "nowhere"`, 1), `topologies/t.toml:16: link[0].b: no node "nowhere"`},
		{"dup node", base + "[[node]]\nname = \"a\"\n", `topologies/t.toml:19: node[2].name: duplicate node "a"`},
		{"bad kind", strings.Replace(base, `kind = "gateway"`, `kind = "switch"`, 1), `topologies/t.toml:11: node[1].kind: unknown kind "switch"`},
		{"engine on host", base + "[[node]]\nname = \"h\"\nrole = \"initiator\"\n", `topologies/t.toml:20: node[2].role: only gateways run the IKE engine`},
		{"bad role", strings.Replace(base, `lan_hosts = 1`, "lan_hosts = 1\nrole = \"boss\"", 1), `topologies/t.toml:13: node[1].role: unknown role "boss"`},
		{"unknown peer model", strings.Replace(base, `lan_hosts = 1`, "lan_hosts = 1\npeer_model = \"strongswan6\"", 1), `topologies/t.toml:13: node[1].peer_model: no peer model "strongswan6"`},
		{"peer missing", strings.Replace(base, `lan_hosts = 1`, "lan_hosts = 1\npeers = [\"b\"]", 1), `node[1].peers: no node "b"`},
		{"unconnected", base + "[[node]]\nname = \"lonely\"\n", `topologies/t.toml:18: node[2]: node lonely has no link`},
		{"bad mtu", base + "mtu = 100\n", "topologies/t.toml:18: link[0].mtu: MTU 100 outside [576, 65535]"},
		{"bad profile", base + "profile = \"carrier-pigeon\"\n", `topologies/t.toml:18: link[0].profile: no link profile "carrier-pigeon"`},
		{"bad distribution", strings.Replace(base, `delay = "5ms"`, `delay = "zipf(1ms,2ms)"`, 1), `topologies/t.toml:17: link[0].delay: unknown distribution "zipf"`},
		{"uniform order", strings.Replace(base, `delay = "5ms"`, `delay = "uniform(9ms,2ms)"`, 1), `uniform(a,b) needs a <= b`},
		{"bad fragments", base + "fragments = \"shred\"\n", `topologies/t.toml:18: link[0].fragments: unknown fragment mode "shred"`},
		{"drop-beyond keep", base + "fragments = \"drop-beyond\"\n", `link[0].fragments_keep: drop-beyond needs fragments_keep >= 1`},
		{"loss and gilbert", base + "loss = 0.1\ngilbert = { p = 0.1, r = 0.5 }\n", `link[0].loss: give loss or gilbert, not both`},
		{"gilbert missing r", base + "gilbert = { p = 0.1 }\n", `topologies/t.toml:18: link[0].gilbert.r: missing`},
		{"bad event", base + "[[event]]\nat = \"20s\"\naction = \"link-down\"\ntarget = \"a-inet\"\n", `topologies/t.toml:19: event[0].at: 20s is after the end of the run`},
		{"event target", base + "[[event]]\nat = \"2s\"\naction = \"link-down\"\ntarget = \"nope\"\n", `topologies/t.toml:21: event[0].target: no link "nope"`},
		{"event action", base + "[[event]]\nat = \"2s\"\naction = \"explode\"\ntarget = \"a\"\n", `topologies/t.toml:20: event[0].action: unknown action "explode"`},
		{"traffic to", strings.Replace(base, `lan_hosts = 1`, "lan_hosts = 1\n[[node.traffic]]\nkind = \"ping\"\nto = \"ghost\"", 1), `topologies/t.toml:15: node[1].traffic[0].to: no node "ghost"`},
		{"traffic kind", strings.Replace(base, `lan_hosts = 1`, "lan_hosts = 1\n[[node.traffic]]\nkind = \"tcp\"\nto = \"a\"", 1), `topologies/t.toml:14: node[1].traffic[0].kind: unknown "tcp"`},
		{"group count", base + "[[group]]\nname = \"g\"\ncount = 0\n", `topologies/t.toml:20: group[0].count: 0 outside [1, 1000000]`},
		{"group uplink", base + "[[group]]\nname = \"g\"\ncount = 2\n", `topologies/t.toml:18: group[0].uplink: missing`},
		{"group uplink to", base + "[[group]]\nname = \"g\"\ncount = 2\n[group.uplink]\nto = \"mars\"\n", `topologies/t.toml:22: group[0].uplink.to: no node "mars"`},
		{"group bad value", base + "[[group]]\nname = \"g\"\ncount = 2\n[group.uplink]\nto = \"inet\"\nloss = \"uniform(0.1,2)\"\n", `topologies/t.toml:23: group[0].uplink.loss: probability 2 outside [0, 1]`},
		{"nat without table", base + "[[node]]\nname = \"n\"\nkind = \"nat\"\n", `topologies/t.toml:18: node[2]: a nat node needs a [nat] table`},
		{"nat inside", base + "[[node]]\nname = \"n\"\nkind = \"nat\"\n[node.nat]\ninside = \"a\"\nmapping = \"cone\"\n", `topologies/t.toml:23: node[2].nat.mapping: unknown NAT behaviour "cone"`},
		{"subnet overlap", base + "subnet = \"10.0.0.0/30\"\n", `link a-inet (10.0.0.0/30) overlaps LAN of a (10.0.0.0/24)`},
		{"seed negative", strings.Replace(base, "seed = 3", "seed = -3", 1), "topologies/t.toml:2: seed: must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.src)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseValuesAndDistributions(t *testing.T) {
	src := base + `bandwidth = "12.5Mbit"
loss = "0.5%"
jitter = "1ms"
gilbert = { p = 0.01, r = 0.2, loss_bad = 0.9 }
loss = 0
[link.a_to_b]
bandwidth = 2e6
fragments = "drop-beyond"
fragments_keep = 2
[link.b_to_a]
blackhole_above = 1400
`
	// loss = 0 twice is a TOML error; use a variant without it.
	src = strings.Replace(src, "loss = \"0.5%\"\n", "", 1)
	src = strings.Replace(src, "loss = 0\n", "", 1)
	top, err := parse(t, src)
	require.NoError(t, err)
	lk := top.Links[0]
	require.EqualValues(t, 2e6, lk.Config.AB.Bandwidth)
	require.EqualValues(t, 12.5e6, lk.Config.BA.Bandwidth)
	require.Equal(t, 5*time.Millisecond, lk.Config.AB.Delay)
	require.Equal(t, time.Millisecond, lk.Config.BA.Jitter)
	require.Equal(t, sim.FragmentDropBeyond, lk.Config.AB.Fragments.Mode)
	require.Equal(t, 2, lk.Config.AB.Fragments.Keep)
	require.Equal(t, 1400, lk.Config.BA.Fragments.BlackHoleAbove)
	require.Equal(t, &sim.GilbertElliott{P: 0.01, R: 0.2, LossBad: 0.9}, lk.Config.AB.GE)
	require.Equal(t, uint64(3), top.Seed)
	require.Equal(t, 10*time.Second, top.Duration)

	for in, want := range map[string]float64{"100Mbit": 1e8, "1.5Gbit/s": 1.5e9, "512kbps": 512e3, "64kbit": 64e3, "2e6": 2e6} {
		got, err := parseBandwidth(in)
		require.NoError(t, err)
		require.Equal(t, want, got, in)
	}
}

func TestGroupDistributionsAreStable(t *testing.T) {
	group := `
[[group]]
name = "g"
count = 200
kind = "gateway"
  [group.uplink]
  to = "inet"
  delay = "uniform(10ms,120ms)"
  mtu = "choice(1280,1400,1500)"
  loss = "normal(1%,0.2%)"
`
	top, err := parse(t, base+group)
	require.NoError(t, err)
	var delays []time.Duration
	mtus := map[uint32]int{}
	for _, lk := range top.Links {
		if !strings.HasPrefix(lk.Name, "g-") {
			continue
		}
		d := lk.Config.AB.Delay
		require.Equal(t, d, lk.Config.BA.Delay, "one draw for both directions")
		require.GreaterOrEqual(t, d, 10*time.Millisecond)
		require.LessOrEqual(t, d, 120*time.Millisecond)
		require.InDelta(t, 0.01, lk.Config.AB.Loss, 0.01)
		delays = append(delays, d)
		mtus[lk.Config.MTU]++
	}
	require.Len(t, delays, 200)
	require.Len(t, mtus, 3)
	var mean float64
	for _, d := range delays {
		mean += float64(d) / 200
	}
	require.InDelta(t, float64(65*time.Millisecond), mean, float64(6*time.Millisecond))

	// Adding another group does not change this group's draws, and the
	// same seed gives the same values.
	top2, err := parse(t, base+group+strings.ReplaceAll(group, `name = "g"`, `name = "other"`))
	require.NoError(t, err)
	for i, lk := range top.Links {
		require.Equal(t, lk.Config, top2.Links[i].Config)
	}
	top3, err := parse(t, strings.Replace(base, "seed = 3", "seed = 4", 1)+group)
	require.NoError(t, err)
	require.NotEqual(t, top.Links[2].Config.AB.Delay, top3.Links[2].Config.AB.Delay)
}

func TestTopologyRunDeterministic(t *testing.T) {
	run := func() ([]sim.LinkStatsEntry, []byte) {
		top, err := Load("../../topologies/nat-branches.toml", LoadOptions{})
		require.NoError(t, err)
		b, err := Build(top, BuildOptions{})
		require.NoError(t, err)
		defer b.Close()
		var pc bytes.Buffer
		_, err = b.Links["branch-1-nat-inet"].Capture(&pc, sim.PcapOptions{})
		require.NoError(t, err)
		require.NoError(t, b.Start())
		b.Net.Run(30 * time.Second)
		return b.Net.LinkStats(), pc.Bytes()
	}
	s1, p1 := run()
	s2, p2 := run()
	require.Equal(t, s1, s2)
	require.Equal(t, p1, p2)
	require.Greater(t, len(p1), 1000)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	for _, name := range []string{"two-sites.toml", "nat-branches.toml", "dual-hub-failover.toml"} {
		data, err := os.ReadFile("../../topologies/" + name)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		top, err := Parse("fuzz.toml", data, LoadOptions{ModelsDir: "../../models"})
		if err == nil && len(top.Nodes) > 2000 {
			return // building large groups is slow and says nothing new
		}
		if err == nil {
			b, err := Build(top, BuildOptions{})
			if err == nil {
				b.Close()
			}
		}
	})
}
