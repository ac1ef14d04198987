package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/cmd/internal/results"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := run(t, "help")
	require.Equal(t, 0, code)
	for _, c := range []string{"merge", "plot", "report"} {
		require.Contains(t, out, c)
	}
	code, out, _ = run(t, "--version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "pqlab "))
	code, out, _ = run(t, "plot", "-h")
	require.Equal(t, 0, code)
	require.Contains(t, out, "Usage: pqlab plot")
}

func TestBadInput(t *testing.T) {
	code, _, errs := run(t, "nosuch")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "unknown command")
	code, _, errs = run(t, "plot", filepath.Join(t.TempDir(), "missing.json"))
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(errs, "\n"), errs)
}

func TestMergePlotReport(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string) string {
		p := filepath.Join(dir, name, "results.json")
		f := &results.File{Runs: []results.Run{{Name: name, Params: map[string]string{"rtt": "5ms"}, Handshakes: []results.Handshake{
			{Suite: "aes256gcm16-prfsha384-x25519", Placement: "none", Outcome: "established", LatencyNs: 11e6,
				Exchanges: []results.Exchange{{Name: "IKE_SA_INIT", Bytes: 500, Datagrams: 2}}},
		}}}}
		require.NoError(t, writeResults(p, f))
		return p
	}
	a, b := mk("a"), mk("b")
	merged := filepath.Join(dir, "all", "results.json")
	code, _, errs := run(t, "merge", "-o", merged, a, filepath.Dir(b))
	require.Equal(t, 0, code, errs)
	_, err := os.Stat(filepath.Join(dir, "all", "results.csv"))
	require.NoError(t, err)
	code, out, errs := run(t, "plot", filepath.Dir(merged))
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "figures")
	_, err = os.Stat(filepath.Join(dir, "all", "plots", "latency_cdf.png"))
	require.NoError(t, err)
	code, _, errs = run(t, "report", filepath.Dir(merged))
	require.Equal(t, 0, code, errs)
	html, err := os.ReadFile(filepath.Join(dir, "all", "report.html"))
	require.NoError(t, err)
	require.Contains(t, string(html), "x25519")
}

// Rekey records get a CSV of their own beside results.csv, and only when
// there are any.
func TestRekeysCSV(t *testing.T) {
	dir := t.TempDir()
	f := &results.File{Runs: []results.Run{{Name: "r", Rekeys: []results.Rekey{
		{Initiator: "a", Responder: "b", Kind: "ike", Outcome: results.OutcomeEstablished, LatencyNs: 5e6},
		{Initiator: "b", Responder: "a", Kind: "ike", Outcome: results.OutcomeCollisionLost, Reason: "rekey-collision"},
	}}}}
	require.NoError(t, writeResults(filepath.Join(dir, "results.json"), f))
	b, err := os.ReadFile(filepath.Join(dir, "results-rekeys.csv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 3)
	require.Contains(t, lines[2], "collision-lost")

	f.Runs[0].Rekeys = nil
	other := filepath.Join(dir, "none", "results.json")
	require.NoError(t, writeResults(other, f))
	_, err = os.Stat(filepath.Join(dir, "none", "results-rekeys.csv"))
	require.True(t, os.IsNotExist(err))
}
