package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/cmd/internal/experiment"
	"github.com/pqlab/pqlab/cmd/internal/results"
)

const regression = "../../experiments/regression.toml"

// TestRegressionBaseline is the wire regression test of make test: the
// regression experiment's handshakes must match results/baseline
// byte for byte. Update the baseline on purpose with
// `pqlab sweep experiments/regression.toml --update-baseline` (make
// baseline).
func TestRegressionBaseline(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := run(t, "sweep", regression, "--out", out)
	require.Equal(t, 0, code, "%s%s", stdout, stderr)
	require.Contains(t, stdout, "baseline: matches")
}

// TestBaselineDiff checks that a difference is reported as a readable
// line diff and fails.
func TestBaselineDiff(t *testing.T) {
	f := &results.File{Runs: []results.Run{{Name: "suite=x,rep=1", Handshakes: []results.Handshake{
		{Initiator: "gw-a", Responder: "gw-b", Suite: "aes256gcm16-prfsha384-x25519", Outcome: "established", Bytes: 886, Datagrams: 4, RoundTrips: 2}}}}}
	path := filepath.Join(t.TempDir(), "baseline.txt")
	var out strings.Builder
	require.NoError(t, checkBaseline(&out, path, f, true))
	require.Contains(t, out.String(), "baseline: wrote")
	out.Reset()
	require.NoError(t, checkBaseline(&out, path, f, false))
	require.Contains(t, out.String(), "baseline: matches")
	f.Runs[0].Handshakes[0].Bytes = 890
	out.Reset()
	err := checkBaseline(&out, path, f, false)
	require.ErrorIs(t, err, errBaseline)
	s := out.String()
	require.Contains(t, s, "- suite=x,rep=1 #0 gw-a->gw-b suite=aes256gcm16-prfsha384-x25519 placement= outcome=established bytes=886")
	require.Contains(t, s, "+ suite=x,rep=1 #0 gw-a->gw-b suite=aes256gcm16-prfsha384-x25519 placement= outcome=established bytes=890")
}

// TestSweepShardsMerge checks that the shards of a sweep, merged, give the
// unsharded results byte for byte.
func TestSweepShardsMerge(t *testing.T) {
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole")
	code, stdout, stderr := run(t, "sweep", regression, "--out", whole, "--jobs", "2")
	require.Equal(t, 0, code, "%s%s", stdout, stderr)
	const n = 3
	var shards []string
	total := 0
	for i := 1; i <= n; i++ {
		out := filepath.Join(dir, fmt.Sprintf("shard-%d", i))
		code, stdout, stderr := run(t, "sweep", regression, "--shard", fmt.Sprintf("%d/%d", i, n), "--out", out, "--jobs", "1")
		require.Equal(t, 0, code, "%s%s", stdout, stderr)
		require.Contains(t, stdout, "pqlab merge")
		f, err := results.ReadFile(filepath.Join(out, "results.json"))
		require.NoError(t, err)
		require.NotEmpty(t, f.Runs)
		total += len(f.Runs)
		shards = append(shards, out)
	}
	merged := filepath.Join(dir, "merged", "results.json")
	code, _, stderr = run(t, append([]string{"merge", "-o", merged}, shards...)...)
	require.Equal(t, 0, code, stderr)
	for _, name := range []string{"results.json", "results.csv"} {
		a, err := os.ReadFile(filepath.Join(whole, name))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(dir, "merged", name))
		require.NoError(t, err)
		require.True(t, string(a) == string(b), "%s: merged shards differ from the whole sweep", name)
	}
	f, err := results.ReadFile(merged)
	require.NoError(t, err)
	require.Equal(t, total, len(f.Runs))
	// A shard out of range, or a baseline update of a shard, is refused.
	for _, args := range [][]string{
		{"sweep", regression, "--shard", "4/3"},
		{"sweep", regression, "--shard", "1/3", "--update-baseline"},
		{"sweep", "nosuch.toml"},
		{"sweep"},
	} {
		code, _, stderr := run(t, args...)
		require.NotEqual(t, 0, code, args)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "%v: %q", args, stderr)
	}
}

