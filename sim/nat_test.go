package sim

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// natTopo: gw1, gw2 -- lan links -- (NAT via a LAN router? no: one inside
// host per NAT) -- fabric -- srv1, srv2.
type natTopo struct {
	net        *Network
	gw         *Node
	nat        *NAT
	fab        *Fabric
	srv1, srv2 *Node
}

var (
	natExt = netip.MustParseAddr("203.0.113.10")
	gwAddr = netip.MustParseAddr("192.168.1.2")
	srv1   = netip.MustParseAddr("198.51.100.1")
	srv2   = netip.MustParseAddr("198.51.100.129")
)

func newNATTopo(t *testing.T, cfg NATConfig) *natTopo {
	t.Helper()
	n := NewNetwork(NetworkConfig{Seed: 5})
	t.Cleanup(n.Close)
	cfg.Name = "nat"
	cfg.External = natExt
	nat, err := n.AddNAT(cfg)
	require.NoError(t, err)
	fab, err := n.AddFabric("inet")
	require.NoError(t, err)
	gw, _ := n.AddNode(NodeConfig{Name: "gw", Forwarding: true})
	gwe, _ := gw.AddNIC("wan", 0)
	_, err = n.Connect(gwe, nat.Inside(), Symmetric("gw-nat", 1500, Impairments{Delay: time.Millisecond}))
	require.NoError(t, err)
	require.NoError(t, gwe.AddAddress(netip.PrefixFrom(gwAddr, 24)))
	require.NoError(t, gw.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), gwe.ID()))
	np, _ := fab.AddPort("nat")
	_, err = n.Connect(nat.Outside(), np, Symmetric("nat-inet", 1500, Impairments{Delay: 10 * time.Millisecond}))
	require.NoError(t, err)
	require.NoError(t, fab.AddRoute(netip.PrefixFrom(natExt, 32), np))
	var srvs []*Node
	for i, a := range []netip.Addr{srv1, srv2} {
		s, _ := n.AddNode(NodeConfig{Name: []string{"srv1", "srv2"}[i]})
		e, _ := s.AddNIC("eth0", 0)
		p, _ := fab.AddPort(s.Name())
		_, err = n.Connect(e, p, Symmetric(s.Name()+"-inet", 1500, Impairments{Delay: 5 * time.Millisecond}))
		require.NoError(t, err)
		require.NoError(t, e.AddAddress(netip.PrefixFrom(a, 25)))
		require.NoError(t, s.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), e.ID()))
		require.NoError(t, fab.AddRoute(netip.PrefixFrom(a, 25), p))
		srvs = append(srvs, s)
	}
	return &natTopo{n, gw, nat, fab, srvs[0], srvs[1]}
}

func ap(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }

