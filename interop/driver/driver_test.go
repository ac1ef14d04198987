package driver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/models/tomlcheck"
)

func TestRoutePrefixes(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		start, end string
		want       string
	}{
		{"198.51.100.1", "198.51.100.1", "198.51.100.1/32"},
		{"10.1.0.0", "10.1.255.255", "10.1.0.0/16"},
		{"10.0.0.1", "10.0.0.6", "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/1 128.0.0.0/1"},
		{"192.0.2.255", "192.0.3.0", "192.0.2.255/32 192.0.3.0/32"},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/1 8000::/1"},
		{"2001:db8::", "2001:db8::ffff", "2001:db8::/112"},
	} {
		var got []string
		for _, p := range RoutePrefixes(a(tc.start), a(tc.end)) {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s-%s: %v, want %s", tc.start, tc.end, got, tc.want)
		}
	}
	if p := RoutePrefixes(a("10.0.0.2"), a("10.0.0.1")); p != nil {
		t.Errorf("reversed range gave %v", p)
	}
	if p := RoutePrefixes(a("10.0.0.2"), a("::1")); p != nil {
		t.Errorf("mixed families gave %v", p)
	}
}

func TestRouteFields(t *testing.T) {
	via, dev := routeFields("192.0.2.1 via 10.0.0.1 dev eth0 src 10.0.0.2 uid 0 \n    cache \n")
	if via != netip.MustParseAddr("10.0.0.1") || dev != "eth0" {
		t.Errorf("via %v dev %q", via, dev)
	}
	via, dev = routeFields("192.0.2.1 dev vb src 192.0.2.2 uid 0\n")
	if via.IsValid() || dev != "vb" {
		t.Errorf("via %v dev %q", via, dev)
	}
}

