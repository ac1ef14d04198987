package models

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShippedProfilesLoad(t *testing.T) {
	dir, err := Dir()
	require.NoError(t, err)
	peers, err := LoadPeers(dir)
	require.NoError(t, err)
	for _, n := range []string{"cloudflare", "cisco-8000", "fortios-7.6.6", "fortios-pre-7.6.6", "strongswan-6", "libreswan-5.4", "legacy-classical"} {
		require.Contains(t, peers, n)
	}
	cf := peers["cloudflare"]
	require.Equal(t, []string{"responder"}, cf.Roles)
	require.Equal(t, []string{"psk"}, cf.IKE.Auth)
	require.False(t, cf.IKE.MLKEMInInit)
	require.Equal(t, 1081, peers["fortios-pre-7.6.6"].IKE.PrivateTransformIDs["mlkem768"])
	require.Empty(t, peers["fortios-7.6.6"].IKE.PrivateTransformIDs)
	require.Equal(t, "on-retransmit", peers["libreswan-5.4"].Fragmentation.Policy)
	require.False(t, peers["legacy-classical"].IKE.Intermediate)
	require.True(t, peers["cisco-8000"].Assumed("retransmit.timeout"))
	require.False(t, peers["strongswan-6"].Assumed("retransmit.timeout"))
}

// write writes a copy of the strongSwan profile with edit applied under
// the given name and returns its path.
func write(t *testing.T, name string, edit func(string) string) string {
	dir, err := Dir()
	require.NoError(t, err)
	src, err := os.ReadFile(filepath.Join(dir, "strongswan-6.toml"))
	require.NoError(t, err)
	s := strings.Replace(string(src), `name = "strongswan-6"`, `name = "`+name+`"`, 1)
	p := filepath.Join(t.TempDir(), name+".toml")
	require.NoError(t, os.WriteFile(p, []byte(edit(s)), 0o644))
	return p
}

func lineOf(t *testing.T, path, needle string) int {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, needle) {
			return i + 1
		}
	}
	t.Fatalf("%q not in %s", needle, path)
	return 0
}

func TestBadProfiles(t *testing.T) {
	cases := []struct {
		name, from, to, field, msg string
	}{
		{"unknown-key", "window = 1", "window = 1\nwindw = 2", "ike.windw", "unknown key"},
		{"bad-policy", `policy = "always"`, `policy = "sometimes"`, "fragmentation.policy", "unknown policy"},
		{"bad-duration", `timeout = "4s"`, `timeout = "4 parsecs"`, "retransmit.timeout", "bad duration"},
		{"no-source", `"dpd.retries" = "strongSwan uses the retransmission schedule for DPD"`, ``, "dpd.retries", "no entry in [sources]"},
		{"bad-mlkem", `mlkem = ["mlkem512", "mlkem768", "mlkem1024"]`, `mlkem = ["kyber768"]`, "ike.mlkem", "unknown parameter set"},
		{"bad-size", "size = 1280", "size = 100", "fragmentation.size", "out of range"},
		{"bad-vid", "esn = false", "esn = false\nvendor_ids = [\"xyz\"]", "ike.vendor_ids", "not hex"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, c.name, func(s string) string {
				require.Contains(t, s, c.from)
				return strings.Replace(s, c.from, c.to, 1)
			})
			_, err := LoadPeer(p)
			require.Error(t, err)
			require.Contains(t, err.Error(), p+":")
			require.Contains(t, err.Error(), c.field)
			require.Contains(t, err.Error(), c.msg)
			if c.to != "" && c.name != "bad-vid" {
				needle := strings.Split(c.to, "\n")[len(strings.Split(c.to, "\n"))-1]
				require.Contains(t, err.Error(), p+":"+strconv.Itoa(lineOf(t, p, needle))+":", err.Error())
			}
		})
	}
}

func TestNameMustMatchFile(t *testing.T) {
	p := write(t, "x", func(s string) string { return strings.Replace(s, `name = "x"`, `name = "y"`, 1) })
	_, err := LoadPeer(p)
	require.ErrorContains(t, err, "does not match the file name")
}

func TestProposalChecker(t *testing.T) {
	defer func() { ProposalChecker = nil }()
	ProposalChecker = func(p string, esp bool) error {
		if strings.Contains(p, "x25519") && !esp {
			return errFake
		}
		return nil
	}
	p := write(t, "pc", func(s string) string { return s })
	_, err := LoadPeer(p)
	require.ErrorContains(t, err, "ike.proposals: fake")
}

type fakeErr struct{}

func (fakeErr) Error() string { return "fake" }

var errFake = fakeErr{}

func TestFields(t *testing.T) {
	f := Fields()
	require.Contains(t, f, "fragmentation.size")
	require.Contains(t, f, "retransmit.timeout")
	require.NotContains(t, f, "sources")
}
