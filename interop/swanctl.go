package interop

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// SwanctlConfig is what a charon loads through swanctl: connections, pre-shared keys and
// credential files. Render produces swanctl.conf (see swanctl.conf(5)); the files go below the
// swanctl directory (for example "x509/a.pem", "x509ca/ca.pem", "private/a.pem").
type SwanctlConfig struct {
	Conns []Conn
	PSKs  []PSK
	// Files maps a path relative to the swanctl directory to its content.
	Files map[string][]byte
}

// Conn is one IKE connection of swanctl.conf (section connections.<name>).
type Conn struct {
	Name string
	// LocalAddrs and RemoteAddrs are the IKE endpoints (local_addrs, remote_addrs).
	LocalAddrs, RemoteAddrs []string
	// LocalPort and RemotePort override 500 (local_port, remote_port). To start on the NAT-T port
	// set both to 4500: with only remote_port, charon 5.9.8 sends from port 500 to 4500 without
	// the non-ESP marker.
	LocalPort, RemotePort uint16
	// Proposals are IKE proposals such as "aes256gcm16-prfsha256-x25519".
	Proposals []string
	// Encap forces UDP encapsulation of ESP (encap); kernel-libipsec needs it.
	Encap bool
	// Fragmentation is "yes", "accept", "force" or "no" (fragmentation); empty keeps the default.
	Fragmentation string
	Local, Remote Auth
	Children      []Child
	// Extra holds other connection keys (rekey_time, reauth_time, mobike, dpd_delay, ...).
	Extra map[string]string
}

// Auth is one authentication round (local or remote section).
type Auth struct {
	// Method is "psk" or "pubkey" (auth).
	Method string
	// ID is the IKE identity (id), such as "a.test" (FQDN) or "192.0.2.1".
	ID string
	// Certs are certificate files in the x509 directory sent for this round (certs).
	Certs []string
	// CACerts are trust anchors in the x509ca directory required for the peer (cacerts).
	CACerts []string
	// Extra holds other keys of the section.
	Extra map[string]string
}

// Child is one CHILD_SA of a connection (children.<name>).
type Child struct {
	Name              string
	LocalTS, RemoteTS []string
	// ESPProposals such as "aes256gcm16" (no PFS) or "aes256gcm16-x25519" (PFS on rekeying).
	ESPProposals []string
	// StartAction is "none" (default here), "trap" or "start".
	StartAction string
	// Extra holds other child keys (rekey_time, mode, dpd_action, ...).
	Extra map[string]string
}

// PSK is an IKE pre-shared key for a set of identities (secrets.ike-<n>).
type PSK struct {
	IDs    []string
	Secret string
}

// Render returns swanctl.conf text. Values are quoted; a value that swanctl.conf cannot carry
// (quote, backslash, newline) is an error.
func (c *SwanctlConfig) Render() (string, error) {
	w := &confWriter{}
	w.open("connections")
	for _, cn := range c.Conns {
		if err := cn.render(w); err != nil {
			return "", err
		}
	}
	w.close()
	w.open("secrets")
	for i, p := range c.PSKs {
		w.open("ike-" + strconv.Itoa(i+1))
		for j, id := range p.IDs {
			w.kv("id-"+strconv.Itoa(j+1), id)
		}
		w.kv("secret", p.Secret)
		w.close()
	}
	w.close()
	for name := range c.Files {
		if path.IsAbs(name) || strings.Contains(name, "..") {
			return "", fmt.Errorf("interop: credential file %q outside the swanctl directory", name)
		}
	}
	return w.String()
}

func (cn *Conn) render(w *confWriter) error {
	if cn.Name == "" {
		return fmt.Errorf("interop: connection without a name")
	}
	w.open(cn.Name)
	w.kv("version", "2")
	w.list("local_addrs", cn.LocalAddrs)
	w.list("remote_addrs", cn.RemoteAddrs)
	if cn.LocalPort != 0 {
		w.kv("local_port", strconv.Itoa(int(cn.LocalPort)))
	}
	if cn.RemotePort != 0 {
		w.kv("remote_port", strconv.Itoa(int(cn.RemotePort)))
	}
	w.list("proposals", cn.Proposals)
	if cn.Encap {
		w.kv("encap", "yes")
	}
	if cn.Fragmentation != "" {
		w.kv("fragmentation", cn.Fragmentation)
	}
	w.extra(cn.Extra)
	cn.Local.render(w, "local")
	cn.Remote.render(w, "remote")
	w.open("children")
	for _, ch := range cn.Children {
		w.open(ch.Name)
		w.list("local_ts", ch.LocalTS)
		w.list("remote_ts", ch.RemoteTS)
		w.list("esp_proposals", ch.ESPProposals)
		sa := ch.StartAction
		if sa == "" {
			sa = "none"
		}
		w.kv("start_action", sa)
		w.extra(ch.Extra)
		w.close()
	}
	w.close()
	w.close()
	return nil
}

func (a *Auth) render(w *confWriter, section string) {
	w.open(section)
	w.kv("auth", a.Method)
	w.kv("id", a.ID)
	w.list("certs", a.Certs)
	w.list("cacerts", a.CACerts)
	w.extra(a.Extra)
	w.close()
}

// confWriter writes the strongSwan settings syntax shared by swanctl.conf and strongswan.conf.
type confWriter struct {
	b     strings.Builder
	depth int
	err   error
}

func (w *confWriter) indent() { w.b.WriteString(strings.Repeat("  ", w.depth)) }

func (w *confWriter) open(name string) {
	w.check(name)
	w.indent()
	w.b.WriteString(name + " {\n")
	w.depth++
}

func (w *confWriter) close() {
	w.depth--
	w.indent()
	w.b.WriteString("}\n")
}

func (w *confWriter) kv(k, v string) {
	if v == "" {
		return
	}
	w.check(k)
	if strings.ContainsAny(v, "\"\\\n") && w.err == nil {
		w.err = fmt.Errorf("interop: value %q of %s cannot be written to a strongSwan config", v, k)
	}
	w.indent()
	fmt.Fprintf(&w.b, "%s = \"%s\"\n", k, v)
}

func (w *confWriter) list(k string, vs []string) { w.kv(k, strings.Join(vs, ",")) }

func (w *confWriter) extra(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.kv(k, m[k])
	}
}

func (w *confWriter) check(name string) {
	if w.err == nil && (name == "" || strings.ContainsAny(name, " \t\n{}=\"#")) {
		w.err = fmt.Errorf("interop: %q is not a strongSwan config name", name)
	}
}

func (w *confWriter) String() (string, error) { return w.b.String(), w.err }
