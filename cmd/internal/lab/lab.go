// Package lab runs one pqlab experiment run: it loads a topology (with
// overrides), builds the simulated network, binds a gateway (package
// sim/gateway) to every gateway node with the engine configuration of its
// peer model, runs the scheduler for the run's duration and collects the
// results record (package results): one handshake record per IKE SA
// initiated, per-node CPU use, per-link counters. It can write per-link
// pcap files and Wireshark key logs.
//
// Same topology, overrides and seed give a byte-identical record.
package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pqlab/pqlab/cmd/internal/results"
	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/sim"
	"github.com/pqlab/pqlab/sim/gateway"
	"github.com/pqlab/pqlab/sim/topology"
)

// DefaultPeerModel is the profile of gateways whose topology names none.
const DefaultPeerModel = "strongswan-6"

// Spec describes one run.
type Spec struct {
	// Topology is the topology file. With Data set it only names the
	// source in messages and locates the models directory.
	Topology string
	Data     []byte
	// ModelsDir overrides the models directory (default: the topology's).
	ModelsDir string
	// Overrides change topology fields before loading (see Overrides).
	Overrides Overrides
	// Seed replaces the topology's seed when non-zero.
	Seed uint64
	// Duration replaces the topology's duration when non-zero.
	Duration time.Duration
	// Name names the run (default "<topology name> seed=<seed>").
	Name string
	// Params are recorded with the run (sweep parameters).
	Params map[string]string
	// PcapDir, when set, receives one pcap file per link (virtual
	// timestamps).
	PcapDir string
	// KeysDir, when set, receives the Wireshark key logs
	// (ikev2_decryption_table and esp_sa).
	KeysDir string
	// Probe, when set, receives data-plane counters after the run.
	Probe *Probe
	// Warn receives notes that do not stop the run (profile fields the
	// engine has no knob for, events the lab does not carry out). It may
	// be nil.
	Warn func(string)

	// trace, when set (tests), sees every IKE event of every gateway.
	trace func(gw string, now time.Time, ev ike.Event)
	// traceSent, when set (tests), sees the header of every IKE datagram
	// sent.
	traceSent func(gw string, now time.Time, h wire.Header, n int)
}

