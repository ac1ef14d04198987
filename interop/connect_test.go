package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pqlab/pqlab/interop/driver"
)

// connectTOML is a `pqlab connect` configuration as a user writes it (interop/README.md), with
// certificate credentials in PEM files beside it.
const connectTOML = `# pqlab connect: pqlab in namespace B, strongSwan in A
[driver]
netns = %q
local = %q
inner = ["%s/32"]
initiate = [%s]
keylog_dir = "keys"

[retransmit]
initial_timeout = "1s"
tries = 3

[[peer]]
name = "strongswan"
remote = "%s:500"
local_id = %q
remote_id = %q
ike_proposals = [%q]
[[peer.child]]
name = %q
esp_proposals = [%q]
local_ts = ["%s/32"]
remote_ts = ["%s/32"]

[[credentials]]
peer = "strongswan"
key = "pqlab.key"
certs = ["pqlab.pem"]
cacerts = ["strongswan-ca.pem"]
`

// TestConnectConfigAgainstStrongSwan runs the driver from a configuration file through
// driver.LoadFile, the path of `pqlab connect CONFIG.toml` (which adds only flags and signal
// handling): keys and certificates from PEM files, made by crypto/x509 on both sides, so pqlab
// signs with driver.KeySigner (ECDSA) or auth's Ed25519 signer, and the CERTREQ for the
// configured CA makes charon send its certificate. pqlab initiates with ECDSA P-256 and responds
// with Ed25519; each time the tunnel carries ping and TCP both ways, and stopping the driver
// deletes the IKE SA at charon.
func TestConnectConfigAgainstStrongSwan(t *testing.T) {
	requireStrongSwan(t)
	for _, tc := range []struct {
		name      string
		alg       KeyAlg
		initiator bool
		spec      interopSpec
	}{
		{"initiator/ECDSA-P256", KeyECDSAP256, true, interopSpec{Proposals: "aes128gcm16-prfsha256-ecp256", ESPProposals: "aes128gcm16"}},
		{"responder/Ed25519", KeyEd25519, false, interopSpec{Proposals: "aes256-sha384-x25519", ESPProposals: "aes256-sha384-x25519"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Auth = tc.alg
			s := newCharonForPqlab(t, tc.spec)
			ca, err := NewCA(tc.alg, "pqlab side CA", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			cert, key, err := ca.Issue(tc.alg, s.B.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			s.PqlabCAPEM = ca.PEM
			cdir := filepath.Join(s.Dir, "connect")
			if err := os.MkdirAll(cdir, 0o700); err != nil {
				t.Fatal(err)
			}
			initiate := ""
			if tc.initiator {
				initiate = `"strongswan"`
			}
			conf := fmt.Sprintf(connectTOML, s.B.NS.Name, s.B.Outer, s.B.Inner, initiate, s.A.Outer, s.B.ID, s.A.ID,
				tc.spec.Proposals, childName, tc.spec.ESPProposals, s.B.Inner, s.A.Inner)
			for name, data := range map[string][]byte{"connect.toml": []byte(conf), "pqlab.key": key, "pqlab.pem": cert,
				"strongswan-ca.pem": s.CharonCA.PEM} {
				if err := os.WriteFile(filepath.Join(cdir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			dc, err := driver.LoadFile(filepath.Join(cdir, "connect.toml"))
			if err != nil {
				t.Fatal(err)
			}
			s.KeyDir = dc.KeyLogDir
			s.startCharon(t)
			s.startDriver(t, dc)
			ctx := testContext(t)
			if !tc.initiator {
				if err := s.C.Initiate(ctx, "", childName); err != nil {
					t.Fatal(err)
				}
			}
			sa := s.established(t, ctx)
			if sa.Initiator == tc.initiator || sa.LocalID != s.A.ID || sa.RemoteID != s.B.ID {
				t.Errorf("charon's IKE SA %+v", sa)
			}
			s.pingBoth(t, ctx, 2, 56)
			s.transferBoth(t, ctx, 64<<10)
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.C.WaitSAs(ctx, func(sas []IKESA) bool { return len(sas) == 0 }); err != nil {
				t.Fatalf("charon still holds SAs after pqlab stopped: %v", err)
			}
			s.checkCapture(t, true)
		})
	}
}
