package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const connectConf = `# pqlab connect configuration
[driver]
local = "192.0.2.2"
inner = ["198.51.100.2/32"]
initiate = ["gw"]

[[peer]]
name = "gw"
remote = "192.0.2.1:500"
local_id = "b.test"
remote_id = "a.test"
ike_proposals = ["aes256gcm16-prfsha256-x25519"]
[peer.auth]
psk = "a long pre-shared key"
[[peer.child]]
name = "net"
esp_proposals = ["aes256gcm16-x25519"]
local_ts = ["198.51.100.2/32"]
remote_ts = ["198.51.100.1/32"]
`

func TestConnectCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	require.NoError(t, os.WriteFile(good, []byte(connectConf), 0o600))
	code, out, errs := run(t, "connect", "-check", good)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, `peer "gw" (initiator): remote 192.0.2.1:500`)
	require.Contains(t, out, "198.51.100.2/32")

	for _, tc := range []struct{ edit, old, want string }{
		{"bad proposal", `ike_proposals = ["aes256gcm16-prfsha256-x25519"]`, "bad.toml:12: peer[0].ike_proposals: "},
		{"unknown key", `psk = "a long pre-shared key"`, "bad.toml:14: peer.auth.pks: unknown key"},
		{"no local", `local = "192.0.2.2"`, "bad.toml:2: driver.local: "},
		{"bad initiate", `initiate = ["gw"]`, "bad.toml:5: driver.initiate[0]: no peer named"},
	} {
		t.Run(tc.edit, func(t *testing.T) {
			var repl string
			switch tc.edit {
			case "bad proposal":
				repl = `ike_proposals = ["aes256gcm16-prfsha256-nosuchgroup"]`
			case "unknown key":
				repl = `pks = "typo"`
			case "no local":
				repl = `tun = "pq1"`
			case "bad initiate":
				repl = `initiate = ["nobody"]`
			}
			bad := filepath.Join(dir, "bad.toml")
			require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(connectConf, tc.old, repl, 1)), 0o600))
			code, _, errs := run(t, "connect", "-check", bad)
			require.Equal(t, 1, code)
			require.Contains(t, errs, tc.want)
		})
	}
}