func TestNATTraversalUDP(t *testing.T) {
	nt := newNATTopo(t, NATConfig{Mapping: EndpointIndependent, Filtering: AddressAndPortDependent})
	gwc, gwGot := listen(t, nt.gw, "192.168.1.2:500")
	var srvGot []rx
	srvc, err := nt.srv1.ListenUDP(ap(srv1, 500), nil)
	require.NoError(t, err)
	srvc.SetHandler(func(src, dst netip.AddrPort, p []byte) {
		srvGot = append(srvGot, rx{nt.net.sched.Elapsed(), src, dst, p})
		require.NoError(t, srvc.SendTo(src, append([]byte("re:"), p[:10]...)))
	})
	msg := payload(3000, 3) // fragmented: the NAT reassembles and refragments
	require.NoError(t, gwc.SendTo(ap(srv1, 500), msg))
	require.NoError(t, gwc.SendTo(ap(srv1, 500), []byte("small datagram")))
	nt.net.Run(time.Second)
	require.Len(t, srvGot, 2)
	require.Equal(t, ap(natExt, 500), srvGot[0].src, "port preserved")
	require.Equal(t, msg, srvGot[0].payload)
	require.Len(t, *gwGot, 2)
	require.Equal(t, ap(srv1, 500), (*gwGot)[0].src)
	require.Equal(t, []byte("re:small data"), (*gwGot)[1].payload)
	st := nt.nat.Stats()
	require.EqualValues(t, 1, st.MappingsCreated)
	require.EqualValues(t, 1, st.Reassembled)
	require.EqualValues(t, 2, st.Outbound)
	require.EqualValues(t, 2, st.Inbound)
	ext, ok := nt.nat.Mapping(ap(gwAddr, 500), ap(srv1, 500))
	require.True(t, ok)
	require.Equal(t, ap(natExt, 500), ext)

	// Port-restricted filtering: the same server from another port, and
	// another server, are refused; endpoint-independent mapping keeps the
	// same external port towards srv2.
	require.NoError(t, nt.srv1.SendUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), 0), ap(natExt, 500), []byte("unsolicited")))
	nt.net.Run(2 * time.Second)
	require.Len(t, *gwGot, 2)
	require.EqualValues(t, 1, nt.nat.Stats().Drops[NATDropFiltered])
	_, s2Got := listen(t, nt.srv2, "198.51.100.129:4500")
	require.NoError(t, gwc.SendTo(ap(srv2, 4500), []byte("to srv2")))
	nt.net.Run(3 * time.Second)
	require.Len(t, *s2Got, 1)
	require.Equal(t, ap(natExt, 500), (*s2Got)[0].src)
}

func TestNATEndpointIndependentFiltering(t *testing.T) {
	nt := newNATTopo(t, NATConfig{Mapping: EndpointIndependent, Filtering: EndpointIndependent})
	gwc, gwGot := listen(t, nt.gw, "192.168.1.2:4500")
	_, _ = listen(t, nt.srv1, "198.51.100.1:4500")
	require.NoError(t, gwc.SendTo(ap(srv1, 4500), []byte("open")))
	nt.net.Run(time.Second)
	// Anyone may now reach the mapping (full cone).
	require.NoError(t, nt.srv2.SendUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), 0), ap(natExt, 4500), []byte("hello")))
	nt.net.Run(2 * time.Second)
	require.Len(t, *gwGot, 1)
	require.Equal(t, srv2, (*gwGot)[0].src.Addr())
}

func TestNATSymmetricMapping(t *testing.T) {
	nt := newNATTopo(t, NATConfig{Mapping: AddressAndPortDependent, Filtering: AddressAndPortDependent})
	gwc, _ := listen(t, nt.gw, "192.168.1.2:500")
	_, g1 := listen(t, nt.srv1, "198.51.100.1:500")
	_, g2 := listen(t, nt.srv1, "198.51.100.1:4500")
	require.NoError(t, gwc.SendTo(ap(srv1, 500), []byte("a")))
	require.NoError(t, gwc.SendTo(ap(srv1, 4500), []byte("b")))
	nt.net.Run(time.Second)
	require.Len(t, *g1, 1)
	require.Len(t, *g2, 1)
	require.Equal(t, uint16(500), (*g1)[0].src.Port())
	require.NotEqual(t, uint16(500), (*g2)[0].src.Port(), "a new mapping per destination")
	require.Equal(t, 2, nt.nat.Mappings())
}

