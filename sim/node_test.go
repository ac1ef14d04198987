package sim

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lineTopo is h1 -- r -- h2 with a /24 on each link.
type lineTopo struct {
	net         *Network
	h1, r, h2   *Node
	left, right *Link
}

func newLine(t testing.TB, seed uint64, left, right LinkConfig) *lineTopo {
	t.Helper()
	n := NewNetwork(NetworkConfig{Seed: seed})
	h1, err := n.AddNode(NodeConfig{Name: "h1"})
	require.NoError(t, err)
	r, err := n.AddNode(NodeConfig{Name: "r", Forwarding: true})
	require.NoError(t, err)
	h2, err := n.AddNode(NodeConfig{Name: "h2"})
	require.NoError(t, err)
	h1e, _ := h1.AddNIC("eth0", 0)
	r0, _ := r.AddNIC("eth0", 0)
	r1, _ := r.AddNIC("eth1", 0)
	h2e, _ := h2.AddNIC("eth0", 0)
	if left.Name == "" {
		left.Name = "h1-r"
	}
	if right.Name == "" {
		right.Name = "r-h2"
	}
	l1, err := n.Connect(h1e, r0, left)
	require.NoError(t, err)
	l2, err := n.Connect(r1, h2e, right)
	require.NoError(t, err)
	require.NoError(t, h1e.AddAddress(netip.MustParsePrefix("10.0.1.2/24")))
	require.NoError(t, r0.AddAddress(netip.MustParsePrefix("10.0.1.1/24")))
	require.NoError(t, r1.AddAddress(netip.MustParsePrefix("10.0.2.1/24")))
	require.NoError(t, h2e.AddAddress(netip.MustParsePrefix("10.0.2.2/24")))
	if left.MTU == 0 || left.MTU >= MinIPv6MTU {
		require.NoError(t, h1e.AddAddress(netip.MustParsePrefix("fd00:1::2/64")))
		require.NoError(t, r0.AddAddress(netip.MustParsePrefix("fd00:1::1/64")))
		require.NoError(t, h1.AddRoute(netip.MustParsePrefix("::/0"), h1e.ID()))
	}
	if right.MTU == 0 || right.MTU >= MinIPv6MTU {
		require.NoError(t, r1.AddAddress(netip.MustParsePrefix("fd00:2::1/64")))
		require.NoError(t, h2e.AddAddress(netip.MustParsePrefix("fd00:2::2/64")))
		require.NoError(t, h2.AddRoute(netip.MustParsePrefix("::/0"), h2e.ID()))
	}
	require.NoError(t, h1.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), h1e.ID()))
	require.NoError(t, h2.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), h2e.ID()))
	t.Cleanup(n.Close)
	return &lineTopo{n, h1, r, h2, l1, l2}
}

type rx struct {
	at       time.Duration
	src, dst netip.AddrPort
	payload  []byte
}

func listen(t testing.TB, n *Node, addr string) (*UDPConn, *[]rx) {
	t.Helper()
	var got []rx
	c, err := n.ListenUDP(netip.MustParseAddrPort(addr), func(src, dst netip.AddrPort, p []byte) {
		got = append(got, rx{n.Network().Scheduler().Elapsed(), src, dst, p})
	})
	require.NoError(t, err)
	return c, &got
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i) ^ seed
	}
	return b
}

func TestUDPThroughRouterFragmented(t *testing.T) {
	im := Impairments{Delay: 10 * time.Millisecond}
	lt := newLine(t, 1, Symmetric("", 1500, im), Symmetric("", 1500, im))
	_, got := listen(t, lt.h2, "10.0.2.2:500")
	src, _ := listen(t, lt.h1, "10.0.1.2:500")
	msg := payload(3000, 1)
	require.NoError(t, src.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), msg))
	lt.net.Run(time.Second)
	require.Len(t, *got, 1)
	require.Equal(t, msg, (*got)[0].payload)
	require.Equal(t, netip.MustParseAddrPort("10.0.1.2:500"), (*got)[0].src)
	require.Equal(t, netip.MustParseAddrPort("10.0.2.2:500"), (*got)[0].dst)
	require.Equal(t, 20*time.Millisecond, (*got)[0].at)
	// 3000 bytes of UDP payload + 8 UDP header over 1480-byte fragment
	// payloads: three fragments on each link.
	st := lt.left.Stats(AtoB)
	require.EqualValues(t, 3, st.Packets)
	require.EqualValues(t, 3, st.Fragments)
	require.EqualValues(t, 3, lt.right.Stats(AtoB).Fragments)

	// Reply through the same socket (IPv4) and over IPv6.
	_, got1 := listen(t, lt.h1, "[fd00:1::2]:4500")
	_, got2 := listen(t, lt.h2, "[fd00:2::2]:4500")
	require.NoError(t, lt.h2.SendUDP(netip.MustParseAddrPort("[fd00:2::2]:4500"), netip.MustParseAddrPort("[fd00:1::2]:4500"), payload(2000, 2)))
	require.NoError(t, lt.h1.SendUDP(netip.MustParseAddrPort("[fd00:1::2]:4500"), netip.MustParseAddrPort("[fd00:2::2]:4500"), payload(100, 3)))
	lt.net.Run(2 * time.Second)
	require.Len(t, *got1, 1)
	require.Equal(t, payload(2000, 2), (*got1)[0].payload)
	require.Len(t, *got2, 1)
	require.Equal(t, netip.MustParseAddrPort("[fd00:2::2]:4500"), (*got2)[0].dst)
	require.EqualValues(t, 2, lt.right.Stats(BtoA).Fragments, "IPv6 2000-byte datagram in two fragments")
}

