package driver

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/models/tomlcheck"
)

// File is the TOML configuration of `pqlab connect`: the engine's keys (ike.Config: retransmit,
// fragmentation, nat_traversal, [[peer]] with its auth, proposals, identities and [[peer.child]]
// traffic selectors) at the top level, plus the driver's settings in [driver] and certificate
// credentials in [[credentials]]. README.md in this directory documents every key with an
// example.
type File struct {
	ike.Config
	Driver      FileDriver       `toml:"driver"`
	Credentials []FileCredential `toml:"credentials"`
}

// FileDriver is the [driver] table: Config's fields other than the engine's.
type FileDriver struct {
	// Local is the outer address to bind UDP 500 and 4500 (and raw ESP) to; required.
	Local          netip.Addr     `toml:"local"`
	IKEPort        uint16         `toml:"ike_port"`
	TUN            string         `toml:"tun"`
	Inner          []netip.Prefix `toml:"inner"`
	MTU            int            `toml:"mtu"`
	Netns          string         `toml:"netns"`
	Initiate       []string       `toml:"initiate"`
	Reconnect      ike.Duration   `toml:"reconnect"`
	NoRawESP       bool           `toml:"no_raw_esp"`
	KeyLogDir      string         `toml:"keylog_dir"`
	NoDeleteOnExit bool           `toml:"no_delete_on_exit"`
}

// FileCredential is one [[credentials]] table: certificate authentication for the peer it names.
// Paths are relative to the configuration file.
type FileCredential struct {
	Peer string `toml:"peer"`
	// Key is this end's private key (PEM: PKCS#8 or SEC 1; Ed25519, ECDSA P-256 or P-384).
	Key string `toml:"key"`
	// Certs is this end's certificate, then intermediates (PEM).
	Certs []string `toml:"certs"`
	// CACerts are the trust anchors for the peer's certificate (PEM).
	CACerts []string `toml:"cacerts"`
}

// LoadFile reads and checks a connect configuration. Every error names the file, the line and
// the field, as in "connect.toml:12: peer[0].ike_proposals: ...".
func LoadFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseFile(path, data)
}

// ParseFile is LoadFile for data read from path (relative credential paths resolve against
// path's directory).
func ParseFile(path string, data []byte) (Config, error) {
	var f File
	tf, err := tomlcheck.Decode(path, data, &f)
	if err != nil {
		return Config{}, err
	}
	base := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	dr := f.Driver
	if !dr.Local.IsValid() || dr.Local.IsUnspecified() {
		return Config{}, tf.Errorf("driver.local", "a specific local address is required")
	}
	for i, p := range dr.Inner {
		if !p.IsValid() {
			return Config{}, tf.Errorf(fmt.Sprintf("driver.inner[%d]", i), "invalid prefix")
		}
	}
	if dr.Reconnect < 0 {
		return Config{}, tf.Errorf("driver.reconnect", "negative delay")
	}
	if dr.MTU != 0 && (dr.MTU < 576 || dr.MTU > maxPacket) {
		return Config{}, tf.Errorf("driver.mtu", "%d out of range 576..%d", dr.MTU, maxPacket)
	}
	peerIndex := map[string]int{}
	for i, p := range f.Peers {
		key := fmt.Sprintf("peer[%d]", i)
		if p.Name == "" {
			return Config{}, tf.Errorf(key+".name", "every peer needs a name")
		}
		if _, dup := peerIndex[p.Name]; dup {
			return Config{}, tf.Errorf(key+".name", "duplicate peer name %q", p.Name)
		}
		peerIndex[p.Name] = i
	}
	for i, c := range f.Credentials {
		key := fmt.Sprintf("credentials[%d]", i)
		pi, ok := peerIndex[c.Peer]
		if !ok {
			return Config{}, tf.Errorf(key+".peer", "no peer named %q", c.Peer)
		}
		if len(c.CACerts) == 0 {
			return Config{}, tf.Errorf(key+".cacerts", "at least one CA certificate is required to verify the peer")
		}
		certs := make([]string, len(c.Certs))
		for j, p := range c.Certs {
			certs[j] = rel(p)
		}
		cas := make([]string, len(c.CACerts))
		for j, p := range c.CACerts {
			cas[j] = rel(p)
		}
		cred, err := LoadCredentials(rel(c.Key), certs, cas)
		if err != nil {
			field := key + ".key"
			switch {
			case strings.Contains(err.Error(), "CERTIFICATE") || strings.Contains(err.Error(), "certificate"):
				field = key + ".certs"
			}
			return Config{}, tf.Errorf(field, "%v", strings.TrimPrefix(err.Error(), "driver: "))
		}
		f.Peers[pi].Auth.Signer = cred.Signer
		f.Peers[pi].Auth.Trust = cred.Trust
		f.Peers[pi].Auth.CertReqCAs = cred.CAs
	}
	// Engine-wide settings alone, then each peer alone, so that errors point at their table.
	global := f.Config
	global.Peers = nil
	if _, err := ike.NewEngine(global, bytes.NewReader(make([]byte, 64))); err != nil {
		return Config{}, tf.Errorf(globalField(err), "%v", strings.TrimPrefix(err.Error(), "ike: "))
	}
	for i, p := range f.Peers {
		one := global
		one.Peers = []ike.PeerConfig{p}
		if _, err := ike.NewEngine(one, bytes.NewReader(make([]byte, 64))); err != nil {
			return Config{}, tf.Errorf(peerField(i, err), "%v", strings.TrimPrefix(err.Error(), "ike: "))
		}
	}
	for i, name := range dr.Initiate {
		key := fmt.Sprintf("driver.initiate[%d]", i)
		pi, ok := peerIndex[name]
		if !ok {
			return Config{}, tf.Errorf(key, "no peer named %q", name)
		}
		if !f.Peers[pi].Remote.IsValid() {
			return Config{}, tf.Errorf(fmt.Sprintf("peer[%d].remote", pi), "a peer to initiate needs its address and port, such as \"192.0.2.1:500\"")
		}
	}
	return Config{
		IKE: f.Config, Local: dr.Local, IKEPort: dr.IKEPort, TUN: dr.TUN, Inner: dr.Inner, MTU: dr.MTU,
		Netns: dr.Netns, Initiate: dr.Initiate, Reconnect: time.Duration(dr.Reconnect), NoRawESP: dr.NoRawESP, KeyLogDir: rel(dr.KeyLogDir),
		NoDeleteOnExit: dr.NoDeleteOnExit,
	}, nil
}

// globalField guesses the table of an engine-wide configuration error.
func globalField(err error) string {
	s := err.Error()
	for _, m := range []struct{ word, field string }{
		{"fragment", "fragmentation"}, {"retransmit", "retransmit"}, {"nonce", "nonce_size"},
	} {
		if strings.Contains(s, m.word) {
			return m.field
		}
	}
	return ""
}

// peerField guesses the key of a peer's configuration error.
func peerField(i int, err error) string {
	key := fmt.Sprintf("peer[%d]", i)
	s := err.Error()
	switch {
	case strings.Contains(s, " child "):
		return key + ".child"
	case strings.Contains(s, "authentication"), strings.Contains(s, "signer"):
		return key + ".auth"
	case strings.Contains(s, "lifetime"):
		return key + ".ike_lifetime"
	case strings.Contains(s, "proposal"), strings.Contains(s, "transform"), strings.Contains(s, "suite"):
		return key + ".ike_proposals"
	}
	return key
}
