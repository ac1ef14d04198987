package lab

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/cmd/internal/results"
)

const (
	twoSites  = "../../../topologies/two-sites.toml"
	fragDrop  = "../../../topologies/fragment-dropping.toml"
	hybrid768 = "aes256gcm16-prfsha384-x25519-ke1_mlkem768"
)

func suiteOverrides(p string) Overrides {
	return Overrides{"node[gw-a].proposals": []string{p}, "node[gw-b].proposals": []string{p}}
}

func encode(t *testing.T, r *results.Run) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, results.Write(&b, &results.File{Runs: []results.Run{*r}}))
	return b.Bytes()
}

func TestTwoSitesHybrid(t *testing.T) {
	dir := t.TempDir()
	probe := &Probe{}
	spec := Spec{Topology: twoSites, Duration: 20 * time.Second, Probe: probe,
		PcapDir: filepath.Join(dir, "pcap"), KeysDir: filepath.Join(dir, "keys")}
	run, err := Run(spec)
	require.NoError(t, err)
	require.Len(t, run.Handshakes, 1)
	h := run.Handshakes[0]
	require.Equal(t, OutcomeEstablished, h.Outcome, h.Reason)
	require.Equal(t, "gw-a", h.Initiator)
	require.Equal(t, "gw-b", h.Responder)
	require.Equal(t, "strongswan-6", h.InitiatorModel)
	require.Equal(t, hybrid768, h.Suite)
	require.Equal(t, "intermediate", h.Placement)
	require.Equal(t, 3, h.RoundTrips)
	require.Zero(t, h.Retransmissions)
	require.Zero(t, h.IPFragments)
	require.Equal(t, 6, h.Datagrams)
	require.Equal(t, 6, h.IPPackets)
	require.Equal(t, []string{"IKE_SA_INIT", "IKE_INTERMEDIATE", "IKE_AUTH"}, exchangeNames(h))
	sum := 0
	for _, e := range h.Exchanges {
		require.Equal(t, 2, e.Datagrams, e.Name)
		sum += e.Bytes
	}
	require.Equal(t, h.Bytes, sum)
	// The ML-KEM-768 encapsulation key (1184 octets) and ciphertext
	// (1088) dominate IKE_INTERMEDIATE.
	require.Greater(t, h.Exchanges[1].Bytes, 1184+1088)
	require.Less(t, h.Exchanges[0].Bytes, 700)
	// Three round trips over fibre (2 ms) and DSL (8 ms), plus CPU.
	require.Greater(t, h.LatencyNs, int64(50*time.Millisecond), "DSL jitter can shorten a trip")
	require.Less(t, h.LatencyNs, int64(200*time.Millisecond))
	require.Positive(t, h.InitiatorCPUNs)
	require.Greater(t, h.ResponderCPUNs, h.InitiatorCPUNs, "gw-b is a slow branch appliance")
	require.Len(t, run.Nodes, 2)
	for _, n := range run.Nodes {
		require.Positive(t, n.CPUNs)
		require.LessOrEqual(t, n.BusyNs, n.CPUNs)
	}
	require.NotEmpty(t, run.Links)

	// Data plane: pings from gw-a-h1 (from 5 s, every second) all answered
	// through the tunnel.
	pings := probe.Pings["gw-a-h1"]
	require.Len(t, pings, 1)
	require.GreaterOrEqual(t, pings[0].Sent, uint64(14))
	require.GreaterOrEqual(t, pings[0].Received, pings[0].Sent-1, "the last may be in flight")
	require.Equal(t, pings[0].Received, probe.ESP["gw-a"].ESPReceived)
	require.Zero(t, probe.ESP["gw-a"].ESPDropped+probe.ESP["gw-b"].ESPDropped)

	keys, err := os.ReadFile(filepath.Join(dir, "keys", ESPKeyFile))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(keys)), "\n")
	require.Len(t, lines, 2, "one line per direction")
	require.Contains(t, lines[0], `"AES-GCM with 16 octet ICV [RFC4106]"`)
	for _, l := range []string{"gw-a-inet", "gw-b-inet", "gw-a-h1"} {
		st, err := os.Stat(filepath.Join(dir, "pcap", l+".pcap"))
		require.NoError(t, err)
		require.Greater(t, st.Size(), int64(1000))
	}
}

