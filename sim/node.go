package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// DefaultMTU is the MTU of a NIC and of a link when none is configured.
const DefaultMTU = 1500

// MinMTU is the smallest MTU a link or NIC accepts: the IPv4 minimum datagram
// size every host must accept (RFC 791, Section 3.1: 576 octets). IPv6 needs
// 1280 (RFC 8200, Section 5); a smaller link simply cannot carry IPv6.
const MinMTU = 576

// MaxMTU is the largest MTU accepted (the largest IPv4 datagram).
const MaxMTU = 65535

// MinIPv6MTU is the smallest MTU of a link that carries IPv6 (RFC 8200,
// Section 5). IPv6 addresses and routes are refused on NICs with a smaller
// MTU: gVisor disables IPv6 there and panics when forwarding to such a NIC.
const MinIPv6MTU = 1280

// NodeConfig configures a node: one gVisor network stack.
type NodeConfig struct {
	// Name is unique within the network.
	Name string
	// Forwarding enables IPv4 and IPv6 forwarding (a router or gateway):
	// gVisor then fragments at the egress MTU, or drops and sends ICMP
	// "fragmentation needed" / "packet too big" when DF is set, and sends
	// ICMP errors such as time exceeded.
	Forwarding bool
	// CPU describes the node's processor for the CPU model (zero: one core
	// at speed 1).
	CPU CPUConfig
	// IPv4Only leaves IPv6 out of the stack, saving a few KiB per node in
	// large IPv4-only topologies.
	IPv4Only bool
	// TCP adds gVisor's TCP to the stack (ListenTCPSink, StartTCPBulk).
	// gVisor runs TCP in goroutines of its own, so TCP belongs in real-time
	// runs only (NewRealtimeScheduler; see FACTS.md).
	TCP bool
}

// NodeStats are per-node packet counters kept by the simulator, over all the
// node's link NICs. gVisor's own counters are in Stack().Stats().
type NodeStats struct {
	// TxPackets and RxPackets count IP packets sent and received;
	// TxFragments and RxFragments those that were IP fragments (sent: the
	// fragments this node created or forwarded).
	TxPackets, TxBytes, TxFragments atomic.Uint64
	RxPackets, RxBytes, RxFragments atomic.Uint64
	// TxNoLink counts packets the stack wrote to a NIC not attached to a link.
	TxNoLink atomic.Uint64
	// RxMalformed counts received packets that were not IPv4 or IPv6.
	RxMalformed atomic.Uint64
}

// Node is a simulated host, router or gateway: a gVisor stack created with the
// scheduler's clock and seeded randomness, plus NICs attached to links.
type Node struct {
	name  string
	net   *Network
	stack *stack.Stack
	cpu   *CPU
	rand  *DeterministicReader

	ipv4Only   bool
	forwarding bool
	tcp        bool

	// delivering is non-zero while one of the node's NICs hands a packet
	// to the stack (see NIC.Capabilities).
	delivering atomic.Int32
	// inFrag describes the IPv4 fragment being delivered, if any (see
	// NIC.fixRefragment). Only used on the scheduler's goroutine.
	inFrag struct {
		active bool
		key    fragKey
		offset int
		length int
	}

	mu         sync.Mutex
	nics       []*NIC
	udp        []*UDPConn
	ephem      map[tcpip.NetworkProtocolNumber]*UDPConn
	espHandler IPHandler

	// Stats are the simulator's counters for this node.
	Stats NodeStats
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Network returns the network the node belongs to.
func (n *Node) Network() *Network { return n.net }

// Stack returns the node's gVisor stack, for callers that need more than the
// simulator's API (statistics, raw endpoints).
func (n *Node) Stack() *stack.Stack { return n.stack }

// CPU returns the node's CPU model.
func (n *Node) CPU() *CPU { return n.cpu }

// Rand returns the node's deterministic random stream, seeded from the run
// seed and the node's name. The IKE engine of a simulated gateway should draw
// its nonces, SPIs and key-exchange secrets from it.
func (n *Node) Rand() *DeterministicReader { return n.rand }

// NICs returns the node's NICs in creation order.
func (n *Node) NICs() []*NIC {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*NIC(nil), n.nics...)
}

// NIC returns the NIC named name, or nil.
func (n *Node) NIC(name string) *NIC {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, nic := range n.nics {
		if nic.name == name {
			return nic
		}
	}
	return nil
}

