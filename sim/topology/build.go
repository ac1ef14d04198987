package topology

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/pqlab/pqlab/sim"
)

// BuildOptions tune Build.
type BuildOptions struct {
	// Epoch is the wall-clock time of virtual time zero (sim.DefaultEpoch
	// when zero).
	Epoch time.Time
	// Realtime runs on the wall clock (not deterministic), and gives hosts
	// TCP (sim.NodeConfig.TCP) for bulk transfers.
	Realtime bool
	// Seed overrides the topology's seed when non-zero.
	Seed uint64
}

// Built is a topology turned into a running network.
type Built struct {
	Topology *Topology
	Net      *sim.Network
	// Nodes holds the gVisor nodes (hosts, routers, gateways) by name.
	Nodes   map[string]*sim.Node
	NATs    map[string]*sim.NAT
	Fabrics map[string]*sim.Fabric
	Links   map[string]*sim.Link
	// Pingers and Flows are the traffic sources by source node; Sinks the
	// UDP sinks by "node:port". They exist after Start.
	Pingers map[string][]*sim.Pinger
	Flows   map[string][]*sim.UDPFlow
	Sinks   map[string]*sim.UDPSink
	// OnEvent receives the events the simulator does not carry out itself
	// (crash, restart, failover, config) at their time, and every other
	// event after the simulator has carried it out. Set it before Start.
	OnEvent func(Event)

	addrs    map[string][]netip.Prefix // node -> addresses, first NIC first
	nodeLks  map[string][]*sim.Link
	started  bool
	realtime bool
}

// Build creates the network of t: nodes with their NICs and addresses, NAT
// boxes, Internet fabrics, links, and static routes.
//
// Routes follow a breadth-first tree from the root (Topology.Root, else the
// first internet node, else the node with most links): every node has a
// default route towards the root and a route for each prefix (link subnet or
// LAN) in the subtree behind each of its other links. A NAT hides its inside:
// only its outside subnet is routed. Links that close a cycle are connected
// but carry no routes.
func Build(t *Topology, opts BuildOptions) (*Built, error) {
	seed := t.Seed
	if opts.Seed != 0 {
		seed = opts.Seed
	}
	b := &Built{
		Topology: t,
		Net:      sim.NewNetwork(sim.NetworkConfig{Seed: seed, Epoch: opts.Epoch, Realtime: opts.Realtime}),
		Nodes:    map[string]*sim.Node{},
		NATs:     map[string]*sim.NAT{},
		Fabrics:  map[string]*sim.Fabric{},
		Links:    map[string]*sim.Link{},
		Pingers:  map[string][]*sim.Pinger{},
		Flows:    map[string][]*sim.UDPFlow{},
		Sinks:    map[string]*sim.UDPSink{},
		addrs:    map[string][]netip.Prefix{},
		nodeLks:  map[string][]*sim.Link{},
		realtime: opts.Realtime,
	}
	if err := b.build(); err != nil {
		b.Net.Close()
		return nil, fmt.Errorf("topology: %s: %w", t.Path, err)
	}
	return b, nil
}

// end is one node's side of a link.
type end struct {
	port sim.Port
	nic  *sim.NIC        // gVisor ends
	fab  *sim.FabricPort // fabric ends
}

