// Package tunnel is the route-based IPsec tunnel interface of pqlab: a
// gVisor link endpoint, like a Linux XFRM interface, a Cisco VTI or a
// FortiOS route-based tunnel, that a gateway's stack routes remote
// prefixes into.
//
// Outbound (the stack calls WritePackets):
//
//  1. the IP packet is copied out of gVisor's views straight into the
//     payload position of a pooled ESP buffer;
//  2. the interface's outbound SA set (esp.OutboundSet of its IfID) picks
//     the SA whose selectors cover the packet, which seals it in place;
//  3. the ESP packet goes to the caller's Output function, which sends it
//     from the gateway's outer address (UDP/4500 or raw, see
//     esp.OutboundSA.Path).
//
// Inbound (the caller hands received ESP to Deliver or Demux.Deliver):
// the packet is opened by the DB into a gVisor view (SPI lookup, replay
// window, ICV, decryption, selector check in esp) and injected into the
// stack, which forwards it to the LAN.
package tunnel

import (
	"errors"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/pqlab/pqlab/esp"
)

// DefaultMTU is the interface MTU when Config.MTU is zero: a 1500-octet
// outer path minus outer IPv4 (20) and UDP (8) headers and the largest
// overhead of the AEAD suites (8 header + 8 IV + 3 padding + 2 trailer +
// 16 ICV), rounded down to a multiple of 8.
const DefaultMTU = 1432

// maxHeader is the largest ESP header plus IV (AES-CBC); payloads start
// after it and the outer headroom.
const (
	maxHeader = esp.HeaderSize + esp.CBCIVSize
	payloadAt = esp.OuterHeadroom + maxHeader
	tailRoom  = 128 // padding, trailer, ICV, AEAD scratch
)

// Output sends one sealed ESP packet of sa toward the peer. The packet is
// buf[off:]; buf[:off], at least esp.OuterHeadroom octets, is free for the
// outer headers (esp.PrependUDP, esp.PrependRawESP). buf is valid only
// during the call. Output runs on the goroutine that wrote into the
// interface and must not call back into it.
type Output func(sa *esp.OutboundSA, buf []byte, off int)

// Config configures an Interface.
type Config struct {
	DB     *esp.DB
	IfID   uint32 // selects the DB's outbound SA set and the inbound SAs accepted
	MTU    uint32 // inner MTU; 0 means DefaultMTU
	Output Output
}

// Stats counts the interface's traffic (the SAs and the DB count the
// details, drops by reason included).
type Stats struct {
	TxPackets, TxDrops uint64 // sealed and handed to Output / refused
	RxPackets, RxDrops uint64 // injected into the stack / refused
}

// Interface is a route-based tunnel interface. It implements
// stack.LinkEndpoint; it is safe for concurrent use.
type Interface struct {
	db     *esp.DB
	ifID   uint32
	out    *esp.OutboundSet
	output Output
	hdr    atomic.Int32 // header length of the SA used last: where payloads go

	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
	mtu        uint32
	onClose    func()

	txPackets, txDrops atomic.Uint64
	rxPackets, rxDrops atomic.Uint64

	bufs sync.Pool
}

var _ stack.LinkEndpoint = (*Interface)(nil)

// New returns an interface for cfg.IfID's SAs in cfg.DB.
func New(cfg Config) (*Interface, error) {
	if cfg.DB == nil || cfg.Output == nil {
		return nil, errors.New("tunnel: Config needs DB and Output")
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	i := &Interface{db: cfg.DB, ifID: cfg.IfID, out: cfg.DB.Outbound(cfg.IfID), output: cfg.Output, mtu: mtu}
	i.hdr.Store(esp.HeaderSize + esp.AEADIVSize)
	return i, nil
}

// Stats returns a snapshot of the interface's counters.
func (i *Interface) Stats() Stats {
	return Stats{TxPackets: i.txPackets.Load(), TxDrops: i.txDrops.Load(),
		RxPackets: i.rxPackets.Load(), RxDrops: i.rxDrops.Load()}
}

// IfID returns the interface ID.
func (i *Interface) IfID() uint32 { return i.ifID }

// getBuf returns a pooled buffer with room for the outer headers, the ESP
// header, an n-octet packet, the worst-case padding, trailer and ICV, and
// AEAD scratch. Buffers are sized for the MTU so that they recycle.
func (i *Interface) getBuf(n int) *[]byte {
	need := payloadAt + n + tailRoom
	if p, _ := i.bufs.Get().(*[]byte); p != nil {
		if cap(*p) >= need {
			return p
		}
		i.bufs.Put(p)
	}
	size := max(need, payloadAt+int(i.MTU())+tailRoom)
	b := make([]byte, size)
	return &b
}

// WritePackets seals and sends the packets the stack routed into the
// interface (stack.LinkWriter). It does not take references on pkts.
func (i *Interface) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		i.writePacket(pkt)
		n++
	}
	return n, nil
}