func newNode(net *Network, cfg NodeConfig) *Node {
	n := &Node{
		name: cfg.Name,
		net:  net,
		rand: NewDeterministicReader(net.seed, "node-rand:"+cfg.Name),
	}
	ndp := ipv6.NDPConfigurations{
		MaxRtrSolicitations: 0,
		HandleRAs:           ipv6.HandlingRAsDisabled,
	}
	// TCP only on request: its processor goroutines make a virtual-time
	// run non-deterministic (FACTS.md).
	espProto := func(*stack.Stack) stack.TransportProtocol { return &espProtocol{node: n} }
	transports := []stack.TransportProtocolFactory{udp.NewProtocol, icmp.NewProtocol4, espProto, icmp.NewProtocol6}
	netProtos := []stack.NetworkProtocolFactory{
		ipv4.NewProtocolWithOptions(ipv4.Options{IGMP: ipv4.IGMPOptions{Enabled: false}}),
	}
	if !cfg.IPv4Only {
		netProtos = append(netProtos, ipv6.NewProtocolWithOptions(ipv6.Options{
			NDPConfigs:       ndp,
			AutoGenLinkLocal: false,
			MLD:              ipv6.MLDOptions{Enabled: false},
			DADConfigs:       stack.DADConfigurations{DupAddrDetectTransmits: 0},
		}))
	} else {
		transports = transports[:3] // no ICMPv6
	}
	if cfg.TCP {
		transports = append(transports, tcp.NewProtocol)
	}
	n.stack = stack.New(stack.Options{
		NetworkProtocols:   netProtos,
		TransportProtocols: transports,
		Clock:              net.sched.Clock(),
		RandSource:         newLockedSource(net.seed, "node-stack-rand:"+cfg.Name),
		SecureRNG:          NewDeterministicReader(net.seed, "node-stack-securerng:"+cfg.Name),
		HandleLocal:        true,
		IPTables:           net.iptables,
	})
	if cfg.Forwarding {
		n.stack.SetForwardingDefaultAndAllNICs(ipv4.ProtocolNumber, true)
		if !cfg.IPv4Only {
			n.stack.SetForwardingDefaultAndAllNICs(ipv6.ProtocolNumber, true)
		}
	}
	n.ipv4Only = cfg.IPv4Only
	n.forwarding = cfg.Forwarding
	n.tcp = cfg.TCP
	n.cpu = NewCPU(net.sched, cfg.CPU)
	if cfg.TCP {
		if err := n.tuneTCP(); err != nil {
			panic(err) // the options are constants gVisor accepts
		}
	}
	return n
}

// AddNIC creates a NIC named name with the given MTU (DefaultMTU when 0).
// Connect it to a link with Network.Connect, which sets the NIC's MTU to the
// link's.
func (n *Node) AddNIC(name string, mtu uint32) (*NIC, error) {
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < MinMTU || mtu > MaxMTU {
		return nil, fmt.Errorf("sim: node %s: NIC %s: MTU %d outside [%d, %d]", n.name, name, mtu, MinMTU, MaxMTU)
	}
	n.mu.Lock()
	for _, nic := range n.nics {
		if nic.name == name {
			n.mu.Unlock()
			return nil, fmt.Errorf("sim: node %s: duplicate NIC %q", n.name, name)
		}
	}
	nic := &NIC{endpoint: endpoint{node: n, name: name, id: tcpip.NICID(len(n.nics) + 1)}}
	nic.mtu.Store(mtu)
	n.nics = append(n.nics, nic)
	n.mu.Unlock()
	if err := n.stack.CreateNICWithOptions(nic.id, nic, stack.NICOptions{Name: name}); err != nil {
		return nil, fmt.Errorf("sim: node %s: create NIC %s: %s", n.name, name, err)
	}
	return nic, nil
}

// AttachEndpoint adds a NIC backed by a caller-provided link endpoint, such as
// an ESP tunnel interface, and returns its gVisor NIC ID. The endpoint's
// WritePackets is called on the scheduler's goroutine (or a TCP processor
// goroutine) from inside the stack and must not block or call back into the
// stack synchronously; schedule work with the scheduler instead.
func (n *Node) AttachEndpoint(name string, ep stack.LinkEndpoint) (tcpip.NICID, error) {
	n.mu.Lock()
	id := tcpip.NICID(len(n.nics) + 1)
	// Reserve the ID with a placeholder NIC that no link can use.
	n.nics = append(n.nics, &NIC{endpoint: endpoint{node: n, name: name, id: id}, external: true})
	n.mu.Unlock()
	if err := n.stack.CreateNICWithOptions(id, ep, stack.NICOptions{Name: name}); err != nil {
		return 0, fmt.Errorf("sim: node %s: attach endpoint %s: %s", n.name, name, err)
	}
	return id, nil
}