func TestUDPLostOnFragmentDroppingLink(t *testing.T) {
	drop := Impairments{Delay: time.Millisecond, Fragments: FragmentPolicy{Mode: FragmentDropAll}}
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{Delay: time.Millisecond}), Symmetric("", 1500, drop))
	_, got := listen(t, lt.h2, "10.0.2.2:500")
	src, _ := listen(t, lt.h1, "10.0.1.2:500")
	require.NoError(t, src.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), payload(3000, 1)))
	require.NoError(t, src.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), payload(1000, 1)))
	lt.net.Run(time.Second)
	require.Len(t, *got, 1, "only the unfragmented datagram arrives")
	require.Len(t, (*got)[0].payload, 1000)
	st := lt.right.Stats(AtoB)
	require.EqualValues(t, 3, st.Drops[DropFragment])
	require.EqualValues(t, 1, st.Delivered)
}

func TestRouterFragmentsAtEgressMTU(t *testing.T) {
	// h1 sends 1400-byte packets; the router's egress link has MTU 1000.
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{}), Symmetric("", 1000, Impairments{}))
	_, got := listen(t, lt.h2, "10.0.2.2:500")
	src, _ := listen(t, lt.h1, "10.0.1.2:500")
	msg := payload(1372, 5)
	require.NoError(t, src.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), msg))
	lt.net.Run(time.Second)
	require.Len(t, *got, 1)
	require.Equal(t, msg, (*got)[0].payload)
	require.EqualValues(t, 0, lt.left.Stats(AtoB).Fragments)
	require.EqualValues(t, 2, lt.right.Stats(AtoB).Fragments, "router fragmented")
}

func TestRouterRefragmentsFragments(t *testing.T) {
	// 3000 bytes leave h1 as 1500+1500+68; the router splits each 1500-byte
	// fragment again for the 1280-byte link, keeping the offsets of the
	// original datagram.
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{}), Symmetric("", 1280, Impairments{}))
	_, got := listen(t, lt.h2, "10.0.2.2:500")
	var offsets []int
	lt.right.AddObserver(observerFunc(func(ev *PacketEvent) {
		if pi, ok := ParsePacket(ev.Packet); ok && ev.Kind == PacketSent {
			offsets = append(offsets, pi.FragOffset)
		}
	}))
	msg := payload(3000, 9)
	require.NoError(t, lt.h1.SendUDP(netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("10.0.2.2:500"), msg))
	lt.net.Run(time.Second)
	require.Equal(t, []int{0, 1256, 1480, 2736, 2960}, offsets)
	require.EqualValues(t, 3, lt.h1.Stats.TxFragments.Load())
	require.EqualValues(t, 3, lt.r.Stats.RxFragments.Load())
	require.EqualValues(t, 5, lt.r.Stats.TxFragments.Load())
	require.EqualValues(t, 5, lt.h2.Stats.RxFragments.Load())
	require.Len(t, *got, 1)
	require.Equal(t, msg, (*got)[0].payload)

	// IPv6 routers do not fragment: the router answers Packet Too Big.
	_, got6 := listen(t, lt.h2, "[fd00:2::2]:500")
	require.NoError(t, lt.h1.SendUDP(netip.MustParseAddrPort("[::]:0"), netip.MustParseAddrPort("[fd00:2::2]:500"), payload(1600, 1)))
	lt.net.Run(2 * time.Second)
	require.Empty(t, *got6)
	require.EqualValues(t, 1, lt.r.Stack().Stats().IP.Forwarding.PacketTooBig.Value())
}

func TestRouterDFSendsICMP(t *testing.T) {
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{}), Symmetric("", 1000, Impairments{}))
	_, got := listen(t, lt.h2, "10.0.2.2:500")
	src, err := lt.h1.ListenUDPWithOptions(netip.MustParseAddrPort("10.0.1.2:500"), nil, UDPOptions{DontFragment: true})
	require.NoError(t, err)
	var icmp [][]byte
	lt.left.AddObserver(observerFunc(func(ev *PacketEvent) {
		if ev.Kind == PacketSent && ev.Dir == BtoA {
			icmp = append(icmp, append([]byte(nil), ev.Packet...))
		}
	}))
	require.NoError(t, src.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), payload(1372, 5)))
	lt.net.Run(time.Second)
	require.Empty(t, *got)
	require.Len(t, icmp, 1)
	pi, ok := ParsePacket(icmp[0])
	require.True(t, ok)
	require.EqualValues(t, ipProtoICMP, pi.Protocol)
	// ICMP type 3 (destination unreachable), code 4 (fragmentation needed),
	// next-hop MTU 1000 (RFC 1191, Section 4).
	require.Equal(t, []byte{3, 4}, icmp[0][pi.HeaderLen:pi.HeaderLen+2])
	require.Equal(t, []byte{0x03, 0xe8}, icmp[0][pi.HeaderLen+6:pi.HeaderLen+8])
}

