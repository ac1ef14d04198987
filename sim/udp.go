package sim

import (
	"bytes"
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// UDPHandler receives a datagram: src is the sender, dst the local address
// and port it was sent to. payload belongs to the handler. Handlers run on
// the scheduler's goroutine, in a scheduler event of their own (never inside
// the stack's receive path), so they may send.
type UDPHandler func(src, dst netip.AddrPort, payload []byte)

// UDPOptions tune a UDP socket.
type UDPOptions struct {
	// DontFragment sets the IPv4 DF bit on outgoing datagrams (gVisor's
	// PMTUDiscoveryWant). Datagrams larger than the NIC MTU are still
	// fragmented by the sending stack, but routers with a smaller egress MTU
	// then drop them and answer with ICMP "fragmentation needed"
	// (RFC 1191) instead of fragmenting. Off by default, so routers
	// fragment.
	DontFragment bool
	// ReceiveBuffer is the socket receive buffer in bytes
	// (DefaultUDPReceiveBuffer when zero).
	ReceiveBuffer int
}

// DefaultUDPReceiveBuffer is the receive buffer of a simulated UDP socket:
// large enough that a burst arriving at one instant is not dropped before the
// handler drains it. Memory is only used while datagrams wait.
const DefaultUDPReceiveBuffer = 4 << 20

// UDPConn is a UDP socket on a node, built on a gVisor UDP endpoint with a
// waiter-queue callback: no goroutines, no blocking.
type UDPConn struct {
	node    *Node
	ep      tcpip.Endpoint
	wq      waiter.Queue
	entry   waiter.Entry
	local   netip.AddrPort
	handler UDPHandler
	pending bool
	closed  bool

	// Counters.
	Sent, Received, SendErrors uint64
}

// ListenUDP opens a UDP socket bound to addr (an unspecified address binds
// all addresses of that family; port 0 picks an ephemeral port) and calls h
// for each datagram received. h may be nil to discard input.
func (n *Node) ListenUDP(addr netip.AddrPort, h UDPHandler) (*UDPConn, error) {
	return n.ListenUDPWithOptions(addr, h, UDPOptions{})
}

// ListenUDPWithOptions is ListenUDP with options.
func (n *Node) ListenUDPWithOptions(addr netip.AddrPort, h UDPHandler, opts UDPOptions) (*UDPConn, error) {
	if !addr.Addr().IsValid() {
		return nil, fmt.Errorf("sim: node %s: listen UDP: invalid address %v", n.name, addr)
	}
	a := addr.Addr().Unmap()
	proto := protoOf(a)
	c := &UDPConn{node: n, handler: h}
	ep, terr := n.stack.NewEndpoint(udp.ProtocolNumber, proto, &c.wq)
	if terr != nil {
		return nil, fmt.Errorf("sim: node %s: UDP endpoint: %s", n.name, terr)
	}
	so := ep.SocketOptions()
	so.SetReceivePacketInfo(true)
	if proto != ipv4.ProtocolNumber {
		so.SetV6Only(true)
		so.SetIPv6ReceivePacketInfo(true)
	}
	rb := opts.ReceiveBuffer
	if rb <= 0 {
		rb = DefaultUDPReceiveBuffer
	}
	so.SetReceiveBufferSize(int64(rb), false)
	pmtud := tcpip.PMTUDiscoveryDont
	if opts.DontFragment {
		pmtud = tcpip.PMTUDiscoveryWant
	}
	if terr := ep.SetSockOptInt(tcpip.MTUDiscoverOption, int(pmtud)); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("sim: node %s: UDP PMTU option: %s", n.name, terr)
	}
	fa := tcpip.FullAddress{Port: addr.Port()}
	if !a.IsUnspecified() {
		fa.Addr = tcpip.AddrFromSlice(a.AsSlice())
	}
	if terr := ep.Bind(fa); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("sim: node %s: bind UDP %v: %s", n.name, addr, terr)
	}
	bound, terr := ep.GetLocalAddress()
	if terr != nil {
		ep.Close()
		return nil, fmt.Errorf("sim: node %s: UDP local address: %s", n.name, terr)
	}
	c.ep = ep
	c.local = netip.AddrPortFrom(a, bound.Port)
	c.entry.Init(c, waiter.ReadableEvents)
	c.wq.EventRegister(&c.entry)
	n.mu.Lock()
	n.udp = append(n.udp, c)
	n.mu.Unlock()
	return c, nil
}

// LocalAddr returns the bound address and port.
func (c *UDPConn) LocalAddr() netip.AddrPort { return c.local }

// SetHandler replaces the handler.
func (c *UDPConn) SetHandler(h UDPHandler) { c.handler = h }