// AddAddress assigns prefix's address to the NIC and adds the connected route
// for prefix.
func (nic *NIC) AddAddress(prefix netip.Prefix) error {
	return nic.node.AddAddress(nic.id, prefix)
}

// AddAddress assigns prefix's address to the NIC with gVisor ID id and adds
// the connected route for prefix.
func (n *Node) AddAddress(id tcpip.NICID, prefix netip.Prefix) error {
	if !prefix.IsValid() {
		return fmt.Errorf("sim: node %s: invalid prefix %v", n.name, prefix)
	}
	proto := protoOf(prefix.Addr())
	if err := n.markIPv6(id, proto); err != nil {
		return err
	}
	pa := tcpip.ProtocolAddress{
		Protocol: proto,
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpip.AddrFromSlice(prefix.Addr().AsSlice()),
			PrefixLen: prefix.Bits(),
		},
	}
	if err := n.stack.AddProtocolAddress(id, pa, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("sim: node %s: add address %v: %s", n.name, prefix, err)
	}
	n.stack.AddRoute(tcpip.Route{Destination: pa.AddressWithPrefix.Subnet(), NIC: id})
	n.mu.Lock()
	for _, nic := range n.nics {
		if nic.id == id {
			nic.addrs = append(nic.addrs, prefix)
		}
	}
	n.mu.Unlock()
	return nil
}

// AddRoute routes dst through the NIC with gVisor ID id (links are
// point-to-point, so no next-hop address is needed). A zero-length prefix is a
// default route.
func (n *Node) AddRoute(dst netip.Prefix, id tcpip.NICID) error {
	if !dst.IsValid() {
		return fmt.Errorf("sim: node %s: invalid route prefix %v", n.name, dst)
	}
	if err := n.markIPv6(id, protoOf(dst.Addr())); err != nil {
		return err
	}
	dst = dst.Masked()
	sub, err := tcpip.NewSubnet(tcpip.AddrFromSlice(dst.Addr().AsSlice()), prefixMask(dst))
	if err != nil {
		return fmt.Errorf("sim: node %s: route %v: %s", n.name, dst, err)
	}
	n.stack.AddRoute(tcpip.Route{Destination: sub, NIC: id})
	return nil
}