// Load reads and validates the spec's topology with its overrides. Errors
// in the file itself name file:line:field; errors an override causes name
// the override.
func Load(spec Spec) (*topology.Topology, error) {
	data := spec.Data
	if data == nil {
		var err error
		if data, err = os.ReadFile(spec.Topology); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	opts := topology.LoadOptions{ModelsDir: spec.ModelsDir}
	top, err := topology.Parse(spec.Topology, data, opts)
	if err != nil {
		return nil, err
	}
	topoOv, cpu, _, err := splitOverrides(spec.Overrides)
	if err != nil {
		return nil, err
	}
	if len(topoOv) > 0 {
		patched, err := applyOverrides(data, topoOv)
		if err != nil {
			return nil, err
		}
		orig := top
		top, err = topology.Parse(spec.Topology+" (with overrides)", patched, topologyOpts(spec, opts))
		if err != nil {
			return nil, fmt.Errorf("lab: overrides %v: %w", overrideKeys(topoOv), err)
		}
		// Lines in the re-encoded source mean nothing to the user: point at
		// the declarations in the file.
		top.Path = spec.Topology
		for _, n := range top.Nodes {
			if o := orig.Node(n.Name); o != nil {
				n.Line = o.Line
			}
		}
	}
	if err := applyCPU(top, cpu); err != nil {
		return nil, err
	}
	return top, nil
}

// LoadPeers reads the peer models a spec's topology uses (its models
// directory's peers/), with the spec's model[NAME] overrides applied.
func LoadPeers(spec Spec) (map[string]*models.Peer, error) {
	peers, err := models.LoadPeers(filepath.Join(modelsDir(spec), "peers"))
	if err != nil {
		return nil, err
	}
	_, _, mod, err := splitOverrides(spec.Overrides)
	if err != nil {
		return nil, err
	}
	return applyModels(peers, mod)
}

// topologyOpts keeps the models directory of the original file for the
// re-encoded one (whose name no longer points next to it).
func topologyOpts(spec Spec, opts topology.LoadOptions) topology.LoadOptions {
	if opts.ModelsDir == "" {
		opts.ModelsDir = modelsDir(spec)
	}
	return opts
}

func overrideKeys(o Overrides) []string {
	var ks []string
	for k := range o {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// modelsDir returns the models directory a topology uses: Spec.ModelsDir,
// else the file's "models" key, else ../models, relative to the file.
func modelsDir(spec Spec) string {
	if spec.ModelsDir != "" {
		return spec.ModelsDir
	}
	rel := filepath.Join("..", "models")
	data := spec.Data
	if data == nil {
		data, _ = os.ReadFile(spec.Topology)
	}
	var f struct {
		Models string `toml:"models"`
	}
	if _, err := toml.Decode(string(data), &f); err == nil && f.Models != "" {
		rel = f.Models
	}
	return filepath.Join(filepath.Dir(spec.Topology), rel)
}

// Run carries out one run and returns its record.
func Run(spec Spec) (*results.Run, error) {
	top, err := Load(spec)
	if err != nil {
		return nil, err
	}
	if spec.Duration > 0 {
		top.Duration = spec.Duration
	}
	seed := top.Seed
	if spec.Seed != 0 {
		seed = spec.Seed
	}
	peers, err := LoadPeers(spec)
	if err != nil {
		return nil, err
	}
	b, err := topology.Build(top, topology.BuildOptions{Seed: seed})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	r := &runner{spec: spec, top: top, b: b, peers: peers, gws: map[string]*gateway.Gateway{},
		col: newCollector(b.Net.Scheduler().Epoch())}
	r.col.traceSent = spec.traceSent
	if spec.KeysDir != "" {
		if r.keys, err = newKeyLog(spec.KeysDir); err != nil {
			return nil, err
		}
	}
	if err := r.attach(); err != nil {
		return nil, err
	}
	var closePcap func() error
	if spec.PcapDir != "" {
		if closePcap, err = b.Net.CaptureToFiles(spec.PcapDir, sim.PcapOptions{}); err != nil {
			return nil, err
		}
	}
	b.Net.AddObserver(r.col)
	b.OnEvent = r.onTopologyEvent
	if err := b.Start(); err != nil {
		return nil, err
	}
	b.Net.At(0, r.initiateAll)
	b.Net.Run(top.Duration)
	run := r.record(seed)
	if spec.Probe != nil {
		r.probe(spec.Probe)
	}
	if closePcap != nil {
		if err := closePcap(); err != nil {
			return nil, err
		}
	}
	if r.keys != nil {
		if err := r.keys.flush(); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// runner is the state of one run.
type runner struct {
	spec  Spec
	top   *topology.Topology
	b     *topology.Built
	peers map[string]*models.Peer
	gws   map[string]*gateway.Gateway
	col   *collector
	keys  *keyLog
	// initiate lists, per gateway, the peers it brings tunnels up with at
	// the start (standby peers of failover events excluded).
	initiate map[string][]string
	warned   map[string]bool
}

func (r *runner) warn(s string) {
	if r.spec.Warn == nil || r.warned[s] {
		return
	}
	if r.warned == nil {
		r.warned = map[string]bool{}
	}
	r.warned[s] = true
	r.spec.Warn(s)
}

// psk is the pre-shared key of every connection of a run.
func (r *runner) psk() string { return "pqlab-" + r.top.Name }

// lanOf returns the protected prefixes of a gateway: its LAN, else its
// own address.
func (r *runner) lanOf(n *topology.Node) []netip.Prefix {
	var out []netip.Prefix
	if n.LAN.IsValid() {
		out = append(out, n.LAN)
	}
	if n.LAN6.IsValid() {
		out = append(out, n.LAN6)
	}
	if len(out) == 0 {
		if a := r.b.Addr(n.Name); a.IsValid() {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// plan is the IKE side of a topology: each gateway's connections and
// engine configuration.
type plan struct {
	conns map[string][]gateway.Connection
	// initiate lists, per gateway, the peers it brings tunnels up with at
	// the start (standby peers of failover events excluded).
	initiate map[string][]string
	models   map[string]string
	configs  map[string]ike.Config
}

// planIKE works out the connections of every gateway and their engine
// configurations. An initiator (or a node with role "both") has a
// connection to each of its peers; the peer has the responding side.
// Peers named as the new hub of a failover event are standby: the
// connection exists, the tunnel comes up on failover. addr gives a
// gateway's outer address; lan its protected prefixes.
func planIKE(top *topology.Topology, peers map[string]*models.Peer, psk string,
	addr func(string) netip.Addr, lan func(*topology.Node) []netip.Prefix, warn func(string)) (*plan, error) {
	p := &plan{conns: map[string][]gateway.Connection{}, initiate: map[string][]string{},
		models: map[string]string{}, configs: map[string]ike.Config{}}
	gws := top.Gateways()
	standby := map[string]bool{}
	for _, ev := range top.Events {
		if ev.Action == topology.EventFailover && ev.Value != "" {
			standby[ev.Value] = true
		}
	}
	has := map[[2]string]bool{}
	add := func(from, to *topology.Node, initiate bool) {
		if has[[2]string{from.Name, to.Name}] {
			return
		}
		has[[2]string{from.Name, to.Name}] = true
		c := gateway.Connection{Peer: to.Name, Initiate: initiate, LocalTS: lan(from), RemoteTS: lan(to)}
		if initiate {
			c.Remote = addr(to.Name)
		}
		p.conns[from.Name] = append(p.conns[from.Name], c)
	}
	for _, n := range gws {
		if n.Engine.Role != topology.RoleInitiator && n.Engine.Role != topology.RoleBoth {
			continue
		}
		for _, peer := range n.Engine.Peers {
			pn := top.Node(peer)
			add(n, pn, true)
			add(pn, n, false)
			if !standby[peer] {
				p.initiate[n.Name] = append(p.initiate[n.Name], peer)
			}
		}
	}
	for _, n := range gws {
		if n.Engine.Role == topology.RoleResponder {
			for _, peer := range n.Engine.Peers {
				add(n, top.Node(peer), false)
			}
		}
	}
	for _, n := range gws {
		model := n.Engine.PeerModel
		if model == "" {
			model = DefaultPeerModel
		}
		pm := peers[model]
		if pm == nil {
			return nil, fmt.Errorf("%s:%d: node %s: no peer model %q", top.Path, n.Line, n.Name, model)
		}
		p.models[n.Name] = model
		if warn != nil {
			for _, u := range gateway.UnsupportedFields(pm) {
				warn(fmt.Sprintf("peer model %s: %s", model, u))
			}
		}
		cfg, err := gateway.EngineConfig(pm, gateway.NodeSpec{Name: n.Name, Addr: addr(n.Name), Proposals: n.Engine.Proposals,
			ESPProposals: n.Engine.ESPProposals, PSK: psk, Connections: p.conns[n.Name]})
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", top.Path, n.Line, err)
		}
		p.configs[n.Name] = cfg
	}
	return p, nil
}

// Check validates a topology as Run would use it, without running it:
// the file (with overrides), its peer models, and every gateway's engine
// configuration (proposals its peer model cannot run, roles it does not
// take). Errors name file:line.
func Check(spec Spec) (*topology.Topology, error) {
	top, err := Load(spec)
	if err != nil {
		return nil, err
	}
	peers, err := LoadPeers(spec)
	if err != nil {
		return nil, err
	}
	placeholder := netip.MustParseAddr("192.0.2.1") // RFC 5737
	lan := func(n *topology.Node) []netip.Prefix {
		if n.LAN.IsValid() {
			return []netip.Prefix{n.LAN}
		}
		return []netip.Prefix{netip.PrefixFrom(placeholder, 32)}
	}
	p, err := planIKE(top, peers, "check", func(string) netip.Addr { return placeholder }, lan, spec.Warn)
	if err != nil {
		return nil, err
	}
	for name, cfg := range p.configs {
		if _, err := ike.NewEngine(cfg, sim.NewDeterministicReader(1, name)); err != nil {
			n := top.Node(name)
			return nil, fmt.Errorf("%s:%d: node %s: %w", top.Path, n.Line, name, err)
		}
	}
	return top, nil
}

// attach creates a gateway on every gateway node (see planIKE).
func (r *runner) attach() error {
	p, err := planIKE(r.top, r.peers, r.psk(), r.b.Addr, r.lanOf, r.warn)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	r.initiate = p.initiate
	for gw, peers := range p.initiate {
		for _, peer := range peers {
			r.col.expectPeer(gw, peer)
			r.col.expectPeer(peer, gw)
		}
	}
	for _, n := range r.top.Gateways() {
		r.col.models[n.Name] = p.models[n.Name]
		hooks := r.col.hooks()
		if r.keys != nil {
			hooks.KeyLog = func(_ *gateway.Gateway, e ike.KeyLogEntry) {
				if err := r.keys.addIKE(e); err != nil {
					r.warn(err.Error())
				}
			}
		}
		g, err := gateway.New(r.b.Nodes[n.Name], gateway.Config{Engine: p.configs[n.Name], Addr: r.b.Addr(n.Name), Hooks: hooks})
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		r.gws[n.Name] = g
	}
	r.col.onEvent = r.onIKEEvent
	return nil
}

func (r *runner) now() time.Time { return r.b.Net.Scheduler().Now() }

// initiateAll brings up every initiator's tunnels at the start of the run.
func (r *runner) initiateAll() {
	for _, n := range r.top.Gateways() {
		r.initiateFrom(n.Name, r.initiate[n.Name])
	}
}

func (r *runner) initiateFrom(gw string, peers []string) {
	g := r.gws[gw]
	for _, p := range peers {
		if _, err := g.Initiate(p); err != nil {
			r.warn(err.Error())
		}
	}
}

// onTopologyEvent carries out the gateway events of the topology.
func (r *runner) onTopologyEvent(ev topology.Event) {
	switch ev.Action {
	case topology.EventCrash:
		if g := r.gws[ev.Target]; g != nil {
			g.Crash()
			r.col.crashed(g, r.now())
		}
	case topology.EventRestart:
		if g := r.gws[ev.Target]; g != nil && g.Down() {
			if err := g.Restart(); err != nil {
				r.warn(err.Error())
				return
			}
			r.initiateFrom(ev.Target, r.initiate[ev.Target])
		}
	case topology.EventFailover:
		// Every initiator with a tunnel to the failed hub moves to the
		// standby one.
		for _, n := range r.top.Gateways() {
			g := r.gws[n.Name]
			if g.Down() || !contains(r.initiate[n.Name], ev.Target) {
				continue
			}
			if _, ok := g.Peer(ev.Value); !ok {
				continue
			}
			for _, id := range saIDs(g) {
				if info, ok := g.Engine().SA(id); ok && info.Peer == ev.Target {
					_ = g.Delete(id)
				}
			}
			r.initiateFrom(n.Name, []string{ev.Value})
		}
	case topology.EventConfig:
		r.warn(fmt.Sprintf("%s:%d: config events are not carried out yet (value %q)", r.top.Path, ev.Line, ev.Value))
	}
}

// saIDs returns a gateway's IKE SAs in a deterministic order.
func saIDs(g *gateway.Gateway) []ike.SAID {
	ids := g.Engine().SAs()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// onIKEEvent logs Child SA keys.
func (r *runner) onIKEEvent(g *gateway.Gateway, now time.Time, ev ike.Event) {
	if r.spec.trace != nil {
		r.spec.trace(g.Name(), now, ev)
	}
	if r.keys == nil || ev.Child == nil {
		return
	}
	if ev.Kind == ike.EventChildSAInstalled || ev.Kind == ike.EventChildSARekeyed {
		if err := r.keys.addChild(ev.Child); err != nil {
			r.warn(err.Error())
		}
	}
}

// record assembles the run's results.
func (r *runner) record(seed uint64) *results.Run {
	run := &results.Run{
		Name:       r.spec.Name,
		Topology:   r.spec.Topology,
		Seed:       int64(seed),
		Params:     r.spec.Params,
		DurationNs: int64(r.top.Duration),
		Handshakes: r.col.end(r.now()),
		Rekeys:     r.col.endRekeys(),
	}
	if run.Name == "" {
		run.Name = r.top.Name + " seed=" + strconv.FormatUint(seed, 10)
	}
	for _, n := range r.top.Nodes {
		node := r.b.Nodes[n.Name]
		if node == nil {
			continue
		}
		st := node.CPU().Stats()
		if st.Busy == 0 && n.Kind != topology.KindGateway {
			continue
		}
		ns := results.NodeStats{Name: n.Name, Model: r.col.models[n.Name], Cores: node.CPU().Cores(),
			CPUNs: int64(st.Busy), BusyNs: int64(st.BusyWall)}
		if len(r.col.expect[n.Name]) >= 2 {
			ns.AllUpNs = int64(r.col.allUp[n.Name])
		}
		run.Nodes = append(run.Nodes, ns)
	}
	for _, l := range r.b.Net.Links() {
		ls := results.LinkStats{Name: l.Name()}
		for _, d := range []sim.Direction{sim.AtoB, sim.BtoA} {
			s := l.Stats(d)
			ls.Packets += int64(s.Packets)
			ls.Bytes += int64(s.Bytes)
			ls.IPFragments += int64(s.Fragments)
			for _, reason := range sim.DropReasons() {
				if n := s.Drops[reason]; n > 0 {
					if ls.Drops == nil {
						ls.Drops = map[string]int64{}
					}
					ls.Drops[reason.String()] += int64(n)
				}
			}
		}
		run.Links = append(run.Links, ls)
	}
	sort.Slice(run.Links, func(i, j int) bool { return run.Links[i].Name < run.Links[j].Name })
	return run
}

// Probe receives data-plane observations of a run (tests and reports).
type Probe struct {
	// ESP holds each gateway's data-plane counters.
	ESP map[string]gateway.Stats
	// Pings holds each node's pinger results, in traffic order.
	Pings map[string][]sim.PingStats
}

func (r *runner) probe(p *Probe) {
	p.ESP = map[string]gateway.Stats{}
	p.Pings = map[string][]sim.PingStats{}
	for n, g := range r.gws {
		p.ESP[n] = g.Stats()
	}
	for n, ps := range r.b.Pingers {
		for _, pg := range ps {
			p.Pings[n] = append(p.Pings[n], pg.Stats())
		}
	}
}
