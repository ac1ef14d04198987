package interop

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/interop/driver"
)

// charonKeyLine matches charon's level-4 IKE log of a derived key ("Sk_ei secret => 36 bytes @
// 0x..."), followed by hex dump lines ("   0: 20 D6 81 ...  ascii").
var charonKeyLine = regexp.MustCompile(`\] (Sk_e[ir]|Sk_a[ir]) secret => (\d+) bytes`)

// charonIKEKeys returns the first SK_ei, SK_er, SK_ai and SK_ar charon logged, as hex.
func charonIKEKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := charonKeyLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if _, seen := keys[m[1]]; seen {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		var b []byte
		for len(b) < n && sc.Scan() {
			_, dump, ok := strings.Cut(sc.Text(), "] ")
			_, dump, ok2 := strings.Cut(dump, ": ")
			if !ok || !ok2 {
				t.Fatalf("unexpected key dump line %q", sc.Text())
			}
			for _, tok := range strings.Fields(dump)[:min(16, n-len(b))] {
				v, err := hex.DecodeString(tok)
				if err != nil || len(v) != 1 {
					t.Fatalf("unexpected key dump line %q", sc.Text())
				}
				b = append(b, v...)
			}
		}
		keys[m[1]] = hex.EncodeToString(b)
	}
	return keys
}

// TestIKEKeyLogAgainstStrongSwan checks pqlab's ikev2_decryption_table (written by the driver from
// the engine's key log) twice: its SK_ei, SK_er, SK_ai and SK_ar equal the keys charon derived for
// the same IKE SA (charon logs them at level 4; RFC 7296 Section 2.14), and with it tshark decrypts
// both IKE_AUTH messages and shows their AUTH payloads. For an AEAD (AES-GCM, no SK_a) and for
// AES-CBC with HMAC-SHA-256.
func TestIKEKeyLogAgainstStrongSwan(t *testing.T) {
	requireStrongSwan(t)
	for _, tc := range []struct{ name, proposal string }{
		{"aes256gcm16", "aes256gcm16-prfsha256-x25519"},
		{"aes128-sha256", "aes128-sha256-ecp256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPqlabPair(t, interopSpec{Proposals: tc.proposal, ESPProposals: "aes256gcm16",
				CharonLogLevels: map[string]string{"ike": "4"}})
			ctx := testContext(t)
			if _, err := s.D.Initiate(ctx, pqlabPeerName); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.D.WaitEvent(ctx, 0, func(ev ike.Event) bool { return ev.Kind == ike.EventIKESAEstablished }); err != nil {
				t.Fatal(err)
			}
			sa := s.established(t, ctx)
			s.pingBoth(t, ctx, 1, 56)
			b, err := os.ReadFile(filepath.Join(s.KeyDir, driver.IKETableFile))
			if err != nil {
				t.Fatal(err)
			}
			// SPIi,SPIr,SK_ei,SK_er,"encr",SK_ai,SK_ar,"integ"
			f := strings.Split(strings.TrimSpace(string(b)), ",")
			if len(f) != 8 || f[0] != sa.InitiatorSPI || f[1] != sa.ResponderSPI {
				t.Fatalf("pqlab's IKE key table %q for charon's SA %s_%s", b, sa.InitiatorSPI, sa.ResponderSPI)
			}
			keys := charonIKEKeys(t, s.C.LogPath())
			for i, name := range map[int]string{2: "Sk_ei", 3: "Sk_er", 5: "Sk_ai", 6: "Sk_ar"} {
				if f[i] != keys[name] {
					t.Errorf("%s: pqlab %q, charon %q", name, f[i], keys[name])
				}
			}
			if keys["Sk_ei"] == "" {
				t.Fatal("no keys in charon's log")
			}
			r := s.checkCapture(t, true)
			var methods []int
			for _, f := range r.Frames {
				for _, ex := range f.Exchanges {
					if ex == int(wire.ExchangeIKEAuth) {
						methods = append(methods, f.AuthMethods...)
					}
				}
			}
			if len(methods) != 2 || methods[0] != int(wire.AuthSharedKey) || methods[1] != int(wire.AuthSharedKey) {
				t.Errorf("AUTH methods seen in decrypted IKE_AUTH: %v, want two shared-key AUTH payloads", methods)
			}
		})
	}
}
