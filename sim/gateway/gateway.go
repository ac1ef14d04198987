// Package gateway binds the IKE engine (package ike) and the ESP data plane
// (package esp) to a simulated gateway node (package sim).
//
// A Gateway hosts one ike.Engine on UDP 500 and the NAT-T port of the
// node's outer address (sim.Node.HostEngine) through an adapter that
// implements sim.Engine, sim.CostReporter and sim.Completer:
//
//   - every cryptographic operation the engine reports (ike.CryptoOp) and
//     every ESP seal and open is charged to the node's CPU model under the
//     cost-table names of OpCosts and ESPCosts; the datagrams, events and
//     ESP packets that result take effect when that work completes;
//   - ESP in UDP shares the NAT-T socket with IKE: a received payload is
//     told apart by esp.ClassifyUDP (RFC 3948 Section 2.2), IKE goes to
//     the engine with its non-ESP marker, ESP to the data plane, and NAT
//     keepalives are counted and dropped;
//   - ESP without encapsulation travels as IP protocol 50
//     (sim.Node.SendIP, sim.Node.SetIPHandler);
//   - on EventChildSAInstalled and EventChildSARekeyed both directions are
//     installed in an esp.DB and the prefixes of the peer's traffic
//     selectors are routed into a route-based tunnel NIC (sim.Node.AddTunnel;
//     esp/tunnel's Interface does the same job for real stacks and is not
//     used here); on EventChildSADeleted the SAs and, when no other Child
//     SA covers them, the routes go.
//
// Randomness comes from the node's seeded stream (sim.Node.Rand), so a
// gateway is as deterministic as the rest of the simulation. Hooks let a
// caller (the lab's result collection) see datagrams, events and CPU cost
// per IKE SA without this package knowing the results schema.
package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/pqlab/pqlab/esp"
	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/sim"
)

// Defaults.
const (
	// DefaultTunnelMTU is the inner MTU of the tunnel NIC: a 1500-octet
	// outer path minus IPv4, UDP and the largest ESP overhead of the AEAD
	// suites (esp/tunnel.DefaultMTU).
	DefaultTunnelMTU = 1432
	// tunnelIfID is the interface ID of every SA of a gateway: one tunnel
	// NIC carries all of its Child SAs, selected by traffic selectors.
	tunnelIfID = 1
	// maxInner bounds an ESP packet handed to the data plane.
	maxInner = 65535
)

// Hooks observe a gateway. Each runs on the scheduler's goroutine.
type Hooks struct {
	// Initiated sees each IKE SA Initiate started, before any of its work
	// is charged or sent.
	Initiated func(g *Gateway, now time.Time, peer string, id ike.SAID)
	// Sent sees each IKE datagram when it leaves (after the CPU work that
	// produced it); Data is the UDP payload, non-ESP marker included.
	Sent func(g *Gateway, now time.Time, d ike.Datagram)
	// Received sees each IKE datagram handed to the engine.
	Received func(g *Gateway, now time.Time, d ike.Datagram)
	// Event sees each engine event once the CPU work that produced it
	// completed, after the gateway acted on it (SAs installed or removed).
	Event func(g *Gateway, now time.Time, ev ike.Event)
	// KeyLog, when set, receives the IKE SA keys the engine derives
	// (ike.Config.LogKeys is turned on): SECRET, for decrypting captures.
	KeyLog func(g *Gateway, e ike.KeyLogEntry)
	// Cost sees the CPU time charged to this node for each engine
	// operation, with the IKE SA it was done for (0: none).
	Cost func(g *Gateway, sa ike.SAID, cost time.Duration)
}

// Config configures a gateway.
type Config struct {
	// Engine is the IKE configuration (peers included). LogCryptoOps is
	// forced on: the gateway charges each operation.
	Engine ike.Config
	// Addr is the gateway's outer address; the engine binds UDP 500 and
	// the NAT-T port on it.
	Addr netip.Addr
	// TunnelMTU is the inner MTU of the tunnel NIC (DefaultTunnelMTU when 0).
	TunnelMTU uint32
	// Routes says how the peers' protected prefixes are routed into the
	// tunnel NIC (RouteAuto when zero).
	Routes RouteMode
	Hooks  Hooks
}