func TestNATMappingTimeout(t *testing.T) {
	nt := newNATTopo(t, NATConfig{Timeout: 30 * time.Second})
	gwc, gwGot := listen(t, nt.gw, "192.168.1.2:500")
	srvc, _ := listen(t, nt.srv1, "198.51.100.1:500")
	require.NoError(t, gwc.SendTo(ap(srv1, 500), []byte("1")))
	nt.net.Run(time.Second)
	// Keepalives every 20 s keep the mapping (RFC 3948, Section 4).
	for i := 1; i <= 3; i++ {
		nt.net.At(time.Duration(i)*20*time.Second, func() { require.NoError(t, gwc.SendTo(ap(srv1, 500), []byte{0xff})) })
	}
	nt.net.Run(61 * time.Second)
	require.NoError(t, srvc.SendTo(ap(natExt, 500), []byte("still there")))
	nt.net.Run(62 * time.Second)
	require.Len(t, *gwGot, 1)
	// 31 s of silence: the mapping is gone and inbound packets are dropped.
	nt.net.Run(92 * time.Second)
	require.NoError(t, srvc.SendTo(ap(natExt, 500), []byte("too late")))
	nt.net.Run(93 * time.Second)
	require.Len(t, *gwGot, 1)
	st := nt.nat.Stats()
	require.EqualValues(t, 1, st.Drops[NATDropNoMapping])
	require.EqualValues(t, 1, st.MappingsExpired)
	require.Zero(t, nt.nat.Mappings())
}

func TestNATDropsFragments(t *testing.T) {
	nt := newNATTopo(t, NATConfig{Fragments: NATDropFragments})
	gwc, _ := listen(t, nt.gw, "192.168.1.2:500")
	_, got := listen(t, nt.srv1, "198.51.100.1:500")
	require.NoError(t, gwc.SendTo(ap(srv1, 500), payload(3000, 1)))
	require.NoError(t, gwc.SendTo(ap(srv1, 500), payload(1000, 1)))
	nt.net.Run(time.Second)
	require.Len(t, *got, 1)
	require.EqualValues(t, 3, nt.nat.Stats().Drops[NATDropFragment])
}

func TestNATPing(t *testing.T) {
	nt := newNATTopo(t, NATConfig{})
	p, err := nt.gw.Ping(srv1, PingOptions{Count: 3, Interval: 100 * time.Millisecond, Size: 56})
	require.NoError(t, err)
	nt.net.Run(2 * time.Second)
	st := p.Stats()
	require.EqualValues(t, 3, st.Sent)
	require.EqualValues(t, 3, st.Received)
	require.Equal(t, 32*time.Millisecond, st.MinRTT)
}

func TestFabricRoutesAndTTL(t *testing.T) {
	nt := newNATTopo(t, NATConfig{})
	require.Equal(t, "srv2", nt.fab.Lookup(srv2).name)
	require.Equal(t, "srv1", nt.fab.Lookup(srv1).name)
	require.Nil(t, nt.fab.Lookup(netip.MustParseAddr("8.8.8.8")))
	require.NoError(t, nt.srv1.SendUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), 0), ap(netip.MustParseAddr("8.8.8.8"), 53), []byte("?")))
	nt.net.Run(time.Second)
	require.EqualValues(t, 1, nt.fab.Stats().NoRoute)
}

func FuzzMiddleboxes(f *testing.F) {
	udp := ipv4Packet(60, 7, 0, false, 1)
	udp[20], udp[21], udp[22], udp[23] = 0x01, 0xf4, 0x01, 0xf4
	f.Add(udp, false)
	f.Add(ipv4Packet(60, 7, 8, true, 1), true)
	icmp := ipv4Packet(40, 1, 0, false, 0)
	icmp[9] = ipProtoICMP
	icmp[20] = 8
	f.Add(icmp, false)
	// ICMP errors about the mapping the fuzz body creates, from outside
	// and from inside (RFC 5508, Section 4.2).
	for _, outside := range []bool{true, false} {
		e := ipv4Packet(20+icmpHeaderLen+28, 9, 0, false, 0)
		e[9] = ipProtoICMP
		e[20], e[21] = icmpTypeDestUnreach, 4
		emb := ipv4Packet(28, 1, 0, false, 0)
		binary.BigEndian.PutUint32(emb[20:], 500<<16|500)
		if outside {
			copy(e[12:20], append([]byte{10, 0, 0, 2}, natExt.AsSlice()...))
			copy(emb[12:20], append(natExt.AsSlice(), 10, 0, 0, 2))
		} else {
			copy(emb[12:20], []byte{10, 0, 0, 2, 10, 0, 0, 1})
		}
		setIPv4Checksum(emb[:20])
		copy(e[20+icmpHeaderLen:], emb)
		setIPv4Checksum(e[:20])
		setICMPChecksum(e[20:])
		f.Add(e, outside)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, outside bool) {
		n := NewNetwork(NetworkConfig{})
		nat, err := n.AddNAT(NATConfig{Name: "nat", External: natExt})
		require.NoError(t, err)
		// A mapping 10.0.0.1:500 -> natExt:500 for 10.0.0.2:500.
		nat.handle(0, ipv4Packet(28, 2, 0, false, 500<<16|500))
		require.Equal(t, 1, nat.Mappings())
		side := 0
		if outside {
			side = 1
		}
		nat.handle(side, append([]byte(nil), pkt...))
		fab, _ := n.AddFabric("fab")
		p, _ := fab.AddPort("p")
		require.NoError(t, fab.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), p))
		fab.forward(append([]byte(nil), pkt...))
		ipv4Fragment(append([]byte(nil), pkt...), 576)
	})
}

