package interop

import (
	"bufio"
	"encoding/hex"
	"os"
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

// charonIKEKeys returns the first SK_ei, SK_er, SK_ai and SK_ar charon logged.
func charonIKEKeys(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := charonKeyLine.FindStringSubmatch(sc.Text())
		if m == nil || keys[m[1]] != nil {
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
		keys[m[1]] = b
	}
	return keys
}

// TestIKEKeyTableFormat proves driver.KeyLog's ikev2_decryption_table lines against tshark: with
// the IKE SA keys that charon logs at level 4 in place of pqlab's (the engine does not hand its
// SK_e/SK_a keys to the driver yet), the SPIs and suite of pqlab's IKESAEstablished event, tshark
// decrypts both IKE_AUTH messages and shows their AUTH payloads, for an AEAD (AES-GCM, no SK_a)
// and for AES-CBC with HMAC-SHA-256.
func TestIKEKeyTableFormat(t *testing.T) {
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
			ev, _, err := s.D.WaitEvent(ctx, 0, func(ev ike.Event) bool { return ev.Kind == ike.EventIKESAEstablished })
			if err != nil {
				t.Fatal(err)
			}
			s.established(t, ctx)
			s.pingBoth(t, ctx, 1, 56)
			keys := charonIKEKeys(t, s.C.LogPath())
			if len(keys["Sk_ei"]) == 0 || len(keys["Sk_er"]) == 0 {
				t.Fatalf("no IKE keys in charon's log: %v", keys)
			}
			kl, err := driver.NewKeyLog(s.KeyDir)
			if err != nil {
				t.Fatal(err)
			}
			if err := kl.AddIKE(driver.IKEKeys{SPIi: ev.SPIi, SPIr: ev.SPIr, Suite: ev.Suite,
				EI: keys["Sk_ei"], ER: keys["Sk_er"], AI: keys["Sk_ai"], AR: keys["Sk_ar"]}); err != nil {
				t.Fatal(err)
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