// RouteMode says how a gateway routes its peers' protected prefixes into
// its tunnel NIC.
type RouteMode int

// Route modes.
const (
	// RouteAuto is RouteSummary for a gateway with AutoSummaryPeers or
	// more connections (a hub), RoutePerChild otherwise.
	RouteAuto RouteMode = iota
	// RoutePerChild adds a route for each prefix of an installed Child
	// SA's remote traffic selectors and removes it with the last Child SA
	// that needs it. Until a Child SA is up, traffic to the peer's
	// prefixes follows the other routes (in the clear), as with a
	// route-based VTI whose routes follow the tunnel state.
	RoutePerChild
	// RouteSummary routes, from the start, the union of every
	// connection's configured remote selectors, summarised into the fewest
	// prefixes that cover exactly that union (ten thousand spoke /24s in
	// one /8 become a handful of routes), as an operator configures a hub.
	// Traffic for a peer whose Child SA is not up enters the tunnel and is
	// dropped there (no SA), like a strongSwan trap policy. gVisor looks
	// routes up linearly, so a hub with a route per spoke spends its time
	// scanning routes; summary routes keep every lookup short. Child SA
	// prefixes outside the summary (narrowed selectors never are) still
	// get routes of their own.
	RouteSummary
)

// AutoSummaryPeers is the number of connections from which RouteAuto
// summarises routes.
const AutoSummaryPeers = 64

// String returns the mode's name.
func (m RouteMode) String() string {
	switch m {
	case RouteAuto:
		return "auto"
	case RoutePerChild:
		return "per-child"
	case RouteSummary:
		return "summary"
	}
	return fmt.Sprintf("RouteMode(%d)", int(m))
}

// Stats counts a gateway's data plane.
type Stats struct {
	// ESPSent and ESPReceived count ESP packets sealed and sent, and
	// received and opened; ESPDropped those refused (no SA, replay,
	// integrity ...; the DB's counters have the reasons).
	ESPSent, ESPReceived, ESPDropped uint64
	// Keepalives counts NAT keepalives received; Unclassified UDP/4500
	// payloads that were neither IKE, ESP nor keepalives.
	Keepalives, Unclassified uint64
	// SendErrors counts ESP packets the node could not send.
	SendErrors uint64
	// InstallErrors counts Child SAs the data plane refused.
	InstallErrors uint64
	// CostErrors counts operations with no entry in the cost table
	// (charged nothing).
	CostErrors uint64
}

// Gateway is an IKE engine and an ESP data plane on a node.
type Gateway struct {
	node *sim.Node
	cfg  Config
	eng  *ike.Engine
	host *sim.EngineHost
	db   *esp.DB
	tun  *sim.Tunnel

	// Work queued since the host last took a completion.
	costs   []Cost
	opBuf   []ike.CryptoOp
	keyBuf  []ike.KeyLogEntry
	events  []ike.Event
	sent    []ike.Datagram
	actions []func(now time.Time)
	pending bool // a datagram flush from the tunnel is scheduled
	drained bool // the engine's operations were polled in this Kick
	outQ    [][]byte

	routes   map[netip.Prefix]int // tunnel route reference counts
	children map[uint32]*child    // by inbound SPI
	stopped  bool
	// summary holds the static summary routes (RouteSummary), installed
	// while the gateway runs; covered answers whether a prefix lies in
	// them.
	summary []netip.Prefix
	covered *prefixSet

	stats Stats
}

// child is an installed Child SA.
type child struct {
	in     *esp.InboundSA
	out    *esp.OutboundSA
	routes []netip.Prefix
}

