package tunnel

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/pqlab/pqlab/esp"
	"github.com/pqlab/pqlab/ike/wire"
)

// The test topology:
//
//	hostA --lan-- gwA ==wan (ESP in UDP/4500)== gwB --lan-- hostB
//	10.1.0.2      10.1.0.1   192.0.2.1 192.0.2.2   10.2.0.1   10.2.0.2
//	fd00:1::2     fd00:1::1  2001:db8::1 ::2       fd00:2::1  fd00:2::2
//
// Links are pairs of channel endpoints joined by goroutines. Each gateway
// routes the other side's LAN into its tunnel interface (or, for the plain
// baseline, to the other gateway's WAN address).

// extraTransports lets the TCP tests add gVisor's TCP (which needs a module
// this package's other tests do without).
var extraTransports []stack.TransportProtocolFactory

const (
	nicLAN = 1
	nicWAN = 2
	nicTun = 3
	ifID   = 42
)

func newStack() *stack.Stack {
	return stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: append([]stack.TransportProtocolFactory{
			udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6}, extraTransports...),
	})
}

func addr(s string) tcpip.Address { return tcpip.AddrFromSlice(netip.MustParseAddr(s).AsSlice()) }

func p2s(p netip.Prefix) tcpip.Subnet {
	mask := make([]byte, len(p.Addr().AsSlice()))
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	sn, err := tcpip.NewSubnet(tcpip.AddrFromSlice(p.Masked().Addr().AsSlice()), tcpip.MaskFromBytes(mask))
	if err != nil {
		panic(err)
	}
	return sn
}

func protoOf(a tcpip.Address) tcpip.NetworkProtocolNumber {
	if a.Len() == 4 {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

func addAddr(t testing.TB, s *stack.Stack, nic tcpip.NICID, cidr string) {
	t.Helper()
	p := netip.MustParsePrefix(cidr)
	a := tcpip.AddrFromSlice(p.Addr().AsSlice())
	if err := s.AddProtocolAddress(nic, tcpip.ProtocolAddress{Protocol: protoOf(a),
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: a, PrefixLen: p.Bits()}}, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress %s: %v", cidr, err)
	}
}

// link joins two new NICs with channel endpoints and two forwarding
// goroutines, stopped by ctx. With wire set, every delivery into the
// receiving stack holds it (see topoOpts.parallelLinks).
func link(t testing.TB, ctx context.Context, wg *sync.WaitGroup, wire *sync.Mutex, s1 *stack.Stack, n1 tcpip.NICID, s2 *stack.Stack, n2 tcpip.NICID, mtu uint32) {
	t.Helper()
	e1 := channel.New(4096, mtu, "")
	e2 := channel.New(4096, mtu, "")
	if err := s1.CreateNIC(n1, e1); err != nil {
		t.Fatal(err)
	}
	if err := s2.CreateNIC(n2, e2); err != nil {
		t.Fatal(err)
	}
	pump := func(from, to *channel.Endpoint) {
		defer wg.Done()
		for {
			pkt := from.ReadContext(ctx)
			if pkt == nil {
				return
			}
			// A copy, not pkt.ToBuffer(): that shares the chunks, which the
			// sending stack may still write into (a data race).
			if wire != nil {
				wire.Lock()
			}
			np := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(pkt.ToView())})
			to.InjectInbound(pkt.NetworkProtocolNumber, np)
			np.DecRef()
			pkt.DecRef()
			if wire != nil {
				wire.Unlock()
			}
		}
	}
	wg.Add(2)
	go pump(e1, e2)
	go pump(e2, e1)
}

// gateway is one side's gateway with its ESP state.
type gateway struct {
	s     *stack.Stack
	db    *esp.DB
	tun   *Interface
	demux *Demux
	wan   netip.AddrPort
	peer  netip.AddrPort
	mu    sync.Mutex
	drops int // ESP packets Demux refused
}

// output frames a sealed packet in UDP from the gateway's WAN address in
// the headroom the interface leaves and writes it to the WAN NIC, as a raw
// socket with a header would.
func (g *gateway) output(sa *esp.OutboundSA, buf []byte, off int) {
	p := sa.Path()
	frame, err := esp.PrependUDP(buf, off, p.Local, p.Remote)
	if err != nil {
		return
	}
	proto := ipv4.ProtocolNumber
	if p.Local.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	g.s.WritePacketToRemote(nicWAN, "", proto, buffer.MakeWithData(frame))
}

