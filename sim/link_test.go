package sim

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testPort records what a link delivers to it.
type testPort struct {
	name string
	net  *Network
	l    *Link
	side int
	got  []delivery
}

type delivery struct {
	at  time.Duration
	pkt []byte
}

func (p *testPort) PortName() string { return p.name }
func (p *testPort) attach(l *Link, side int) error {
	p.l, p.side = l, side
	return nil
}
func (p *testPort) detach() { p.l = nil }
func (p *testPort) deliver(pkt []byte) {
	p.got = append(p.got, delivery{p.net.sched.Elapsed(), pkt})
}
func (p *testPort) send(pkt []byte) { p.l.transmit(p.side, pkt) }

func newTestLink(t testing.TB, seed uint64, cfg LinkConfig) (*Network, *Link, *testPort, *testPort) {
	t.Helper()
	n := NewNetwork(NetworkConfig{Seed: seed})
	a := &testPort{name: "a", net: n}
	b := &testPort{name: "b", net: n}
	if cfg.Name == "" {
		cfg.Name = "l"
	}
	l, err := n.Connect(a, b, cfg)
	require.NoError(t, err)
	return n, l, a, b
}

// ipv4Packet builds an IPv4 header with a sequence number in the payload.
func ipv4Packet(size int, id uint16, fragOff int, mf bool, seq uint32) []byte {
	p := make([]byte, size)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	binary.BigEndian.PutUint16(p[4:], id)
	ff := uint16(fragOff / 8)
	if mf {
		ff |= 0x2000
	}
	binary.BigEndian.PutUint16(p[6:], ff)
	p[8] = 64
	p[9] = ipProtoUDP
	copy(p[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	if size >= 24 {
		binary.BigEndian.PutUint32(p[20:], seq)
	}
	return p
}

func seqOf(p []byte) uint32 { return binary.BigEndian.Uint32(p[20:]) }

// sendEvery schedules count packets from port p, one every gap.
func sendEvery(n *Network, p *testPort, count int, gap time.Duration, size int) {
	for i := 0; i < count; i++ {
		i := i
		n.sched.At(time.Duration(i)*gap, func() { p.send(ipv4Packet(size, uint16(i), 0, false, uint32(i))) })
	}
}

func TestLinkDelayJitter(t *testing.T) {
	im := Impairments{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond}
	n, l, a, b := newTestLink(t, 7, Symmetric("", 1500, im))
	// Packets 25 ms apart never catch up with each other, so each sees the
	// configured distribution: uniform in [30, 50] ms.
	const count = 20000
	const gap = 25 * time.Millisecond
	sendEvery(n, a, count, gap, 100)
	n.Run(time.Duration(count+10) * gap)
	require.Len(t, b.got, count)
	var sum, sq float64
	minD, maxD := time.Hour, time.Duration(0)
	for i, d := range b.got {
		require.EqualValues(t, i, seqOf(d.pkt))
		delay := d.at - time.Duration(i)*gap
		sum += float64(delay)
		sq += float64(delay) * float64(delay)
		minD, maxD = min(minD, delay), max(maxD, delay)
	}
	mean := sum / count
	sd := math.Sqrt(sq/count - mean*mean)
	require.InDelta(t, float64(40*time.Millisecond), mean, float64(200*time.Microsecond))
	// Uniform on [-J, J] has standard deviation J/sqrt(3).
	require.InDelta(t, float64(10*time.Millisecond)/math.Sqrt(3), sd, float64(200*time.Microsecond))
	require.GreaterOrEqual(t, minD, 30*time.Millisecond)
	require.LessOrEqual(t, maxD, 50*time.Millisecond)
	require.EqualValues(t, count, l.Stats(AtoB).Delivered)
}

func TestLinkJitterKeepsOrder(t *testing.T) {
	// Packets 1 ms apart with 10 ms of jitter: none overtakes another.
	im := Impairments{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond}
	n, _, a, b := newTestLink(t, 7, Symmetric("", 1500, im))
	sendEvery(n, a, 5000, time.Millisecond, 100)
	n.Run(time.Hour)
	require.Len(t, b.got, 5000)
	for i, d := range b.got {
		require.EqualValues(t, i, seqOf(d.pkt))
		delay := d.at - time.Duration(i)*time.Millisecond
		require.GreaterOrEqual(t, delay, 30*time.Millisecond)
		require.LessOrEqual(t, delay, 50*time.Millisecond)
	}
}

func TestLinkBernoulliLoss(t *testing.T) {
	im := Impairments{Loss: 0.1}
	n, l, a, b := newTestLink(t, 3, Symmetric("", 1500, im))
	const count = 100000
	sendEvery(n, a, count, time.Microsecond, 64)
	n.Run(time.Hour)
	rate := 1 - float64(len(b.got))/count
	// Binomial standard deviation sqrt(p(1-p)/n) ~ 0.00095: 5 sigma.
	require.InDelta(t, 0.1, rate, 0.005)
	st := l.Stats(AtoB)
	require.EqualValues(t, count-len(b.got), st.Drops[DropLoss])
	require.EqualValues(t, count, st.Packets)
}

// lossRuns returns the loss rate and the mean length of runs of consecutive
// losses among sequence numbers 0..count-1.
func lossRuns(got []delivery, count int) (float64, float64) {
	recv := make([]bool, count)
	for _, d := range got {
		recv[seqOf(d.pkt)] = true
	}
	lost, runs := 0, 0
	for i := 0; i < count; i++ {
		if !recv[i] {
			lost++
			if i == 0 || recv[i-1] {
				runs++
			}
		}
	}
	return float64(lost) / float64(count), float64(lost) / float64(max(runs, 1))
}

func TestLinkGilbertElliottBursts(t *testing.T) {
	ge := &GilbertElliott{P: 0.01, R: 0.25, LossGood: 0, LossBad: 1}
	const count = 200000
	n, _, a, b := newTestLink(t, 11, Symmetric("", 1500, Impairments{GE: ge}))
	sendEvery(n, a, count, time.Microsecond, 64)
	n.Run(time.Hour)
	rate, burst := lossRuns(b.got, count)
	require.InDelta(t, ge.MeanLoss(), rate, 0.004, "stationary loss %.4f", ge.MeanLoss())
	// With LossBad = 1 a burst is a bad-state sojourn: geometric, mean 1/R.
	require.InDelta(t, 1/ge.R, burst, 0.3)

	// Bernoulli loss at the same mean rate has bursts of about 1/(1-p).
	n2, _, a2, b2 := newTestLink(t, 11, Symmetric("", 1500, Impairments{Loss: ge.MeanLoss()}))
	sendEvery(n2, a2, count, time.Microsecond, 64)
	n2.Run(time.Hour)
	rate2, burst2 := lossRuns(b2.got, count)
	require.InDelta(t, ge.MeanLoss(), rate2, 0.003)
	require.Less(t, burst2, 1.1)
}

func TestLinkBandwidthAndQueue(t *testing.T) {
	// 1 Mbit/s: a 1250-byte packet takes 10 ms to serialize.
	im := Impairments{Delay: 5 * time.Millisecond, Bandwidth: 1_000_000, QueuePackets: 5}
	n, l, a, b := newTestLink(t, 1, Symmetric("", 1500, im))
	n.sched.At(0, func() {
		for i := 0; i < 10; i++ {
			a.send(ipv4Packet(1250, uint16(i), 0, false, uint32(i)))
		}
	})
	n.Run(time.Second)
	// The first packet is transmitted at once, five wait, four are dropped.
	require.Len(t, b.got, 6)
	for i, d := range b.got {
		require.Equal(t, time.Duration(i+1)*10*time.Millisecond+5*time.Millisecond, d.at)
	}
	st := l.Stats(AtoB)
	require.EqualValues(t, 4, st.Drops[DropQueue])
	require.Equal(t, 5, st.MaxQueue)

	// Byte limit.
	im = Impairments{Bandwidth: 1_000_000, QueueBytes: 3000}
	n, l, a, b = newTestLink(t, 1, Symmetric("", 1500, im))
	n.sched.At(0, func() {
		for i := 0; i < 10; i++ {
			a.send(ipv4Packet(1000, uint16(i), 0, false, uint32(i)))
		}
	})
	n.Run(time.Second)
	require.Len(t, b.got, 4)
	require.EqualValues(t, 6, l.Stats(AtoB).Drops[DropQueue])
}

func TestLinkThroughputMatchesBandwidth(t *testing.T) {
	im := Impairments{Bandwidth: 10_000_000, QueuePackets: 100}
	n, _, a, b := newTestLink(t, 1, Symmetric("", 1500, im))
	// Offer 20 Mbit/s for one second; about half gets through.
	sendEvery(n, a, 1667, 600*time.Microsecond, 1500)
	n.Run(time.Second)
	bits := 0
	for _, d := range b.got {
		bits += 8 * len(d.pkt)
	}
	require.InDelta(t, 10_000_000, bits, 10_000_000*0.01)
}

func TestLinkDuplicateAndReorder(t *testing.T) {
	im := Impairments{Delay: 10 * time.Millisecond, Duplicate: 0.05, Reorder: 0.1, ReorderDelay: 3 * time.Millisecond}
	n, l, a, b := newTestLink(t, 5, Symmetric("", 1500, im))
	const count = 50000
	sendEvery(n, a, count, time.Millisecond, 64)
	n.Run(time.Hour)
	st := l.Stats(AtoB)
	require.InDelta(t, 0.05, float64(st.Duplicated)/count, 0.005)
	require.InDelta(t, 0.10, float64(st.Reordered)/count, 0.006)
	require.EqualValues(t, count+st.Duplicated, len(b.got))
	// A held-back packet is overtaken by the next two or three.
	late := 0
	var maxSeq uint32
	for _, d := range b.got {
		s := seqOf(d.pkt)
		if s < maxSeq {
			late++
		}
		maxSeq = max(maxSeq, s)
	}
	require.InDelta(t, float64(st.Reordered), float64(late), float64(st.Reordered)*0.1)
}

func TestLinkFragmentPolicies(t *testing.T) {
	frags := func(id uint16, n int) [][]byte {
		var out [][]byte
		for i := 0; i < n; i++ {
			out = append(out, ipv4Packet(500, id, i*480, i < n-1, uint32(i)))
		}
		return out
	}
	cases := []struct {
		name      string
		policy    FragmentPolicy
		delivered int
		fragDrops uint64
	}{
		{"pass", FragmentPolicy{}, 9, 0},
		{"drop", FragmentPolicy{Mode: FragmentDropAll}, 1, 8},
		{"drop-beyond-2", FragmentPolicy{Mode: FragmentDropBeyond, Keep: 2}, 1 + 2 + 2, 4},
		{"blackhole-400", FragmentPolicy{BlackHoleAbove: 400}, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, l, a, b := newTestLink(t, 1, Symmetric("", 1500, Impairments{Fragments: tc.policy}))
			n.sched.At(0, func() {
				a.send(ipv4Packet(300, 99, 0, false, 0)) // not a fragment
				for _, f := range frags(1, 3) {
					a.send(f)
				}
				for _, f := range frags(2, 5) {
					a.send(f)
				}
			})
			n.Run(time.Second)
			require.Len(t, b.got, tc.delivered)
			st := l.Stats(AtoB)
			require.EqualValues(t, 8, st.Fragments)
			require.Equal(t, tc.fragDrops, st.Drops[DropFragment])
			if tc.policy.BlackHoleAbove > 0 {
				require.EqualValues(t, 8, st.Drops[DropBlackHole])
			}
		})
	}
}

func TestLinkIPv6FragmentsDropped(t *testing.T) {
	n, l, a, b := newTestLink(t, 1, Symmetric("", 1500, Impairments{Fragments: FragmentPolicy{Mode: FragmentDropAll}}))
	pkt := make([]byte, 40+8+16)
	pkt[0] = 0x60
	binary.BigEndian.PutUint16(pkt[4:], 24)
	pkt[6] = ipProtoIPv6Frag
	pkt[40] = ipProtoUDP
	binary.BigEndian.PutUint16(pkt[42:], 1) // offset 0, M=1
	binary.BigEndian.PutUint32(pkt[44:], 0xdeadbeef)
	pi, ok := ParsePacket(pkt)
	require.True(t, ok)
	require.True(t, pi.Fragment)
	require.EqualValues(t, ipProtoUDP, pi.Protocol)
	require.EqualValues(t, 0xdeadbeef, pi.FragID)
	n.sched.At(0, func() { a.send(pkt) })
	n.Run(time.Second)
	require.Empty(t, b.got)
	require.EqualValues(t, 1, l.Stats(AtoB).Drops[DropFragment])
}

func TestLinkDownUp(t *testing.T) {
	im := Impairments{Delay: 10 * time.Millisecond}
	n, l, a, b := newTestLink(t, 1, Symmetric("", 1500, im))
	sendEvery(n, a, 100, time.Millisecond, 64)
	n.sched.At(20*time.Millisecond+time.Microsecond, func() { l.SetDown(true) })
	n.sched.At(50*time.Millisecond+time.Microsecond, func() { l.SetDown(false) })
	n.Run(time.Second)
	// Sent at 0..10 ms arrive by 20 ms. Sent at 11..20 ms would arrive at
	// 21..30 ms and are lost in flight; 21..50 ms are refused at once;
	// 51..99 ms arrive.
	st := l.Stats(AtoB)
	require.Equal(t, 11+49, len(b.got))
	require.EqualValues(t, 100-60, st.Drops[DropDown])
}

func TestLinkMTU(t *testing.T) {
	n, l, a, b := newTestLink(t, 1, Symmetric("", 1280, Impairments{}))
	n.sched.At(0, func() { a.send(ipv4Packet(1281, 1, 0, false, 0)); a.send(ipv4Packet(1280, 1, 0, false, 0)) })
	n.Run(time.Second)
	require.Len(t, b.got, 1)
	require.EqualValues(t, 1, l.Stats(AtoB).Drops[DropMTU])
}

func TestLinkSeedsIndependentOfOtherLinks(t *testing.T) {
	run := func(extra bool) []delivery {
		n := NewNetwork(NetworkConfig{Seed: 42})
		if extra {
			x, y := &testPort{name: "x", net: n}, &testPort{name: "y", net: n}
			_, err := n.Connect(x, y, Symmetric("aaa-first", 1500, Impairments{Loss: 0.5}))
			require.NoError(t, err)
		}
		a, b := &testPort{name: "a", net: n}, &testPort{name: "b", net: n}
		_, err := n.Connect(a, b, Symmetric("wan", 1500, Impairments{Loss: 0.3, Jitter: time.Millisecond, Delay: 5 * time.Millisecond}))
		require.NoError(t, err)
		sendEvery(n, a, 1000, time.Millisecond, 64)
		n.Run(time.Hour)
		return b.got
	}
	r1, r2 := run(false), run(true)
	require.Equal(t, r1, r2)
}

func TestImpairmentsValidate(t *testing.T) {
	bad := []Impairments{
		{Delay: -1},
		{Loss: 1.5},
		{Loss: math.NaN()},
		{Duplicate: -0.1},
		{GE: &GilbertElliott{P: 2}},
		{Bandwidth: -5},
		{Fragments: FragmentPolicy{Mode: 9}},
	}
	for _, im := range bad {
		require.Error(t, im.Validate(), "%+v", im)
		n := NewNetwork(NetworkConfig{})
		_, err := n.Connect(&testPort{net: n}, &testPort{net: n}, Symmetric("x", 1500, im))
		require.ErrorContains(t, err, "sim: link x:")
	}
	n := NewNetwork(NetworkConfig{})
	_, err := n.Connect(&testPort{net: n}, &testPort{net: n}, Symmetric("x", 100, Impairments{}))
	require.ErrorContains(t, err, "MTU 100")
}

func TestParsePacketTruncations(t *testing.T) {
	// Every prefix of a valid packet parses or fails cleanly.
	full := ipv4Packet(60, 1, 8, true, 1)
	for i := 0; i <= len(full); i++ {
		ParsePacket(full[:i])
	}
	v6 := make([]byte, 40+8+8)
	v6[0] = 0x60
	v6[6] = 0 // hop-by-hop
	v6[40] = ipProtoIPv6Frag
	v6[41] = 0
	v6[48] = ipProtoUDP
	for i := 0; i <= len(v6); i++ {
		ParsePacket(v6[:i])
	}
	pi, ok := ParsePacket(v6)
	require.True(t, ok)
	require.True(t, pi.Fragment)
	require.Equal(t, 56, pi.HeaderLen)
	_, ok = ParsePacket(bytes.Repeat([]byte{0x4f}, 10))
	require.False(t, ok)
}

func FuzzParsePacket(f *testing.F) {
	f.Add(ipv4Packet(60, 1, 8, true, 1))
	f.Add([]byte{0x60, 0, 0, 0, 0, 8, 44, 64})
	f.Fuzz(func(t *testing.T, b []byte) {
		pi, ok := ParsePacket(b)
		if ok && pi.HeaderLen > len(b) {
			t.Fatalf("header length %d beyond %d", pi.HeaderLen, len(b))
		}
	})
}