// NotifyEvent implements waiter.EventListener. It runs inside the stack's
// receive path, so it only schedules a drain of the socket as the next event
// at the current instant.
func (c *UDPConn) NotifyEvent(waiter.EventMask) {
	if c.pending || c.closed {
		return
	}
	c.pending = true
	c.node.net.sched.After(0, c.drain)
}

// drain reads every queued datagram and hands it to the handler.
func (c *UDPConn) drain() {
	c.pending = false
	for !c.closed {
		var w bytes.Buffer
		res, terr := c.ep.Read(&w, tcpip.ReadOptions{NeedRemoteAddr: true})
		if terr != nil {
			return
		}
		c.Received++
		if c.handler == nil {
			continue
		}
		src := netip.AddrPortFrom(addrFrom(res.RemoteAddr.Addr), res.RemoteAddr.Port)
		dst := c.local
		cm := res.ControlMessages
		switch {
		case cm.HasIPPacketInfo:
			dst = netip.AddrPortFrom(addrFrom(cm.PacketInfo.DestinationAddr), c.local.Port())
		case cm.HasIPv6PacketInfo:
			dst = netip.AddrPortFrom(addrFrom(cm.IPv6PacketInfo.Addr), c.local.Port())
		}
		c.handler(src, dst, w.Bytes()[:res.Count:res.Count])
	}
}

// SendTo sends payload to dst. Datagrams larger than the NIC MTU are
// fragmented by the stack. The datagram enters the link model synchronously;
// the error reports local failures only (no route, too large, closed).
func (c *UDPConn) SendTo(dst netip.AddrPort, payload []byte) error {
	if c.closed {
		return fmt.Errorf("sim: node %s: UDP socket %v is closed", c.node.name, c.local)
	}
	d := dst.Addr().Unmap()
	if d.Is4() != c.local.Addr().Is4() {
		c.SendErrors++
		return fmt.Errorf("sim: node %s: UDP socket %v cannot send to %v (address family)", c.node.name, c.local, dst)
	}
	to := tcpip.FullAddress{Addr: tcpip.AddrFromSlice(d.AsSlice()), Port: dst.Port()}
	n, terr := c.ep.Write(bytes.NewReader(payload), tcpip.WriteOptions{To: &to, Atomic: true})
	if terr != nil {
		c.SendErrors++
		return fmt.Errorf("sim: node %s: UDP %v -> %v: %s", c.node.name, c.local, dst, terr)
	}
	if int(n) != len(payload) {
		c.SendErrors++
		return fmt.Errorf("sim: node %s: UDP %v -> %v: short write %d of %d", c.node.name, c.local, dst, n, len(payload))
	}
	c.Sent++
	return nil
}

// Close closes the socket.
func (c *UDPConn) Close() {
	if c.closed {
		return
	}
	c.closed = true
	c.wq.EventUnregister(&c.entry)
	c.ep.Close()
	n := c.node
	n.mu.Lock()
	for i, o := range n.udp {
		if o == c {
			n.udp = append(n.udp[:i], n.udp[i+1:]...)
			break
		}
	}
	n.mu.Unlock()
}

// SendUDP sends payload from src to dst through the socket bound to src (an
// exact bind or a wildcard bind on src's port). With src port 0 it uses an
// ephemeral socket of the node. It does not create sockets for other ports:
// listen first.
func (n *Node) SendUDP(src, dst netip.AddrPort, payload []byte) error {
	c, err := n.udpConnFor(src)
	if err != nil {
		return err
	}
	return c.SendTo(dst, payload)
}

func (n *Node) udpConnFor(src netip.AddrPort) (*UDPConn, error) {
	sa := src.Addr().Unmap()
	if src.Port() == 0 {
		proto := protoOf(sa)
		n.mu.Lock()
		c := n.ephem[proto]
		n.mu.Unlock()
		if c != nil {
			return c, nil
		}
		any := netip.IPv4Unspecified()
		if !sa.Is4() {
			any = netip.IPv6Unspecified()
		}
		c, err := n.ListenUDP(netip.AddrPortFrom(any, 0), nil)
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		if n.ephem == nil {
			n.ephem = make(map[tcpip.NetworkProtocolNumber]*UDPConn)
		}
		n.ephem[proto] = c
		n.mu.Unlock()
		return c, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var wild *UDPConn
	for _, c := range n.udp {
		if c.local.Port() != src.Port() || c.local.Addr().Is4() != sa.Is4() {
			continue
		}
		if c.local.Addr() == sa {
			return c, nil
		}
		if c.local.Addr().IsUnspecified() && wild == nil {
			wild = c
		}
	}
	if wild != nil {
		return wild, nil
	}
	return nil, fmt.Errorf("sim: node %s: no UDP socket bound to %v", n.name, src)
}

func addrFrom(a tcpip.Address) netip.Addr {
	ad, _ := netip.AddrFromSlice(a.AsSlice())
	return ad
}
