package interop

// Fixture for pqlab against strongSwan: charon in namespace A, pqlab's driver (package
// interop/driver) in namespace B, running in this test process with its sockets and TUN device
// created inside B (realnet.InNetns).

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/auth/authtest"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/interop/driver"
)

// pqlabPeerName is the name of pqlab's connection to charon, childName its Child SA (shared with
// charon's naming).
const pqlabPeerName = "charon"

// interopSpec parameterizes one pqlab-to-charon tunnel. Proposals use strongSwan's syntax, which
// both sides read.
type interopSpec struct {
	Proposals    string
	ESPProposals string
	// Auth is 0 for PSK, otherwise the key algorithm of both peers' certificates: charon's is
	// issued by an interop CA (crypto/x509), pqlab's by pqlab's own CA (ike/auth/authtest), and
	// each side trusts only the other's CA.
	Auth KeyAlg
	// CertPadding adds DNS names to both certificates.
	CertPadding int
	// FragmentSize, when set, is both sides' IKE fragment size (RFC 7383).
	FragmentSize int
	// TweakPqlab and TweakCharon, if set, edit pqlab's peer and charon's connection.
	TweakPqlab  func(*ike.PeerConfig)
	TweakCharon func(*Conn)
	// IPv6 runs the tunnel over IPv6 (outerA6, outerB6) with IPv6 inner addresses.
	IPv6 bool
	// CharonLogLevels override charon's log levels (CharonConfig.LogLevels).
	CharonLogLevels map[string]string
	// Negative cases: pqlab trusts an unrelated CA instead of charon's, charon trusts an
	// unrelated CA instead of pqlab's, or pqlab uses another PSK.
	PqlabTrustsOther, CharonTrustsOther bool
	PqlabPSK                            string
}

// pqlabPair is charon in A against pqlab in B, with a capture on A's veth.
type pqlabPair struct {
	Pair    *Pair
	A, B    peer
	C       *Charon
	D       *driver.Driver
	Capture *Capture
	Dir     string
	// KeyDir holds pqlab's Wireshark key log (esp_sa).
	KeyDir string
	Spec   interopSpec
	// CharonCA issued charon's certificate; pqlab trusts it. PqlabCAPEM issued pqlab's; charon
	// trusts it.
	CharonCA   *CA
	PqlabCAPEM []byte
	swan       struct {
		conf      SwanctlConfig
		settings  map[string]string
		logLevels map[string]string
	}
	runErr chan error
	stop   context.CancelFunc
	t      *testing.T
}

// IPv6 addresses of the IPv6 variant, from the documentation prefix (RFC 3849).
var (
	outerA6 = netip.MustParseAddr("2001:db8:1::1")
	outerB6 = netip.MustParseAddr("2001:db8:1::2")
	innerA6 = netip.MustParseAddr("2001:db8:a::1")
	innerB6 = netip.MustParseAddr("2001:db8:b::1")
)

// host returns the host prefix of a (/32 or /128).
func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// authKeyType maps an interop key algorithm to package auth's.
func authKeyType(a KeyAlg) auth.KeyType {
	switch a {
	case KeyECDSAP256:
		return auth.KeyECDSAP256
	case KeyECDSAP384:
		return auth.KeyECDSAP384
	case KeyEd25519:
		return auth.KeyEd25519
	}
	return 0
}