func (b *Built) build() error {
	t := b.Topology
	net := b.Net
	// Boxes first: NAT external addresses come from their outside links.
	for _, n := range t.Nodes {
		switch n.Kind {
		case KindInternet:
			f, err := net.AddFabric(n.Name)
			if err != nil {
				return err
			}
			b.Fabrics[n.Name] = f
		case KindNAT:
			// Created once the outside address is known, below.
		default:
			node, err := net.AddNode(sim.NodeConfig{
				Name:       n.Name,
				Forwarding: n.Kind != KindHost,
				IPv4Only:   !t.IPv6,
				TCP:        b.realtime && n.Kind == KindHost,
				CPU:        sim.CPUConfig{Cores: n.CPU.Cores, Speed: n.CPU.Speed, Table: t.Costs},
			})
			if err != nil {
				return err
			}
			b.Nodes[n.Name] = node
		}
	}
	for _, n := range t.Nodes {
		if n.Kind != KindNAT {
			continue
		}
		cfg := n.NAT.Config
		for _, lk := range t.Links {
			other, side := lk.B, 0
			if lk.B == n.Name {
				other, side = lk.A, 1
			} else if lk.A != n.Name {
				continue
			}
			if other != n.NAT.Inside {
				cfg.External = hostAddr(lk.Subnet, side)
			}
		}
		nat, err := net.AddNAT(cfg)
		if err != nil {
			return err
		}
		b.NATs[n.Name] = nat
	}

	// Links, NICs and addresses.
	ends := make([][2]end, len(t.Links))
	nicCount := map[string]int{}
	for i, lk := range t.Links {
		for side, name := range []string{lk.A, lk.B} {
			other := []string{lk.B, lk.A}[side]
			var e end
			switch {
			case b.Nodes[name] != nil:
				node := b.Nodes[name]
				nic, err := node.AddNIC(fmt.Sprintf("eth%d", nicCount[name]), 0)
				if err != nil {
					return err
				}
				nicCount[name]++
				e.port, e.nic = nic, nic
			case b.Fabrics[name] != nil:
				p, err := b.Fabrics[name].AddPort(lk.Name)
				if err != nil {
					return err
				}
				e.port, e.fab = p, p
			case b.NATs[name] != nil:
				if other == t.byName[name].NAT.Inside {
					e.port = b.NATs[name].Inside()
				} else {
					e.port = b.NATs[name].Outside()
				}
			}
			ends[i][side] = e
		}
		l, err := net.Connect(ends[i][0].port, ends[i][1].port, lk.Config)
		if err != nil {
			return err
		}
		b.Links[lk.Name] = l
		b.nodeLks[lk.A] = append(b.nodeLks[lk.A], l)
		b.nodeLks[lk.B] = append(b.nodeLks[lk.B], l)
		for side := 0; side < 2; side++ {
			nic := ends[i][side].nic
			if nic == nil {
				continue
			}
			name := []string{lk.A, lk.B}[side]
			for _, sub := range []netip.Prefix{lk.Subnet, lk.Subnet6} {
				if !sub.IsValid() {
					continue
				}
				p := netip.PrefixFrom(hostAddr(sub, side), sub.Bits())
				if err := nic.AddAddress(p); err != nil {
					return err
				}
				b.addrs[name] = append(b.addrs[name], p)
			}
		}
	}
	return b.route(ends)
}

// hostAddr returns the address of side 0 (first host) or 1 (second host)
// of a link subnet.
func hostAddr(sub netip.Prefix, side int) netip.Addr {
	a := sub.Addr().Next()
	if side == 1 {
		a = a.Next()
	}
	return a
}

