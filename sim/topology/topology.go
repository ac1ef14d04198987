// Package topology loads pqlab topology files (topologies/*.toml), validates
// them, and builds a running sim.Network from them.
//
// A topology lists nodes, groups of similar nodes (with per-member values
// drawn from distributions such as "uniform(10ms,120ms)"), links with their
// impairments (directly or from link profiles in models/links), events, a
// seed and a duration. Every error names the file, the line and the field
// ("topologies/x.toml:12: link[2].delay: bad duration"); unknown keys are
// errors.
package topology

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/pqlab/pqlab/sim"
)

// Kind is a node's role in the network.
type Kind int

// Node kinds.
const (
	// KindHost is an end host (no forwarding) on a gateway's LAN or alone.
	KindHost Kind = iota
	// KindRouter is a gVisor router: it forwards, fragments at the egress
	// MTU and sends ICMP errors.
	KindRouter
	// KindGateway is a router that runs the IKE engine and ESP (bound by the
	// gateway driver) and protects its LAN.
	KindGateway
	// KindNAT is a NAT box (sim.NAT) with an inside and an outside link.
	KindNAT
	// KindInternet is the scalable Internet fabric (sim.Fabric).
	KindInternet
)

var kindNames = []string{"host", "router", "gateway", "nat", "internet"}

// String returns the kind as written in topology files.
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

func parseKind(s string) (Kind, error) {
	if s == "" {
		return KindHost, nil
	}
	for i, n := range kindNames {
		if n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown kind %q (want host, router, gateway, nat or internet)", s)
}

// Role is a gateway's IKE role.
type Role int

// Roles.
const (
	RoleNone Role = iota
	RoleInitiator
	RoleResponder
	RoleBoth
)

var roleNames = []string{"", "initiator", "responder", "both"}

// String returns the role as written in topology files.
func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

func parseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if n == s {
			return Role(i), nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want initiator, responder or both)", s)
}

// Engine holds the per-gateway fields that the gateway driver (binding the
// IKE engine and ESP to a node) consumes. The simulator only checks them for
// form; their meaning belongs to the engine.
type Engine struct {
	// PeerModel names a behaviour profile in models/peers (e.g.
	// "strongswan-6"); loading checks that models/peers/<name>.toml exists.
	PeerModel string
	// Role is the IKE role.
	Role Role
	// Peers are the gateways this one sets up SAs with (node names).
	Peers []string
	// Proposals are IKE proposals, strongSwan syntax
	// ("aes256gcm16-prfsha384-x25519-ke1_mlkem768").
	Proposals []string
	// ESPProposals are Child SA proposals.
	ESPProposals []string
}

// TrafficKind selects a traffic source.
type TrafficKind int

// Traffic kinds.
const (
	TrafficPing TrafficKind = iota
	TrafficUDP
)

// String returns the kind as written in topology files.
func (k TrafficKind) String() string {
	switch k {
	case TrafficPing:
		return "ping"
	case TrafficUDP:
		return "udp"
	}
	return fmt.Sprintf("TrafficKind(%d)", int(k))
}

// Traffic is a traffic source on a node.
type Traffic struct {
	Kind TrafficKind
	// To is the destination node.
	To string
	// Port is the UDP destination port (udp only).
	Port uint16
	// Start is when the source starts; Interval the gap between packets.
	Start, Interval time.Duration
	// Count bounds the packets (0: until the end of the run).
	Count int
	// Size is the payload size.
	Size int

	field string // TOML path, for messages
}

// NATSpec configures a NAT node.
type NATSpec struct {
	// Inside is the neighbour on the inside link.
	Inside string
	Config sim.NATConfig
}

// CPUClass is a processor class from models/cpu/classes.toml.
type CPUClass struct {
	Name   string
	Cores  int
	Speed  float64
	Source string
}

// Node is a node of the topology (groups are expanded).
type Node struct {
	Name string
	Kind Kind
	// Group and Index identify a group member (Index from 1); Group is
	// empty for nodes declared alone.
	Group string
	Index int
	CPU   CPUClass
	// Engine holds the gateway fields.
	Engine Engine
	// LAN is the gateway's protected IPv4 prefix, where its hosts live (if
	// it has any); LAN6 the IPv6 one when the topology has IPv6.
	LAN, LAN6 netip.Prefix
	Traffic   []Traffic
	NAT       *NATSpec
	// Line is where the node (or its group) is declared.
	Line int
	// field is the TOML path of the declaration ("node[2]", "group[0]").
	field string
}

// Link is a point-to-point link of the topology.
type Link struct {
	Name    string
	A, B    string
	Profile string
	Config  sim.LinkConfig
	// Subnet is the IPv4 subnet of the link (assigned when not given);
	// Subnet6 the IPv6 one, if any.
	Subnet, Subnet6 netip.Prefix
	Line            int
	// lan marks a link between a node and one of its LAN hosts.
	lan bool
}

// EventAction is what an event does.
type EventAction int

// Event actions. LinkDown/LinkUp and NodeDown/NodeUp (all of a node's links)
// are carried out by the simulator; the others are handed to the gateway
// driver through Built.OnEvent.
const (
	EventLinkDown EventAction = iota
	EventLinkUp
	EventNodeDown
	EventNodeUp
	EventCrash
	EventRestart
	EventFailover
	EventConfig
)

var actionNames = []string{"link-down", "link-up", "node-down", "node-up", "crash", "restart", "failover", "config"}

// String returns the action as written in topology files.
func (a EventAction) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return fmt.Sprintf("EventAction(%d)", int(a))
	}
	return actionNames[a]
}

// Event is something that happens at a time.
type Event struct {
	At     time.Duration
	Action EventAction
	// Target is a link (link-*) or node name.
	Target string
	// Value is an action-specific argument (config).
	Value string
	Line  int
}

// Topology is a loaded and validated topology file.
type Topology struct {
	// Path is the file it was loaded from.
	Path        string
	Name        string
	Description string
	Seed        uint64
	Duration    time.Duration
	IPv6        bool
	// Root is the node routes are computed from (see Build).
	Root   string
	Nodes  []*Node
	Links  []*Link
	Events []Event
	// Costs is the CPU cost table (cpu_costs), if any.
	Costs *sim.CostTable

	byName map[string]*Node
}

// Node returns the node named name, or nil.
func (t *Topology) Node(name string) *Node { return t.byName[name] }

// Gateways returns the gateway nodes in declaration order.
func (t *Topology) Gateways() []*Node {
	var out []*Node
	for _, n := range t.Nodes {
		if n.Kind == KindGateway {
			out = append(out, n)
		}
	}
	return out
}
