package sim

import (
	"fmt"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Tunnel is a route-based tunnel interface on a node, like a VTI: packets
// the stack routes to it are handed to a callback (where the ESP data plane
// seals them), and decrypted packets are injected back with Inject. Routes
// to the remote protected subnets point at the tunnel's NIC ID.
type Tunnel struct {
	endpoint
	out func(pkt []byte)

	// Counters.
	TxPackets, RxPackets, RxMalformed atomic.Uint64
}

var _ stack.LinkEndpoint = (*Tunnel)(nil)

// AddTunnel creates a tunnel NIC with the given MTU (the inner MTU: the
// path MTU minus the ESP overhead). out receives each packet the stack
// sends through the tunnel; it owns the slice. out runs inside the stack's
// send path: it must not block or call back into the stack synchronously
// (schedule further work, such as CPU charges and the encrypted send, on the
// scheduler).
func (n *Node) AddTunnel(name string, mtu uint32, out func(pkt []byte)) (*Tunnel, error) {
	if mtu < MinMTU || mtu > MaxMTU {
		return nil, fmt.Errorf("sim: node %s: tunnel %s: MTU %d outside [%d, %d]", n.name, name, mtu, MinMTU, MaxMTU)
	}
	if out == nil {
		return nil, fmt.Errorf("sim: node %s: tunnel %s: nil output", n.name, name)
	}
	t := &Tunnel{endpoint: endpoint{node: n, name: name}, out: out}
	t.mtu.Store(mtu)
	id, err := n.AttachEndpoint(name, t)
	if err != nil {
		return nil, err
	}
	t.id = id
	// AttachEndpoint registered a placeholder; give it the tunnel's MTU so
	// IPv6 checks see it.
	n.mu.Lock()
	for _, nic := range n.nics {
		if nic.id == id {
			nic.mtu.Store(mtu)
		}
	}
	n.mu.Unlock()
	return t, nil
}

// ID returns the tunnel's gVisor NIC ID, for Node.AddRoute.
func (t *Tunnel) ID() tcpip.NICID { return t.id }

// Name returns the tunnel's name.
func (t *Tunnel) Name() string { return t.name }

// Inject hands a decrypted inner packet to the stack as if it had arrived on
// the tunnel; the stack then delivers or forwards it. Call it from the
// scheduler's goroutine (an event), not from inside the stack.
func (t *Tunnel) Inject(pkt []byte) {
	d := t.attached()
	if d == nil || len(pkt) == 0 {
		return
	}
	proto, ok := ipProto(pkt)
	if !ok {
		t.RxMalformed.Add(1)
		return
	}
	t.RxPackets.Add(1)
	t.inject(d, proto, pkt)
}

// WritePackets implements stack.LinkWriter.
func (t *Tunnel) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		b := packetBytes(pkt)
		t.TxPackets.Add(1)
		t.out(b)
		n++
	}
	return n, nil
}
