package plots

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/cmd/internal/results"
)

// synthetic builds a results file that exercises every figure.
func synthetic() *results.File {
	f := &results.File{}
	suites := []string{"aes256gcm16-prfsha384-x25519", "aes256gcm16-prfsha384-x25519-ke1_mlkem768"}
	for si, s := range suites {
		for _, rtt := range []int{5, 31, 78} {
			r := results.Run{Name: fmt.Sprintf("%d-%d", si, rtt), Params: map[string]string{
				"rtt": fmt.Sprintf("%dms", rtt), "mtu": fmt.Sprint(1200 + 100*rtt/31), "path": "clean",
			}}
			for k := 0; k < 20; k++ {
				pl := "none"
				if si == 1 {
					pl = "intermediate"
				}
				r.Handshakes = append(r.Handshakes, results.Handshake{
					Suite: s, Placement: pl, Outcome: "established",
					LatencyNs: int64((2+si)*rtt*1e6 + k*1e5), IPFragments: si * 2, IKEFragments: si,
					InitiatorModel: []string{"cisco", "fortios"}[k%2], ResponderModel: "cloudflare",
					Exchanges: []results.Exchange{{Name: "IKE_SA_INIT", Bytes: 600, Datagrams: 2}, {Name: "IKE_AUTH", Bytes: 500, Datagrams: 2}},
				})
			}
			f.Runs = append(f.Runs, r)
		}
	}
	f.Runs[0].Throughput = []results.Throughput{{Cipher: "aes128gcm16", PacketSize: 64, Gbps: 1, BaselineGbps: 1.2},
		{Cipher: "aes128gcm16", PacketSize: 1400, Gbps: 20, BaselineGbps: 22},
		{Cipher: "aes128gcm16", Direction: "open", PacketSize: 1400, Gbps: 18, BaselineGbps: 21}}
	for i, n := range []string{"100", "1000"} {
		f.Runs = append(f.Runs, results.Run{Name: "storm" + n, Params: map[string]string{"branches": n, "hub_cores": "2"},
			Nodes:      []results.NodeStats{{Name: "hub", Cores: 2, AllUpNs: int64(3e9 * (i + 1)), BusyNs: 1e8}},
			Handshakes: []results.Handshake{{Suite: suites[0], Outcome: "established", LatencyNs: 5e8}}})
		f.Runs = append(f.Runs, results.Run{Name: "rekey" + n, Params: map[string]string{"branches": n, "suite": "x25519"},
			Nodes:  []results.NodeStats{{Name: "hub", Cores: 2, AllUpNs: 3e9, BusyNs: 1e8}},
			Rekeys: []results.Rekey{{Kind: "ike", Outcome: "established", LatencyNs: 3e7, Bytes: 2900, Datagrams: 4}}})
	}
	return f
}

// interopFile is a small interop matrix: two suites, two paths.
func interopFile() *results.File {
	f := &results.File{}
	for _, path := range []string{"clean", "fragdrop"} {
		for _, s := range []string{"classical", "hybrid"} {
			for _, ini := range []string{"cisco-8000", "strongswan-6"} {
				for _, resp := range []string{"cloudflare", "legacy-classical"} {
					h := results.Handshake{InitiatorModel: ini, ResponderModel: resp, Suite: "x", Placement: "none", Outcome: "established"}
					switch {
					case s == "hybrid" && resp == "legacy-classical":
						h.Outcome, h.Reason, h.Placement = "failed", "NO_PROPOSAL_CHOSEN", "intermediate"
					case s == "hybrid" && path == "fragdrop" && ini == "cisco-8000":
						h.Outcome, h.Reason, h.Placement = "failed", "timeout", "intermediate"
					case s == "hybrid" && ini == "strongswan-6":
						h.Placement = "intermediate"
					case s == "hybrid":
						h.Outcome, h.Reason = "not-configurable", "cisco-8000 (gw-a): cannot"
					}
					f.Runs = append(f.Runs, results.Run{Name: fmt.Sprintf("%s,%s,%s,%s", ini, resp, s, path),
						Params:     map[string]string{"initiator_model": ini, "responder_model": resp, "suite": s, "path": path},
						Handshakes: []results.Handshake{h}})
				}
			}
		}
	}
	return f
}

