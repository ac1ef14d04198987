package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/cmd/internal/results"
	"github.com/pqlab/pqlab/sim"
)

func TestRunTopology(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := run(t, "run", "../../topologies/two-sites.toml", "--out", out, "--pcap", "--keys",
		"--duration", "10s", "--seed", "5", "--set", "node[gw-a].proposals=[\"aes256gcm16-prfsha384-x25519\"]",
		"--set", "node[gw-b].proposals=[\"aes256gcm16-prfsha384-x25519\"]")
	require.Equal(t, 0, code, stderr)
	for _, want := range []string{"results: " + filepath.Join(out, "results.json"), "plots:", "report:  " + filepath.Join(out, "report.html"), "pcap:", "keys:"} {
		require.Contains(t, stdout, want)
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	require.NoError(t, err)
	require.Len(t, f.Runs, 1)
	r := f.Runs[0]
	require.EqualValues(t, 5, r.Seed)
	require.Equal(t, "aes256gcm16-prfsha384-x25519", r.Handshakes[0].Suite)
	require.Equal(t, "established", r.Handshakes[0].Outcome)
	for _, p := range []string{"results.csv", "report.html", "plots/latency_cdf.png", "plots/latency_cdf.svg", "pcap/gw-a-inet.pcap", "keys/esp_sa"} {
		_, err := os.Stat(filepath.Join(out, p))
		require.NoError(t, err, p)
	}
}

func TestRunDefault(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := run(t, "run", "--out", out, "--reps", "1")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "x25519-ke1_mlkem768")
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	require.NoError(t, err)
	paths := map[string]int{}
	for _, r := range f.Runs {
		paths[r.Params["path"]]++
	}
	require.Equal(t, 16, paths["clean"])
	require.Equal(t, 4, paths["fragdrop"])
	for _, fig := range []string{"latency_cdf", "latency_vs_rtt", "latency_vs_loss", "bytes_per_exchange", "success_by_placement", "interop"} {
		_, err := os.Stat(filepath.Join(out, "plots", fig+".png"))
		require.NoError(t, err, fig)
	}
	// ML-KEM-768 alone in IKE_SA_INIT fails on the fragment-dropping path;
	// every other suite gets through.
	for _, r := range f.Runs {
		if r.Params["path"] != "fragdrop" {
			continue
		}
		h := r.Handshakes[0]
		if r.Params["suite"] == "mlkem768-init" {
			require.Equal(t, "failed", h.Outcome, r.Name)
		} else {
			require.Equal(t, "established", h.Outcome, r.Name)
		}
	}
}

func TestValidate(t *testing.T) {
	code, stdout, _ := run(t, "validate", "../../topologies/two-sites.toml", "../../models/peers/cisco-8000.toml",
		"../../models/cpu/reference.toml", "../../models/cpu/classes.toml")
	require.Equal(t, 0, code, stdout)
	require.Equal(t, 4, strings.Count(stdout, "ok "))

	dir := t.TempDir()
	models, err := filepath.Abs("../../models")
	require.NoError(t, err)
	require.NoError(t, os.Symlink(models, filepath.Join(dir, "models")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "topologies"), 0o755))
	bad := filepath.Join(dir, "topologies", "bad.toml")
	src, err := os.ReadFile("../../topologies/two-sites.toml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(src), `peer_model = "strongswan-6"`, `peer_model = "strongswan6"`, 1)), 0o644))
	code, stdout, stderr := run(t, "validate", bad)
	require.Equal(t, 1, code)
	require.Contains(t, stdout, bad+":14: node[1].peer_model: no peer model \"strongswan6\"")
	require.Equal(t, "pqlab validate: 1 of 1 files invalid\n", stderr)

	// A proposal the peer model cannot run.
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(src), `peer_model = "strongswan-6"
role = "responder"
peers = ["gw-a"]
proposals = ["aes256gcm16-prfsha384-x25519-ke1_mlkem768"]`, `peer_model = "cisco-8000"
role = "responder"
peers = ["gw-a"]
proposals = ["aes256gcm16-prfsha384-mlkem768"]`, 1)), 0o644))
	code, stdout, _ = run(t, "validate", bad)
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "mlkem_in_init = false")
	require.Contains(t, stdout, bad+":")

	peer := filepath.Join(dir, "more", "models", "peers", "x.toml")
	require.NoError(t, os.MkdirAll(filepath.Dir(peer), 0o755))
	require.NoError(t, os.WriteFile(peer, []byte("name = \"y\"\n"), 0o644))
	code, stdout, _ = run(t, "validate", peer)
	require.Equal(t, 1, code)
	require.Contains(t, stdout, peer+":1: name:")
}

func TestRunBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"run", "nosuch.toml"},
		{"run", "../../topologies/two-sites.toml", "--set", "link[9].mtu=1280"},
		{"run", "--set", "duration=5s"},
		{"run", "a.toml", "b.toml"},
		{"run", "--reps", "0"},
		{"run", "--realtime"},
		{"run", "../../topologies/two-sites.toml", "--realtime"}, // needs two LAN hosts per gateway
		{"validate"},
		{"calibrate", "--rounds", "0"},
	} {
		code, _, stderr := run(t, args...)
		require.NotEqual(t, 0, code, args)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "%v: %q", args, stderr)
	}
}

func TestCalibrate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "host.toml")
	code, stdout, stderr := run(t, "calibrate", "--out", out, "--rounds", "1", "--min-time", "1ms", "--only", "ike.ke.x25519")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "wrote "+out)
	tab, err := sim.LoadCostTable(out)
	require.NoError(t, err)
	require.Equal(t, "host", tab.Name)
	require.Len(t, tab.Ops, 2)
	_, ok := tab.Cost("ike.ke.x25519.dh", 1)
	require.True(t, ok)
}