// New creates the gateway on node: the engine, its UDP sockets, the ESP
// handler and the tunnel NIC. The engine starts idle; call Initiate.
func New(node *sim.Node, cfg Config) (*Gateway, error) {
	if !cfg.Addr.IsValid() {
		return nil, fmt.Errorf("gateway: node %s: no outer address", node.Name())
	}
	if cfg.TunnelMTU == 0 {
		cfg.TunnelMTU = DefaultTunnelMTU
	}
	cfg.Engine.LogCryptoOps = true
	cfg.Engine.LogKeys = cfg.Hooks.KeyLog != nil
	g := &Gateway{node: node, cfg: cfg, db: &esp.DB{},
		routes: map[netip.Prefix]int{}, children: map[uint32]*child{}}
	tun, err := node.AddTunnel("ipsec0", cfg.TunnelMTU, g.tunnelOut)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.tun = tun
	if err := g.planRoutes(); err != nil {
		return nil, err
	}
	if err := g.start(); err != nil {
		return nil, err
	}
	return g, nil
}

// start creates the engine and binds it (New and Restart).
func (g *Gateway) start() error {
	eng, err := ike.NewEngine(g.cfg.Engine, g.node.Rand())
	if err != nil {
		return fmt.Errorf("gateway: node %s: %w", g.node.Name(), err)
	}
	g.eng = eng
	natt := eng.Config().NATT.Port
	host, err := g.node.HostEngine((*adapter)(g),
		netip.AddrPortFrom(g.cfg.Addr, ike.DefaultIKEPort), netip.AddrPortFrom(g.cfg.Addr, natt))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.host = host
	if err := g.node.SetIPHandler(sim.IPProtoESP, g.receiveRawESP); err != nil {
		host.Close()
		return fmt.Errorf("gateway: %w", err)
	}
	for _, p := range g.summary {
		if err := g.node.AddRoute(p, g.tun.ID()); err != nil {
			host.Close()
			_ = g.node.SetIPHandler(sim.IPProtoESP, nil)
			return fmt.Errorf("gateway: %w", err)
		}
	}
	g.stopped = false
	return nil
}

// planRoutes works out the summary routes of RouteSummary (or of
// RouteAuto on a hub). A summary that would capture the gateway's own
// outer address or a peer's configured address, and so its IKE and ESP
// packets, is refused (RouteSummary) or not used (RouteAuto).
func (g *Gateway) planRoutes() error {
	mode := g.cfg.Routes
	peers := g.cfg.Engine.Peers
	if mode == RouteAuto {
		mode = RoutePerChild
		if len(peers) >= AutoSummaryPeers {
			mode = RouteSummary
		}
	}
	if mode != RouteSummary {
		return nil
	}
	var ps []netip.Prefix
	for _, p := range peers {
		for _, c := range p.Children {
			for _, ts := range c.RemoteTS {
				ps = append(ps, rangePrefixes(ts.Start, ts.End)...)
			}
		}
	}
	sum := summarize(ps)
	set := newPrefixSet(sum)
	own := []netip.Addr{g.cfg.Addr}
	for _, p := range peers {
		if p.Remote.IsValid() {
			own = append(own, p.Remote.Addr())
		}
	}
	for _, a := range own {
		a = a.Unmap()
		if set.covers(netip.PrefixFrom(a, a.BitLen())) {
			if g.cfg.Routes == RouteAuto {
				return nil
			}
			return fmt.Errorf("gateway: %s: summary routes would capture %v", g.Name(), a)
		}
	}
	g.summary, g.covered = sum, set
	return nil
}

// Node returns the gateway's node.
func (g *Gateway) Node() *sim.Node { return g.node }

// Name returns the node's name.
func (g *Gateway) Name() string { return g.node.Name() }

// Addr returns the outer address.
func (g *Gateway) Addr() netip.Addr { return g.cfg.Addr }

// Engine returns the IKE engine (replaced by Restart).
func (g *Gateway) Engine() *ike.Engine { return g.eng }

// DB returns the ESP SA database.
func (g *Gateway) DB() *esp.DB { return g.db }

// Tunnel returns the tunnel NIC.
func (g *Gateway) Tunnel() *sim.Tunnel { return g.tun }

// Stats returns the data-plane counters.
func (g *Gateway) Stats() Stats {
	s := g.stats
	s.CostErrors = g.host.CostErrors
	return s
}

