package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/cmd/internal/lab"
	"github.com/pqlab/pqlab/cmd/internal/results"
)

// write puts an experiment file next to a symlink to the repository's
// topologies, so that "../topologies/..." resolves.
func write(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"topologies", "models"} {
		abs, err := filepath.Abs(filepath.Join("../../..", d))
		require.NoError(t, err)
		require.NoError(t, os.Symlink(abs, filepath.Join(dir, d)))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "experiments"), 0o755))
	p := filepath.Join(dir, "experiments", "x.toml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestLoadErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"name = \"x\"\ntopology = \"../topologies/lab-pair.toml\"\nbogus = 1\n", ":3: bogus: unknown key"},
		{"topology = \"../topologies/lab-pair.toml\"\n", "name: missing"},
		{"name = \"x\"\ntopology = \"../topologies/nosuch.toml\"\n", ":2: topology:"},
		{"name = \"x\"\ntopology = \"../topologies/lab-pair.toml\"\nduration = \"soon\"\n", ":3: duration: bad duration"},
		{"name = \"x\"\ntopology = \"../topologies/lab-pair.toml\"\n[[param]]\nname = \"rtt\"\nvalues = [\"5ms\"]\nset = { \"link[0].delay\" = \"${rt/4}\" }\n",
			":6: param[0].set: template ${rt/4} names no parameter or var"},
		{"name = \"x\"\ntopology = \"../topologies/lab-pair.toml\"\n[[param]]\nname = \"Bad Name\"\nvalues = [1]\n", ":4: param[0].name:"},
		{"name = \"x\"\ntopology = \"../topologies/lab-pair.toml\"\n[[param]]\nname = \"a\"\nkind = \"magic\"\nvalues = [1]\n", ":5: param[0].kind: want set, peer_model or suite"},
		{"name = \"x\"\ntopology = \"../topologies/lab-pair.toml\"\n[[param]]\nname = \"s\"\nkind = \"suite\"\nvalues = [\"x25519\"]\n", "param[0].on:"},
		{"name = \"x\"\ntopology = \"../topologies/lab-pair.toml\"\n[[param]]\nname = \"s\"\nkind = \"suite\"\non = [\"node[gw-a]\"]\nvalues = [\"nonsense\"]\n", "value \"nonsense\": not a known suite label"},
		{"name = \"x\"\ntopology = \"../topologies/lab-pair.toml\"\n[[param]]\nname = \"a\"\nvalues = []\n", "param[0].values: no values"},
		{"name = \"x\"\n[bench]\nciphers = [\"aes128gcm16\"]\nsizes = [10]\n", "bench.sizes: size 10 outside"},
		{"name = \"x\"\ntopology = \"../topologies/realtime-pair.toml\"\n[realtime]\nwindow = \"forever\"\n", ":4: realtime.window: bad duration"},
	} {
		_, err := Load(write(t, c.body))
		require.Error(t, err, c.body)
		require.Contains(t, err.Error(), c.want, c.body)
		require.Contains(t, err.Error(), "x.toml", "errors name the file")
	}
}

