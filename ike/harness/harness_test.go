package harness

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// pinger sends "ping" until it sees "pong", retransmitting every second.
type pinger struct {
	local, peer netip.AddrPort
	out         [][]byte
	deadline    time.Time
	armed       bool
	done        bool
	doneAt      time.Time
	sends       int
	fromAddr    netip.AddrPort // where the last datagram came from
}

func (e *pinger) start(now time.Time) { e.send(now) }
func (e *pinger) send(now time.Time) {
	e.sends++
	e.out = append(e.out, []byte(fmt.Sprintf("ping %d", e.sends)))
	e.deadline, e.armed = now.Add(time.Second), true
}
func (e *pinger) Handle(now time.Time, local, remote netip.AddrPort, data []byte) {
	e.fromAddr = remote
	if string(data[:4]) == "pong" && !e.done {
		e.done, e.doneAt, e.armed = true, now, false
	}
}
func (e *pinger) HandleTimeout(now time.Time) {
	if e.armed && !now.Before(e.deadline) {
		e.send(now)
	}
}
func (e *pinger) NextTimeout() (time.Time, bool) { return e.deadline, e.armed }
func (e *pinger) PollTransmit() (netip.AddrPort, netip.AddrPort, []byte, bool) {
	if len(e.out) == 0 {
		return netip.AddrPort{}, netip.AddrPort{}, nil, false
	}
	d := e.out[0]
	e.out = e.out[1:]
	return e.local, e.peer, d, true
}

// ponger answers every ping to the address it came from.
type ponger struct {
	local netip.AddrPort
	out   [][]byte
	to    []netip.AddrPort
	seen  int
}

func (e *ponger) Handle(now time.Time, local, remote netip.AddrPort, data []byte) {
	e.seen++
	e.out = append(e.out, []byte("pong"))
	e.to = append(e.to, remote)
}
func (e *ponger) HandleTimeout(time.Time)        {}
func (e *ponger) NextTimeout() (time.Time, bool) { return time.Time{}, false }
func (e *ponger) PollTransmit() (netip.AddrPort, netip.AddrPort, []byte, bool) {
	if len(e.out) == 0 {
		return netip.AddrPort{}, netip.AddrPort{}, nil, false
	}
	d, to := e.out[0], e.to[0]
	e.out, e.to = e.out[1:], e.to[1:]
	return e.local, to, d, true
}

var (
	addrA = netip.MustParseAddrPort("192.0.2.1:500")
	addrB = netip.MustParseAddrPort("192.0.2.2:500")
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func TestLatency(t *testing.T) {
	a := &pinger{local: addrA, peer: addrB}
	b := &ponger{local: addrB}
	p := New(a, b, t0, 1)
	p.AtoB.Latency, p.BtoA.Latency = 10*time.Millisecond, 15*time.Millisecond
	a.start(p.Now)
	if err := p.Run(t0.Add(time.Minute), func() bool { return a.done }); err != nil {
		t.Fatal(err)
	}
	if got := a.doneAt.Sub(t0); got != 25*time.Millisecond {
		t.Fatalf("round trip %v, want 25ms", got)
	}
}

func runLossy(seed uint64) (time.Duration, int) {
	a := &pinger{local: addrA, peer: addrB}
	b := &ponger{local: addrB}
	p := New(a, b, t0, seed)
	p.AtoB = Link{Latency: 5 * time.Millisecond, Loss: 0.5, Duplicate: 0.2}
	p.BtoA = Link{Latency: 5 * time.Millisecond, Loss: 0.5}
	a.start(p.Now)
	if err := p.Run(t0.Add(time.Hour), func() bool { return a.done }); err != nil {
		panic(err)
	}
	return a.doneAt.Sub(t0), a.sends
}

func TestLossIsSeededAndDeterministic(t *testing.T) {
	d1, n1 := runLossy(7)
	d2, n2 := runLossy(7)
	if d1 != d2 || n1 != n2 {
		t.Fatalf("same seed differs: %v/%d vs %v/%d", d1, n1, d2, n2)
	}
	var retried bool
	for s := uint64(0); s < 20; s++ {
		if _, n := runLossy(s); n > 1 {
			retried = true
		}
	}
	if !retried {
		t.Fatal("50% loss never caused a retransmission in 20 seeds")
	}
}

func TestNATRewritesSource(t *testing.T) {
	a := &pinger{local: addrA, peer: addrB}
	b := &ponger{local: addrB}
	p := New(a, b, t0, 1)
	p.NAT = &NAT{Public: netip.MustParseAddrPort("198.51.100.7:31000")}
	a.start(p.Now)
	if err := p.Run(t0.Add(time.Minute), func() bool { return a.done }); err != nil {
		t.Fatal(err)
	}
	if len(p.Trace) != 2 || p.Trace[1].Dst != p.NAT.Public {
		t.Fatalf("B did not answer the public address: %+v", p.Trace)
	}
}

func TestMTUAndFilter(t *testing.T) {
	a := &pinger{local: addrA, peer: addrB}
	b := &ponger{local: addrB}
	p := New(a, b, t0, 1)
	p.AtoB.MTU = 20 + 8 + 5 // "ping 1" is 6 octets
	a.start(p.Now)
	p.Run(t0.Add(1500*time.Millisecond), func() bool { return a.done })
	if b.seen != 0 || p.Trace[0].Fate != "mtu" {
		t.Fatalf("oversized datagram delivered: %+v", p.Trace)
	}
	p.AtoB.MTU = 0
	p.Filter = func(fromA bool, _, _ netip.AddrPort, _ []byte) bool { return fromA && a.sends < 5 }
	if err := p.Run(t0.Add(time.Minute), func() bool { return a.done }); err != nil {
		t.Fatal(err)
	}
	var fates []string
	for _, r := range p.Trace {
		if r.FromA {
			fates = append(fates, r.Fate)
		}
	}
	// t=0, 1s, 2s: too large; 3s: filtered; 4s: passes.
	want := []string{"mtu", "mtu", "mtu", "filtered", "sent"}
	if fmt.Sprint(fates) != fmt.Sprint(want) {
		t.Fatalf("fates %v, want %v", fates, want)
	}
}

func TestReorder(t *testing.T) {
	a := &pinger{local: addrA, peer: addrB}
	b := &ponger{local: addrB}
	p := New(a, b, t0, 3)
	p.AtoB = Link{Latency: time.Millisecond, Reorder: 1, ReorderDelay: 2 * time.Second}
	a.start(p.Now)
	if err := p.Run(t0.Add(time.Minute), func() bool { return a.done }); err != nil {
		t.Fatal(err)
	}
	// Every ping is held 2 s, so the first answer arrives after 2 s and the
	// pinger has retransmitted meanwhile.
	if a.sends < 2 || a.doneAt.Sub(t0) < 2*time.Second {
		t.Fatalf("sends=%d done after %v", a.sends, a.doneAt.Sub(t0))
	}
}