// onesSum is the ones'-complement sum of b (RFC 1071); a correct checksum
// makes the sum over the covered bytes 0xffff.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// natRouterTopo: gw -- NAT -- router r (203.0.113.1) -- srv1, where the
// r-srv1 link has a smaller MTU.
func natRouterTopo(t *testing.T, cfg NATConfig, mtu uint32) (*Network, *Node, *NAT, *Node, *Link, *Link) {
	t.Helper()
	return natRouterTopoMTU(t, cfg, 1500, 1500, mtu)
}

// natRouterTopoMTU is natRouterTopo with the MTUs of the gw-nat and nat-r
// links given too.
func natRouterTopoMTU(t *testing.T, cfg NATConfig, insideMTU, outsideMTU, mtu uint32) (*Network, *Node, *NAT, *Node, *Link, *Link) {
	t.Helper()
	n := NewNetwork(NetworkConfig{Seed: 9})
	t.Cleanup(n.Close)
	cfg.Name, cfg.External = "nat", natExt
	nat, err := n.AddNAT(cfg)
	require.NoError(t, err)
	gw, _ := n.AddNode(NodeConfig{Name: "gw"})
	r, _ := n.AddNode(NodeConfig{Name: "r", Forwarding: true})
	srv, _ := n.AddNode(NodeConfig{Name: "srv1"})
	gwe, _ := gw.AddNIC("wan", 0)
	r0, _ := r.AddNIC("eth0", 0)
	r1, _ := r.AddNIC("eth1", 0)
	se, _ := srv.AddNIC("eth0", 0)
	inner, err := n.Connect(gwe, nat.Inside(), Symmetric("gw-nat", insideMTU, Impairments{Delay: time.Millisecond}))
	require.NoError(t, err)
	outer, err := n.Connect(nat.Outside(), r0, Symmetric("nat-r", outsideMTU, Impairments{Delay: 5 * time.Millisecond}))
	require.NoError(t, err)
	_, err = n.Connect(r1, se, Symmetric("r-srv1", mtu, Impairments{Delay: 5 * time.Millisecond}))
	require.NoError(t, err)
	require.NoError(t, gwe.AddAddress(netip.PrefixFrom(gwAddr, 24)))
	require.NoError(t, r0.AddAddress(netip.MustParsePrefix("203.0.113.1/24")))
	require.NoError(t, r1.AddAddress(netip.MustParsePrefix("198.51.100.254/24")))
	require.NoError(t, se.AddAddress(netip.PrefixFrom(srv1, 24)))
	require.NoError(t, gw.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), gwe.ID()))
	require.NoError(t, srv.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), se.ID()))
	return n, gw, nat, srv, inner, outer
}

