package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pingPong is a toy sans-I/O engine: the initiator sends "hello" and
// retransmits every second until it gets "world"; the responder answers.
type pingPong struct {
	initiator   bool
	local, peer netip.AddrPort
	out         []Datagram
	costs       []string
	deadline    time.Time
	done        bool
	doneAt      time.Time
	sends       int
}

func (p *pingPong) start(now time.Time) {
	p.out = append(p.out, Datagram{Local: p.local, Remote: p.peer, Payload: []byte("hello")})
	p.sends++
	p.deadline = now.Add(time.Second)
}

func (p *pingPong) Handle(now time.Time, d Datagram) {
	switch {
	case !p.initiator && string(d.Payload) == "hello":
		p.costs = append(p.costs, "op")
		p.out = append(p.out, Datagram{Local: d.Local, Remote: d.Remote, Payload: []byte("world")})
	case p.initiator && string(d.Payload) == "world" && !p.done:
		p.done, p.doneAt = true, now
		p.deadline = time.Time{}
	}
}

func (p *pingPong) HandleTimeout(now time.Time) {
	if !p.done && !p.deadline.IsZero() && !now.Before(p.deadline) {
		p.start(now)
	}
}

func (p *pingPong) NextTimeout() (time.Time, bool) { return p.deadline, !p.deadline.IsZero() }

func (p *pingPong) PollTransmit() (Datagram, bool) {
	if len(p.out) == 0 {
		return Datagram{}, false
	}
	d := p.out[0]
	p.out = p.out[1:]
	return d, true
}

func (p *pingPong) PollCost() (string, int, bool) {
	if len(p.costs) == 0 {
		return "", 0, false
	}
	op := p.costs[0]
	p.costs = p.costs[1:]
	return op, 1, true
}

func TestEngineHost(t *testing.T) {
	// The first hello is lost on a link that drops everything for 1.5 s;
	// the retransmission at 1 s is lost too, the one at 2 s gets through.
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{Delay: 10 * time.Millisecond}), Symmetric("", 1500, Impairments{Delay: 10 * time.Millisecond}))
	lt.left.SetDown(true)
	lt.net.At(1500*time.Millisecond, func() { lt.left.SetDown(false) })
	// The responder's CPU: 2 ms per "op" at speed 0.5 -> 4 ms.
	lt.h2.cpu = NewCPU(lt.net.sched, CPUConfig{Cores: 1, Speed: 0.5, Table: &CostTable{Name: "t", Ops: map[string]float64{"op": 2e6}}})

	ini := &pingPong{initiator: true, local: netip.MustParseAddrPort("10.0.1.2:500"), peer: netip.MustParseAddrPort("10.0.2.2:500")}
	res := &pingPong{}
	hi, err := lt.h1.HostEngine(ini, ini.local, netip.MustParseAddrPort("10.0.1.2:4500"))
	require.NoError(t, err)
	_, err = lt.h2.HostEngine(res, netip.MustParseAddrPort("0.0.0.0:500"))
	require.NoError(t, err)
	lt.net.At(0, func() { ini.start(lt.net.sched.Now()); hi.Kick() })
	lt.net.Run(10 * time.Second)
	require.True(t, ini.done)
	require.Equal(t, 3, ini.sends)
	// Sent at 2 s, 20 ms each way plus 4 ms of responder CPU.
	require.Equal(t, DefaultEpoch.Add(2*time.Second+44*time.Millisecond), ini.doneAt)
	require.EqualValues(t, 1, lt.h2.CPU().Stats().Ops["engine"])
	require.EqualValues(t, 3, hi.Sent)
	require.Zero(t, lt.net.sched.Pending(), "no timer left once done")

	_, err = lt.h1.HostEngine(ini)
	require.Error(t, err)
}

func TestTunnel(t *testing.T) {
	// h1 -- r -- h2 where r's route to h2's subnet goes through a tunnel
	// whose output is looped back into the same tunnel after 5 ms (a
	// stand-in for seal, send, open at the far end).
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{}), Symmetric("", 1500, Impairments{}))
	var tun *Tunnel
	var err error
	var seen int
	tun, err = lt.r.AddTunnel("vti0", 1400, func(pkt []byte) {
		seen++
		p := append([]byte(nil), pkt...)
		lt.net.sched.After(5*time.Millisecond, func() {
			// Deliver to h2 through the real link: inject into the
			// stack, which routes 10.0.2.0/24 to eth1.
			lt.r.RemoveRoutes(netip.MustParsePrefix("10.0.2.0/25"))
			tun.Inject(p)
		})
	})
	require.NoError(t, err)
	require.NoError(t, lt.r.AddRoute(netip.MustParsePrefix("10.0.2.0/25"), tun.ID()))
	_, got := listen(t, lt.h2, "10.0.2.2:500")
	src, _ := listen(t, lt.h1, "10.0.1.2:500")
	require.NoError(t, src.SendTo(netip.MustParseAddrPort("10.0.2.2:500"), payload(1000, 1)))
	lt.net.Run(time.Second)
	require.Equal(t, 1, seen)
	require.Len(t, *got, 1)
	require.Equal(t, payload(1000, 1), (*got)[0].payload)
	require.Equal(t, 5*time.Millisecond, (*got)[0].at)
	require.EqualValues(t, 1, tun.TxPackets.Load())
	require.EqualValues(t, 1, tun.RxPackets.Load())
}

// stuck is an engine whose deadline never moves.
type stuck struct{ calls int }

func (s *stuck) Handle(time.Time, Datagram)     {}
func (s *stuck) HandleTimeout(time.Time)        { s.calls++ }
func (s *stuck) NextTimeout() (time.Time, bool) { return DefaultEpoch.Add(time.Second), true }
func (s *stuck) PollTransmit() (Datagram, bool) { return Datagram{}, false }

func TestEngineHostStuckTimer(t *testing.T) {
	lt := newLine(t, 1, Symmetric("", 1500, Impairments{}), Symmetric("", 1500, Impairments{}))
	e := &stuck{}
	h, err := lt.h1.HostEngine(e, netip.MustParseAddrPort("10.0.1.2:500"))
	require.NoError(t, err)
	lt.net.Run(2 * time.Second)
	// Fired at 1 s, then every millisecond rather than forever at 1 s.
	require.Equal(t, 1001, e.calls)
	require.EqualValues(t, 1001, h.TimerStalls)
	h.Close()
}
