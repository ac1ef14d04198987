package topology

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pqlab/pqlab/models/tomlcheck"
	"github.com/pqlab/pqlab/sim"
)

// Limits on what a topology may ask for.
const (
	// MaxNodes bounds the expanded node count (groups included).
	MaxNodes = 1_000_000
	// MaxLANHosts is the number of hosts that fit a /24 LAN as /30 links.
	MaxLANHosts = 63
	// maxErrors bounds the errors reported for one file.
	maxErrors = 20
	// DefaultDuration is the run duration when a file gives none.
	DefaultDuration = 60 * time.Second
	// DefaultTrafficPort is the UDP port of udp traffic without a port.
	DefaultTrafficPort = 9000
)

// Address pools for automatically assigned subnets.
var (
	// TransitPool holds router, gateway and Internet links, in /30s
	// (the RFC 6598 shared address space, 2^20 links).
	TransitPool = netip.MustParsePrefix("100.64.0.0/10")
	// LANPool holds the LANs of gateways and routers, in /24s; a topology
	// with more LANs than the pool has /24s (65,536) gets compact LANs
	// instead, each the smallest prefix that holds its hosts' /30 links
	// (a /29 for one host), so 100,000 branches fit.
	LANPool = netip.MustParsePrefix("10.0.0.0/8")
)

// LoadOptions tune Load.
type LoadOptions struct {
	// ModelsDir overrides the models directory (default: the file's
	// "models" key, else ../models next to the file).
	ModelsDir string
}

// Load reads, expands and validates a topology file.
func Load(path string, opts LoadOptions) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	return Parse(path, data, opts)
}

// loader carries the state of one Parse.
type loader struct {
	path   string
	loc    *tomlcheck.Locator
	errs   []error
	models string
	t      *Topology
	cpu    map[string]CPUClass
	linkBy map[string]*Link
	// subnets taken by explicit assignment, checked for overlaps
	nextTransit uint32
	nextLAN     uint32
	lanIndex    int
	pending     []pendingLink
	// peerModels caches whether models/peers/<name>.toml exists.
	peerModels map[string]bool
	// profiles caches the link profiles read (a group of 10,000 members
	// names the same profile 10,000 times); they are not modified.
	profiles map[string]*profileSpec
}

// errorf records an error at the line of field (a TOML path such as
// "link[2].delay").
func (l *loader) errorf(field, format string, args ...any) {
	if len(l.errs) >= maxErrors {
		return
	}
	err := fmt.Errorf("%s:%d: %s: %s", l.path, l.loc.Line(field), field, fmt.Sprintf(format, args...))
	for _, e := range l.errs {
		if e.Error() == err.Error() {
			return
		}
	}
	l.errs = append(l.errs, err)
}

func (l *loader) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return errors.Join(l.errs...)
}

var reTOMLErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// Parse validates a topology held in memory; path is used in messages and
// to find the models directory.
func Parse(path string, data []byte, opts LoadOptions) (*Topology, error) {
	l := &loader{path: path, loc: tomlcheck.NewLocator(data), linkBy: map[string]*Link{}}
	var f fileSpec
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s: %s", path, pe.Position.Line, pe.LastKey, pe.Message)
		}
		if m := reTOMLErr.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s:%s: %s: %s", path, m[1], m[2], m[3])
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, k := range md.Undecoded() {
		l.errorf(k.String(), "unknown key")
	}
	if err := l.err(); err != nil {
		return nil, err
	}
	l.models = opts.ModelsDir
	if l.models == "" {
		rel := f.Models
		if rel == "" {
			rel = filepath.Join("..", "models")
		}
		l.models = filepath.Join(filepath.Dir(path), rel)
	}
	l.load(&f)
	if err := l.err(); err != nil {
		return nil, err
	}
	return l.t, nil
}