// A router after the NAT answers a DF datagram too big for its egress link
// with "fragmentation needed"; the NAT translates the error back to the
// inside host (RFC 5508, Section 4.2; RFC 1191), which is what PMTU
// discovery through a NAT depends on.
func TestNATTranslatesFragmentationNeeded(t *testing.T) {
	n, gw, nat, srv, inner, outer := natRouterTopo(t, NATConfig{Mapping: AddressAndPortDependent, Filtering: AddressAndPortDependent}, 1280)
	_, srvGot := listen(t, srv, "198.51.100.1:4500")
	gwc, err := gw.ListenUDPWithOptions(ap(gwAddr, 500), nil, UDPOptions{DontFragment: true})
	require.NoError(t, err)
	var sent, delivered, outside [][]byte
	inner.AddObserver(observerFunc(func(ev *PacketEvent) {
		pi, ok := ParsePacket(ev.Packet)
		switch {
		case !ok:
		case ev.Kind == PacketSent && ev.Dir == AtoB && pi.Protocol == ipProtoUDP:
			sent = append(sent, append([]byte(nil), ev.Packet...))
		case ev.Kind == PacketDelivered && ev.Dir == BtoA && pi.Protocol == ipProtoICMP:
			delivered = append(delivered, append([]byte(nil), ev.Packet...))
		}
	}))
	outer.AddObserver(observerFunc(func(ev *PacketEvent) {
		if pi, ok := ParsePacket(ev.Packet); ok && ev.Kind == PacketDelivered && ev.Dir == BtoA && pi.Protocol == ipProtoICMP {
			outside = append(outside, append([]byte(nil), ev.Packet...))
		}
	}))
	// A symmetric NAT: the second destination gets another external port,
	// so the embedded source port really is translated back.
	require.NoError(t, gwc.SendTo(ap(srv1, 4500), []byte("first")))
	n.Run(time.Second)
	big := payload(1400, 7) // an IKE_SA_INIT with ML-KEM-768 in one datagram
	require.NoError(t, gwc.SendTo(ap(srv1, 500), big))
	n.Run(2 * time.Second)

	require.Len(t, *srvGot, 1)
	require.Len(t, sent, 2)
	require.Len(t, outside, 1)
	require.Len(t, delivered, 1)
	ext, ok := nat.Mapping(ap(gwAddr, 500), ap(srv1, 500))
	require.True(t, ok)
	require.NotEqual(t, uint16(500), ext.Port())

	// Outside, the error is about the external endpoint.
	out := outside[0]
	opi, _ := ParsePacket(out)
	require.Equal(t, natExt, opi.Dst)
	oin := out[opi.HeaderLen+icmpHeaderLen:]
	require.Equal(t, natExt.AsSlice(), oin[12:16])
	require.Equal(t, ext.Port(), binary.BigEndian.Uint16(oin[20:22]))

	// Inside: outer destination, embedded source address and port are the
	// inside host's; every checksum is valid.
	pkt := delivered[0]
	pi, _ := ParsePacket(pkt)
	require.Equal(t, netip.MustParseAddr("203.0.113.1"), pi.Src)
	require.Equal(t, gwAddr, pi.Dst)
	require.Equal(t, uint16(0xffff), onesSum(pkt[:pi.HeaderLen]), "outer IPv4 header checksum")
	icmp := pkt[pi.HeaderLen:]
	require.Equal(t, []byte{3, 4}, icmp[:2], "destination unreachable, fragmentation needed")
	require.EqualValues(t, 1280, binary.BigEndian.Uint16(icmp[6:8]), "next-hop MTU (RFC 1191)")
	require.Equal(t, uint16(0xffff), onesSum(icmp), "ICMP checksum")
	emb := icmp[icmpHeaderLen:]
	ihl := int(emb[0]&0x0f) * 4
	require.Equal(t, uint16(0xffff), onesSum(emb[:ihl]), "embedded IPv4 header checksum")
	require.Equal(t, gwAddr.AsSlice(), emb[12:16])
	require.Equal(t, srv1.AsSlice(), emb[16:20])
	// The embedded datagram is the one the host sent, UDP header (ports
	// and checksum) included; only TTL and header checksum differ.
	orig := sent[1]
	require.Greater(t, len(emb), ihl+udpHeaderLen)
	require.Equal(t, orig[20:20+len(emb)-ihl], emb[ihl:], "embedded UDP header and data as sent")
	require.Equal(t, orig[12:20], emb[12:20])
	require.Equal(t, orig[:8], emb[:8])

	// gVisor on the inside host accepted the ICMP message.
	st := gw.Stack().Stats().ICMP.V4.PacketsReceived
	require.EqualValues(t, 1, st.DstUnreachable.Value())
	require.Zero(t, st.Invalid.Value())
	require.EqualValues(t, 1, nat.Stats().ICMPErrors)

	// The same error about a port with no mapping, or about a datagram
	// the inside host never sent to that destination, is dropped.
	for i, mutate := range []func([]byte){
		func(e []byte) { binary.BigEndian.PutUint16(e[20:22], ext.Port()+100) },
		func(e []byte) { binary.BigEndian.PutUint16(e[22:24], 501) },
		func(e []byte) { e[0] = 0x46 }, // header length beyond the data
		nil,                            // a corrupted ICMP checksum
	} {
		bad := append([]byte(nil), out...)
		if mutate != nil {
			mutate(bad[opi.HeaderLen+icmpHeaderLen:])
			setICMPChecksum(bad[opi.HeaderLen:])
		} else {
			bad[len(bad)-1] ^= 1
		}
		nat.handle(1, bad)
		require.EqualValues(t, i+1, nat.Stats().Drops[NATDropICMPError])
	}
	require.EqualValues(t, 1, nat.Stats().ICMPErrors)
}

