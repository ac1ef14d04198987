package sim

import (
	"fmt"
	mathrand "math/rand"
	"sort"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// NetworkConfig configures a simulated network.
type NetworkConfig struct {
	// Seed is the run seed; every random stream derives from it.
	Seed uint64
	// Epoch is the wall-clock time of virtual time zero (DefaultEpoch if
	// zero).
	Epoch time.Time
	// Realtime makes virtual time follow the wall clock (not deterministic).
	Realtime bool
}

// Network is a simulated network: a scheduler, nodes, middleboxes and the
// links between them. It is driven by the scheduler's Run methods.
type Network struct {
	seed  uint64
	sched *Scheduler

	nodes     map[string]*Node
	nodeList  []*Node
	links     map[string]*Link
	linkList  []*Link
	boxes     map[string]any
	observers []Observer
	// iptables is shared by every stack: the simulator installs no rules,
	// and an unmodified IPTables is only ever read (each stack would
	// otherwise hold its own copy of the default tables, about 8 KiB).
	iptables *stack.IPTables
}

// NewNetwork returns an empty network.
func NewNetwork(cfg NetworkConfig) *Network {
	s := NewScheduler(cfg.Epoch)
	if cfg.Realtime {
		s = NewRealtimeScheduler(cfg.Epoch)
	}
	return &Network{
		seed:     cfg.Seed,
		sched:    s,
		nodes:    make(map[string]*Node),
		links:    make(map[string]*Link),
		boxes:    make(map[string]any),
		iptables: stack.DefaultTables(s.Clock(), mathrand.New(newLockedSource(cfg.Seed, "iptables"))),
	}
}

// Seed returns the run seed.
func (n *Network) Seed() uint64 { return n.seed }

// Scheduler returns the network's scheduler.
func (n *Network) Scheduler() *Scheduler { return n.sched }

// checkName reserves a node or middlebox name.
func (n *Network) checkName(name string) error {
	if name == "" {
		return fmt.Errorf("sim: empty name")
	}
	if _, ok := n.nodes[name]; ok {
		return fmt.Errorf("sim: duplicate node %q", name)
	}
	if _, ok := n.boxes[name]; ok {
		return fmt.Errorf("sim: duplicate node %q", name)
	}
	return nil
}

// AddNode creates a node with its own gVisor stack.
func (n *Network) AddNode(cfg NodeConfig) (*Node, error) {
	if err := n.checkName(cfg.Name); err != nil {
		return nil, err
	}
	if err := cfg.CPU.Validate(); err != nil {
		return nil, fmt.Errorf("sim: node %s: %w", cfg.Name, err)
	}
	node := newNode(n, cfg)
	n.nodes[cfg.Name] = node
	n.nodeList = append(n.nodeList, node)
	return node, nil
}

// Node returns the node named name, or nil.
func (n *Network) Node(name string) *Node { return n.nodes[name] }

// Nodes returns the nodes in creation order.
func (n *Network) Nodes() []*Node { return append([]*Node(nil), n.nodeList...) }

// Link returns the link named name, or nil.
func (n *Network) Link(name string) *Link { return n.links[name] }

// Links returns the links in creation order.
func (n *Network) Links() []*Link { return append([]*Link(nil), n.linkList...) }

// AddObserver registers o on every link, present and future.
func (n *Network) AddObserver(o Observer) {
	n.observers = append(n.observers, o)
	for _, l := range n.linkList {
		l.AddObserver(o)
	}
}

// Connect joins ports a and b with a link. Both ports take the link's MTU.
// The link's random streams are seeded from the run seed and the link's name.
func (n *Network) Connect(a, b Port, cfg LinkConfig) (*Link, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("sim: link between %s and %s has no name", a.PortName(), b.PortName())
	}
	if _, ok := n.links[cfg.Name]; ok {
		return nil, fmt.Errorf("sim: duplicate link %q", cfg.Name)
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < MinMTU || cfg.MTU > MaxMTU {
		return nil, fmt.Errorf("sim: link %s: MTU %d outside [%d, %d]", cfg.Name, cfg.MTU, MinMTU, MaxMTU)
	}
	for _, im := range []*Impairments{&cfg.AB, &cfg.BA} {
		if err := im.Validate(); err != nil {
			return nil, fmt.Errorf("sim: link %s: %w", cfg.Name, err)
		}
	}
	l := &Link{name: cfg.Name, net: n, mtu: cfg.MTU, ports: [2]Port{a, b}, down: cfg.Down}
	l.dirs[AtoB] = linkDir{im: cfg.AB, rng: NewRand(n.seed, "link:"+cfg.Name+":a->b")}
	l.dirs[BtoA] = linkDir{im: cfg.BA, rng: NewRand(n.seed, "link:"+cfg.Name+":b->a")}
	if err := a.attach(l, 0); err != nil {
		return nil, err
	}
	if err := b.attach(l, 1); err != nil {
		a.detach()
		return nil, err
	}
	l.observers = append(l.observers, n.observers...)
	n.links[cfg.Name] = l
	n.linkList = append(n.linkList, l)
	return l, nil
}

// LinkStatsEntry is one direction of one link in a Network.LinkStats report.
type LinkStatsEntry struct {
	Link  string
	Dir   Direction
	Stats LinkStats
}

// LinkStats returns the counters of every link direction, sorted by link name
// and direction.
func (n *Network) LinkStats() []LinkStatsEntry {
	out := make([]LinkStatsEntry, 0, 2*len(n.linkList))
	for _, l := range n.linkList {
		out = append(out, LinkStatsEntry{l.name, AtoB, l.Stats(AtoB)}, LinkStatsEntry{l.name, BtoA, l.Stats(BtoA)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Link != out[j].Link {
			return out[i].Link < out[j].Link
		}
		return out[i].Dir < out[j].Dir
	})
	return out
}

// Run runs the simulation until virtual time t.
func (n *Network) Run(t time.Duration) { n.sched.RunUntil(t) }

// At schedules fn at virtual time t.
func (n *Network) At(t time.Duration, fn func()) *Event { return n.sched.At(t, fn) }

// Close releases the nodes' stacks.
func (n *Network) Close() {
	for _, node := range n.nodeList {
		node.close()
	}
}