// Peer returns the configured connection named name.
func (g *Gateway) Peer(name string) (ike.PeerConfig, bool) {
	for _, p := range g.cfg.Engine.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return ike.PeerConfig{}, false
}

// Initiate starts an IKE SA with the configured connection peer and
// returns its ID. Call it on the scheduler's goroutine.
func (g *Gateway) Initiate(peer string) (ike.SAID, error) {
	if g.stopped {
		return 0, fmt.Errorf("gateway: %s is down", g.Name())
	}
	p, ok := g.Peer(peer)
	if !ok {
		return 0, fmt.Errorf("gateway: %s has no connection %q", g.Name(), peer)
	}
	now := g.now()
	id, err := g.eng.Initiate(now, p)
	if err != nil {
		return 0, fmt.Errorf("gateway: %s: %w", g.Name(), err)
	}
	if h := g.cfg.Hooks.Initiated; h != nil {
		h(g, now, peer, id)
	}
	g.host.Kick()
	return id, nil
}

// Delete deletes an IKE SA (with an INFORMATIONAL exchange).
func (g *Gateway) Delete(id ike.SAID) error {
	if g.stopped {
		return fmt.Errorf("gateway: %s is down", g.Name())
	}
	err := g.eng.Delete(g.now(), id)
	g.host.Kick()
	return err
}

// Crash loses all state at once, as a power failure does: the engine, its
// sockets and every ESP SA and tunnel route go without a message to the
// peers. Work in flight on the CPU is discarded when it completes.
func (g *Gateway) Crash() {
	if g.stopped {
		return
	}
	g.stopped = true
	g.host.Close()
	_ = g.node.SetIPHandler(sim.IPProtoESP, nil)
	for spi := range g.children {
		g.removeChild(spi)
	}
	for _, p := range g.summary {
		g.removeRoute(p)
	}
	g.costs, g.opBuf, g.events, g.sent, g.actions, g.outQ = nil, nil, nil, nil, nil, nil
}

// Restart brings a crashed gateway back with a fresh engine (same
// configuration, no SAs).
func (g *Gateway) Restart() error {
	if !g.stopped {
		return errors.New("gateway: restart of a running gateway")
	}
	return g.start()
}

// Down reports whether the gateway is crashed.
func (g *Gateway) Down() bool { return g.stopped }

func (g *Gateway) now() time.Time { return g.node.Network().Scheduler().Now() }

// adapter is the Gateway seen as a sim.Engine; its methods are called by
// the EngineHost only.
type adapter Gateway

var (
	_ sim.Engine       = (*adapter)(nil)
	_ sim.CostReporter = (*adapter)(nil)
	_ sim.Completer    = (*adapter)(nil)
)

// Handle implements sim.Engine: IKE to the engine, ESP to the data plane.
func (a *adapter) Handle(now time.Time, d sim.Datagram) {
	g := (*Gateway)(a)
	if g.stopped {
		return
	}
	if d.Local.Port() == g.eng.Config().NATT.Port {
		switch cls, _ := esp.ClassifyUDP(d.Payload); cls {
		case esp.UDPESP:
			g.queueOpen(d.Payload)
			return
		case esp.UDPKeepalive:
			g.stats.Keepalives++
			return
		case esp.UDPInvalid:
			g.stats.Unclassified++
			return
		}
	}
	if h := g.cfg.Hooks.Received; h != nil {
		h(g, now, ike.Datagram{Local: d.Local, Remote: d.Remote, Data: d.Payload})
	}
	g.eng.Handle(now, d.Local, d.Remote, d.Payload)
}

// HandleTimeout implements sim.Engine.
func (a *adapter) HandleTimeout(now time.Time) {
	g := (*Gateway)(a)
	if !g.stopped {
		g.eng.HandleTimeout(now)
	}
}

// NextTimeout implements sim.Engine.
func (a *adapter) NextTimeout() (time.Time, bool) {
	g := (*Gateway)(a)
	if g.stopped {
		return time.Time{}, false
	}
	return g.eng.NextTimeout()
}