// receive is the gateway's UDP/4500 handler: ESP goes to the tunnel, IKE
// and keepalives would go elsewhere.
func (g *gateway) receive(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	if id.LocalPort != esp.NATTPort {
		return false
	}
	data, ok := pkt.Data().PullUp(pkt.Data().Size())
	if !ok {
		return true
	}
	if c, p := esp.ClassifyUDP(data); c == esp.UDPESP {
		if err := g.demux.Deliver(p); err != nil {
			g.mu.Lock()
			g.drops++
			g.mu.Unlock()
		}
	}
	return true
}

type topoOpts struct {
	suite     esp.Suite
	outer6    bool // IPv6 outer addresses
	plain     bool // no tunnel: gateways route to each other in the clear
	mtu       uint32
	wideA2B   bool // gwA's outbound SA also covers 10.3.0.0/16 (gwB's does not)
	hostQueue int
	// parallelLinks lets the link goroutines deliver concurrently (for
	// the throughput benchmark). By default deliveries are serialized:
	// gVisor's IPv4 forwarding (forwardPacketWithRoute) reads the TTL
	// through a header slice taken before DeepCopyForForwarding, whose
	// PullUp copy-on-write moves the packet to a new chunk and returns
	// the old one to the buffer pool; a link goroutine allocating at that
	// moment gets that chunk and writes it while the TTL is read (a data
	// race under -race, a possibly wrong TTL without it). Plain
	// forwarding shows it as well as the tunnel.
	parallelLinks bool
}

type topo struct {
	hostA, hostB *stack.Stack
	gwA, gwB     *gateway
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	wire         sync.Mutex
}

func (tp *topo) close() {
	tp.cancel()
	tp.wg.Wait()
	for _, s := range []*stack.Stack{tp.hostA, tp.hostB, tp.gwA.s, tp.gwB.s} {
		s.Close()
	}
	for _, s := range []*stack.Stack{tp.hostA, tp.hostB, tp.gwA.s, tp.gwB.s} {
		s.Wait()
	}
}

