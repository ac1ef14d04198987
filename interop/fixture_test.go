package interop

// Test fixture: namespaces, charons and captures with reliable teardown. Every resource registers
// its cleanup with t.Cleanup as soon as it exists, so a failing or timed-out test leaves nothing
// behind; TestMain also removes namespaces left by killed test processes.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pqlab/pqlab/interop/realnet"
)

// Time bounds of the fixture.
const (
	setupTimeout = 30 * time.Second // namespaces, charons, capture start
	testTimeout  = 60 * time.Second // one test's whole context
	psk          = "pqlab-interop-test-psk-0123456789"
)

func TestMain(m *testing.M) {
	if Available() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		if err := CleanupStale(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "interop: cleaning stale namespaces:", err)
		}
		cancel()
	}
	os.Exit(m.Run())
}

// requireNetns skips the test when namespaces cannot be used (not root, no ip netns); CI runs as
// root, so there these tests always run.
func requireNetns(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// requireStrongSwan fails (not skips) when strongSwan or tshark is missing on a machine that can
// run namespaces: CI must have run interop/install.sh.
func requireStrongSwan(t testing.TB) {
	t.Helper()
	requireNetns(t)
	for _, p := range []string{DefaultCharonBinary} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing: run interop/install.sh", p)
		}
	}
	for _, c := range []string{"swanctl", "tshark", "dumpcap", "mount"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s missing: run interop/install.sh", c)
		}
	}
}

// testContext returns a context that ends with the test or after testTimeout.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// shortTempDir returns a fresh directory with a short path (the vici socket path is limited to
// 107 bytes, t.TempDir's can be longer). It is removed after a passing test and kept, with its
// configurations, logs and captures, after a failing one or when PQI_KEEP is set.
func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pqi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("PQI_KEEP") != "" {
			t.Logf("kept %s (configurations, logs, captures)", d)
			return
		}
		os.RemoveAll(d)
	})
	return d
}

// newTestPair creates two joined namespaces, deleted after the test.
func newTestPair(t testing.TB) *Pair {
	t.Helper()
	requireNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	p, err := NewPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("deleting namespaces: %v", err)
		}
	})
	return p
}

// startCharon starts a charon in ns with the given configuration in dir; it is stopped after the
// test, and its log tail is printed if the test failed.
func startCharon(t testing.TB, ns *Netns, dir string, swan SwanctlConfig, settings map[string]string) *Charon {
	t.Helper()
	return startCharonConfig(t, CharonConfig{Netns: ns, Dir: dir, Settings: settings, Swanctl: swan})
}

// startCharonConfig is startCharon for a whole configuration.
func startCharonConfig(t testing.TB, cfg CharonConfig) *Charon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ns := cfg.Netns
	c, err := StartCharon(ctx, cfg)
	if err != nil {
		t.Fatalf("starting charon in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon in %s:\n%s", ns.Name, c.LogTail(60))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stopping charon: %v", err)
		}
	})
	return c
}