// newPqlabPair starts charon in A with connection connName (child childName) towards B and pqlab's
// driver in B with peer pqlabPeerName towards A; neither initiates.
func newPqlabPair(t *testing.T, spec interopSpec) *pqlabPair {
	t.Helper()
	s := newCharonForPqlab(t, spec)
	a, b := s.A, s.B
	pq := ike.PeerConfig{
		Name:         pqlabPeerName,
		Local:        netip.AddrPortFrom(b.Outer, 500),
		Remote:       netip.AddrPortFrom(a.Outer, 500),
		IKEProposals: []string{spec.Proposals},
		Children: []ike.ChildConfig{{
			Name:         childName,
			ESPProposals: []string{spec.ESPProposals},
			LocalTS:      []ike.TrafficSelector{ike.MustTS(host(b.Inner).String())},
			RemoteTS:     []ike.TrafficSelector{ike.MustTS(host(a.Inner).String())},
		}},
	}
	var err error
	if pq.LocalID, err = ike.ParseIdentity("@" + b.ID); err != nil {
		t.Fatal(err)
	}
	if pq.RemoteID, err = ike.ParseIdentity("@" + a.ID); err != nil {
		t.Fatal(err)
	}
	if spec.Auth == 0 {
		pq.Auth.PSK = psk
		if spec.PqlabPSK != "" {
			pq.Auth.PSK = spec.PqlabPSK
		}
	} else {
		// pqlab's certificate comes from pqlab's own CA code (ike/auth/authtest).
		pca, err := authtest.NewCA([]byte("pqlab interop "+t.Name()), authKeyType(spec.Auth))
		if err != nil {
			t.Fatal(err)
		}
		names := []string{b.ID}
		for i := 0; i < spec.CertPadding; i++ {
			names = append(names, fmt.Sprintf("pad%04d.%s", i, b.ID))
		}
		ent, err := pca.Issue(b.ID, authtest.Options{DNSNames: names})
		if err != nil {
			t.Fatal(err)
		}
		trusted := s.CharonCA
		if spec.PqlabTrustsOther {
			if trusted, err = NewCA(spec.Auth, s.CharonCA.Cert.Subject.CommonName, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		anchor, err := auth.ParseCertificate(trusted.Cert.Raw)
		if err != nil {
			t.Fatal(err)
		}
		pq.Auth.Signer, pq.Auth.Trust, pq.Auth.CertReqCAs = ent.Signer(), auth.NewPool(anchor), []*auth.Certificate{anchor}
		s.PqlabCAPEM = pemBlock("CERTIFICATE", pca.DER)
		if spec.CharonTrustsOther {
			other, err := authtest.NewCA([]byte("another CA "+t.Name()), authKeyType(spec.Auth))
			if err != nil {
				t.Fatal(err)
			}
			s.PqlabCAPEM = pemBlock("CERTIFICATE", other.DER)
		}
	}
	if spec.TweakPqlab != nil {
		spec.TweakPqlab(&pq)
	}
	cfg := ike.Config{
		Retransmit: ike.RetransmitConfig{InitialTimeout: ike.Duration(time.Second), Tries: 3},
		Peers:      []ike.PeerConfig{pq},
	}
	cfg.Fragmentation.Size = spec.FragmentSize
	s.startCharon(t)
	s.startDriver(t, driver.Config{IKE: cfg})
	return s
}

// newCharonForPqlab prepares both namespaces and charon's side of spec (configuration, and for
// certificates charon's CA, key and certificate); startCharon starts it once PqlabCAPEM is known.
func newCharonForPqlab(t *testing.T, spec interopSpec) *pqlabPair {
	t.Helper()
	requireStrongSwan(t)
	p := newTestPair(t)
	a, b := peersOf(p)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if spec.IPv6 {
		a.Outer, a.Inner, b.Outer, b.Inner = outerA6, innerA6, outerB6, innerB6
		for _, side := range []struct {
			ns  *Netns
			dev string
			a   netip.Addr
		}{{p.A, VethA, outerA6}, {p.B, VethB, outerB6}} {
			if err := side.ns.EnableIPv6(); err != nil {
				t.Fatal(err)
			}
			// nodad: usable at once (no Duplicate Address Detection on the test link).
			if _, err := side.ns.IP(ctx, "addr", "add", netip.PrefixFrom(side.a, 64).String(), "dev", side.dev, "nodad"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.NS.AddAddr(ctx, "lo", host(a.Inner)); err != nil {
		t.Fatal(err)
	}
	dir := shortTempDir(t)
	s := &pqlabPair{Pair: p, A: a, B: b, Dir: dir, KeyDir: filepath.Join(dir, "keys"), Spec: spec, t: t}
	conn := Conn{
		Name:        connName,
		LocalAddrs:  []string{a.Outer.String()},
		RemoteAddrs: []string{b.Outer.String()},
		Proposals:   []string{spec.Proposals},
		Encap:       true,
		Local:       Auth{Method: "psk", ID: a.ID},
		Remote:      Auth{Method: "psk", ID: b.ID},
		Children: []Child{{
			Name:         childName,
			LocalTS:      []string{host(a.Inner).String()},
			RemoteTS:     []string{host(b.Inner).String()},
			ESPProposals: []string{spec.ESPProposals},
		}},
	}
	s.swan.settings, s.swan.logLevels = map[string]string{}, spec.CharonLogLevels
	if spec.Auth == 0 {
		s.swan.conf.PSKs = []PSK{{IDs: []string{a.ID, b.ID}, Secret: psk}}
	} else {
		ca, err := NewCA(spec.Auth, "interop CA "+spec.Auth.String(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := ca.Issue(spec.Auth, a.ID, spec.CertPadding)
		if err != nil {
			t.Fatal(err)
		}
		s.CharonCA = ca
		conn.Local = Auth{Method: "pubkey", ID: a.ID, Certs: []string{"local.pem"}}
		conn.Remote = Auth{Method: "pubkey", ID: b.ID, CACerts: []string{"pqlab-ca.pem"}}
		s.swan.conf.Files = map[string][]byte{"x509/local.pem": cert, "private/key.pem": key}
	}
	if spec.FragmentSize > 0 {
		conn.Fragmentation = "yes"
		s.swan.settings["fragment_size"] = fmt.Sprint(spec.FragmentSize)
	}
	if spec.TweakCharon != nil {
		spec.TweakCharon(&conn)
	}
	s.swan.conf.Conns = []Conn{conn}
	return s
}

// startCharon starts the capture on A's veth and charon, which trusts PqlabCAPEM only.
func (s *pqlabPair) startCharon(t *testing.T) {
	t.Helper()
	if s.Spec.Auth != 0 {
		s.swan.conf.Files["x509ca/pqlab-ca.pem"] = s.PqlabCAPEM
	}
	s.Capture = startCapture(t, s.A.NS, VethA, s.Dir, "veth-a")
	s.C = startCharonConfig(t, CharonConfig{Netns: s.A.NS, Dir: filepath.Join(s.Dir, "a"), Settings: s.swan.settings,
		Swanctl: s.swan.conf, LogLevels: s.swan.logLevels})
}

// startDriver completes dc with B's addresses and namespace where unset, starts the driver and stops it (with
// its clean shutdown) after the test.
func (s *pqlabPair) startDriver(t *testing.T, dc driver.Config) {
	t.Helper()
	if !dc.Local.IsValid() {
		dc.Local = s.B.Outer
	}
	if dc.Netns == "" {
		dc.Netns = s.B.NS.Name
	}
	if len(dc.Inner) == 0 {
		dc.Inner = []netip.Prefix{host(s.B.Inner)}
	}
	if dc.KeyLogDir == "" {
		dc.KeyLogDir = s.KeyDir
	}
	logf, err := os.Create(filepath.Join(s.Dir, "pqlab.log"))
	if err != nil {
		t.Fatal(err)
	}
	dc.Logger = slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := driver.New(dc)
	if err != nil {
		logf.Close()
		t.Fatal(err)
	}
	s.D = d
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.runErr = make(chan error, 1)
	go func() { s.runErr <- d.Run(ctx) }()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("driver: %v", err)
		}
		logf.Close()
		if t.Failed() {
			t.Logf("pqlab log:\n%s", tail(filepath.Join(s.Dir, "pqlab.log"), 60))
		}
	})
}

// Stop ends the driver's Run (deleting its IKE SAs) and returns Run's error. Safe to call twice.
func (s *pqlabPair) Stop() error {
	if s.stop == nil {
		return nil
	}
	s.logDrops()
	s.stop()
	s.stop = nil
	select {
	case err := <-s.runErr:
		return err
	case <-time.After(driver.DefaultShutdownGrace + 10*time.Second):
		return fmt.Errorf("driver did not stop")
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// established waits until charon holds exactly one established IKE SA of the connection with one
// installed CHILD_SA whose SPIs pqlab has installed too, and returns charon's view.
func (s *pqlabPair) established(t *testing.T, ctx context.Context) IKESA {
	t.Helper()
	var sa IKESA
	_, err := s.C.WaitSAs(ctx, func(sas []IKESA) bool {
		e := Established(sas, connName)
		if len(e) != 1 || len(e[0].Children) != 1 {
			return false
		}
		sa = e[0]
		return s.pqlabHasChild(ctx, sa.Children[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

// pqlabHasChild reports whether pqlab holds an established IKE SA with a Child SA matching
// charon's (inbound and outbound SPI crossed).
func (s *pqlabPair) pqlabHasChild(ctx context.Context, ch ChildSA) bool {
	infos, err := s.D.SAs(ctx)
	if err != nil {
		return false
	}
	for _, info := range infos {
		for _, spi := range info.Children {
			if info.Established && fmt.Sprintf("%08x", spi) == ch.SPIOut {
				return true
			}
		}
	}
	return false
}

// pingBoth pings through the tunnel in both directions.
func (s *pqlabPair) pingBoth(t *testing.T, ctx context.Context, count, size int) {
	t.Helper()
	if _, err := Ping(ctx, s.A.NS, s.A.Inner, s.B.Inner, count, size); err != nil {
		t.Fatalf("ping charon->pqlab: %v", err)
	}
	if _, err := Ping(ctx, s.B.NS, s.B.Inner, s.A.Inner, count, size); err != nil {
		t.Fatalf("ping pqlab->charon: %v", err)
	}
}

// transferBoth runs byte-exact TCP transfers of n bytes with each side as the client.
func (s *pqlabPair) transferBoth(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	if err := TransferTCP(ctx, s.A.NS, s.A.Inner, s.B.NS, s.B.Inner, n, 11); err != nil {
		t.Fatalf("TCP charon side -> pqlab side: %v", err)
	}
	if err := TransferTCP(ctx, s.B.NS, s.B.Inner, s.A.NS, s.A.Inner, n, 12); err != nil {
		t.Fatalf("TCP pqlab side -> charon side: %v", err)
	}
}

// decryptArgs make tshark decrypt ESP with the esp_sa table and dissect every inner TCP payload
// as plain data: the transfers carry random bytes, in which heuristic dissectors find false
// protocols (Thrift once flagged "varint value too large" errors in a random stream).
var decryptArgs = []string{"-o", driver.TsharkESPDecode, "-d", "tcp.port==1-65535,data"}

// checkPqlabCapture stops the capture and dissects it twice with tshark: plain (no malformed
// frame, no expert error) and with pqlab's key log, again without problems. When Wireshark
// knows the algorithms (decrypt; tshark 4.0 has no ChaCha20-Poly1305), every ESP frame must
// decrypt to an inner IP packet, every encrypted IKE message (after IKE_SA_INIT, rekeyed IKE SAs
// included) must decrypt, and every IKE_AUTH exchange must show both AUTH payloads. It returns the
// decrypted dissection.
func (s *pqlabPair) checkCapture(t *testing.T, decrypt bool) *CaptureReport {
	t.Helper()
	plain := checkCapture(t, s.Capture)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	r, err := Analyze(ctx, s.Capture.Path, AnalyzeOptions{ConfigDir: s.KeyDir, Args: decryptArgs})
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Problems(); len(p) > 0 {
		t.Errorf("tshark with pqlab's key log found problems in %s:\n  %s", s.Capture.Path, strings.Join(p, "\n  "))
	}
	esp, dec := 0, 0
	for _, f := range r.Frames {
		if len(f.ESPSPIs) == 0 {
			continue
		}
		esp++
		if strings.Contains(f.Protocols, ":esp:ip:") || strings.Contains(f.Protocols, ":esp:ipv6:") {
			dec++
		}
	}
	if esp == 0 || esp != plain.ESPFrames() {
		t.Errorf("%d ESP frames (%d without keys)", esp, plain.ESPFrames())
	}
	if decrypt && dec != esp {
		t.Errorf("%d of %d ESP frames decrypted with pqlab's key log (%s)", dec, esp, s.KeyDir)
	}
	if !decrypt && dec != 0 {
		t.Errorf("%d ESP frames decrypted without a usable key", dec)
	}
	ike, ikeDec, auth := 0, 0, 0
	for _, f := range r.Frames {
		if len(f.Exchanges) == 0 || f.Exchanges[0] == int(wire.ExchangeIKESAInit) {
			continue
		}
		ike++
		if f.Decrypted {
			ikeDec++
		}
		if f.Exchanges[0] == int(wire.ExchangeIKEAuth) && len(f.AuthMethods) > 0 {
			auth++
		}
	}
	switch {
	case decrypt && (ikeDec != ike || auth < 2 || auth%2 != 0):
		t.Errorf("%d of %d encrypted IKE frames decrypted with pqlab's key log, %d IKE_AUTH AUTH payloads (%s)", ikeDec, ike, auth, s.KeyDir)
	case !decrypt && ikeDec != 0:
		t.Errorf("%d IKE frames decrypted without a usable key", ikeDec)
	}
	t.Logf("capture: %d frames; IKE %d (%d encrypted, %d decrypted); ESP %d, %d decrypted with pqlab's keys",
		len(r.Frames), r.IKEFrames(), ike, ikeDec, esp, dec)
	return r
}

// logDrops reports the datagrams pqlab's engine discarded, by reason.
func (s *pqlabPair) logDrops() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var st ike.Stats
	if err := s.D.Do(ctx, func(_ time.Time, e *ike.Engine) error { st = e.Stats(); return nil }); err != nil {
		return
	}
	var drops []string
	for _, r := range ike.DropReasons() {
		if n := st.Dropped[r]; n > 0 {
			drops = append(drops, fmt.Sprintf("%v=%d", r, n))
		}
	}
	if len(drops) > 0 {
		s.t.Logf("pqlab engine drops: %s (of %d datagrams)", strings.Join(drops, " "), st.DatagramsIn)
	}
}