// PollTransmit implements sim.Engine. The datagrams are remembered for
// the Sent hook, which runs when they leave.
func (a *adapter) PollTransmit() (sim.Datagram, bool) {
	g := (*Gateway)(a)
	if g.stopped {
		return sim.Datagram{}, false
	}
	d, ok := g.eng.PollTransmit()
	if !ok {
		return sim.Datagram{}, false
	}
	if g.cfg.Hooks.Sent != nil {
		g.sent = append(g.sent, d)
	}
	return sim.Datagram{Local: d.Local, Remote: d.Remote, Payload: d.Data}, true
}

// PollCost implements sim.CostReporter: the engine's operations, then the
// ESP work queued.
func (a *adapter) PollCost() (string, int, bool) {
	g := (*Gateway)(a)
	if !g.drained && !g.stopped {
		g.drained = true
		g.opBuf = g.eng.PollCryptoOps(g.opBuf[:0])
		for _, op := range g.opBuf {
			cs := OpCosts(op)
			if hook := g.cfg.Hooks.Cost; hook != nil {
				var total time.Duration
				for _, c := range cs {
					if d, err := g.node.CPU().Cost(c.Op, c.Units); err == nil {
						total += d
					}
				}
				hook(g, op.SA, total)
			}
			g.costs = append(g.costs, cs...)
		}
		for {
			ev, ok := g.eng.PollEvent()
			if !ok {
				break
			}
			g.events = append(g.events, ev)
		}
		if hook := g.cfg.Hooks.KeyLog; hook != nil {
			g.keyBuf = g.eng.PollKeyLog(g.keyBuf[:0])
			for _, k := range g.keyBuf {
				hook(g, k)
			}
			clear(g.keyBuf)
		}
	}
	if len(g.costs) == 0 {
		return "", 0, false
	}
	c := g.costs[0]
	g.costs = g.costs[1:]
	if len(g.costs) == 0 {
		g.costs = nil
	}
	return c.Op, c.Units, true
}

// TakeCompletion implements sim.Completer: what the work charged since the
// last call leads to, run when the CPU has done it.
func (a *adapter) TakeCompletion() func(time.Time) {
	g := (*Gateway)(a)
	g.drained = false
	if g.stopped {
		return nil
	}
	for { // events of calls that charged nothing
		ev, ok := g.eng.PollEvent()
		if !ok {
			break
		}
		g.events = append(g.events, ev)
	}
	if len(g.events) == 0 && len(g.sent) == 0 && len(g.actions) == 0 {
		return nil
	}
	evs, sent, acts := g.events, g.sent, g.actions
	g.events, g.sent, g.actions = nil, nil, nil
	eng := g.eng
	return func(now time.Time) {
		if g.stopped || g.eng != eng {
			return // crashed meanwhile: the work is lost
		}
		for _, ev := range evs {
			g.onEvent(now, ev)
		}
		for _, act := range acts {
			act(now)
		}
		if h := g.cfg.Hooks.Sent; h != nil {
			for _, d := range sent {
				h(g, now, d)
			}
		}
	}
}

// onEvent acts on an engine event and passes it to the hook.
func (g *Gateway) onEvent(now time.Time, ev ike.Event) {
	switch ev.Kind {
	case ike.EventChildSAInstalled, ike.EventChildSARekeyed:
		if err := g.installChild(now, ev); err != nil {
			g.stats.InstallErrors++
		}
	case ike.EventChildSADeleted:
		if ev.Child != nil {
			g.removeChild(ev.Child.InboundSPI)
		}
	}
	if h := g.cfg.Hooks.Event; h != nil {
		h(g, now, ev)
	}
}

// espSuite converts the negotiated ESP transforms.
func espSuite(c *ike.ChildSA) esp.Suite {
	return esp.Suite{Encr: c.Suite.Encr, KeyBits: c.Suite.EncrKeyBits, Integ: c.Suite.Integ, ESN: c.Suite.ESN}
}