// connectedUDP opens a connected gVisor UDP endpoint, which records ICMP
// port unreachable errors as its last error.
func connectedUDP(t *testing.T, n *Node, local, remote netip.AddrPort) tcpip.Endpoint {
	t.Helper()
	var wq waiter.Queue
	ep, terr := n.Stack().NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	require.Nil(t, terr)
	t.Cleanup(ep.Close)
	require.Nil(t, ep.Bind(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(local.Addr().AsSlice()), Port: local.Port()}))
	require.Nil(t, ep.Connect(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(remote.Addr().AsSlice()), Port: remote.Port()}))
	return ep
}

func writeUDP(t *testing.T, ep tcpip.Endpoint, p []byte) {
	t.Helper()
	_, terr := ep.Write(bytes.NewReader(p), tcpip.WriteOptions{})
	require.Nil(t, terr)
}

// Port unreachable errors in both directions reach the socket they concern:
// gVisor matches the translated embedded datagram to the connected endpoint.
func TestNATTranslatesPortUnreachable(t *testing.T) {
	nt := newNATTopo(t, NATConfig{Mapping: EndpointIndependent, Filtering: AddressAndPortDependent})
	// Outside in: srv1 has nothing on port 9.
	ep := connectedUDP(t, nt.gw, ap(gwAddr, 5000), ap(srv1, 9))
	writeUDP(t, ep, []byte("probe"))
	nt.net.Run(time.Second)
	require.Equal(t, &tcpip.ErrConnectionRefused{}, ep.LastError())

	// Inside out: gw opens a mapping to srv1:7000 and closes its socket;
	// srv1's next datagram draws a port unreachable from gw.
	sep := connectedUDP(t, nt.srv1, ap(srv1, 7000), ap(natExt, 500))
	gwc, _ := listen(t, nt.gw, "192.168.1.2:500")
	require.NoError(t, gwc.SendTo(ap(srv1, 7000), []byte("open")))
	nt.net.Run(2 * time.Second)
	gwc.Close()
	writeUDP(t, sep, []byte("anyone?"))
	nt.net.Run(3 * time.Second)
	require.Equal(t, &tcpip.ErrConnectionRefused{}, sep.LastError())
	require.EqualValues(t, 2, nt.nat.Stats().ICMPErrors)
	require.Zero(t, nt.nat.Stats().Drops[NATDropICMPError])
}

