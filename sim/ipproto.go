package sim

import (
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/waiter"
)

// IPProtoESP is the IP protocol number of ESP (RFC 4303 Section 2), which
// gateways send directly over IP when no NAT is in the way.
const IPProtoESP = 50

// espMinSize is the smallest ESP packet the stack hands on: SPI and
// sequence number (RFC 4303 Section 2).
const espMinSize = 8

// IPHandler receives the payload of an IP packet of a registered protocol
// addressed to the node (reassembled if it arrived in fragments): src is
// the sender, dst the local address. It runs in an event of its own and
// owns payload.
type IPHandler func(src, dst netip.Addr, payload []byte)

// SetIPHandler directs the packets of IP protocol proto addressed to the
// node to h (nil: answer them with ICMP unreachable, the default). Only
// IPProtoESP is registered in the nodes' stacks.
func (n *Node) SetIPHandler(proto uint8, h IPHandler) error {
	if proto != IPProtoESP {
		return fmt.Errorf("sim: node %s: IP protocol %d is not registered (only ESP is)", n.name, proto)
	}
	n.mu.Lock()
	n.espHandler = h
	n.mu.Unlock()
	return nil
}

// SendIP sends payload from src to dst as the payload of an IP packet of
// protocol proto, routed by the node's stack (fragmented at the egress MTU
// when larger). It is how a gateway sends ESP without UDP encapsulation.
func (n *Node) SendIP(src, dst netip.Addr, proto uint8, payload []byte) error {
	src, dst = src.Unmap(), dst.Unmap()
	if !dst.IsValid() || (src.IsValid() && src.Is4() != dst.Is4()) {
		return fmt.Errorf("sim: node %s: send IP %v -> %v: bad addresses", n.name, src, dst)
	}
	var local tcpip.Address
	if src.IsValid() {
		local = tcpip.AddrFromSlice(src.AsSlice())
	}
	r, terr := n.stack.FindRoute(0, local, tcpip.AddrFromSlice(dst.AsSlice()), protoOf(dst), false)
	if terr != nil {
		return fmt.Errorf("sim: node %s: send IP %v -> %v: %s", n.name, src, dst, terr)
	}
	defer r.Release()
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: int(r.MaxHeaderLength()),
		Payload:            buffer.MakeWithData(payload),
	})
	defer pkt.DecRef()
	pkt.TransportProtocolNumber = tcpip.TransportProtocolNumber(proto)
	if terr := r.WritePacket(stack.NetworkHeaderParams{Protocol: tcpip.TransportProtocolNumber(proto), TTL: r.DefaultTTL()}, pkt); terr != nil {
		return fmt.Errorf("sim: node %s: send IP %v -> %v: %s", n.name, src, dst, terr)
	}
	return nil
}

// espProtocol registers ESP with a node's stack so that ESP packets for
// the node (reassembled by the stack when fragmented) reach the handler
// set with SetIPHandler. It has no endpoints.
type espProtocol struct{ node *Node }

var _ stack.TransportProtocol = (*espProtocol)(nil)

func (p *espProtocol) Number() tcpip.TransportProtocolNumber { return IPProtoESP }

func (p *espProtocol) NewEndpoint(tcpip.NetworkProtocolNumber, *waiter.Queue) (tcpip.Endpoint, tcpip.Error) {
	return nil, &tcpip.ErrNotSupported{}
}

func (p *espProtocol) NewRawEndpoint(tcpip.NetworkProtocolNumber, *waiter.Queue) (tcpip.Endpoint, tcpip.Error) {
	return nil, &tcpip.ErrNotSupported{}
}

func (p *espProtocol) MinimumPacketSize() int { return espMinSize }

func (p *espProtocol) ParsePorts([]byte) (uint16, uint16, tcpip.Error) { return 0, 0, nil }

// HandleUnknownDestinationPacket receives every ESP packet for the node
// (there are no endpoints) and hands a copy to the handler in an event.
func (p *espProtocol) HandleUnknownDestinationPacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) stack.UnknownDestinationPacketDisposition {
	n := p.node
	n.mu.Lock()
	h := n.espHandler
	n.mu.Unlock()
	if h == nil {
		return stack.UnknownDestinationPacketUnhandled
	}
	th := pkt.TransportHeader().Slice()
	data := pkt.Data().AsRange().ToSlice()
	b := make([]byte, 0, len(th)+len(data))
	b = append(append(b, th...), data...)
	src, dst := addrFrom(id.RemoteAddress), addrFrom(id.LocalAddress)
	n.net.sched.After(0, func() { h(src, dst, b) })
	return stack.UnknownDestinationPacketHandled
}

func (p *espProtocol) SetOption(tcpip.SettableTransportProtocolOption) tcpip.Error {
	return &tcpip.ErrUnknownProtocolOption{}
}

func (p *espProtocol) Option(tcpip.GettableTransportProtocolOption) tcpip.Error {
	return &tcpip.ErrUnknownProtocolOption{}
}

func (p *espProtocol) Close()   {}
func (p *espProtocol) Wait()    {}
func (p *espProtocol) Pause()   {}
func (p *espProtocol) Resume()  {}
func (p *espProtocol) Restore() {}

// Parse takes the SPI and sequence number as the transport header.
func (p *espProtocol) Parse(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.TransportHeader().Consume(espMinSize)
	return ok
}
