// Package models loads pqlab's data files about the world outside the lab:
// peer behaviour profiles (models/peers/*.toml), whose every value carries
// the public source it comes from or is marked "assumed".
package models

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/pqlab/pqlab/models/tomlcheck"
)

// Duration is a time.Duration written in TOML as a string such as "4s" or "24h".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Peer is the behaviour profile of one kind of IKEv2 device or implementation.
// Each behaviour it selects is a code path in the engine, not a label.
type Peer struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	// Roles the peer can take: "initiator", "responder".
	Roles []string `toml:"roles"`

	IKE           IKE           `toml:"ike"`
	Fragmentation Fragmentation `toml:"fragmentation"`
	Retransmit    Retransmit    `toml:"retransmit"`
	Lifetimes     Lifetimes     `toml:"lifetimes"`
	NAT           NAT           `toml:"nat"`
	DoS           DoS           `toml:"dos"`
	DPD           DPD           `toml:"dpd"`

	// Sources maps each field above, as a dotted key ("fragmentation.size"),
	// to the public document it comes from, or to "assumed: why".
	Sources map[string]string `toml:"sources"`

	file *tomlcheck.File
}

// IKE is what a peer proposes and accepts.
type IKE struct {
	// Proposals in strongSwan syntax, most preferred first; a responder accepts
	// the first of the initiator's proposals that matches one of these.
	Proposals    []string `toml:"proposals"`
	ESPProposals []string `toml:"esp_proposals"`
	// Auth lists the authentication methods: "psk", "ed25519", "ecdsa-p256",
	// "ecdsa-p384", "mldsa44", "mldsa65", "mldsa87".
	Auth []string `toml:"auth"`
	// MLKEM lists the ML-KEM parameter sets the peer implements ("mlkem512",
	// "mlkem768", "mlkem1024"); empty for a classical-only peer.
	MLKEM []string `toml:"mlkem"`
	// MLKEMInInit says whether ML-KEM may be the Transform Type 4 method in
	// IKE_SA_INIT (draft-ietf-ipsecme-ikev2-mlkem Section 3) rather than only
	// an additional key exchange.
	MLKEMInInit bool `toml:"mlkem_in_init"`
	// UnknownTransformTypes is what the peer does with a proposal holding a
	// transform type it does not know (such as ADDKE1..7 on a peer without
	// RFC 9370): "reject" the proposal (RFC 7296 Section 3.3.6) or "ignore"
	// the transform.
	UnknownTransformTypes string `toml:"unknown_transform_types"`
	// Intermediate says whether IKE_INTERMEDIATE (RFC 9242) is supported; a
	// peer without it ignores additional key exchange transforms it does not
	// know and never sends INTERMEDIATE_EXCHANGE_SUPPORTED.
	Intermediate bool `toml:"intermediate"`
	// FollowupKE says whether IKE_FOLLOWUP_KE (RFC 9370) is supported for
	// additional key exchanges in CREATE_CHILD_SA.
	FollowupKE bool `toml:"followup_ke"`
	// PrivateTransformIDs replaces standard key exchange IDs by the vendor's
	// private ones on the wire (e.g. FortiOS before 7.6.6 sent Kyber under
	// private IDs): method name -> transform ID.
	PrivateTransformIDs map[string]int `toml:"private_transform_ids"`
	// RekeyRepeatsAddKE says whether IKE SA rekeys repeat the additional key
	// exchanges of the initial exchange.
	RekeyRepeatsAddKE bool `toml:"rekey_repeats_addke"`
	// Window is the message ID window size (RFC 7296 Section 2.3).
	Window int `toml:"window"`
	// MaxChildSAs limits the Child SAs per IKE SA (0: no limit).
	MaxChildSAs int `toml:"max_child_sas"`
	// ESN says whether extended sequence numbers are offered for ESP.
	ESN bool `toml:"esn"`
	// VendorIDs are sent in IKE_SA_INIT (hex).
	VendorIDs []string `toml:"vendor_ids"`
}

// Fragmentation is the peer's use of RFC 7383 IKE fragmentation.
type Fragmentation struct {
	// Supported says whether IKEV2_FRAGMENTATION_SUPPORTED is sent.
	Supported bool `toml:"supported"`
	// Policy: "always" fragments any message larger than Size, "on-retransmit"
	// only from the first retransmission on, "never" never does.
	Policy string `toml:"policy"`
	// Size is the largest datagram the peer fragments down to; Counts says what
	// it measures: "ip" the whole IP datagram, "udp" the UDP payload.
	Size   int    `toml:"size"`
	Counts string `toml:"counts"`
	// SizeIPv6 overrides Size on IPv6 paths (0: same as Size).
	SizeIPv6 int `toml:"size_ipv6"`
}