var reName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]*$`)

func (l *loader) load(f *fileSpec) {
	t := &Topology{Path: l.path, Name: f.Name, Description: f.Description, IPv6: f.IPv6, Root: f.Root, byName: map[string]*Node{}}
	l.t = t
	if t.Name == "" {
		t.Name = strings.TrimSuffix(filepath.Base(l.path), filepath.Ext(l.path))
	}
	t.Seed = 1
	if f.Seed != nil {
		if *f.Seed < 0 {
			l.errorf("seed", "must not be negative")
		}
		t.Seed = uint64(*f.Seed)
	}
	t.Duration = DefaultDuration
	if f.Duration != "" {
		d, err := time.ParseDuration(f.Duration)
		if err != nil || d <= 0 {
			l.errorf("duration", "bad duration %q", f.Duration)
		}
		t.Duration = d
	}
	l.loadModels(f)

	// Nodes declared alone, then groups. Names must be unique across both.
	for i := range f.Node {
		l.addNode(&f.Node[i], fmt.Sprintf("node[%d]", i))
	}
	for i := range f.Group {
		l.addGroup(f, &f.Group[i], fmt.Sprintf("group[%d]", i))
	}
	if len(l.errs) > 0 {
		return
	}
	if len(t.Nodes) == 0 {
		l.errorf("node", "the topology has no nodes")
		return
	}
	for i := range f.Link {
		ls := &f.Link[i]
		field := fmt.Sprintf("link[%d]", i)
		for _, end := range []struct{ k, v string }{{"a", ls.A}, {"b", ls.B}} {
			if end.v == "" {
				l.errorf(field+"."+end.k, "missing")
			} else if t.byName[end.v] == nil {
				l.errorf(field+"."+end.k, "no node %q", end.v)
			}
		}
		if ls.To != "" {
			l.errorf(field+".to", "only group uplinks have \"to\"; use a and b")
		}
		if ls.A == "" || ls.B == "" || t.byName[ls.A] == nil || t.byName[ls.B] == nil {
			continue
		}
		name := ls.Name
		if name == "" {
			name = ls.A + "-" + ls.B
		}
		l.addLink(ls, field, name, ls.A, ls.B, nil)
	}
	// Group uplinks, NATs and LAN hosts are created in addGroup/addNode
	// through pending links, added after explicit links so that their
	// automatic names can be checked against explicit ones.
	l.expandPending()
	l.checkWiring()
	l.assignLANs()
	l.checkTraffic()
	l.loadEvents(f)
	l.checkOverlaps()
}

func (l *loader) loadModels(f *fileSpec) {
	l.cpu = map[string]CPUClass{"default": {Name: "default", Cores: 1, Speed: 1, Source: "built in"}}
	classes := filepath.Join(l.models, "cpu", "classes.toml")
	if data, err := os.ReadFile(classes); err == nil {
		var cs cpuClassesSpec
		md, err := toml.Decode(string(data), &cs)
		if err != nil {
			l.errorf("models", "%s: %v", classes, err)
			return
		}
		if und := md.Undecoded(); len(und) > 0 {
			loc := tomlcheck.NewLocator(data)
			l.errs = append(l.errs, fmt.Errorf("%s:%d: %s: unknown key", classes, loc.Line(und[0].String()), und[0]))
			return
		}
		for name, c := range cs.Class {
			if c.Cores < 1 || c.Speed <= 0 || math.IsInf(c.Speed, 0) {
				loc := tomlcheck.NewLocator(data)
				l.errs = append(l.errs, fmt.Errorf("%s:%d: class.%s: cores must be >= 1 and speed > 0", classes, loc.Line("class."+name), name))
				continue
			}
			if c.Source == "" {
				loc := tomlcheck.NewLocator(data)
				l.errs = append(l.errs, fmt.Errorf("%s:%d: class.%s.source: missing (give a source or \"assumed\")", classes, loc.Line("class."+name), name))
			}
			l.cpu[name] = CPUClass{Name: name, Cores: c.Cores, Speed: c.Speed, Source: c.Source}
		}
	}
	costs := f.CPUCosts
	explicit := costs != ""
	if !explicit {
		costs = "reference"
	}
	p := filepath.Join(l.models, "cpu", costs+".toml")
	if _, err := os.Stat(p); err != nil {
		if explicit {
			l.errorf("cpu_costs", "no cost table %s", p)
		}
		return
	}
	tab, err := sim.LoadCostTable(p)
	if err != nil {
		l.errs = append(l.errs, err)
		return
	}
	l.t.Costs = tab
}

// pending links created by nodes and groups.
type pendingLink struct {
	spec   *linkSpec
	field  string
	name   string
	a, b   string
	member *Node // group member whose values are sampled, if any
	lan    bool
	subnet netip.Prefix
}

func (l *loader) checkName(field, name string) bool {
	if !reName.MatchString(name) {
		l.errorf(field, "bad name %q (letters, digits, '.', '_', '-')", name)
		return false
	}
	if l.t.byName[name] != nil {
		l.errorf(field, "duplicate node %q", name)
		return false
	}
	return true
}

// peerModelExists reports whether the models directory holds the peer
// behaviour profile name (models/peers/<name>.toml, see package models).
func (l *loader) peerModelExists(name string) bool {
	if ok, seen := l.peerModels[name]; seen {
		return ok
	}
	if l.peerModels == nil {
		l.peerModels = map[string]bool{}
	}
	st, err := os.Stat(filepath.Join(l.models, "peers", name+".toml"))
	ok := err == nil && st.Mode().IsRegular()
	l.peerModels[name] = ok
	return ok
}

// member builds a node from the shared fields.
func (l *loader) member(ms *memberSpec, field, name, group string, index, line int) *Node {
	n := &Node{Name: name, Group: group, Index: index, Line: line, field: field}
	k, err := parseKind(ms.Kind)
	if err != nil {
		l.errorf(field+".kind", "%v", err)
	}
	n.Kind = k
	cpu := ms.CPU
	if cpu == "" {
		cpu = "default"
	}
	c, ok := l.cpu[cpu]
	if !ok {
		l.errorf(field+".cpu", "unknown CPU class %q (see %s)", cpu, filepath.Join(l.models, "cpu", "classes.toml"))
	}
	n.CPU = c
	role, err := parseRole(ms.Role)
	if err != nil {
		l.errorf(field+".role", "%v", err)
	}
	n.Engine = Engine{PeerModel: ms.PeerModel, Role: role, Peers: ms.Peers, Proposals: ms.Proposals, ESPProposals: ms.ESPProposals}
	if k != KindGateway {
		for _, f := range []struct {
			key string
			set bool
		}{{"peer_model", ms.PeerModel != ""}, {"role", ms.Role != ""}, {"peers", len(ms.Peers) > 0},
			{"proposals", len(ms.Proposals) > 0}, {"esp_proposals", len(ms.ESPProposals) > 0}} {
			if f.set {
				l.errorf(field+"."+f.key, "only gateways run the IKE engine (kind is %s)", k)
			}
		}
	}
	for i, p := range append(append([]string{}, ms.Proposals...), ms.ESPProposals...) {
		if p == "" || strings.ContainsAny(p, " \t,") {
			l.errorf(field+".proposals", "proposal %d %q is empty or has spaces/commas", i, p)
		}
	}
	if ms.PeerModel != "" && !reName.MatchString(ms.PeerModel) {
		l.errorf(field+".peer_model", "bad model name %q", ms.PeerModel)
	} else if ms.PeerModel != "" && !l.peerModelExists(ms.PeerModel) {
		l.errorf(field+".peer_model", "no peer model %q (no file %s)", ms.PeerModel,
			filepath.Join(l.models, "peers", ms.PeerModel+".toml"))
	}
	if ms.LANHosts < 0 || ms.LANHosts > MaxLANHosts {
		l.errorf(field+".lan_hosts", "%d outside [0, %d]", ms.LANHosts, MaxLANHosts)
	}
	if ms.LANHosts > 0 && k != KindGateway && k != KindRouter {
		l.errorf(field+".lan_hosts", "only gateways and routers have LAN hosts")
	}
	if ms.LAN != "" {
		p, err := netip.ParsePrefix(ms.LAN)
		switch {
		case err != nil || !p.Addr().Is4():
			l.errorf(field+".lan", "bad IPv4 prefix %q", ms.LAN)
		case p.Bits() > 24 && ms.LANHosts > 0:
			l.errorf(field+".lan", "prefix %v too small for LAN hosts (at most /24)", p)
		case p != p.Masked():
			l.errorf(field+".lan", "%v has host bits set", p)
		default:
			n.LAN = p
		}
	}
	if k == KindNAT {
		if ms.NAT == nil {
			l.errorf(field, "a nat node needs a [nat] table")
		}
	} else if ms.NAT != nil && group == "" {
		l.errorf(field+".nat", "only nat nodes (or groups, to put members behind NATs) have a nat table")
	}
	return n
}

func (l *loader) natConfig(ns *natSpec, field, name string) *NATSpec {
	cfg := sim.NATConfig{Name: name, InboundRefresh: ns.InboundRefresh}
	var err error
	if ns.Mapping != "" {
		if cfg.Mapping, err = sim.ParseNATBehavior(ns.Mapping); err != nil {
			l.errorf(field+".mapping", "%v", strings.TrimPrefix(err.Error(), "sim: "))
		}
	}
	if ns.Filtering != "" {
		if cfg.Filtering, err = sim.ParseNATBehavior(ns.Filtering); err != nil {
			l.errorf(field+".filtering", "%v", strings.TrimPrefix(err.Error(), "sim: "))
		}
	}
	if ns.Timeout != "" {
		d, err := time.ParseDuration(ns.Timeout)
		if err != nil || d <= 0 {
			l.errorf(field+".timeout", "bad duration %q", ns.Timeout)
		}
		cfg.Timeout = d
	}
	switch ns.Fragments {
	case "", "reassemble":
		cfg.Fragments = sim.NATReassemble
	case "drop":
		cfg.Fragments = sim.NATDropFragments
	default:
		l.errorf(field+".fragments", "unknown %q (want reassemble or drop)", ns.Fragments)
	}
	return &NATSpec{Inside: ns.Inside, Config: cfg}
}

func (l *loader) add(n *Node) {
	l.t.Nodes = append(l.t.Nodes, n)
	l.t.byName[n.Name] = n
	if len(l.t.Nodes) > MaxNodes {
		l.errorf("group", "more than %d nodes", MaxNodes)
	}
}

func (l *loader) addNode(ns *nodeSpec, field string) {
	line := l.loc.Line(field)
	if ns.Name == "" {
		l.errorf(field+".name", "missing")
		return
	}
	if !l.checkName(field+".name", ns.Name) {
		return
	}
	n := l.member(&ns.memberSpec, field, ns.Name, "", 0, line)
	if n.Kind == KindNAT && ns.NAT != nil {
		n.NAT = l.natConfig(ns.NAT, field+".nat", ns.Name)
		if ns.NAT.Inside == "" {
			l.errorf(field+".nat.inside", "missing: name the neighbour on the inside link")
		}
		if ns.NAT.Link != nil {
			l.errorf(field+".nat.link", "only group NATs have a link table; declare [[link]]s")
		}
	}
	if ns.LANHosts == 0 {
		n.Traffic = l.traffic(ns.Traffic, field, n, 0)
	}
	l.add(n)
	l.lanHosts(n, ns.LANHosts, field, ns.Traffic)
}

// lanHosts creates a node's LAN hosts and their links.
func (l *loader) lanHosts(n *Node, count int, field string, traffic []trafficSpec) {
	for j := 1; j <= count; j++ {
		hn := fmt.Sprintf("%s-h%d", n.Name, j)
		if l.t.byName[hn] != nil {
			l.errorf(field+".lan_hosts", "host name %q is taken", hn)
			continue
		}
		h := &Node{Name: hn, Kind: KindHost, Group: n.Group, Index: n.Index, CPU: l.cpu["default"], Line: n.Line, field: field + ".lan_hosts"}
		h.Traffic = l.traffic(traffic, field, h, n.Index)
		l.add(h)
		l.pending = append(l.pending, pendingLink{spec: &linkSpec{}, field: field + ".lan_hosts", name: hn, a: n.Name, b: hn, lan: true})
	}
}

func (l *loader) addGroup(f *fileSpec, gs *groupSpec, field string) {
	line := l.loc.Line(field)
	switch {
	case gs.Name == "":
		l.errorf(field+".name", "missing")
		return
	case !reName.MatchString(gs.Name):
		l.errorf(field+".name", "bad name %q", gs.Name)
		return
	case gs.Count < 1 || gs.Count > MaxNodes:
		l.errorf(field+".count", "%d outside [1, %d]", gs.Count, MaxNodes)
		return
	case gs.Uplink == nil:
		l.errorf(field+".uplink", "missing: a group needs an [group.uplink] table with \"to\"")
		return
	case gs.Uplink.To == "":
		l.errorf(field+".uplink.to", "missing")
		return
	case gs.Uplink.A != "" || gs.Uplink.B != "" || gs.Uplink.Name != "" || gs.Uplink.Subnet != "":
		l.errorf(field+".uplink", "a group uplink has \"to\", not a, b, name or subnet")
		return
	case gs.LAN != "":
		l.errorf(field+".lan", "group LANs are assigned automatically")
		return
	}
	k, _ := parseKind(gs.Kind)
	if k == KindNAT || k == KindInternet {
		l.errorf(field+".kind", "groups of %s nodes are not supported", k)
		return
	}
	if gs.NAT != nil && gs.NAT.Inside != "" {
		l.errorf(field+".nat.inside", "the member is the inside neighbour of its NAT")
	}
	width := len(strconv.Itoa(gs.Count))
	for i := 1; i <= gs.Count && len(l.errs) == 0; i++ {
		name := fmt.Sprintf("%s-%0*d", gs.Name, width, i)
		if !l.checkName(field+".name", name) {
			return
		}
		n := l.member(&gs.memberSpec, field, name, gs.Name, i, line)
		if gs.LANHosts == 0 {
			n.Traffic = l.traffic(gs.Traffic, field, n, i)
		}
		l.add(n)
		up := n.Name
		if gs.NAT != nil {
			nn := name + "-nat"
			if !l.checkName(field+".nat", nn) {
				return
			}
			nat := &Node{Name: nn, Kind: KindNAT, Group: gs.Name, Index: i, CPU: l.cpu["default"], Line: line, field: field + ".nat"}
			nat.NAT = l.natConfig(gs.NAT, field+".nat", nn)
			nat.NAT.Inside = name
			l.add(nat)
			inner := gs.NAT.Link
			if inner == nil {
				inner = &linkSpec{}
			}
			l.pending = append(l.pending, pendingLink{spec: inner, field: field + ".nat.link", name: nn, a: name, b: nn, member: n})
			up = nn
		}
		l.pending = append(l.pending, pendingLink{spec: gs.Uplink, field: field + ".uplink", name: up + "-" + gs.Uplink.To, a: up, b: gs.Uplink.To, member: n})
		l.lanHosts(n, gs.LANHosts, field, gs.Traffic)
	}
}

func (l *loader) expandPending() {
	ps := l.pending
	l.pending = nil
	for _, p := range ps {
		if l.t.byName[p.b] == nil {
			l.errorf(p.field+".to", "no node %q", p.b)
			continue
		}
		l.addLink(p.spec, p.field, p.name, p.a, p.b, p.member)
		if p.lan && len(l.t.Links) > 0 {
			l.t.Links[len(l.t.Links)-1].lan = true
		}
	}
}

// traffic validates traffic entries; destinations are checked later.
func (l *loader) traffic(ts []trafficSpec, field string, n *Node, index int) []Traffic {
	var out []Traffic
	for i, s := range ts {
		f := fmt.Sprintf("%s.traffic[%d]", field, i)
		tr := Traffic{To: s.To, Count: s.Count, Size: s.Size, field: f}
		switch s.Kind {
		case "ping", "":
			tr.Kind = TrafficPing
			if tr.Size == 0 {
				tr.Size = 56
			}
		case "udp":
			tr.Kind = TrafficUDP
			if tr.Size == 0 {
				tr.Size = 1000
			}
		default:
			l.errorf(f+".kind", "unknown %q (want ping or udp)", s.Kind)
		}
		if s.To == "" {
			l.errorf(f+".to", "missing")
		}
		if s.Count < 0 {
			l.errorf(f+".count", "negative")
		}
		if tr.Size < sim.UDPFlowHeaderLen || tr.Size > 65000 {
			l.errorf(f+".size", "%d outside [%d, 65000]", tr.Size, sim.UDPFlowHeaderLen)
		}
		tr.Port = uint16(s.Port)
		if s.Port < 0 || s.Port > 65535 {
			l.errorf(f+".port", "%d outside [0, 65535]", s.Port)
		}
		if tr.Port == 0 {
			tr.Port = DefaultTrafficPort
		}
		tr.Start = l.duration(s.Start, f+".start", "traffic:"+n.Name+":start", index, 0)
		tr.Interval = l.duration(s.Interval, f+".interval", "traffic:"+n.Name+":interval", index, time.Second)
		if s.Rate != nil {
			if s.Interval != nil {
				l.errorf(f+".rate", "give rate or interval, not both")
			}
			bw := l.sample(s.Rate, unitBandwidth, f+".rate", "traffic:"+n.Name+":rate", index)
			if bw <= 0 {
				l.errorf(f+".rate", "must be positive")
			} else {
				tr.Interval = time.Duration(float64(tr.Size*8) / bw * float64(time.Second))
			}
		}
		if tr.Interval <= 0 {
			l.errorf(f+".interval", "must be positive")
		}
		out = append(out, tr)
	}
	return out
}

// sample reads v in unit u; distributions are drawn from a stream seeded by
// (seed, label, index), so each value is independent of every other field,
// node and link.
func (l *loader) sample(v *Value, u unit, field, label string, index int) float64 {
	d, err := v.parse(u)
	if err != nil {
		l.errorf(field, "%v", err)
		return 0
	}
	if d.constant() {
		return d.params[0]
	}
	return d.sample(sim.NewRand(l.t.Seed, fmt.Sprintf("%s#%d", label, index)))
}

func (l *loader) duration(v *Value, field, label string, index int, def time.Duration) time.Duration {
	if v == nil {
		return def
	}
	return time.Duration(math.Round(l.sample(v, unitDuration, field, label, index)))
}

// loadProfile reads models/links/<name>.toml.
func (l *loader) loadProfile(name, field string) *profileSpec {
	if !reName.MatchString(name) {
		l.errorf(field, "bad profile name %q", name)
		return nil
	}
	if ps := l.profiles[name]; ps != nil {
		return ps
	}
	p := filepath.Join(l.models, "links", name+".toml")
	data, err := os.ReadFile(p)
	if err != nil {
		l.errorf(field, "no link profile %q (%s)", name, p)
		return nil
	}
	var ps profileSpec
	md, err := toml.Decode(string(data), &ps)
	loc := tomlcheck.NewLocator(data)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %v", p, err))
		return nil
	}
	if und := md.Undecoded(); len(und) > 0 {
		l.errs = append(l.errs, fmt.Errorf("%s:%d: %s: unknown key", p, loc.Line(und[0].String()), und[0]))
		return nil
	}
	if len(ps.Sources) == 0 {
		l.errs = append(l.errs, fmt.Errorf("%s:1: sources: missing (cite where the values come from, or \"assumed\")", p))
		return nil
	}
	if l.profiles == nil {
		l.profiles = map[string]*profileSpec{}
	}
	l.profiles[name] = &ps
	return &ps
}

// addLink resolves a link's parameters: profile, then link-level values,
// then per-direction overrides.
func (l *loader) addLink(ls *linkSpec, field, name, a, b string, member *Node) {
	if !reName.MatchString(name) {
		l.errorf(field+".name", "bad link name %q", name)
		return
	}
	if l.linkBy[name] != nil {
		l.errorf(field+".name", "duplicate link %q", name)
		return
	}
	if a == b {
		l.errorf(field, "link %s connects %s to itself", name, a)
		return
	}
	lk := &Link{Name: name, A: a, B: b, Profile: ls.Profile, Line: l.loc.Line(field)}
	index := 0
	label := "link:" + name
	if member != nil {
		index = member.Index
		label = "group:" + member.Group + ":" + field
	}
	var prof *profileSpec
	if ls.Profile != "" {
		prof = l.loadProfile(ls.Profile, field+".profile")
	}
	mtu := sim.DefaultMTU
	var mtuV *Value
	if prof != nil && prof.MTU != nil {
		mtuV = prof.MTU
	}
	if ls.MTU != nil {
		mtuV = ls.MTU
	}
	if mtuV != nil {
		mtu = int(l.sample(mtuV, unitMTU, field+".mtu", label+":mtu", index))
	}
	lk.Config = sim.LinkConfig{Name: name, MTU: uint32(mtu), Down: ls.Down}
	for dir, key := range []string{"a_to_b", "b_to_a"} {
		var layers []layer
		if prof != nil {
			pf := fmt.Sprintf("%s.profile(%s)", field, ls.Profile)
			layers = append(layers, layer{&prof.impairSpec, pf})
			if d := [2]*impairSpec{prof.AtoB, prof.BtoA}[dir]; d != nil {
				layers = append(layers, layer{d, pf + "." + key})
			}
		}
		layers = append(layers, layer{&ls.impairSpec, field})
		if d := [2]*impairSpec{ls.AtoB, ls.BtoA}[dir]; d != nil {
			layers = append(layers, layer{d, field + "." + key})
		}
		im := l.impairments(layers, field, label, index)
		if dir == 0 {
			lk.Config.AB = im
		} else {
			lk.Config.BA = im
		}
	}
	if ls.Subnet != "" {
		p, err := netip.ParsePrefix(ls.Subnet)
		switch {
		case err != nil || !p.Addr().Is4():
			l.errorf(field+".subnet", "bad IPv4 prefix %q", ls.Subnet)
		case p.Bits() > 30:
			l.errorf(field+".subnet", "%v is smaller than a /30", p)
		case p != p.Masked():
			l.errorf(field+".subnet", "%v has host bits set", p)
		default:
			lk.Subnet = p
		}
	}
	l.t.Links = append(l.t.Links, lk)
	l.linkBy[name] = lk
}

// layer is one source of link parameters and the field path its values
// are reported under.
type layer struct {
	spec  *impairSpec
	field string
}

// impairments merges parameter layers (later wins) into sim.Impairments.
// A distribution is sampled from a stream named after the layer it comes
// from, so a value given for the whole link is the same both ways.
func (l *loader) impairments(layers []layer, field, label string, index int) sim.Impairments {
	pick := func(get func(*impairSpec) *Value) (*Value, string) {
		var v *Value
		src := field
		for _, ly := range layers {
			if x := get(ly.spec); x != nil {
				v, src = x, ly.field
			}
		}
		return v, src
	}
	var im sim.Impairments
	dur := func(name string, get func(*impairSpec) *Value) time.Duration {
		v, f := pick(get)
		if v == nil {
			return 0
		}
		return time.Duration(math.Round(l.sample(v, unitDuration, f+"."+name, label+":"+f+"."+name, index)))
	}
	num := func(name string, u unit, get func(*impairSpec) *Value) float64 {
		v, f := pick(get)
		if v == nil {
			return 0
		}
		return l.sample(v, u, f+"."+name, label+":"+f+"."+name, index)
	}
	im.Delay = dur("delay", func(s *impairSpec) *Value { return s.Delay })
	im.Jitter = dur("jitter", func(s *impairSpec) *Value { return s.Jitter })
	im.ReorderDelay = dur("reorder_delay", func(s *impairSpec) *Value { return s.ReorderDelay })
	im.Bandwidth = int64(num("bandwidth", unitBandwidth, func(s *impairSpec) *Value { return s.Bandwidth }))
	im.QueuePackets = int(num("queue", unitCount, func(s *impairSpec) *Value { return s.Queue }))
	im.QueueBytes = int(num("queue_bytes", unitCount, func(s *impairSpec) *Value { return s.QueueBytes }))
	im.Loss = num("loss", unitProb, func(s *impairSpec) *Value { return s.Loss })
	im.Duplicate = num("duplicate", unitProb, func(s *impairSpec) *Value { return s.Duplicate })
	im.Reorder = num("reorder", unitProb, func(s *impairSpec) *Value { return s.Reorder })
	im.Fragments.Keep = int(num("fragments_keep", unitCount, func(s *impairSpec) *Value { return s.FragmentsKeep }))
	im.Fragments.BlackHoleAbove = int(num("blackhole_above", unitCount, func(s *impairSpec) *Value { return s.BlackholeAbove }))
	var gs *gilbertSpec
	var frag string
	for _, ly := range layers {
		if ly.spec.Gilbert != nil {
			gs = ly.spec.Gilbert
		}
		if ly.spec.Fragments != "" {
			frag = ly.spec.Fragments
		}
	}
	if gs != nil {
		g := &sim.GilbertElliott{}
		for _, p := range []struct {
			name string
			v    *Value
			dst  *float64
		}{{"p", gs.P, &g.P}, {"r", gs.R, &g.R}, {"loss_good", gs.LossGood, &g.LossGood}, {"loss_bad", gs.LossBad, &g.LossBad}} {
			if p.v == nil {
				if p.name == "p" || p.name == "r" {
					l.errorf(field+".gilbert."+p.name, "missing")
				}
				continue
			}
			*p.dst = l.sample(p.v, unitProb, field+".gilbert."+p.name, label+":gilbert."+p.name, index)
		}
		if gs.LossBad == nil {
			g.LossBad = 1
		}
		im.GE = g
		if im.Loss != 0 {
			l.errorf(field+".loss", "give loss or gilbert, not both")
		}
	}
	if frag != "" {
		m, err := sim.ParseFragmentMode(frag)
		if err != nil {
			l.errorf(field+".fragments", "%s", strings.TrimPrefix(err.Error(), "sim: "))
		}
		im.Fragments.Mode = m
		if m == sim.FragmentDropBeyond && im.Fragments.Keep == 0 {
			l.errorf(field+".fragments_keep", "drop-beyond needs fragments_keep >= 1")
		}
	}
	if err := im.Validate(); err != nil {
		l.errorf(field, "%s", strings.TrimPrefix(err.Error(), "sim: "))
	}
	return im
}

// checkWiring checks each node's links.
func (l *loader) checkWiring() {
	if len(l.errs) > 0 {
		return // missing links would only repeat earlier errors
	}
	links := map[string][]*Link{}
	for _, lk := range l.t.Links {
		links[lk.A] = append(links[lk.A], lk)
		links[lk.B] = append(links[lk.B], lk)
	}
	for _, n := range l.t.Nodes {
		field := l.nodeField(n)
		ls := links[n.Name]
		switch {
		case len(ls) == 0:
			l.errorf(field, "node %s has no link", n.Name)
		case n.Kind == KindNAT:
			if len(ls) != 2 {
				l.errorf(field, "NAT %s needs exactly two links (inside and outside), has %d", n.Name, len(ls))
				continue
			}
			inside := 0
			for _, lk := range ls {
				if lk.A == n.NAT.Inside || lk.B == n.NAT.Inside {
					inside++
				}
			}
			if inside != 1 {
				l.errorf(field+".nat.inside", "exactly one of NAT %s's links must lead to %q", n.Name, n.NAT.Inside)
			}
		}
		for _, p := range n.Engine.Peers {
			pn := l.t.byName[p]
			if pn == nil {
				l.errorf(field+".peers", "no node %q", p)
			} else if pn.Kind != KindGateway {
				l.errorf(field+".peers", "%q is a %s, not a gateway", p, pn.Kind)
			}
		}
	}
	if r := l.t.Root; r != "" && l.t.byName[r] == nil {
		l.errorf("root", "no node %q", r)
	}
}

// MTUOK reports whether the link can carry IPv6.
func (lk *Link) MTUOK() bool { return lk.Config.MTU >= sim.MinIPv6MTU }

// nodeField returns the TOML path where n is declared.
func (l *loader) nodeField(n *Node) string { return n.field }

// assignLANs gives gateways and routers with hosts a LAN prefix and every
// link a subnet.
func (l *loader) assignLANs() {
	if len(l.errs) > 0 {
		return
	}
	hosts := map[string]int{}
	for _, lk := range l.t.Links {
		if lk.lan {
			hosts[lk.A]++
		}
	}
	needy := 0
	for _, n := range l.t.Nodes {
		if (n.Kind == KindGateway || n.Kind == KindRouter) && !n.LAN.IsValid() && hosts[n.Name] > 0 {
			needy++
		}
	}
	compact := needy > 1<<(24-LANPool.Bits())
	for _, n := range l.t.Nodes {
		if (n.Kind == KindGateway || n.Kind == KindRouter) && !n.LAN.IsValid() && hosts[n.Name] > 0 {
			var p netip.Prefix
			var ok bool
			if compact {
				p, ok = l.nextCompactLAN(hosts[n.Name])
			} else {
				p, ok = l.nextPrefix(&l.nextLAN, LANPool, 24)
			}
			if !ok {
				l.errorf(l.nodeField(n), "LAN pool %v exhausted", LANPool)
				return
			}
			n.LAN = p
		}
		if l.t.IPv6 && n.LAN.IsValid() {
			k := l.lanIndex
			l.lanIndex++
			n.LAN6 = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x01, 0, 0, byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}), 64)
		}
	}
	hostIdx := map[string]int{}
	for i, lk := range l.t.Links {
		switch {
		case lk.lan:
			gw := l.t.byName[lk.A]
			hostIdx[gw.Name]++
			j := hostIdx[gw.Name]
			base := gw.LAN.Addr().As4()
			v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
			v += uint32(4 * j)
			lk.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 30)
			if !gw.LAN.Contains(lk.Subnet.Addr()) || gw.LAN.Bits() > 30 {
				l.errorf(l.nodeField(gw)+".lan", "LAN %v too small for %d hosts", gw.LAN, hostIdx[gw.Name])
				return
			}
			if gw.LAN6.IsValid() && lk.MTUOK() {
				b := gw.LAN6.Addr().As16()
				b[8], b[9] = byte(j>>8), byte(j)
				lk.Subnet6 = netip.PrefixFrom(netip.AddrFrom16(b), 80)
			}
		default:
			if !lk.Subnet.IsValid() {
				p, ok := l.nextPrefix(&l.nextTransit, TransitPool, 30)
				if !ok {
					l.errorf("link", "transit pool %v exhausted", TransitPool)
					return
				}
				lk.Subnet = p
			}
			if l.t.IPv6 && lk.MTUOK() {
				lk.Subnet6 = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x00, 0, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), 64)
			}
		}
	}
}

// nextCompactLAN returns the next LAN of LANPool that holds hosts /30
// links at offsets 4, 8, ... (see assignLANs): the smallest aligned prefix
// of at least 4*(hosts+1) addresses.
func (l *loader) nextCompactLAN(hosts int) (netip.Prefix, bool) {
	bits := 30
	for 1<<(32-bits) < 4*(hosts+1) {
		bits--
	}
	size := uint64(1) << (32 - bits)
	off := (uint64(l.nextLAN) + size - 1) &^ (size - 1)
	if off+size > uint64(1)<<(32-LANPool.Bits()) {
		return netip.Prefix{}, false
	}
	l.nextLAN = uint32(off + size)
	b := LANPool.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(off)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits), true
}

// nextPrefix returns the next /bits prefix of pool.
func (l *loader) nextPrefix(counter *uint32, pool netip.Prefix, bits int) (netip.Prefix, bool) {
	size := uint64(1) << (bits - pool.Bits())
	if uint64(*counter) >= size {
		return netip.Prefix{}, false
	}
	b := pool.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += *counter << (32 - bits)
	*counter++
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits), true
}

// checkOverlaps rejects overlapping subnets and LANs.
func (l *loader) checkOverlaps() {
	if len(l.errs) > 0 {
		return
	}
	type owned struct {
		p    netip.Prefix
		what string
	}
	var all []owned
	for _, n := range l.t.Nodes {
		if n.LAN.IsValid() {
			all = append(all, owned{n.LAN, "LAN of " + n.Name})
		}
	}
	for _, lk := range l.t.Links {
		if !lk.lan {
			all = append(all, owned{lk.Subnet, "link " + lk.Name})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if c := all[i].p.Addr().Compare(all[j].p.Addr()); c != 0 {
			return c < 0
		}
		return all[i].p.Bits() < all[j].p.Bits()
	})
	for i := 1; i < len(all); i++ {
		if all[i-1].p.Overlaps(all[i].p) {
			l.errorf("link", "%s (%v) overlaps %s (%v)", all[i].what, all[i].p, all[i-1].what, all[i-1].p)
		}
	}
}

func (l *loader) checkTraffic() {
	for _, n := range l.t.Nodes {
		for i, tr := range n.Traffic {
			d := l.t.byName[tr.To]
			field := tr.field + ".to"
			_ = i
			if d == nil {
				l.errorf(field, "no node %q", tr.To)
				continue
			}
			if d.Kind == KindNAT || d.Kind == KindInternet {
				l.errorf(field, "%q is a %s and has no stack to answer", tr.To, d.Kind)
			}
			if n.Kind == KindNAT || n.Kind == KindInternet {
				l.errorf(field, "a %s sends no traffic", n.Kind)
			}
		}
	}
}

func (l *loader) loadEvents(f *fileSpec) {
	for i, es := range f.Event {
		field := fmt.Sprintf("event[%d]", i)
		ev := Event{Target: es.Target, Value: es.Value, Line: l.loc.Line(field)}
		d, err := time.ParseDuration(es.At)
		if err != nil || d < 0 {
			l.errorf(field+".at", "bad time %q", es.At)
		} else if d > l.t.Duration {
			l.errorf(field+".at", "%v is after the end of the run (%v)", d, l.t.Duration)
		}
		ev.At = d
		found := false
		for a, n := range actionNames {
			if n == es.Action {
				ev.Action = EventAction(a)
				found = true
			}
		}
		if !found {
			l.errorf(field+".action", "unknown action %q (want %s)", es.Action, strings.Join(actionNames, ", "))
			continue
		}
		switch ev.Action {
		case EventLinkDown, EventLinkUp:
			if l.linkBy[es.Target] == nil {
				l.errorf(field+".target", "no link %q", es.Target)
			}
		default:
			if l.t.byName[es.Target] == nil {
				l.errorf(field+".target", "no node %q", es.Target)
			}
		}
		l.t.Events = append(l.t.Events, ev)
	}
}
