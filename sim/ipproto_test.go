package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSendIPESP(t *testing.T) {
	// h1 -- r -- h2 with a 576-octet MTU on the right: a 1400-octet ESP
	// payload is fragmented by the router and reassembled by h2's stack
	// before it reaches the handler.
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{Delay: time.Millisecond}), Symmetric("", 576, Impairments{Delay: time.Millisecond}))
	type got struct {
		src, dst netip.Addr
		p        []byte
		at       time.Duration
	}
	var rx []got
	require.NoError(t, lt.h2.SetIPHandler(IPProtoESP, func(src, dst netip.Addr, p []byte) {
		rx = append(rx, got{src, dst, p, lt.net.sched.Elapsed()})
	}))
	require.Error(t, lt.h2.SetIPHandler(17, nil))
	h1, h2 := netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.0.2.2")
	big, small := payload(1400, 3), payload(100, 4)
	lt.net.At(0, func() {
		require.NoError(t, lt.h1.SendIP(h1, h2, IPProtoESP, big))
		require.NoError(t, lt.h1.SendIP(netip.Addr{}, h2, IPProtoESP, small))
	})
	lt.net.Run(time.Second)
	require.Len(t, rx, 2)
	require.Equal(t, big, rx[0].p)
	require.Equal(t, h1, rx[0].src)
	require.Equal(t, h2, rx[0].dst)
	require.Equal(t, small, rx[1].p)
	require.Equal(t, h1, rx[1].src, "the source address is chosen by the route")
	require.EqualValues(t, 3, lt.r.Stats.TxFragments.Load(), "1400+20 octets in 576-octet fragments")

	// Without a handler the packet is not delivered anywhere.
	require.NoError(t, lt.h2.SetIPHandler(IPProtoESP, nil))
	lt.net.At(lt.net.sched.Elapsed(), func() { require.NoError(t, lt.h1.SendIP(h1, h2, IPProtoESP, small)) })
	lt.net.Run(2 * time.Second)
	require.Len(t, rx, 2)
	require.Error(t, lt.h1.SendIP(h1, netip.MustParseAddr("fd00:2::2"), IPProtoESP, small))
}

// deferred is an engine that charges one op per datagram and reports a
// completion; it records when completions ran.
type deferred struct {
	stuck
	out   []Datagram
	costs int
	done  []time.Time
	pend  bool
}

func (d *deferred) Handle(_ time.Time, dg Datagram) {
	d.costs++
	d.pend = true
	d.out = append(d.out, Datagram{Local: dg.Local, Remote: dg.Remote, Payload: []byte("ack")})
}
func (d *deferred) NextTimeout() (time.Time, bool) { return time.Time{}, false }
func (d *deferred) PollTransmit() (Datagram, bool) {
	if len(d.out) == 0 {
		return Datagram{}, false
	}
	x := d.out[0]
	d.out = d.out[1:]
	return x, true
}
func (d *deferred) PollCost() (string, int, bool) {
	if d.costs == 0 {
		return "", 0, false
	}
	d.costs--
	return "op", 1, true
}
func (d *deferred) TakeCompletion() func(time.Time) {
	if !d.pend {
		return nil
	}
	d.pend = false
	return func(now time.Time) { d.done = append(d.done, now) }
}

func TestEngineHostCompletion(t *testing.T) {
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{Delay: 10 * time.Millisecond}), Symmetric("", 1500, Impairments{Delay: 10 * time.Millisecond}))
	lt.h2.cpu = NewCPU(lt.net.sched, CPUConfig{Cores: 1, Speed: 1, Table: &CostTable{Name: "t", Ops: map[string]float64{"op": 3e6}}})
	d := &deferred{}
	_, err := lt.h2.HostEngine(d, netip.MustParseAddrPort("10.0.2.2:500"))
	require.NoError(t, err)
	c, acks := listen(t, lt.h1, "10.0.1.2:500")
	lt.net.At(0, func() {
		require.NoError(t, c.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), []byte("a")))
		require.NoError(t, c.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), []byte("b")))
	})
	lt.net.Run(time.Second)
	// Both arrive at 20 ms; one core: completions at 23 and 26 ms.
	require.Equal(t, []time.Time{DefaultEpoch.Add(23 * time.Millisecond), DefaultEpoch.Add(26 * time.Millisecond)}, d.done)
	require.Len(t, *acks, 2)
	require.Equal(t, 46*time.Millisecond, (*acks)[1].at)
	st := lt.h2.CPU().Stats()
	require.Equal(t, 6*time.Millisecond, st.Busy)
	require.Equal(t, 6*time.Millisecond, st.BusyWall)
}

func TestCPUBusyWall(t *testing.T) {
	s := NewScheduler(DefaultEpoch)
	c := NewCPU(s, CPUConfig{Cores: 2})
	s.At(0, func() {
		c.ChargeDuration("a", 10*time.Millisecond, nil)
		c.ChargeDuration("b", 4*time.Millisecond, nil)
		c.ChargeDuration("c", 4*time.Millisecond, nil) // queued behind b: 4..8 ms
	})
	s.At(20*time.Millisecond, func() { c.ChargeDuration("d", 5*time.Millisecond, nil) })
	s.RunUntil(time.Second)
	st := c.Stats()
	require.Equal(t, 23*time.Millisecond, st.Busy)
	require.Equal(t, 15*time.Millisecond, st.BusyWall, "0..10 ms and 20..25 ms")
}