func TestExpandGrid(t *testing.T) {
	f, err := Load(write(t, `name = "grid"
topology = "../topologies/lab-pair.toml"
reps = 2
seed = 7
set = { "link[gw-a-inet].jitter" = "0ms" }

[[param]]
name = "rtt"
values = ["5.6ms", "195.7ms"]
set = { "link[gw-a-inet].delay" = "${rtt/4}", "link[gw-b-inet].delay" = "${rtt/4}" }

[[param]]
name = "loss"
values = [0.0, 0.05]
set = { "link[gw-b-inet].loss" = "${loss}" }

[[param]]
name = "mtu"
values = [1280]
set = { "link[gw-b-inet].mtu" = "${mtu}", "link[gw-a-inet].mtu" = "${mtu*1}" }

[[param]]
name = "path"
  [[param.case]]
  value = "clean"
  [[param.case]]
  value = "fragdrop"
  topology = "../topologies/fragment-dropping.toml"
  duration = "99s"
  set = { "node[gw-a].lan_hosts" = 0 }
`))
	require.NoError(t, err)
	ex, err := f.Expand()
	require.NoError(t, err)
	require.Len(t, ex.Points, 2*2*1*2*2)
	p := ex.Points[0].Spec
	require.Equal(t, "rtt=5.6ms,loss=0,mtu=1280,path=clean,rep=1", p.Name)
	require.Equal(t, "1.4ms", p.Overrides["link[gw-a-inet].delay"])
	require.Equal(t, 0.0, p.Overrides["link[gw-b-inet].loss"])
	require.Equal(t, int64(1280), p.Overrides["link[gw-b-inet].mtu"])
	require.Equal(t, int64(1280), p.Overrides["link[gw-a-inet].mtu"])
	require.Equal(t, "0ms", p.Overrides["link[gw-a-inet].jitter"])
	require.Equal(t, map[string]string{"rtt": "5.6ms", "loss": "0", "mtu": "1280", "path": "clean", "rep": "1"}, p.Params)
	q := ex.Points[len(ex.Points)-1].Spec
	require.Equal(t, "rtt=195.7ms,loss=0.05,mtu=1280,path=fragdrop,rep=2", q.Name)
	require.Equal(t, "48.925ms", q.Overrides["link[gw-a-inet].delay"])
	require.True(t, strings.HasSuffix(q.Topology, "fragment-dropping.toml"))
	require.Equal(t, 99*time.Second, q.Duration)
	// Seeds depend on the repetition only.
	seeds := map[string]uint64{}
	for _, pt := range ex.Points {
		rep := pt.Spec.Params["rep"]
		if s, ok := seeds[rep]; ok {
			require.Equal(t, s, pt.Spec.Seed)
		}
		seeds[rep] = pt.Spec.Seed
	}
	require.NotEqual(t, seeds["1"], seeds["2"])
	require.Equal(t, DeriveSeed(7, 1), seeds["1"])
}

