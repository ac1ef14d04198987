package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	f.Fuzz(func(t *testing.T, pkt []byte, outside bool) {
		n := NewNetwork(NetworkConfig{})
		nat, err := n.AddNAT(NATConfig{Name: "nat", External: natExt})
		require.NoError(t, err)
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