// markIPv6 records that NIC id carries IPv6, which needs MinIPv6MTU.
func (n *Node) markIPv6(id tcpip.NICID, proto tcpip.NetworkProtocolNumber) error {
	if proto != ipv6.ProtocolNumber {
		return nil
	}
	if n.ipv4Only {
		return fmt.Errorf("sim: node %s is IPv4-only", n.name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, nic := range n.nics {
		if nic.id != id || nic.external {
			continue
		}
		if m := nic.mtu.Load(); m < MinIPv6MTU {
			return fmt.Errorf("sim: node %s: NIC %s: IPv6 needs an MTU of at least %d, not %d (RFC 8200, Section 5)", n.name, nic.name, MinIPv6MTU, m)
		}
		nic.v6 = true
	}
	return nil
}

// RemoveRoutes removes every route to exactly dst and returns how many.
func (n *Node) RemoveRoutes(dst netip.Prefix) int {
	mask := prefixMask(dst.Masked())
	id := tcpip.AddrFromSlice(dst.Masked().Addr().AsSlice())
	return n.stack.RemoveRoutes(func(r tcpip.Route) bool {
		return r.Destination.ID() == id && r.Destination.Mask() == mask
	})
}

// Addresses returns the addresses assigned through the simulator, NIC by NIC.
func (n *Node) Addresses() []netip.Prefix {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []netip.Prefix
	for _, nic := range n.nics {
		out = append(out, nic.addrs...)
	}
	return out
}

// Addr returns the node's first address of the given family (IPv4 when v6 is
// false), or an invalid address.
func (n *Node) Addr(v6 bool) netip.Addr {
	for _, p := range n.Addresses() {
		if p.Addr().Is6() == v6 {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

func prefixMask(p netip.Prefix) tcpip.AddressMask {
	n := p.Addr().BitLen() / 8
	b := make([]byte, n)
	bits := p.Bits()
	for i := range b {
		switch {
		case bits >= 8:
			b[i] = 0xff
			bits -= 8
		case bits > 0:
			b[i] = ^byte(0xff >> bits)
			bits = 0
		}
	}
	return tcpip.MaskFromBytes(b)
}

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() || a.Is4In6() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

// NIC is a network interface of a node: a gVisor stack.LinkEndpoint whose
// outbound packets go onto the attached link. Packets carry no link-layer
// header. Writes never block: a packet either enters the link's model (where it
// may be queued, delayed or dropped) or is counted as dropped.
type NIC struct {
	endpoint // mu also guards link, side and addrs
	external bool
	v6       bool // carries IPv6 addresses or routes

	link  *Link
	side  int
	addrs []netip.Prefix
}

// endpoint is what NIC and Tunnel share: their node, name and gVisor NIC
// ID, and the stack.NetworkLinkEndpoint methods of a point-to-point link
// without link-layer header.
type endpoint struct {
	node *Node
	name string
	id   tcpip.NICID
	mtu  atomic.Uint32

	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
}

// attached returns the stack's dispatcher, nil before the stack attaches.
func (e *endpoint) attached() stack.NetworkDispatcher {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dispatcher
}

// inject hands the IP packet pkt to the stack through d, as arriving on e.
// It runs on the scheduler's goroutine.
func (e *endpoint) inject(d stack.NetworkDispatcher, proto tcpip.NetworkProtocolNumber, pkt []byte) {
	pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
	e.node.delivering.Add(1)
	d.DeliverNetworkPacket(proto, pb)
	e.node.delivering.Add(-1)
	pb.DecRef()
}

// ipProto returns the network protocol of an IP packet by its version.
func ipProto(pkt []byte) (tcpip.NetworkProtocolNumber, bool) {
	switch header.IPVersion(pkt) {
	case header.IPv4Version:
		return ipv4.ProtocolNumber, true
	case header.IPv6Version:
		return ipv6.ProtocolNumber, true
	}
	return 0, false
}

var _ stack.LinkEndpoint = (*NIC)(nil)
var _ Port = (*NIC)(nil)

// Name returns the NIC's name.
func (nic *NIC) Name() string { return nic.name }

// ID returns the gVisor NIC ID.
func (nic *NIC) ID() tcpip.NICID { return nic.id }

// Node returns the node the NIC belongs to.
func (nic *NIC) Node() *Node { return nic.node }

// Link returns the attached link, or nil.
func (nic *NIC) Link() *Link {
	nic.mu.RLock()
	defer nic.mu.RUnlock()
	return nic.link
}

// PortName implements Port.
func (nic *NIC) PortName() string { return nic.node.name + "/" + nic.name }

func (nic *NIC) attach(l *Link, side int) error {
	if nic.external {
		return fmt.Errorf("sim: %s is an attached endpoint, not a link NIC", nic.PortName())
	}
	nic.mu.Lock()
	defer nic.mu.Unlock()
	if nic.link != nil {
		return fmt.Errorf("sim: %s is already attached to link %s", nic.PortName(), nic.link.name)
	}
	nic.node.mu.Lock()
	v6 := nic.v6
	nic.node.mu.Unlock()
	if v6 && l.mtu < MinIPv6MTU {
		return fmt.Errorf("sim: %s carries IPv6 and link %s has MTU %d < %d (RFC 8200, Section 5)", nic.PortName(), l.name, l.mtu, MinIPv6MTU)
	}
	nic.link = l
	nic.side = side
	nic.mtu.Store(l.mtu)
	return nil
}

func (nic *NIC) detach() {
	nic.mu.Lock()
	nic.link = nil
	nic.mu.Unlock()
}

// deliver implements Port: it hands an IP packet from the link to the stack.
// It runs on the scheduler's goroutine.
func (nic *NIC) deliver(pkt []byte) {
	d := nic.attached()
	if d == nil || len(pkt) == 0 {
		return
	}
	proto, ok := ipProto(pkt)
	if !ok {
		nic.node.Stats.RxMalformed.Add(1)
		return
	}
	node := nic.node
	node.Stats.RxPackets.Add(1)
	node.Stats.RxBytes.Add(uint64(len(pkt)))
	if pi, ok := ParsePacket(pkt); ok && pi.Fragment {
		node.Stats.RxFragments.Add(1)
		if proto == ipv4.ProtocolNumber && pi.FragOffset > 0 {
			node.inFrag.active = true
			node.inFrag.key = fragKey{pi.Src, pi.Dst, pi.FragID, pi.Protocol}
			node.inFrag.offset = pi.FragOffset
			node.inFrag.length = len(pkt)
		}
	}
	nic.inject(d, proto, pkt)
	node.inFrag.active = false
}

// WritePackets implements stack.LinkWriter. The stack keeps its reference to
// the packets; the NIC copies each one out and hands the copy to the link.
func (nic *NIC) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	nic.mu.RLock()
	l, side := nic.link, nic.side
	nic.mu.RUnlock()
	n := 0
	for _, pkt := range pkts.AsSlice() {
		b := packetBytes(pkt)
		n++
		if nic.node.forwarding && nic.node.delivering.Load() > 0 && nic.node.inFrag.active {
			nic.fixRefragment(b)
		}
		st := &nic.node.Stats
		st.TxPackets.Add(1)
		st.TxBytes.Add(uint64(len(b)))
		if pi, ok := ParsePacket(b); ok && pi.Fragment {
			st.TxFragments.Add(1)
		}
		if l == nil {
			nic.node.Stats.TxNoLink.Add(1)
			continue
		}
		l.transmit(side, b)
	}
	return n, nil
}

// packetBytes copies a packet out of the stack into one new slice (straight
// from its views: no intermediate pooled copy).
func packetBytes(pkt *stack.PacketBuffer) []byte {
	b := make([]byte, 0, pkt.Size())
	for _, s := range pkt.AsSlices() {
		b = append(b, s...)
	}
	return b
}

// fixRefragment corrects a piece of a forwarded IPv4 fragment that the stack
// fragmented again at a smaller egress MTU. gVisor numbers the pieces' offsets
// from zero, as if the fragment were a whole datagram; RFC 791 (Section 3.2,
// fragmentation procedure) offsets them from the original fragment's offset.
// (The More-Fragments flag is already carried over.) It runs while the node
// handles the fragment, so only the node's own forwarding is affected.
func (nic *NIC) fixRefragment(b []byte) {
	in := &nic.node.inFrag
	if in.length <= int(nic.MTU()) {
		return // forwarded whole, not fragmented again
	}
	pi, ok := ParsePacket(b)
	if !ok || pi.Version != 4 || (fragKey{pi.Src, pi.Dst, pi.FragID, pi.Protocol}) != in.key {
		return
	}
	off := pi.FragOffset + in.offset
	if off > 0x1fff*8 {
		return
	}
	ff := binary.BigEndian.Uint16(b[6:8])
	binary.BigEndian.PutUint16(b[6:8], ff&^0x1fff|uint16(off/8))
	setIPv4Checksum(b[:pi.HeaderLen])
}

// setIPv4Checksum recomputes the header checksum (RFC 791, Section 3.1).
func setIPv4Checksum(h []byte) {
	h[10], h[11] = 0, 0
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:12], ^uint16(sum))
}

// close destroys the node's stack (and its TCP goroutines, if any).
func (n *Node) close() {
	n.mu.Lock()
	conns := append([]*UDPConn(nil), n.udp...)
	n.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	n.stack.Destroy()
}

// MTU implements stack.NetworkLinkEndpoint.
func (e *endpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.NetworkLinkEndpoint.
func (e *endpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.NetworkLinkEndpoint: there is no
// link-layer header.
func (*endpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.NetworkLinkEndpoint: point-to-point links have
// no link address.
func (*endpoint) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.NetworkLinkEndpoint; it is ignored.
func (*endpoint) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.NetworkLinkEndpoint: no link resolution and
// no offloads, so stacks compute and verify every checksum, except that
// while the node is handling a received packet the NIC or tunnel claims transmit
// checksum offload. Packets written then are forwarded packets (UDP handlers
// run in events of their own; ICMP always computes its checksum), and gVisor
// recomputes the transport checksum of a forwarded packet when the egress NIC
// has no offload, treating each IP fragment as a whole datagram: that would
// corrupt the first fragment's UDP checksum and overwrite payload bytes of the
// others; a router leaves transport headers alone. Only forwarding nodes
// claim it: a host's TCP sends from gVisor's goroutines while the host may
// be handling a received packet, and its segments need their checksums.
func (e *endpoint) Capabilities() stack.LinkEndpointCapabilities {
	if e.node.forwarding && e.node.delivering.Load() > 0 {
		return stack.CapabilityTXChecksumOffload
	}
	return stack.CapabilityNone
}

// Attach implements stack.NetworkLinkEndpoint.
func (e *endpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.dispatcher = d
	e.mu.Unlock()
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (e *endpoint) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dispatcher != nil
}

// Wait implements stack.NetworkLinkEndpoint: the NIC owns no goroutines.
func (*endpoint) Wait() {}

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (*endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.NetworkLinkEndpoint; there is no header.
func (*endpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint; there is no header.
func (*endpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.NetworkLinkEndpoint.
func (*endpoint) Close() {}

// SetOnCloseAction implements stack.NetworkLinkEndpoint.
func (*endpoint) SetOnCloseAction(func()) {}