func (i *Interface) writePacket(pkt *stack.PacketBuffer) {
	size := pkt.Size()
	bp := i.getBuf(size)
	defer i.bufs.Put(bp)
	buf := (*bp)[:cap(*bp)]

	// Gather the packet where the SA used last wants its payload, so
	// that sealing needs no further copy.
	hdr := int(i.hdr.Load())
	off := payloadAt
	vl, skip := pkt.AsViewList()
	w := off
	for v := vl.Front(); v != nil; v = v.Next() {
		s := v.AsSlice()
		if skip >= len(s) {
			skip -= len(s)
			continue
		}
		w += copy(buf[w:], s[skip:])
		skip = 0
	}
	inner := buf[off:w]
	sealed, sa, err := i.out.SealTunnel(buf[off-hdr:off-hdr], inner)
	if err != nil {
		i.txDrops.Add(1)
		return
	}
	if h := int32(sa.HeaderLen()); h != int32(hdr) {
		i.hdr.Store(h)
	}
	i.txPackets.Add(1)
	i.output(sa, buf[:off-hdr+len(sealed)], off-hdr)
}

// Deliver opens a received ESP packet (an UDP/4500 payload classified as
// esp.UDPESP, or the payload of an IP protocol 50 packet) with this
// interface's inbound SAs and injects the inner packet into the stack. pkt
// is not retained or modified. The error is an esp.DropReason (counted in
// the DB or the SA) or a delivery failure.
func (i *Interface) Deliver(pkt []byte) error {
	v := buffer.NewViewSize(len(pkt))
	inner, _, err := i.db.OpenIf(v.AsSlice()[:0], pkt, i.ifID)
	if err != nil {
		v.Release()
		i.rxDrops.Add(1)
		return err
	}
	v.CapLength(len(inner))
	return i.inject(v, inner[0]>>4)
}

var errNotAttached = errors.New("tunnel: interface not attached to a stack")

// inject hands a decrypted inner packet (owned view v) to the stack.
func (i *Interface) inject(v *buffer.View, version byte) error {
	i.mu.RLock()
	d := i.dispatcher
	i.mu.RUnlock()
	if d == nil {
		v.Release()
		i.rxDrops.Add(1)
		return errNotAttached
	}
	proto := header.IPv4ProtocolNumber
	if version == 6 {
		proto = header.IPv6ProtocolNumber
	}
	p := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
	d.DeliverNetworkPacket(proto, p)
	p.DecRef()
	i.rxPackets.Add(1)
	return nil
}

// MTU implements stack.LinkEndpoint.
func (i *Interface) MTU() uint32 {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.mtu
}

// SetMTU implements stack.LinkEndpoint.
func (i *Interface) SetMTU(mtu uint32) {
	i.mu.Lock()
	i.mtu = mtu
	i.mu.Unlock()
}

// MaxHeaderLength implements stack.LinkEndpoint: the interface copies
// packets out, so it needs no reserved header room.
func (*Interface) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint; a tunnel has none.
func (*Interface) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.LinkEndpoint; it is ignored.
func (*Interface) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint: a point-to-point link with no
// neighbour resolution and no offloads.
func (*Interface) Capabilities() stack.LinkEndpointCapabilities { return 0 }

// Attach implements stack.LinkEndpoint.
func (i *Interface) Attach(d stack.NetworkDispatcher) {
	i.mu.Lock()
	i.dispatcher = d
	i.mu.Unlock()
}

// IsAttached implements stack.LinkEndpoint.
func (i *Interface) IsAttached() bool {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.dispatcher != nil
}

// Wait implements stack.LinkEndpoint; the interface owns no goroutines.
func (*Interface) Wait() {}

// ARPHardwareType implements stack.LinkEndpoint.
func (*Interface) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint; there is no link header.
func (*Interface) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint; there is no link header.
func (*Interface) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.LinkEndpoint.
func (i *Interface) Close() {
	i.mu.Lock()
	fn := i.onClose
	i.onClose = nil
	i.dispatcher = nil
	i.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (i *Interface) SetOnCloseAction(fn func()) {
	i.mu.Lock()
	i.onClose = fn
	i.mu.Unlock()
}

// Demux routes received ESP packets of a gateway to the interface their
// inbound SA belongs to (by the SA's IfID), the way a gateway's single
// UDP/4500 socket serves all of its tunnels.
type Demux struct {
	db  *esp.DB
	mu  sync.RWMutex
	ifs map[uint32]*Interface
}

// NewDemux returns a demultiplexer over db.
func NewDemux(db *esp.DB) *Demux { return &Demux{db: db, ifs: map[uint32]*Interface{}} }

// Add registers an interface.
func (m *Demux) Add(i *Interface) {
	m.mu.Lock()
	m.ifs[i.ifID] = i
	m.mu.Unlock()
}

// Remove unregisters an interface.
func (m *Demux) Remove(ifID uint32) {
	m.mu.Lock()
	delete(m.ifs, ifID)
	m.mu.Unlock()
}

// Deliver hands an ESP packet to the interface of its SA. Packets whose
// SPI is unknown are counted by the DB as esp.DropBadSPI.
func (m *Demux) Deliver(pkt []byte) error {
	spi, ok := esp.PeekSPI(pkt)
	if !ok {
		_, _, err := m.db.Open(nil, pkt) // counts the malformed packet
		return err
	}
	var ifID uint32
	if sa := m.db.Lookup(spi); sa != nil {
		ifID = sa.IfID()
	}
	m.mu.RLock()
	i := m.ifs[ifID]
	m.mu.RUnlock()
	if i == nil {
		_, _, err := m.db.OpenIf(nil, pkt, ^ifID) // counts DropBadSPI
		return err
	}
	return i.Deliver(pkt)
}