type observerFunc func(*PacketEvent)

func (f observerFunc) Observe(ev *PacketEvent) { f(ev) }

func TestReassemblyTimeoutUsesVirtualClock(t *testing.T) {
	// Drop the last fragment: the receiver's IPv4 reassembly buffer must be
	// released after gVisor's 30 s timeout, measured on the virtual clock.
	policy := Impairments{Fragments: FragmentPolicy{Mode: FragmentDropBeyond, Keep: 1}}
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{}), Symmetric("", 1500, policy))
	_, got := listen(t, lt.h2, "10.0.2.2:500")
	src, _ := listen(t, lt.h1, "10.0.1.2:500")
	require.NoError(t, src.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), payload(2000, 1)))
	var icmpAt []time.Duration
	lt.right.AddObserver(observerFunc(func(ev *PacketEvent) {
		pi, ok := ParsePacket(ev.Packet)
		// ICMP time exceeded (11), fragment reassembly time exceeded (1):
		// RFC 792.
		if ev.Kind == PacketSent && ev.Dir == BtoA && ok && pi.Protocol == ipProtoICMP &&
			bytes.Equal(ev.Packet[pi.HeaderLen:pi.HeaderLen+2], []byte{11, 1}) {
			icmpAt = append(icmpAt, ev.Time)
		}
	}))
	lt.net.Run(29 * time.Second)
	require.Empty(t, *got)
	require.Empty(t, icmpAt)
	lt.net.Run(31 * time.Second)
	require.Equal(t, []time.Duration{30 * time.Second}, icmpAt, "reassembly timed out after 30 s of virtual time")
	require.Zero(t, lt.net.Scheduler().Pending())
}

func TestIPv6NeedsMTU1280(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	a, _ := n.AddNode(NodeConfig{Name: "a"})
	b, _ := n.AddNode(NodeConfig{Name: "b"})
	ae, _ := a.AddNIC("eth0", 0)
	be, _ := b.AddNIC("eth0", 0)
	require.NoError(t, ae.AddAddress(netip.MustParsePrefix("fd00::1/64")))
	_, err := n.Connect(ae, be, Symmetric("small", 1000, Impairments{}))
	require.ErrorContains(t, err, "carries IPv6")
	require.Nil(t, ae.Link(), "failed connect leaves no half-attached link")
	_, err = n.Connect(be, ae, Symmetric("small", 1000, Impairments{}))
	require.ErrorContains(t, err, "carries IPv6")
	require.Nil(t, be.Link())
	_, err = n.Connect(ae, be, Symmetric("ok", 1280, Impairments{}))
	require.NoError(t, err)
	ce, _ := a.AddNIC("eth1", 0)
	de, _ := b.AddNIC("eth1", 0)
	_, err = n.Connect(ce, de, Symmetric("v4only", 576, Impairments{}))
	require.NoError(t, err)
	require.ErrorContains(t, ce.AddAddress(netip.MustParsePrefix("fd01::1/64")), "IPv6 needs an MTU")
	require.ErrorContains(t, a.AddRoute(netip.MustParsePrefix("::/0"), ce.ID()), "IPv6 needs an MTU")
	require.NoError(t, ce.AddAddress(netip.MustParsePrefix("10.9.0.1/24")))
}

func TestSendUDPErrors(t *testing.T) {
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{}), Symmetric("", 1500, Impairments{}))
	err := lt.h1.SendUDP(netip.MustParseAddrPort("10.0.1.2:999"), netip.MustParseAddrPort("10.0.2.2:500"), []byte("x"))
	require.ErrorContains(t, err, "sim: node h1: no UDP socket bound")
	// Ephemeral source.
	_, got := listen(t, lt.h2, "0.0.0.0:7")
	require.NoError(t, lt.h1.SendUDP(netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("10.0.2.2:7"), []byte("hi")))
	lt.net.Run(time.Second)
	require.Len(t, *got, 1)
	require.True(t, bytes.Equal([]byte("hi"), (*got)[0].payload))
	require.Equal(t, netip.MustParseAddrPort("10.0.2.2:7"), (*got)[0].dst, "destination from packet info on a wildcard bind")
	_, err = lt.h2.ListenUDP(netip.MustParseAddrPort("10.0.2.2:7"), nil)
	require.Error(t, err, "port in use")
}
