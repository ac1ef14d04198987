package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRealtimeTCPBulk runs a TCP bulk transfer h1 -> r -> h2 on the wall
// clock: the router forwards in the scheduler's goroutine while gVisor's
// TCP runs in its own, and every octet sent arrives (TCP checksums
// intact: a host never claims checksum offload).
func TestRealtimeTCPBulk(t *testing.T) {
	n := NewNetwork(NetworkConfig{Seed: 1, Realtime: true})
	t.Cleanup(n.Close)
	h1, err := n.AddNode(NodeConfig{Name: "h1", TCP: true, IPv4Only: true})
	require.NoError(t, err)
	r, err := n.AddNode(NodeConfig{Name: "r", Forwarding: true, IPv4Only: true})
	require.NoError(t, err)
	h2, err := n.AddNode(NodeConfig{Name: "h2", TCP: true, IPv4Only: true})
	require.NoError(t, err)
	h1e, _ := h1.AddNIC("eth0", 0)
	r0, _ := r.AddNIC("eth0", 0)
	r1, _ := r.AddNIC("eth1", 0)
	h2e, _ := h2.AddNIC("eth0", 0)
	_, err = n.Connect(h1e, r0, Symmetric("h1-r", 1500, Impairments{Delay: 100 * time.Microsecond}))
	require.NoError(t, err)
	_, err = n.Connect(r1, h2e, Symmetric("r-h2", 1500, Impairments{}))
	require.NoError(t, err)
	require.NoError(t, h1e.AddAddress(netip.MustParsePrefix("10.0.1.2/24")))
	require.NoError(t, r0.AddAddress(netip.MustParsePrefix("10.0.1.1/24")))
	require.NoError(t, r1.AddAddress(netip.MustParsePrefix("10.0.2.1/24")))
	require.NoError(t, h2e.AddAddress(netip.MustParsePrefix("10.0.2.2/24")))
	require.NoError(t, h1.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), h1e.ID()))
	require.NoError(t, h2.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), h2e.ID()))

	_, err = (&Node{name: "x"}).ListenTCPSink(netip.MustParseAddrPort("10.0.2.2:5001"), 0)
	require.ErrorContains(t, err, "no TCP")
	sink, err := h2.ListenTCPSink(netip.MustParseAddrPort("10.0.2.2:5001"), 1000)
	require.NoError(t, err)
	t.Cleanup(sink.Close)
	bulk, err := h1.StartTCPBulk(netip.MustParseAddrPort("10.0.2.2:5001"), TCPBulkOptions{MSS: 1000})
	require.NoError(t, err)
	var mid uint64
	n.At(300*time.Millisecond, func() { mid = sink.Bytes() })
	n.Run(400 * time.Millisecond)
	require.NoError(t, bulk.Stop())
	// Drain what the closed connection still holds.
	for end := 500 * time.Millisecond; sink.Bytes() < bulk.Bytes() && end < 10*time.Second; end += 100 * time.Millisecond {
		n.Run(end)
	}
	require.Positive(t, mid, "data flowed while the scheduler ran")
	require.EqualValues(t, 1, sink.Conns())
	require.Equal(t, bulk.Bytes(), sink.Bytes(), "everything written arrived")
	require.Zero(t, r.Stack().Stats().IP.MalformedPacketsReceived.Value())
	require.Zero(t, h2.Stack().Stats().TCP.ChecksumErrors.Value())
	// Segments were capped at the MSS: no IP packet above 1040 octets.
	require.Zero(t, h1.Stats.TxFragments.Load())
	require.LessOrEqual(t, h1.Stats.TxBytes.Load(), h1.Stats.TxPackets.Load()*1040)
}