// Two hosts behind the same NAT reach each other through their external
// mappings (hairpinning, RFC 4787, Section 6, REQ-9): each sees the other's
// external address and port, and filtering applies as to outside traffic.
func TestNATHairpinning(t *testing.T) {
	nt := newNATTopo(t, NATConfig{Mapping: EndpointIndependent, Filtering: AddressAndPortDependent})
	// Two LAN hosts behind gw, which routes for them.
	var hosts []*Node
	for i, lan := range []string{"192.168.10", "192.168.20"} {
		h, _ := nt.net.AddNode(NodeConfig{Name: []string{"h1", "h2"}[i]})
		he, _ := h.AddNIC("eth0", 0)
		ge, _ := nt.gw.AddNIC("lan"+lan[len(lan)-2:], 0)
		_, err := nt.net.Connect(he, ge, Symmetric(h.Name()+"-gw", 1500, Impairments{Delay: time.Millisecond}))
		require.NoError(t, err)
		require.NoError(t, he.AddAddress(netip.MustParsePrefix(lan+".2/24")))
		require.NoError(t, ge.AddAddress(netip.MustParsePrefix(lan+".1/24")))
		require.NoError(t, h.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), he.ID()))
		hosts = append(hosts, h)
	}
	h1c, h1Got := listen(t, hosts[0], "192.168.10.2:500")
	h2c, h2Got := listen(t, hosts[1], "192.168.20.2:4500")
	_, srvGot := listen(t, nt.srv1, "198.51.100.1:500")
	// h2 gets its mapping (port preserved) by talking to a server.
	require.NoError(t, h2c.SendTo(ap(srv1, 500), []byte("register")))
	nt.net.Run(time.Second)
	require.Len(t, *srvGot, 1)
	require.Equal(t, ap(natExt, 4500), (*srvGot)[0].src)

	// h1 -> h2's public endpoint: h2 never sent to h1's mapping, so the
	// port-restricted filter drops it; h1's own mapping is created.
	require.NoError(t, h1c.SendTo(ap(natExt, 4500), []byte("hello h2")))
	nt.net.Run(2 * time.Second)
	require.Empty(t, *h2Got)
	require.EqualValues(t, 1, nt.nat.Stats().Drops[NATDropFiltered])
	ext1, ok := nt.nat.Mapping(ap(netip.MustParseAddr("192.168.10.2"), 500), ap(natExt, 4500))
	require.True(t, ok)
	require.Equal(t, ap(natExt, 500), ext1)

	// h2 -> h1's public endpoint passes h1's filter (h1 sent to
	// natExt:4500) and arrives from h2's external endpoint.
	require.NoError(t, h2c.SendTo(ext1, []byte("hello h1")))
	nt.net.Run(3 * time.Second)
	require.Len(t, *h1Got, 1)
	require.Equal(t, ap(natExt, 4500), (*h1Got)[0].src)
	require.Equal(t, ap(netip.MustParseAddr("192.168.10.2"), 500), (*h1Got)[0].dst, "destination translated to the inside host")
	require.Equal(t, []byte("hello h1"), (*h1Got)[0].payload)

	// Now h1 -> h2 passes too.
	require.NoError(t, h1c.SendTo(ap(natExt, 4500), []byte("again")))
	nt.net.Run(4 * time.Second)
	require.Len(t, *h2Got, 1)
	require.Equal(t, ext1, (*h2Got)[0].src)
	require.Equal(t, []byte("again"), (*h2Got)[0].payload)

	st := nt.nat.Stats()
	require.EqualValues(t, 2, st.Hairpinned)
	require.EqualValues(t, 2, st.MappingsCreated)
	// Hairpinned traffic never left the NAT: the outside link carried only
	// h2's registration.
	require.EqualValues(t, 1, nt.nat.outside.link.Stats(AtoB).Packets)
}