// TestKeyTables checks the key log files against the UAT formats of Wireshark 4.0 (the tshark
// in CI decrypts captures with them in package interop's tests); ike's tests cover the record
// formats themselves.
func TestKeyTables(t *testing.T) {
	dir := t.TempDir()
	k, err := NewKeyLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &ike.ChildSA{InboundSPI: 0x1111, OutboundSPI: 0x2222, Suite: suite.Suite{Encr: wire.EncrAESGCM16, EncrKeyBits: 128},
		Local: netip.MustParseAddrPort("192.0.2.2:4500"), Remote: netip.MustParseAddrPort("192.0.2.1:4500"),
		Inbound: ike.DirectionKeys{Encr: []byte{0x11}}, Outbound: ike.DirectionKeys{Encr: []byte{0x22}}}
	if err := k.AddChild(c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ESPTableFile))
	if err != nil {
		t.Fatal(err)
	}
	want := `"IPv4","192.0.2.2","192.0.2.1","0x00002222","AES-GCM with 16 octet ICV [RFC4106]","0x22","NULL","0x"` + "\n" +
		`"IPv4","192.0.2.1","192.0.2.2","0x00001111","AES-GCM with 16 octet ICV [RFC4106]","0x11","NULL","0x"` + "\n"
	if string(b) != want {
		t.Errorf("esp_sa:\n%s\nwant\n%s", b, want)
	}

	// IKE SAs: one record per SPI pair, the Final keys only.
	gcm256 := suite.Suite{Encr: wire.EncrAESGCM16, EncrKeyBits: 256}
	for _, e := range []ike.KeyLogEntry{
		{SPIi: 1, SPIr: 2, Suite: gcm256, SKei: []byte{0xa1}, SKer: []byte{0xa2}},              // not Final: skipped
		{SPIi: 1, SPIr: 2, Suite: gcm256, Final: true, SKei: []byte{0xb1}, SKer: []byte{0xb2}}, // recorded
		{SPIi: 3, SPIr: 4, Suite: gcm256, Final: true, SKei: []byte{0xc1}, SKer: []byte{0xc2}}, // recorded
		{SPIi: 1, SPIr: 2, Suite: gcm256, Final: true, SKei: []byte{0xd1}, SKer: []byte{0xd2}}, // replaces the first
	} {
		if err := k.AddIKE(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.AddIKE(ike.KeyLogEntry{Final: true, Suite: suite.Suite{Encr: wire.EncrChaCha20Poly1305}}); !errors.Is(err, ErrNotDecryptable) {
		t.Errorf("ChaCha20-Poly1305 IKE SA: %v", err)
	}
	if b, err = os.ReadFile(filepath.Join(dir, IKETableFile)); err != nil {
		t.Fatal(err)
	}
	want = `0000000000000001,0000000000000002,d1,d2,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"` + "\n" +
		`0000000000000003,0000000000000004,c1,c2,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"` + "\n"
	if string(b) != want {
		t.Errorf("ikev2_decryption_table:\n%s\nwant\n%s", b, want)
	}
}

// selfSigned returns a self-signed certificate for key.
func selfSigned(t *testing.T, key crypto.Signer, cn string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestKeySigner signs AUTH octets with file-style keys and verifies them with package auth's
// verifier, as the peer would: RFC 7427 signatures with each announced hash, and the RFC 4754
// methods when the peer announced none.
func TestKeySigner(t *testing.T) {
	octets := []byte("the octets of RFC 7296 Section 2.15")
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		hashes []wire.HashAlgorithm
		method wire.AuthMethod
	}{
		{"P-256/rfc7427", p256, auth.SupportedHashes(), wire.AuthDigitalSignature},
		{"P-256/sha512", p256, []wire.HashAlgorithm{wire.HashSHA2512}, wire.AuthDigitalSignature},
		{"P-256/rfc4754", p256, nil, wire.AuthECDSA256},
		{"P-384/rfc7427", p384, auth.SupportedHashes(), wire.AuthDigitalSignature},
		{"P-384/rfc4754", p384, nil, wire.AuthECDSA384},
		{"Ed25519", ed, auth.SupportedHashes(), wire.AuthDigitalSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der := selfSigned(t, tc.key, "gw.test")
			s, err := NewKeySigner(tc.key, der)
			if err != nil {
				t.Fatal(err)
			}
			method, data, err := s.Sign(rand.Reader, octets, tc.hashes)
			if err != nil {
				t.Fatal(err)
			}
			if method != tc.method {
				t.Errorf("method %v, want %v", method, tc.method)
			}
			cert, err := auth.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			v := &auth.SignatureVerifier{Key: cert.PublicKey}
			if err := v.Verify(method, data, octets); err != nil {
				t.Errorf("verify: %v", err)
			}
			if err := v.Verify(method, data, append(octets, 0)); err == nil {
				t.Error("signature verified over other octets")
			}
			if got := s.Certificates(); len(got) != 1 || string(got[0]) != string(der) {
				t.Error("certificates not passed through")
			}
		})
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := NewKeySigner(p256, selfSigned(t, other, "x")); err == nil {
		t.Error("key and certificate mismatch accepted")
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, err := NewKeySigner(p224, selfSigned(t, p256, "x")); err == nil {
		t.Error("P-224 accepted")
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

const fileConf = `[driver]
local = "192.0.2.2"
inner = ["198.51.100.2/32"]
keylog_dir = "keys"

[fragmentation]
size = 576

[[peer]]
name = "gw"
remote = "192.0.2.1:500"
local_id = "b.test"
ike_proposals = ["aes128-sha256-ecp256"]
[[peer.child]]
name = "net"
local_ts = ["198.51.100.0/24"]
remote_ts = ["0.0.0.0/0"]

[[credentials]]
peer = "gw"
key = "key.pem"
certs = ["cert.pem"]
cacerts = ["ca.pem"]
`

// TestParseFile loads a certificate configuration with relative paths and checks that errors name
// the file, line and field.
func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "key.pem"), "PRIVATE KEY", p8)
	writePEM(t, filepath.Join(dir, "cert.pem"), "CERTIFICATE", selfSigned(t, key, "b.test"))
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", selfSigned(t, ca, "ca.test"))
	path := filepath.Join(dir, "connect.toml")
	cfg, err := ParseFile(path, []byte(fileConf))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.IKE.Peers[0]
	if cfg.Local != netip.MustParseAddr("192.0.2.2") || cfg.KeyLogDir != filepath.Join(dir, "keys") ||
		cfg.IKE.Fragmentation.Size != 576 || p.Auth.Signer == nil || p.Auth.Trust == nil || len(p.Auth.CertReqCAs) != 1 ||
		p.Children[0].RemoteTS[0] != ike.MustTS("0.0.0.0/0") {
		t.Errorf("parsed %+v", cfg)
	}
	if _, ok := p.Auth.Signer.(*KeySigner); !ok {
		t.Errorf("signer %T", p.Auth.Signer)
	}
	if _, err := ike.NewEngine(cfg.IKE, rand.Reader); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct{ old, new, want string }{
		{`key = "key.pem"`, `key = "nokey.pem"`, "connect.toml:21: credentials[0].key: "},
		{`certs = ["cert.pem"]`, `certs = ["ca.pem"]`, "connect.toml:22: credentials[0].certs: certificate"},
		{`peer = "gw"`, `peer = "gx"`, "connect.toml:20: credentials[0].peer: no peer named \"gx\""},
		{`size = 576`, `size = 100`, "connect.toml:6: fragmentation: fragment size 100 out of range"},
		{`remote_ts = ["0.0.0.0/0"]`, `remote_ts = ["0.0.0.0/33"]`, "connect.toml:17: peer.child.remote_ts: "},
		{`inner = ["198.51.100.2/32"]`, `inner = "x"`, "connect.toml:3: driver.inner: "},
		{"[driver]\n", "[driver]\nmtu = 100\n", "connect.toml:2: driver.mtu: 100 out of range"},
		{`name = "gw"`, `name = ""`, "connect.toml:10: peer[0].name: every peer needs a name"},
	} {
		_, err := ParseFile(path, []byte(strings.Replace(fileConf, tc.old, tc.new, 1)))
		var te *tomlcheck.Error
		if err == nil || !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.new, err, tc.want)
		}
	}
}

// TestNewChecksConfig covers the checks New makes before touching the system.
func TestNewChecksConfig(t *testing.T) {
	for _, c := range []Config{
		{},
		{Local: netip.IPv4Unspecified()},
		{Local: netip.MustParseAddr("192.0.2.2"), IKEPort: 4500},
		{Local: netip.MustParseAddr("192.0.2.2"), MTU: 100},
		{Local: netip.MustParseAddr("192.0.2.2"), Initiate: []string{"nobody"}},
	} {
		if d, err := New(c); err == nil {
			d.Close()
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// TestExampleConfig keeps the example of interop/README.md loadable.
func TestExampleConfig(t *testing.T) {
	cfg, err := LoadFile(filepath.Join("testdata", "example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.IKE.Peers[0]
	if p.Name != "gw" || len(p.IKEProposals) != 2 || p.Children[0].LocalTS[0] != ike.MustTS("10.2.0.0/24") ||
		cfg.Initiate[0] != "gw" || cfg.KeyLogDir != filepath.Join("testdata", "keys") {
		t.Errorf("%+v", cfg)
	}
	if _, err := ike.NewEngine(cfg.IKE, rand.Reader); err != nil {
		t.Error(err)
	}
}