func selectors(ts []ike.TrafficSelector) []esp.Selector {
	out := make([]esp.Selector, 0, len(ts))
	for _, t := range ts {
		out = append(out, esp.Selector{Proto: t.Protocol, StartPort: t.StartPort, EndPort: t.EndPort, Start: t.Start, End: t.End})
	}
	return out
}

// installChild installs both directions of a Child SA and routes the
// peer's selectors into the tunnel.
func (g *Gateway) installChild(now time.Time, ev ike.Event) error {
	c := ev.Child
	if c == nil {
		return errors.New("gateway: child event without a Child SA")
	}
	path := esp.Path{Encap: esp.EncapRaw, Local: netip.AddrPortFrom(ev.Local.Addr(), 0), Remote: netip.AddrPortFrom(ev.Remote.Addr(), 0)}
	// UDP encapsulation runs on the NAT-T port (RFC 3948 Section 2); an
	// SA still on port 500 was not moved there by its initiator, which
	// sends raw ESP. (The engine's responder can report Encap without a
	// NAT: it checks the request's NAT_DETECTION hashes with its own SPIr
	// where the initiator hashed zero, RFC 7296 Section 2.23.)
	if c.Encap && c.Local.Port() == g.eng.Config().NATT.Port {
		path = esp.Path{Encap: esp.EncapUDP, Local: c.Local, Remote: c.Remote}
	}
	life := esp.Lifetime{SoftBytes: c.Lifetime.SoftBytes, HardBytes: c.Lifetime.HardBytes,
		SoftPackets: c.Lifetime.SoftPackets, HardPackets: c.Lifetime.HardPackets}
	base := esp.SAConfig{Suite: espSuite(c), Mode: esp.ModeTunnel, Local: selectors(c.LocalTS), Remote: selectors(c.RemoteTS),
		Lifetime: life, IfID: tunnelIfID, Path: path}
	in := base
	in.SPI, in.Keys = c.InboundSPI, esp.Keys{Encr: c.Inbound.Encr, Integ: c.Inbound.Integ}
	out := base
	out.SPI, out.Keys, out.Rand = c.OutboundSPI, esp.Keys{Encr: c.Outbound.Encr, Integ: c.Outbound.Integ}, g.node.Rand()
	isa, err := g.db.AddInbound(now, in)
	if err != nil {
		return err
	}
	osa, err := g.db.AddOutbound(now, out)
	if err != nil {
		g.db.RemoveInbound(c.InboundSPI)
		return err
	}
	ch := &child{in: isa, out: osa}
	for _, ts := range c.RemoteTS {
		for _, p := range rangePrefixes(ts.Start, ts.End) {
			if g.covered.covers(p) {
				continue // a summary route carries it
			}
			if g.routes[p] == 0 {
				if err := g.node.AddRoute(p, g.tun.ID()); err != nil {
					continue
				}
			}
			g.routes[p]++
			ch.routes = append(ch.routes, p)
		}
	}
	g.children[c.InboundSPI] = ch
	return nil
}

// removeChild removes a Child SA and the routes only it needed.
func (g *Gateway) removeChild(inSPI uint32) {
	ch := g.children[inSPI]
	if ch == nil {
		return
	}
	delete(g.children, inSPI)
	g.db.RemoveInbound(inSPI)
	g.db.RemoveOutbound(ch.out)
	for _, p := range ch.routes {
		g.routes[p]--
		if g.routes[p] > 0 {
			continue
		}
		delete(g.routes, p)
		g.removeRoute(p)
	}
}

// removeRoute removes the tunnel NIC's route to p.
func (g *Gateway) removeRoute(p netip.Prefix) {
	mask := tcpip.MaskFromBytes(prefixMask(p))
	addr := tcpip.AddrFromSlice(p.Addr().AsSlice())
	id := g.tun.ID()
	g.node.Stack().RemoveRoutes(func(r tcpip.Route) bool {
		return r.NIC == id && r.Destination.ID() == addr && r.Destination.Mask() == mask
	})
}