func TestSweepListAndPlots(t *testing.T) {
	code, stdout, _ := run(t, "sweep", "../../experiments/interop-matrix.toml", "--list")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "420 runs (70 grid points left out")
	require.Contains(t, stdout, "initiator_model=strongswan-6,responder_model=cisco-8000,suite=mlkem768-init,path=clean,rep=1  (not run: not-configurable)")

	// A small grid with the plot parameters: latency against RTT and loss.
	dir := t.TempDir()
	exp := filepath.Join(dir, "e.toml")
	topo, err := filepath.Abs("../../topologies/lab-pair.toml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(exp, []byte(`name = "small"
topology = "`+topo+`"
duration = "30s"
reps = 2
[[param]]
name = "suite"
kind = "suite"
on = ["node[gw-a]", "node[gw-b]"]
values = ["x25519", "x25519+mlkem768"]
[[param]]
name = "rtt"
values = ["10ms", "100ms"]
set = { "link[gw-a-inet].delay" = "${rtt/4}", "link[gw-b-inet].delay" = "${rtt/4}" }
[[param]]
name = "loss"
values = [0.0, 0.1]
set = { "link[gw-b-inet].loss" = "${loss}" }
`), 0o644))
	out := filepath.Join(dir, "out")
	code, stdout, stderr := run(t, "sweep", exp, "--out", out)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "16 runs")
	for _, fig := range []string{"latency_cdf", "latency_vs_rtt", "latency_vs_loss", "bytes_per_exchange"} {
		_, err := os.Stat(filepath.Join(out, "plots", fig+".png"))
		require.NoError(t, err, fig)
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	require.NoError(t, err)
	for _, r := range f.Runs {
		require.Equal(t, experiment.DeriveSeed(1, atoi(t, r.Params["rep"])), uint64(r.Seed))
	}
}

func atoi(t *testing.T, s string) int {
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}

func TestBench(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := run(t, "bench", "--kex", "--ke", "x25519,mlkem768", "--handshake", "--suites", "x25519+mlkem768",
		"--esp", "--ciphers", "aes128gcm16", "--sizes", "64,1400", "--time", "5ms", "--out", out)
	require.Equal(t, 0, code, stderr)
	for _, want := range []string{"ke/mlkem768/exchange", "crypto/mlkem", "handshake/aes256gcm16-prfsha384-x25519-ke1_mlkem768",
		"sum of primitives", "aes128gcm16  1400", "plots:"} {
		require.Contains(t, stdout, want)
	}
	f, err := results.ReadFile(filepath.Join(out, "results.json"))
	require.NoError(t, err)
	require.Len(t, f.Runs, 2)
	for _, r := range f.Runs {
		require.Len(t, r.Throughput, 2)
		for _, th := range r.Throughput {
			require.Positive(t, th.Gbps)
			require.Positive(t, th.BaselineGbps)
		}
	}
	_, err = os.Stat(filepath.Join(out, "plots", "esp_throughput.png"))
	require.NoError(t, err)
	for _, args := range [][]string{{"bench", "--sizes", "10"}, {"bench", "--ciphers", "rot13"}, {"bench", "--handshake", "--suites", "mlkem768-init", "--model", "cisco-8000"}} {
		code, _, stderr := run(t, args...)
		require.NotEqual(t, 0, code, args)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "%v: %q", args, stderr)
	}
}

func TestValidateExperiment(t *testing.T) {
	code, stdout, _ := run(t, "validate", "../../experiments/wire-cost-mtu.toml", "../../experiments/esp-throughput.toml")
	require.Equal(t, 0, code, stdout)
	require.Contains(t, stdout, "36 runs (36 configurations checked")
	require.Contains(t, stdout, "24 benchmarks")
	topo, err := filepath.Abs("../../topologies/lab-pair.toml")
	require.NoError(t, err)
	bad := filepath.Join(t.TempDir(), "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte(`name = "bad"
topology = "`+topo+`"
reps = 2
[[param]]
name = "mtu"
values = [1280, 1400]
set = { "link[nosuch].mtu" = "${mtu}" }
`), 0o644))
	code, stdout, _ = run(t, "validate", bad)
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "run mtu=1280,rep=1:")
	require.Contains(t, stdout, `no link named "nosuch"`)
}