// route installs the static routes (see Build).
func (b *Built) route(ends [][2]end) error {
	t := b.Topology
	type adj struct {
		link  int
		other string
		side  int // this node's side of the link
	}
	nbrs := map[string][]adj{}
	for i, lk := range t.Links {
		nbrs[lk.A] = append(nbrs[lk.A], adj{i, lk.B, 0})
		nbrs[lk.B] = append(nbrs[lk.B], adj{i, lk.A, 1})
	}
	root := t.Root
	if root == "" {
		for _, n := range t.Nodes {
			if n.Kind == KindInternet {
				root = n.Name
				break
			}
		}
	}
	if root == "" {
		best := -1
		for _, n := range t.Nodes {
			if d := len(nbrs[n.Name]); d > best {
				root, best = n.Name, d
			}
		}
	}
	// Breadth-first tree; nodes unreachable from the root start their own
	// trees.
	parent := map[string]adj{}
	seen := map[string]bool{}
	var order []string
	bfs := func(r string) {
		seen[r] = true
		queue := []string{r}
		for len(queue) > 0 {
			v := queue[0]
			queue = queue[1:]
			order = append(order, v)
			for _, a := range nbrs[v] {
				if !seen[a.other] {
					seen[a.other] = true
					parent[a.other] = adj{a.link, v, 1 - a.side}
					queue = append(queue, a.other)
				}
			}
		}
	}
	if root != "" {
		bfs(root)
	}
	for _, n := range t.Nodes {
		if !seen[n.Name] {
			bfs(n.Name)
		}
	}
	// Subtree prefixes, children before parents.
	type prefixes struct{ v4, v6 []netip.Prefix }
	sub := map[string]*prefixes{}
	for i := len(order) - 1; i >= 0; i-- {
		v := order[i]
		n := t.byName[v]
		p := &prefixes{}
		if n.LAN.IsValid() {
			p.v4 = append(p.v4, n.LAN)
		}
		if n.LAN6.IsValid() {
			p.v6 = append(p.v6, n.LAN6)
		}
		if pa, ok := parent[v]; ok {
			lk := t.Links[pa.link]
			if !lk.lan {
				p.v4 = append(p.v4, lk.Subnet)
			}
			if lk.Subnet6.IsValid() && !lk.lan {
				p.v6 = append(p.v6, lk.Subnet6)
			}
		}
		if n.Kind != KindNAT {
			for _, a := range nbrs[v] {
				if pc, ok := parent[a.other]; ok && pc.other == v && pc.link == a.link {
					c := sub[a.other]
					p.v4 = append(p.v4, c.v4...)
					p.v6 = append(p.v6, c.v6...)
				}
			}
		}
		sub[v] = p
	}
	v4Default := netip.MustParsePrefix("0.0.0.0/0")
	v6Default := netip.MustParsePrefix("::/0")
	for _, v := range order {
		n := t.byName[v]
		if n.Kind == KindNAT {
			continue
		}
		addRoute := func(p netip.Prefix, e end) error {
			switch {
			case e.nic != nil:
				return b.Nodes[v].AddRoute(p, e.nic.ID())
			case e.fab != nil:
				return b.Fabrics[v].AddRoute(p, e.fab)
			}
			return nil
		}
		if pa, ok := parent[v]; ok {
			e := ends[pa.link][pa.side]
			if err := addRoute(v4Default, e); err != nil {
				return err
			}
			if t.Links[pa.link].Subnet6.IsValid() {
				if err := addRoute(v6Default, e); err != nil {
					return err
				}
			}
		}
		for _, a := range nbrs[v] {
			pc, ok := parent[a.other]
			if !ok || pc.other != v || pc.link != a.link {
				continue
			}
			e := ends[a.link][a.side]
			c := sub[a.other]
			own := t.Links[a.link]
			for _, p := range c.v4 {
				if p == own.Subnet && e.nic != nil {
					continue // connected
				}
				if err := addRoute(p, e); err != nil {
					return err
				}
			}
			if !own.Subnet6.IsValid() {
				continue
			}
			for _, p := range c.v6 {
				if p == own.Subnet6 && e.nic != nil {
					continue
				}
				if err := addRoute(p, e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Addr returns the node's first IPv4 address (on its first link), or an
// invalid address for NATs and fabrics.
func (b *Built) Addr(node string) netip.Addr {
	for _, p := range b.addrs[node] {
		if p.Addr().Is4() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// Addr6 returns the node's first IPv6 address, if any.
func (b *Built) Addr6(node string) netip.Addr {
	for _, p := range b.addrs[node] {
		if p.Addr().Is6() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// Start creates the traffic sources and schedules the events. It is called
// by Run; call it directly to drive the scheduler yourself.
func (b *Built) Start() error {
	if b.started {
		return nil
	}
	b.started = true
	t := b.Topology
	for _, n := range t.Nodes {
		node := b.Nodes[n.Name]
		for _, tr := range n.Traffic {
			dst := b.Addr(tr.To)
			switch tr.Kind {
			case TrafficPing:
				p, err := node.Ping(dst, sim.PingOptions{Count: tr.Count, Interval: tr.Interval, Size: tr.Size, Start: tr.Start})
				if err != nil {
					return fmt.Errorf("topology: %w", err)
				}
				b.Pingers[n.Name] = append(b.Pingers[n.Name], p)
			case TrafficUDP:
				key := fmt.Sprintf("%s:%d", tr.To, tr.Port)
				if b.Sinks[key] == nil {
					k, err := b.Nodes[tr.To].ListenUDPSink(netip.AddrPortFrom(netip.IPv4Unspecified(), tr.Port))
					if err != nil {
						return fmt.Errorf("topology: %w", err)
					}
					b.Sinks[key] = k
				}
				f, err := node.StartUDPFlow(netip.AddrPortFrom(netip.IPv4Unspecified(), 0), netip.AddrPortFrom(dst, tr.Port),
					sim.UDPFlowOptions{Size: tr.Size, Interval: tr.Interval, Count: tr.Count, Start: tr.Start})
				if err != nil {
					return fmt.Errorf("topology: %w", err)
				}
				b.Flows[n.Name] = append(b.Flows[n.Name], f)
			}
		}
	}
	for _, ev := range t.Events {
		ev := ev
		b.Net.At(ev.At, func() { b.apply(ev) })
	}
	return nil
}

func (b *Built) apply(ev Event) {
	switch ev.Action {
	case EventLinkDown, EventLinkUp:
		b.Links[ev.Target].SetDown(ev.Action == EventLinkDown)
	case EventNodeDown, EventNodeUp:
		for _, l := range b.nodeLks[ev.Target] {
			l.SetDown(ev.Action == EventNodeDown)
		}
	}
	if b.OnEvent != nil {
		b.OnEvent(ev)
	}
}

// Run starts traffic and events and runs the simulation for the topology's
// duration.
func (b *Built) Run() error {
	if err := b.Start(); err != nil {
		return err
	}
	b.Net.Run(b.Topology.Duration)
	return nil
}

// Close releases the network.
func (b *Built) Close() { b.Net.Close() }