// Retransmit is the request retransmission schedule: the n-th retransmission
// (n from 0) waits Timeout * Base^n, capped at Cap when set; after Tries
// retransmissions and one last timeout the exchange fails.
type Retransmit struct {
	Timeout Duration `toml:"timeout"`
	Base    float64  `toml:"base"`
	Tries   int      `toml:"tries"`
	Cap     Duration `toml:"cap"`
}

// Lifetimes are the rekey intervals; each is shortened by a random fraction
// of up to Jitter.
type Lifetimes struct {
	IKE    Duration `toml:"ike"`
	Child  Duration `toml:"child"`
	Jitter float64  `toml:"jitter"`
}

// NAT is the peer's NAT traversal behaviour.
type NAT struct {
	// PortSwitch is the exchange in which the peer moves to UDP 4500:
	// "intermediate" (first IKE_INTERMEDIATE, RFC 9242 Section 3) or "auth".
	PortSwitch string   `toml:"port_switch"`
	Keepalive  Duration `toml:"keepalive"`
}

// DoS is the peer's protection against half-open SA floods.
type DoS struct {
	CookieThreshold int      `toml:"cookie_threshold"`
	HalfOpenTimeout Duration `toml:"half_open_timeout"`
}

// DPD is dead peer detection.
type DPD struct {
	// Mode: "periodic" sends a liveness check every Interval, "on-demand" only
	// when no traffic was received for Interval, "off".
	Mode     string   `toml:"mode"`
	Interval Duration `toml:"interval"`
	Retries  int      `toml:"retries"`
}

// LoadPeer reads and validates one profile.
func LoadPeer(path string) (*Peer, error) {
	var p Peer
	f, err := tomlcheck.DecodeFile(path, &p)
	if err != nil {
		return nil, err
	}
	p.file = f
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// LoadPeers reads every *.toml profile in dir, keyed by name.
func LoadPeers(dir string) (map[string]*Peer, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("models: no peer profiles in %s", dir)
	}
	peers := map[string]*Peer{}
	for _, p := range paths {
		pr, err := LoadPeer(p)
		if err != nil {
			return nil, err
		}
		if prev, ok := peers[pr.Name]; ok {
			return nil, pr.file.Errorf("name", "profile %q is also defined in %s", pr.Name, prev.file.Path)
		}
		peers[pr.Name] = pr
	}
	return peers, nil
}

// Path is the file the profile was loaded from.
func (p *Peer) Path() string {
	if p.file == nil {
		return ""
	}
	return p.file.Path
}

// Source returns the source recorded for a dotted field key.
func (p *Peer) Source(key string) string { return p.Sources[key] }

// Assumed reports whether the value of key is marked as assumed rather than
// taken from a public document.
func (p *Peer) Assumed(key string) bool { return strings.HasPrefix(p.Sources[key], "assumed") }

// ProposalChecker validates a proposal string; the IKE layer installs its
// strongSwan-syntax parser here so that profiles are checked when loaded.
var ProposalChecker func(proposal string, esp bool) error

var (
	knownRoles    = set("initiator", "responder")
	knownAuth     = set("psk", "ed25519", "ecdsa-p256", "ecdsa-p384", "mldsa44", "mldsa65", "mldsa87")
	knownPolicies = set("always", "on-retransmit", "never")
	knownCounts   = set("ip", "udp")
	knownSwitch   = set("intermediate", "auth")
	knownDPD      = set("periodic", "on-demand", "off")
	knownUnknown  = set("reject", "ignore")
	knownMLKEM    = set("mlkem512", "mlkem768", "mlkem1024")
)