func newTopo(t testing.TB, o topoOpts) *topo {
	t.Helper()
	if o.mtu == 0 {
		o.mtu = 1500
	}
	ctx, cancel := context.WithCancel(context.Background())
	tp := &topo{hostA: newStack(), hostB: newStack(), cancel: cancel}
	tp.gwA = &gateway{s: newStack(), db: &esp.DB{}}
	tp.gwB = &gateway{s: newStack(), db: &esp.DB{}}
	hostMTU := o.mtu - 100 // room for ESP in UDP on the WAN (like MSS clamping), also when plain
	var wire *sync.Mutex
	if !o.parallelLinks {
		wire = &tp.wire
	}
	link(t, ctx, &tp.wg, wire, tp.hostA, nicLAN, tp.gwA.s, nicLAN, hostMTU)
	link(t, ctx, &tp.wg, wire, tp.gwA.s, nicWAN, tp.gwB.s, nicWAN, o.mtu)
	link(t, ctx, &tp.wg, wire, tp.gwB.s, nicLAN, tp.hostB, nicLAN, hostMTU)

	addAddr(t, tp.hostA, nicLAN, "10.1.0.2/24")
	addAddr(t, tp.hostA, nicLAN, "fd00:1::2/64")
	addAddr(t, tp.hostB, nicLAN, "10.2.0.2/24")
	addAddr(t, tp.hostB, nicLAN, "fd00:2::2/64")
	tp.hostA.SetRouteTable([]tcpip.Route{
		{Destination: p2s(netip.MustParsePrefix("0.0.0.0/0")), Gateway: addr("10.1.0.1"), NIC: nicLAN},
		{Destination: p2s(netip.MustParsePrefix("::/0")), Gateway: addr("fd00:1::1"), NIC: nicLAN},
	})
	tp.hostB.SetRouteTable([]tcpip.Route{
		{Destination: p2s(netip.MustParsePrefix("0.0.0.0/0")), Gateway: addr("10.2.0.1"), NIC: nicLAN},
		{Destination: p2s(netip.MustParsePrefix("::/0")), Gateway: addr("fd00:2::1"), NIC: nicLAN},
	})

	wanA, wanB := netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500")
	if o.outer6 {
		wanA, wanB = netip.MustParseAddrPort("[2001:db8::1]:4500"), netip.MustParseAddrPort("[2001:db8::2]:4500")
	}
	r := rand.NewChaCha8([32]byte{1})
	el, il, err := o.suite.KeyLengths()
	if err != nil && !o.plain {
		t.Fatal(err)
	}
	keymat := make([]byte, 2*(el+il))
	r.Read(keymat)
	var kAB, kBA esp.Keys
	if !o.plain {
		kAB, kBA, _ = esp.SplitKEYMAT(keymat, o.suite)
	}
	sides := []struct {
		g                *gateway
		lan, lan6        string
		gwLAN, gwLAN6    string
		peerLAN, peerLn6 string
		peerGW           string
		in, out          uint32
		kin, kout        esp.Keys
	}{
		{tp.gwA, "10.1.0.1/24", "fd00:1::1/64", "10.1.0.0/16", "fd00:1::/64", "10.2.0.0/16", "fd00:2::/64", wanB.Addr().String(), 0xa000_0001, 0xb000_0001, kBA, kAB},
		{tp.gwB, "10.2.0.1/24", "fd00:2::1/64", "10.2.0.0/16", "fd00:2::/64", "10.1.0.0/16", "fd00:1::/64", wanA.Addr().String(), 0xb000_0001, 0xa000_0001, kAB, kBA},
	}
	tp.gwA.wan, tp.gwA.peer = wanA, wanB
	tp.gwB.wan, tp.gwB.peer = wanB, wanA
	for n, sd := range sides {
		g := sd.g
		s := g.s
		addAddr(t, s, nicLAN, sd.lan)
		addAddr(t, s, nicLAN, sd.lan6)
		bits := 24
		if g.wan.Addr().Is6() {
			bits = 64
		}
		addAddr(t, s, nicWAN, netip.PrefixFrom(g.wan.Addr(), bits).String())
		s.SetForwardingDefaultAndAllNICs(ipv4.ProtocolNumber, true)
		s.SetForwardingDefaultAndAllNICs(ipv6.ProtocolNumber, true)
		wanNet := p2s(netip.PrefixFrom(g.wan.Addr(), bits).Masked())
		routes := []tcpip.Route{
			{Destination: p2s(netip.MustParsePrefix(sd.lan).Masked()), NIC: nicLAN},
			{Destination: p2s(netip.MustParsePrefix(sd.lan6).Masked()), NIC: nicLAN},
			{Destination: wanNet, NIC: nicWAN},
		}
		remote := []string{sd.peerLAN, sd.peerLn6}
		if n == 0 && o.wideA2B {
			remote = append(remote, "10.3.0.0/16")
		}
		if o.plain {
			for _, p := range remote {
				routes = append(routes, tcpip.Route{Destination: p2s(netip.MustParsePrefix(p)), Gateway: addr(sd.peerGW), NIC: nicWAN})
			}
			s.SetRouteTable(routes)
			continue
		}
		tun, err := New(Config{DB: g.db, IfID: ifID, MTU: hostMTU, Output: g.output})
		if err != nil {
			t.Fatal(err)
		}
		g.tun = tun
		g.demux = NewDemux(g.db)
		g.demux.Add(tun)
		if err := s.CreateNIC(nicTun, tun); err != nil {
			t.Fatal(err)
		}
		// An unnumbered-style address so the stack can source ICMP errors.
		addAddr(t, s, nicTun, []string{"169.254.0.1/32", "169.254.0.2/32"}[n])
		for _, p := range remote {
			routes = append(routes, tcpip.Route{Destination: p2s(netip.MustParsePrefix(p)), NIC: nicTun})
		}
		s.SetRouteTable(routes)
		s.SetTransportProtocolHandler(udp.ProtocolNumber, g.receive)

		sel := func(ps ...string) []esp.Selector {
			var out []esp.Selector
			for _, p := range ps {
				out = append(out, esp.SelectorFromPrefix(netip.MustParsePrefix(p)))
			}
			return out
		}
		path := esp.Path{Encap: esp.EncapUDP, Local: g.wan, Remote: g.peer}
		now := time.Unix(0, 0)
		if _, err := g.db.AddInbound(now, esp.SAConfig{SPI: sd.in, Suite: o.suite, Keys: sd.kin,
			Local: sel(sd.gwLAN, sd.gwLAN6), Remote: sel(sd.peerLAN, sd.peerLn6), IfID: ifID, Path: path}); err != nil {
			t.Fatal(err)
		}
		if _, err := g.db.AddOutbound(now, esp.SAConfig{SPI: sd.out, Suite: o.suite, Keys: sd.kout,
			Local: sel(sd.gwLAN, sd.gwLAN6), Remote: sel(remote...), IfID: ifID, Path: path,
			Rand: rand.NewChaCha8([32]byte{byte(n + 7)})}); err != nil {
			t.Fatal(err)
		}
	}
	return tp
}

var testSuite = esp.Suite{Encr: wire.EncrAESGCM16, KeyBits: 128}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