func exchangeNames(h results.Handshake) []string {
	var out []string
	for _, e := range h.Exchanges {
		out = append(out, e.Name)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	run := func() ([]byte, []byte) {
		dir := t.TempDir()
		r, err := Run(Spec{Topology: twoSites, Duration: 15 * time.Second, Seed: 42, PcapDir: dir,
			Overrides: suiteOverrides("aes256gcm16-prfsha384-ecp384-ke1_mlkem1024"), Params: map[string]string{"suite": "x"}})
		require.NoError(t, err)
		p, err := os.ReadFile(filepath.Join(dir, "gw-b-inet.pcap"))
		require.NoError(t, err)
		return encode(t, r), p
	}
	a, pa := run()
	b, pb := run()
	require.Equal(t, string(a), string(b))
	require.True(t, bytes.Equal(pa, pb), "captures differ")
	// Another seed gives other bytes (nonces, keys) but the same wire sizes.
	r, err := Run(Spec{Topology: twoSites, Duration: 15 * time.Second, Seed: 43,
		Overrides: suiteOverrides("aes256gcm16-prfsha384-ecp384-ke1_mlkem1024")})
	require.NoError(t, err)
	var f results.File
	ra, err := results.Read(bytes.NewReader(a))
	require.NoError(t, err)
	f.Runs = ra.Runs
	require.Equal(t, f.Runs[0].Handshakes[0].Bytes, r.Handshakes[0].Bytes)
	require.NotEqual(t, f.Runs[0].Handshakes[0].LatencyNs, r.Handshakes[0].LatencyNs, "jitter differs between seeds")
}

// TestFragmentDroppingPath is the acceptance test of issue 5: on a path
// whose middlebox drops every IP fragment, ML-KEM-768 alone in
// IKE_SA_INIT fails, while hybrid key exchanges with ML-KEM in
// IKE_INTERMEDIATE, fragmented by RFC 7383 where needed, succeed.
func TestFragmentDroppingPath(t *testing.T) {
	run := func(p string) (results.Handshake, *results.Run) {
		r, err := Run(Spec{Topology: fragDrop, Duration: 200 * time.Second, Overrides: suiteOverrides(p)})
		require.NoError(t, err)
		require.Len(t, r.Handshakes, 1)
		return r.Handshakes[0], r
	}
	h, r := run("aes256gcm16-prfsha384-mlkem768")
	require.Equal(t, OutcomeFailed, h.Outcome)
	require.Equal(t, "timeout", h.Reason)
	require.Equal(t, "init", h.Placement)
	require.Equal(t, 5, h.Retransmissions, "strongSwan's five retransmissions")
	require.Zero(t, h.RoundTrips)
	require.Equal(t, 6, h.Datagrams)
	require.Equal(t, 12, h.IPFragments, "each IKE_SA_INIT request split in two by the ISP router")
	require.Equal(t, 12, h.IPPackets)
	require.Zero(t, h.IKEFragments)
	var drops int64
	for _, l := range r.Links {
		drops += l.Drops["fragment"]
	}
	require.GreaterOrEqual(t, drops, int64(12))

	h, _ = run(hybrid768)
	require.Equal(t, OutcomeEstablished, h.Outcome, h.Reason)
	require.Equal(t, "intermediate", h.Placement)
	require.Zero(t, h.IPFragments)
	require.Zero(t, h.Retransmissions)

	// ML-KEM-1024's key does not fit 1280 octets: IKE_INTERMEDIATE goes
	// in RFC 7383 fragments, which pass.
	h, _ = run("aes256gcm16-prfsha384-ecp384-ke1_mlkem1024")
	require.Equal(t, OutcomeEstablished, h.Outcome, h.Reason)
	require.Zero(t, h.IPFragments)
	require.Positive(t, h.IKEFragments)
	require.Greater(t, h.Exchanges[1].Datagrams, 2)
}

func TestNATBranches(t *testing.T) {
	probe := &Probe{}
	r, err := Run(Spec{Topology: "../../../topologies/nat-branches.toml", Duration: 60 * time.Second, Probe: probe})
	require.NoError(t, err)
	require.Len(t, r.Handshakes, 5)
	for _, h := range r.Handshakes {
		require.Equal(t, OutcomeEstablished, h.Outcome, h.Reason)
	}
	// ESP in UDP on 4500 through the NATs, and keepalives keep the
	// mappings (30 s) alive.
	hub := probe.ESP["hub"]
	require.Positive(t, hub.ESPReceived)
	require.Positive(t, hub.Keepalives)
	for n, ps := range probe.Pings {
		require.Equal(t, ps[0].Sent, ps[0].Received+boolInt(ps[0].Sent > ps[0].Received), n)
	}
	var hubNode *results.NodeStats
	for i := range r.Nodes {
		if r.Nodes[i].Name == "hub" {
			hubNode = &r.Nodes[i]
		}
	}
	require.NotNil(t, hubNode)
	require.Positive(t, hubNode.AllUpNs, "all five tunnels up")
}

func boolInt(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func TestOverrides(t *testing.T) {
	src, err := os.ReadFile(twoSites)
	require.NoError(t, err)
	out, err := applyOverrides(src, Overrides{
		"link[gw-b-inet].mtu": 1280, "link[0].loss": 0.5, "duration": "5s",
		"node[gw-a].proposals": []string{"a", "b"}, "node[gw-a].traffic[0].interval": "2s",
	})
	require.NoError(t, err)
	s := string(out)
	require.Contains(t, s, "mtu = 1280")
	require.Contains(t, s, "loss = 0.5")
	require.Contains(t, s, `duration = "5s"`)
	require.Contains(t, s, `proposals = ["a", "b"]`)
	require.Contains(t, s, `interval = "2s"`)
	for _, bad := range []struct{ key, want string }{
		{"node[nosuch].cpu", `no node named "nosuch"`},
		{"link[9].mtu", "link[9] out of range"},
		{"nodes[0].cpu", `no array of tables "nodes"`},
		{"node[gw-a.cpu", "missing ]"},
		{"node[gw-a]x", "expected '.' after ]"},
		{"name.x", "name is not a table"},
	} {
		_, err := applyOverrides(src, Overrides{bad.key: 1})
		require.ErrorContains(t, err, bad.want, bad.key)
	}
	k, v, err := ParseOverride("link[0].mtu=1280")
	require.NoError(t, err)
	require.Equal(t, "link[0].mtu", k)
	require.Equal(t, int64(1280), v)
	_, v, _ = ParseOverride(`node[gw-a].proposals=["x25519"]`)
	require.Equal(t, []any{"x25519"}, v)
	_, v, _ = ParseOverride("duration=90s")
	require.Equal(t, "90s", v)
	_, _, err = ParseOverride("novalue")
	require.Error(t, err)

	// An override that breaks the topology is named; the run refuses.
	_, err = Load(Spec{Topology: twoSites, Overrides: Overrides{"link[0].mtu": 100}})
	require.ErrorContains(t, err, "overrides [link[0].mtu]")
	require.ErrorContains(t, err, "MTU 100 outside")
	top, err := Load(Spec{Topology: twoSites, Overrides: Overrides{"node[gw-b].peer_model": "cisco-8000"}})
	require.NoError(t, err)
	require.Equal(t, "cisco-8000", top.Node("gw-b").Engine.PeerModel)
	_, err = Load(Spec{Topology: twoSites, Overrides: Overrides{"node[gw-b].peer_model": "nosuch"}})
	require.ErrorContains(t, err, `peer_model: no peer model "nosuch"`)
}

func TestModelRefusesProposal(t *testing.T) {
	// A Cisco 8000 does not run ML-KEM in IKE_SA_INIT: the run refuses
	// with the node's line.
	_, err := Run(Spec{Topology: twoSites, Overrides: Overrides{"node[gw-b].peer_model": "cisco-8000",
		"node[gw-b].proposals": []string{"aes256gcm16-prfsha384-mlkem768"}}})
	require.ErrorContains(t, err, "two-sites.toml:")
	require.ErrorContains(t, err, "mlkem_in_init = false")
}

func TestCrashAndRestart(t *testing.T) {
	probe := &Probe{}
	r, err := Run(Spec{Topology: twoSites, Duration: 30 * time.Second, Probe: probe, Overrides: Overrides{
		"event": []map[string]any{
			{"at": "10s", "action": "crash", "target": "gw-a"},
			{"at": "12s", "action": "restart", "target": "gw-a"},
		}}})
	require.NoError(t, err)
	require.Len(t, r.Handshakes, 2)
	for _, h := range r.Handshakes {
		require.Equal(t, OutcomeEstablished, h.Outcome, h.Reason)
	}
	require.Equal(t, int64(12*time.Second), r.Handshakes[1].StartNs)
	// The new SA (INITIAL_CONTACT) replaces the old one at gw-b; pings sent
	// while gw-a was down are lost, the others answered.
	p := probe.Pings["gw-a-h1"][0]
	require.GreaterOrEqual(t, p.Received, p.Sent-5, "10, 11, 12 s and the last one")
	require.Less(t, p.Received, p.Sent)
}

// TestKeyLogDecrypts checks the key logs with tshark: IKE_AUTH and the
// ESP traffic of a capture decrypt.
func TestKeyLogDecrypts(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	dir := t.TempDir()
	_, err = Run(Spec{Topology: twoSites, Duration: 7 * time.Second, PcapDir: filepath.Join(dir, "pcap"), KeysDir: filepath.Join(dir, "keys")})
	require.NoError(t, err)
	ike, err := os.ReadFile(filepath.Join(dir, "keys", IKEKeyFile))
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(ike), "\n"), "one IKE SA, logged once")
	cmd := exec.Command(tshark, "-r", filepath.Join(dir, "pcap", "gw-a-inet.pcap"), "-o", "esp.enable_encryption_decode:TRUE", "-V")
	cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+filepath.Join(dir, "keys"))
	out, err := cmd.Output()
	require.NoError(t, err)
	s := string(out)
	require.Contains(t, s, "ID_FQDN: gw-a", "IKE_AUTH decrypted")
	require.Contains(t, s, "ID_FQDN: gw-b")
	require.Contains(t, s, "Echo (ping) request", "ESP decrypted")
	require.Contains(t, s, "Echo (ping) reply")
}