func set(xs ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func (p *Peer) validate() error {
	f := p.file
	if p.Name == "" {
		return f.Errorf("name", "missing")
	}
	if base := strings.TrimSuffix(filepath.Base(f.Path), ".toml"); base != p.Name {
		return f.Errorf("name", "%q does not match the file name %q", p.Name, base)
	}
	if len(p.Roles) == 0 {
		return f.Errorf("roles", "missing")
	}
	for _, r := range p.Roles {
		if !knownRoles[r] {
			return f.Errorf("roles", "unknown role %q (want initiator or responder)", r)
		}
	}
	if len(p.IKE.Proposals) == 0 {
		return f.Errorf("ike.proposals", "missing")
	}
	if len(p.IKE.ESPProposals) == 0 {
		return f.Errorf("ike.esp_proposals", "missing")
	}
	if ProposalChecker != nil {
		for _, s := range p.IKE.Proposals {
			if err := ProposalChecker(s, false); err != nil {
				return f.Errorf("ike.proposals", "%v", err)
			}
		}
		for _, s := range p.IKE.ESPProposals {
			if err := ProposalChecker(s, true); err != nil {
				return f.Errorf("ike.esp_proposals", "%v", err)
			}
		}
	}
	if len(p.IKE.Auth) == 0 {
		return f.Errorf("ike.auth", "missing")
	}
	for _, a := range p.IKE.Auth {
		if !knownAuth[a] {
			return f.Errorf("ike.auth", "unknown method %q", a)
		}
	}
	for _, m := range p.IKE.MLKEM {
		if !knownMLKEM[m] {
			return f.Errorf("ike.mlkem", "unknown parameter set %q", m)
		}
	}
	if p.IKE.MLKEMInInit && len(p.IKE.MLKEM) == 0 {
		return f.Errorf("ike.mlkem_in_init", "set but ike.mlkem is empty")
	}
	if !knownUnknown[p.IKE.UnknownTransformTypes] {
		return f.Errorf("ike.unknown_transform_types", "unknown %q (want reject or ignore)", p.IKE.UnknownTransformTypes)
	}
	if p.IKE.Window < 1 {
		return f.Errorf("ike.window", "must be at least 1")
	}
	for _, v := range p.IKE.VendorIDs {
		if len(v)%2 != 0 || strings.Trim(strings.ToLower(v), "0123456789abcdef") != "" {
			return f.Errorf("ike.vendor_ids", "%q is not hex", v)
		}
	}
	fr := p.Fragmentation
	if !knownPolicies[fr.Policy] {
		return f.Errorf("fragmentation.policy", "unknown policy %q (want always, on-retransmit or never)", fr.Policy)
	}
	if fr.Policy != "never" {
		if !fr.Supported {
			return f.Errorf("fragmentation.policy", "%q needs supported = true", fr.Policy)
		}
		if fr.Size < 500 || fr.Size > 16000 {
			return f.Errorf("fragmentation.size", "%d out of range 500..16000", fr.Size)
		}
		if !knownCounts[fr.Counts] {
			return f.Errorf("fragmentation.counts", "unknown %q (want ip or udp)", fr.Counts)
		}
	}
	rt := p.Retransmit
	if rt.Timeout.Duration <= 0 {
		return f.Errorf("retransmit.timeout", "must be positive")
	}
	if rt.Base < 1 {
		return f.Errorf("retransmit.base", "must be at least 1")
	}
	if rt.Tries < 0 {
		return f.Errorf("retransmit.tries", "must not be negative")
	}
	if p.Lifetimes.IKE.Duration <= 0 {
		return f.Errorf("lifetimes.ike", "must be positive")
	}
	if p.Lifetimes.Child.Duration <= 0 {
		return f.Errorf("lifetimes.child", "must be positive")
	}
	if p.Lifetimes.Jitter < 0 || p.Lifetimes.Jitter >= 1 {
		return f.Errorf("lifetimes.jitter", "must be in [0, 1)")
	}
	if !knownSwitch[p.NAT.PortSwitch] {
		return f.Errorf("nat.port_switch", "unknown %q (want intermediate or auth)", p.NAT.PortSwitch)
	}
	if !knownDPD[p.DPD.Mode] {
		return f.Errorf("dpd.mode", "unknown %q (want periodic, on-demand or off)", p.DPD.Mode)
	}
	// Every value given must say where it comes from.
	for _, k := range f.MD.Keys() {
		key := k.String()
		if k[0] == "sources" || key == "name" || key == "description" {
			continue
		}
		if f.MD.Type(k...) == "Hash" && !strings.HasPrefix(key, "ike.private_transform_ids") {
			continue // a table; its leaves carry the sources
		}
		src := p.Sources[sourceKey(k)]
		if strings.TrimSpace(src) == "" {
			return f.Errorf(key, "no entry in [sources]: cite a public document or write \"assumed: why\"")
		}
	}
	for k := range p.Sources {
		if !f.MD.IsDefined(strings.Split(k, ".")...) {
			return f.Errorf("sources", "source for %q, which the profile does not set", k)
		}
	}
	return nil
}

// sourceKey is the [sources] key for a TOML key: tables of private transform
// IDs share one source.
func sourceKey(k []string) string {
	if len(k) >= 2 && k[0] == "ike" && k[1] == "private_transform_ids" {
		return "ike.private_transform_ids"
	}
	return strings.Join(k, ".")
}

// Fields lists the dotted keys of every field a profile can set, sorted;
// documentation and tests use it.
func Fields() []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := strings.Split(sf.Tag.Get("toml"), ",")[0]
			if tag == "" || tag == "sources" || tag == "-" {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(Duration{}) {
				walk(key, sf.Type)
				continue
			}
			out = append(out, key)
		}
	}
	walk("", reflect.TypeOf(Peer{}))
	sort.Strings(out)
	return out
}

// Dir returns the models/peers directory of the source tree containing the
// working directory, for tests and the command line run from inside the tree.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, "models", "peers")); err == nil && st.IsDir() {
			return filepath.Join(d, "models", "peers"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("models: no models/peers above %s", wd)
		}
	}
}