// The NAT itself answers a DF datagram too big for its egress link with
// "fragmentation needed" (RFC 1191, Section 4), in both directions; the
// sender's stack accepts it, and nothing is translated or forwarded.
func TestNATSendsFragmentationNeeded(t *testing.T) {
	for _, dir := range []string{"outbound", "inbound"} {
		t.Run(dir, func(t *testing.T) {
			insideMTU, outsideMTU := uint32(1500), uint32(1280)
			if dir == "inbound" {
				insideMTU, outsideMTU = 1280, 1500
			}
			n, gw, nat, srv, _, _ := natRouterTopoMTU(t, NATConfig{Mapping: EndpointIndependent, Filtering: EndpointIndependent}, insideMTU, outsideMTU, 1500)
			gwc, gwGot := listen(t, gw, "192.168.1.2:4500")
			gwDF, err := gw.ListenUDPWithOptions(ap(gwAddr, 500), nil, UDPOptions{DontFragment: true})
			require.NoError(t, err)
			srvDF, err := srv.ListenUDPWithOptions(ap(srv1, 4500), nil, UDPOptions{DontFragment: true})
			require.NoError(t, err)
			big := payload(1400, 3)
			sender := gw
			if dir == "outbound" {
				require.NoError(t, gwDF.SendTo(ap(srv1, 4500), big))
			} else {
				// A small datagram opens the mapping, then the
				// server answers with a big one.
				sender = srv
				require.NoError(t, gwc.SendTo(ap(srv1, 4500), []byte("hello")))
				n.Run(time.Second)
				ext, ok := nat.Mapping(ap(gwAddr, 4500), ap(srv1, 4500))
				require.True(t, ok)
				require.NoError(t, srvDF.SendTo(ext, big))
			}
			n.Run(2 * time.Second)

			st := sender.Stack().Stats().ICMP.V4.PacketsReceived
			require.EqualValues(t, 1, st.DstUnreachable.Value(), "the sender's stack got destination unreachable")
			require.Zero(t, st.Invalid.Value())
			require.EqualValues(t, 1, nat.Stats().FragNeededSent)
			require.EqualValues(t, 1, nat.Stats().Drops[NATDropTooBig])
			if dir == "outbound" {
				require.Zero(t, nat.Mappings(), "no mapping for a datagram that was not forwarded")
			} else {
				require.Empty(t, *gwGot, "the big datagram was not delivered")
			}
		})
	}
}

// fragNeeded builds a well-formed error: header and ICMP checksums valid,
// type 3 code 4, the MTU, and a quote no longer than the 576-octet limit.
func TestFragNeededMessage(t *testing.T) {
	orig := make([]byte, 1400)
	orig[0] = 0x45
	binary.BigEndian.PutUint16(orig[2:4], 1400)
	orig[6] = 0x40
	orig[9] = ipProtoUDP
	copy(orig[12:16], gwAddr.AsSlice())
	copy(orig[16:20], srv1.AsSlice())
	for _, o := range [][]byte{orig, orig[:28]} {
		pkt := fragNeeded(natExt, gwAddr, o, 1280)
		pi, ok := ParsePacket(pkt)
		require.True(t, ok)
		require.Equal(t, natExt, pi.Src)
		require.Equal(t, gwAddr, pi.Dst)
		require.Equal(t, uint16(0xffff), onesSum(pkt[:pi.HeaderLen]))
		msg := pkt[pi.HeaderLen:]
		require.Equal(t, []byte{3, 4}, msg[:2])
		require.EqualValues(t, 1280, binary.BigEndian.Uint16(msg[6:8]))
		require.Equal(t, uint16(0xffff), onesSum(msg))
		require.LessOrEqual(t, len(pkt), 576)
		require.Equal(t, o[:len(msg)-icmpHeaderLen], msg[icmpHeaderLen:])
		require.True(t, isICMPError(pi, pkt))
	}
}
