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
	f.Runs[0].Throughput = []results.Throughput{{Cipher: "aes128gcm16", PacketSize: 64, Gbps: 1, BaselineGbps: 1.2}, {Cipher: "aes128gcm16", PacketSize: 1400, Gbps: 20, BaselineGbps: 22}}
	f.Runs[1].Params["branches"] = "100"
	f.Runs[1].Nodes = []results.NodeStats{{Name: "hub", Cores: 2, AllUpNs: 3e9}}
	return f
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
		"fragments_vs_mtu", "success_by_placement", "hub_all_up", "esp_throughput", "interop"}, names)
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