func TestInteropFigures(t *testing.T) {
	figs, err := Interop(interopFile())
	require.NoError(t, err)
	require.Len(t, figs, 2)
	require.Equal(t, "interop_clean", figs[0].Name)
	require.Equal(t, "interop_fragdrop", figs[1].Name)
	for _, fg := range figs {
		require.Len(t, fg.Tiles, 2, "one tile per suite")
		require.Equal(t, "suite: classical", fg.Tiles[0].Title.Text)
		var labels []string
		for _, e := range fg.Legend {
			labels = append(labels, e.Label)
		}
		require.Contains(t, labels, "NPC = NO_PROPOSAL_CHOSEN")
	}
	dir := t.TempDir()
	if d := os.Getenv("PQLAB_PLOT_DIR"); d != "" {
		dir = d
	}
	_, err = Save(figs, dir)
	require.NoError(t, err)
}

func TestAllFiguresDrawAndSave(t *testing.T) {
	figs, err := All(synthetic())
	require.NoError(t, err)
	var names []string
	for _, fg := range figs {
		names = append(names, fg.Name)
		require.NotEmpty(t, fg.Title, fg.Name)
	}
	require.Equal(t, []string{"latency_cdf", "latency_vs_rtt", "bytes_per_exchange", "datagrams_per_exchange",
		"fragments_vs_mtu", "success_by_placement", "reconnect_storm", "rekey_storm", "esp_throughput", "interop"}, names)
	for _, fg := range figs {
		// Every figure has a legend: the plot's own or the shared one.
		if fg.Plot != nil {
			require.NotEmpty(t, fg.Plot.X.Label.Text, fg.Name)
			require.NotEmpty(t, fg.Plot.Y.Label.Text, fg.Name)
			continue
		}
		require.NotEmpty(t, fg.Legend, fg.Name)
		for _, p := range fg.Tiles {
			require.NotEmpty(t, p.X.Label.Text, fg.Name)
			require.NotEmpty(t, p.Y.Label.Text, fg.Name)
		}
	}
	dir := t.TempDir()
	paths, err := Save(figs, dir)
	require.NoError(t, err)
	require.Len(t, paths, 2*len(figs))
	for _, p := range paths {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Greater(t, st.Size(), int64(1000), p)
	}
	if d := os.Getenv("PQLAB_PLOT_DIR"); d != "" {
		_, err := Save(figs, filepath.Clean(d))
		require.NoError(t, err)
	}
}

func TestNoDataNoFigure(t *testing.T) {
	figs, err := All(&results.File{Runs: []results.Run{{Name: "empty"}}})
	require.NoError(t, err)
	require.Empty(t, figs)
}

func TestSuiteLabel(t *testing.T) {
	for in, want := range map[string]string{
		"aes256gcm16-prfsha384-x25519-ke1_mlkem768":           "x25519+mlkem768",
		"aes256gcm16-prfsha384-ecp384-ke1_mlkem1024-ke2_none": "ecp384+mlkem1024",
		"aes128-sha256-modp2048":                              "modp2048",
		"aes256gcm16-prfsha384-mlkem768":                      "mlkem768",
		"weird":                                               "weird",
	} {
		require.Equal(t, want, SuiteLabel(in), in)
	}
}

func TestThroughputBars(t *testing.T) {
	f := &results.File{Runs: []results.Run{
		{Name: "a", Params: map[string]string{"mode": "realtime"}, Throughput: []results.Throughput{{Cipher: "aes128gcm16", PacketSize: 1432, Gbps: 0.3, BaselineGbps: 0.5}}},
		{Name: "b", Params: map[string]string{"mode": "realtime"}, Throughput: []results.Throughput{{Cipher: "chacha20poly1305", PacketSize: 1432, Gbps: 0.28, BaselineGbps: 0.5}}},
	}}
	fig, err := Throughput(f)
	require.NoError(t, err)
	require.Contains(t, fig.Title, "plain forwarding")
	require.Len(t, fig.Legend, 2)
	_, err = Save([]Figure{*fig}, t.TempDir())
	require.NoError(t, err)
}

// TestIKERekeys: the rekey storm plots established IKE SA rekeys only; a
// lost collision is neither plotted nor counted as failed.
func TestIKERekeys(t *testing.T) {
	lat, octets, failed := ikeRekeys(&results.Run{Rekeys: []results.Rekey{
		{Kind: "ike", Outcome: results.OutcomeEstablished, LatencyNs: 4e7, Bytes: 2869},
		{Kind: "ike", Outcome: results.OutcomeCollisionLost, Reason: "rekey-collision", Bytes: 390},
		{Kind: "ike", Outcome: results.OutcomeFailed, Reason: "timeout", Bytes: 181},
		{Kind: "child", Outcome: results.OutcomeEstablished, LatencyNs: 2e7, Bytes: 366},
	}})
	require.Equal(t, []float64{40}, lat)
	require.Equal(t, []float64{2869}, octets)
	require.Equal(t, 1, failed)
}