// SummaryRoutes returns the static summary routes into the tunnel NIC
// (RouteSummary; none with RoutePerChild).
func (g *Gateway) SummaryRoutes() []netip.Prefix { return slices.Clone(g.summary) }

// ChildSAs returns the number of installed Child SAs.
func (g *Gateway) ChildSAs() int { return len(g.children) }

// tunnelOut receives a packet the stack routed into the tunnel. It runs
// inside the stack's send path, so the work is deferred to an event.
func (g *Gateway) tunnelOut(pkt []byte) {
	if g.stopped {
		return
	}
	g.outQ = append(g.outQ, pkt)
	if g.pending {
		return
	}
	g.pending = true
	g.node.Network().Scheduler().After(0, g.flushOut)
}

// flushOut charges and seals the packets queued by tunnelOut.
func (g *Gateway) flushOut() {
	g.pending = false
	q := g.outQ
	g.outQ = nil
	if g.stopped {
		return
	}
	set := g.db.Outbound(tunnelIfID)
	for _, pkt := range q {
		f, err := esp.ParseFlow(pkt)
		var sa *esp.OutboundSA
		if err == nil {
			sa = set.Select(&f)
		}
		if sa == nil {
			g.stats.ESPDropped++
			continue
		}
		g.costs = append(g.costs, ESPCosts(sa.Suite(), len(pkt))...)
		g.actions = append(g.actions, func(time.Time) { g.seal(sa, pkt) })
	}
	g.host.Kick()
}

// seal protects an inner packet with sa and sends it.
func (g *Gateway) seal(sa *esp.OutboundSA, inner []byte) {
	pkt, err := sa.SealTunnel(nil, inner)
	if err != nil {
		g.stats.ESPDropped++
		return
	}
	p := sa.Path()
	if p.Encap == esp.EncapUDP {
		err = g.node.SendUDP(p.Local, p.Remote, pkt)
	} else {
		err = g.node.SendIP(p.Local.Addr(), p.Remote.Addr(), sim.IPProtoESP, pkt)
	}
	if err != nil {
		g.stats.SendErrors++
		return
	}
	g.stats.ESPSent++
	g.pollLimits()
}

// receiveRawESP handles an IP protocol 50 packet (in an event of its own).
func (g *Gateway) receiveRawESP(_, _ netip.Addr, pkt []byte) {
	if g.stopped {
		return
	}
	g.queueOpen(pkt)
	g.host.Kick()
}

// queueOpen charges the opening of an ESP packet; the packet is opened and
// injected into the stack when the CPU has done it.
func (g *Gateway) queueOpen(pkt []byte) {
	if len(pkt) > maxInner {
		g.stats.ESPDropped++
		return
	}
	spi, ok := esp.PeekSPI(pkt)
	var sa *esp.InboundSA
	if ok {
		sa = g.db.Lookup(spi)
	}
	if sa == nil {
		g.stats.ESPDropped++
		_, _, _ = g.db.Open(nil, pkt) // counted by the DB
		return
	}
	pkt = append([]byte(nil), pkt...)
	g.costs = append(g.costs, ESPCosts(sa.Suite(), len(pkt))...)
	g.actions = append(g.actions, func(time.Time) { g.open(pkt) })
}

// open decrypts an ESP packet and injects the inner packet.
func (g *Gateway) open(pkt []byte) {
	inner, _, err := g.db.OpenIf(nil, pkt, tunnelIfID)
	if err != nil {
		g.stats.ESPDropped++
		return
	}
	g.stats.ESPReceived++
	g.tun.Inject(inner)
	g.pollLimits()
}

// pollLimits reports the data plane's lifetime events to the engine.
func (g *Gateway) pollLimits() {
	kick := false
	for {
		ev, ok := g.db.PollEvent()
		if !ok {
			break
		}
		if err := g.eng.ChildSALimit(g.now(), ev.SPI, ev.Dir == esp.Inbound, ev.Kind == esp.EventHard); err == nil {
			kick = true
		}
	}
	if kick {
		g.node.Network().Scheduler().After(0, g.host.Kick)
	}
}
