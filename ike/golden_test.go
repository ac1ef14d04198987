package ike_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/harness"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/golden")

// TestGoldenTranscripts runs seeded handshakes and compares every datagram
// with a stored transcript, so any change of the bytes on the wire shows
// up. Regenerate with: go test ./ike -run TestGoldenTranscripts -update
func TestGoldenTranscripts(t *testing.T) {
	cases := []struct {
		name string
		ike  string
		cert auth.KeyType
		cfg  ike.Config
	}{
		{"x25519_mlkem768_psk", proposalFor("x25519", "mlkem768"), 0, ike.Config{}},
		{"mlkem768_only_psk", "aes256gcm16-prfsha384-mlkem768", 0, ike.Config{}},
		{"ecp384_mlkem1024_psk_frag1200", proposalFor("ecp384", "mlkem1024"), 0, ike.Config{Fragmentation: ike.FragmentConfig{Size: 1200}}},
		{"x25519_cbc_ed25519", "aes128-sha256-x25519", auth.KeyEd25519, ike.Config{}},
		{"x25519_mlkem768_mldsa65", proposalFor("x25519", "mlkem768"), auth.KeyMLDSA65, ike.Config{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ini, resp := peerConfigs(c.ike, "aes256gcm16")
			if c.cert != 0 {
				newCertSet(t, c.cert).apply(&ini, &resp)
			}
			a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 2026, iCfg: c.cfg, rCfg: c.cfg,
				link: harness.Link{Latency: 7 * time.Millisecond}})
			checkEstablished(t, a, b)
			var buf bytes.Buffer
			fmt.Fprintf(&buf, "# %s: seed 2026, %s, 7 ms one way; regenerate with -update\n", c.name, c.ike)
			for _, r := range p.Trace {
				dir := "I->R"
				if !r.FromA {
					dir = "R->I"
				}
				fmt.Fprintf(&buf, "%v %s %v %v %d %s\n", r.Time.Sub(t0), dir, r.Src, r.Dst, len(r.Data), hex.EncodeToString(r.Data))
			}
			path := filepath.Join("testdata", "golden", c.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				got := bytes.Split(buf.Bytes(), []byte("\n"))
				exp := bytes.Split(want, []byte("\n"))
				for i := range min(len(got), len(exp)) {
					if !bytes.Equal(got[i], exp[i]) {
						t.Fatalf("transcript differs at line %d:\n got %.120s\nwant %.120s", i+1, got[i], exp[i])
					}
				}
				t.Fatalf("transcript has %d lines, want %d", len(got), len(exp))
			}
		})
	}
}