// TestInteropMatrixMatchesPublicDocuments runs the cells of the interop
// matrix experiment that public documents speak about (issue 6): Cloudflare
// with Cisco 8000 and FortiOS 7.6.6 in hybrid mode establishes with ML-KEM;
// FortiOS before 7.6.6 reaches no ML-KEM agreement with it; a legacy peer
// offered mandatory additional key exchanges answers NO_PROPOSAL_CHOSEN.
func TestInteropMatrixMatchesPublicDocuments(t *testing.T) {
	f, err := Load("../../../experiments/interop-matrix.toml")
	require.NoError(t, err)
	ex, err := f.Expand()
	require.NoError(t, err)
	byName := map[string]Point{}
	for _, p := range ex.Points {
		byName[p.Name()] = p
		require.NotEqual(t, "cloudflare", p.Spec.Params["initiator_model"], "Cloudflare only responds")
	}
	require.Positive(t, ex.Skipped)
	run := func(ini, resp, suite, path string) results.Handshake {
		t.Helper()
		name := "initiator_model=" + ini + ",responder_model=" + resp + ",suite=" + suite + ",path=" + path + ",rep=1"
		p, ok := byName[name]
		require.True(t, ok, name)
		if p.Record != nil {
			return p.Record.Handshakes[0]
		}
		r, err := lab.Run(p.Spec)
		require.NoError(t, err, name)
		require.Len(t, r.Handshakes, 1)
		return r.Handshakes[0]
	}
	for _, ini := range []string{"cisco-8000", "fortios-7.6.6"} {
		for _, s := range []string{"hybrid-mlkem768", "hybrid-mlkem1024"} {
			h := run(ini, "cloudflare", s, "clean")
			require.Equal(t, results.OutcomeEstablished, h.Outcome, "%s %s: %s", ini, s, h.Reason)
			require.Equal(t, "intermediate", h.Placement, ini+" "+s)
			require.Contains(t, h.Suite, "ecp384-ke1_mlkem", ini+" "+s)
		}
	}
	// FortiOS before 7.6.6 sends Kyber under a private transform ID.
	h := run("fortios-pre-7.6.6", "cloudflare", "hybrid-mlkem768", "clean")
	require.Equal(t, results.OutcomeFailed, h.Outcome)
	require.Equal(t, "NO_PROPOSAL_CHOSEN", h.Reason)
	h = run("fortios-pre-7.6.6", "cloudflare", "hybrid-mlkem768-optional", "clean")
	require.Equal(t, results.OutcomeEstablished, h.Outcome, h.Reason)
	require.Equal(t, "none", h.Placement, "with optional ML-KEM they agree on no ML-KEM")
	// Between two FortiGates before 7.6.6 the private IDs match.
	h = run("fortios-pre-7.6.6", "fortios-pre-7.6.6", "hybrid-mlkem768", "clean")
	require.Equal(t, results.OutcomeEstablished, h.Outcome, h.Reason)
	// A legacy responder offered mandatory ADDKE.
	for _, ini := range []string{"strongswan-6", "cisco-8000", "fortios-7.6.6"} {
		h = run(ini, "legacy-classical", "hybrid-mlkem768", "clean")
		require.Equal(t, results.OutcomeFailed, h.Outcome, ini)
		require.Equal(t, "NO_PROPOSAL_CHOSEN", h.Reason, ini)
	}
	// Devices that cannot put ML-KEM in IKE_SA_INIT make the cell
	// not-configurable, with the reason.
	h = run("strongswan-6", "cisco-8000", "mlkem768-init", "clean")
	require.Equal(t, results.OutcomeNotConfigurable, h.Outcome)
	require.Contains(t, h.Reason, "cisco-8000 (gw-b): cannot put mlkem768 in IKE_SA_INIT")
	// On the fragment-dropping path, ML-KEM in IKE_SA_INIT times out where
	// IKE_INTERMEDIATE with RFC 7383 fragments gets through.
	h = run("strongswan-6", "libreswan-5.4", "mlkem768-init", "fragdrop")
	require.Equal(t, "timeout", h.Reason)
	h = run("strongswan-6", "cloudflare", "hybrid-mlkem1024", "fragdrop")
	require.Equal(t, results.OutcomeEstablished, h.Outcome, h.Reason)
	require.Positive(t, h.IKEFragments)
}

func TestWireSummaryAndDiff(t *testing.T) {
	f := &results.File{Runs: []results.Run{{Name: "b", Handshakes: []results.Handshake{{Initiator: "a", Responder: "b", Suite: "s",
		Outcome: "failed", Reason: "timeout", Bytes: 10, Exchanges: []results.Exchange{{Name: "IKE_SA_INIT", Bytes: 10, Datagrams: 1}}}}},
		{Name: "a", Handshakes: []results.Handshake{{Suite: "t", Outcome: "established", Bytes: 20}}}}}
	s := WireSummary(f)
	lines := strings.Split(strings.TrimSpace(s), "\n")
	require.Len(t, lines, 3)
	require.True(t, strings.HasPrefix(lines[1], "a #0"), "runs in name order")
	require.Contains(t, lines[2], `reason="timeout" bytes=10`)
	require.Contains(t, lines[2], "exchanges=IKE_SA_INIT:10/1")
	require.Empty(t, Diff(s, s))
	f.Runs[0].Handshakes[0].Bytes = 11
	d := Diff(s, WireSummary(f))
	require.Contains(t, d, "- b #0")
	require.Contains(t, d, "+ b #0")
	require.Contains(t, d, "bytes=11")
}

func TestRealtimeExperiment(t *testing.T) {
	f, err := Load("../../../experiments/esp-realtime.toml")
	require.NoError(t, err)
	ex, err := f.Expand()
	require.NoError(t, err)
	require.Len(t, ex.Points, 4)
	for _, p := range ex.Points {
		require.NotNil(t, p.Realtime)
		require.Equal(t, time.Second, p.Realtime.Window)
		require.Equal(t, 3, p.Realtime.Rounds)
		require.Equal(t, []any{p.Spec.Params["cipher"]}, p.Spec.Overrides["node[gw-a].esp_proposals"])
	}
}