// startCapture captures iface in ns into dir/name.pcapng until the test ends (or Stop).
func startCapture(t testing.TB, ns *Netns, iface, dir, name string) *Capture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	c, err := StartCapture(ctx, ns, iface, filepath.Join(dir, name+".pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// checkCapture stops the capture, dissects it with tshark and fails the test on any malformed
// frame or expert error.
func checkCapture(t testing.TB, c *Capture) *CaptureReport {
	t.Helper()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	r, err := Analyze(ctx, c.Path, AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Problems(); len(p) > 0 {
		t.Errorf("tshark found problems in %s:\n  %s", c.Path, strings.Join(p, "\n  "))
	}
	return r
}

// peer is one end of a tunnel: namespace, addresses and identity.
type peer struct {
	NS    *Netns
	Outer netip.Addr // IKE / ESP-in-UDP address on the veth
	Inner netip.Addr // traffic selector address (on lo for a charon)
	ID    string     // IKE identity (FQDN), also the certificate's DNS name
}

// peersOf returns the two ends of a Pair with the standard addresses.
func peersOf(p *Pair) (a, b peer) {
	return peer{NS: p.A, Outer: OuterA, Inner: InnerA, ID: "a.test"},
		peer{NS: p.B, Outer: OuterB, Inner: InnerB, ID: "b.test"}
}

// tunnelSpec parameterizes a tunnel between two charons.
type tunnelSpec struct {
	Proposals    string // IKE proposal, e.g. "aes256gcm16-prfsha256-x25519"
	ESPProposals string // e.g. "aes256gcm16" or "aes256gcm16-x25519" (PFS)
	// Auth is 0 for PSK, otherwise the key algorithm of both peers' certificates.
	Auth KeyAlg
	// CertPadding adds that many DNS names to each certificate (IKE fragmentation tests).
	CertPadding int
	// Settings are strongswan.conf charon settings for both peers.
	Settings map[string]string
	// Tweak, if set, edits each side's connection before it is written.
	Tweak func(local peer, c *Conn)
}

// connName and childName name the connection every tunnelSpec produces.
const (
	connName  = "t"
	childName = "c"
)

// swanctlFor returns local's swanctl configuration for a tunnel to remote. For certificate
// authentication ca issues local's certificate.
func swanctlFor(t testing.TB, local, remote peer, spec tunnelSpec, ca *CA) SwanctlConfig {
	t.Helper()
	c := Conn{
		Name:        connName,
		LocalAddrs:  []string{local.Outer.String()},
		RemoteAddrs: []string{remote.Outer.String()},
		Proposals:   []string{spec.Proposals},
		Encap:       true,
		Local:       Auth{Method: "psk", ID: local.ID},
		Remote:      Auth{Method: "psk", ID: remote.ID},
		Children: []Child{{
			Name:         childName,
			LocalTS:      []string{netip.PrefixFrom(local.Inner, 32).String()},
			RemoteTS:     []string{netip.PrefixFrom(remote.Inner, 32).String()},
			ESPProposals: []string{spec.ESPProposals},
		}},
	}
	swan := SwanctlConfig{}
	if spec.Auth == 0 {
		swan.PSKs = []PSK{{IDs: []string{local.ID, remote.ID}, Secret: psk}}
	} else {
		cert, key, err := ca.Issue(spec.Auth, local.ID, spec.CertPadding)
		if err != nil {
			t.Fatal(err)
		}
		c.Local = Auth{Method: "pubkey", ID: local.ID, Certs: []string{"local.pem"}}
		c.Remote = Auth{Method: "pubkey", ID: remote.ID, CACerts: []string{"ca.pem"}}
		swan.Files = map[string][]byte{
			"x509/local.pem":  cert,
			"x509ca/ca.pem":   ca.PEM,
			"private/key.pem": key,
		}
	}
	if spec.Tweak != nil {
		spec.Tweak(local, &c)
	}
	swan.Conns = []Conn{c}
	return swan
}

// strongSwanPair is two charons in two namespaces with one tunnel configured (not initiated), and a
// capture running on A's veth.
type strongSwanPair struct {
	Pair    *Pair
	A, B    peer
	CA, CB  *Charon
	Capture *Capture
	Dir     string
}

// newStrongSwanPair builds the whole strongSwan-to-strongSwan fixture for spec.
func newStrongSwanPair(t testing.TB, spec tunnelSpec) *strongSwanPair {
	t.Helper()
	requireStrongSwan(t)
	p := newTestPair(t)
	a, b := peersOf(p)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for _, side := range []peer{a, b} {
		// charon installs its route with a source address from the local traffic selector, which
		// must therefore be on an interface of its namespace (no dummy module here: loopback).
		if err := side.NS.AddAddr(ctx, "lo", netip.PrefixFrom(side.Inner, 32)); err != nil {
			t.Fatal(err)
		}
	}
	var ca *CA
	if spec.Auth != 0 {
		var err error
		if ca, err = NewCA(spec.Auth, "pqlab interop CA", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	dir := shortTempDir(t)
	s := &strongSwanPair{Pair: p, A: a, B: b, Dir: dir}
	s.Capture = startCapture(t, a.NS, VethA, dir, "veth-a")
	s.CA = startCharon(t, a.NS, filepath.Join(dir, "a"), swanctlFor(t, a, b, spec, ca), spec.Settings)
	s.CB = startCharon(t, b.NS, filepath.Join(dir, "b"), swanctlFor(t, b, a, spec, ca), spec.Settings)
	return s
}

// pingBoth pings through the tunnel in both directions and fails the test on loss.
func (s *strongSwanPair) pingBoth(t testing.TB, ctx context.Context, count, size int) {
	t.Helper()
	if _, err := Ping(ctx, s.A.NS, s.A.Inner, s.B.Inner, count, size); err != nil {
		t.Fatalf("ping A->B: %v", err)
	}
	if _, err := Ping(ctx, s.B.NS, s.B.Inner, s.A.Inner, count, size); err != nil {
		t.Fatalf("ping B->A: %v", err)
	}
}

// established waits until both charons hold one established IKE SA with one installed CHILD_SA
// for the test connection and returns A's and B's views.
func (s *strongSwanPair) established(t testing.TB, ctx context.Context) (IKESA, IKESA) {
	t.Helper()
	var out [2]IKESA
	for i, c := range []*Charon{s.CA, s.CB} {
		sas, err := c.WaitSAs(ctx, func(sas []IKESA) bool {
			e := Established(sas, connName)
			return len(e) == 1 && len(e[0].Children) == 1
		})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = Established(sas, connName)[0]
	}
	return out[0], out[1]
}

// realSide is the namespace side where pqlab will run against a charon (phase 2): a TUN device
// "pq0" carrying the local inner address with a route to the remote inner address through it, and
// a realnet.Endpoint on UDP 500 and 4500 of the outer address. The engine's driver moves packets
// between them: TUN -> ESP seal -> Endpoint.SendESP, Endpoint ESP -> open -> TUN.WritePacket.
type realSide struct {
	peer
	TUN *realnet.TUN
	EP  *realnet.Endpoint
}

// realSideTUN is the TUN device name of a realSide, and realSideMTU its MTU (charon's ipsec0 has
// the same).
const (
	realSideTUN = "pq0"
	realSideMTU = 1400
)

// newRealSide opens the TUN device and the sockets in local's namespace; closed after the test.
func newRealSide(t testing.TB, local, remote peer) *realSide {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s := &realSide{peer: local}
	err := realnet.InNetns(local.NS.Path(), func() (err error) {
		if s.TUN, err = realnet.OpenTUN(realSideTUN); err != nil {
			return err
		}
		s.EP, err = realnet.Listen(local.Outer, realnet.IKEPort, realnet.NATTPort)
		return err
	})
	if s.TUN != nil {
		t.Cleanup(func() { s.TUN.Close() })
	}
	if s.EP != nil {
		t.Cleanup(func() { s.EP.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	ipc := realnet.IPConfig{Netns: local.NS.Name}
	if err := ipc.SetupTUN(ctx, realSideTUN, []netip.Prefix{netip.PrefixFrom(local.Inner, 32)}, realSideMTU); err != nil {
		t.Fatal(err)
	}
	if err := ipc.AddRoute(ctx, netip.PrefixFrom(remote.Inner, 32), realSideTUN, local.Inner); err != nil {
		t.Fatal(err)
	}
	return s
}
