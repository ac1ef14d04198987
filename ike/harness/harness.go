// Package harness runs two sans-I/O protocol endpoints against each other in
// one process over a simulated UDP path, stepping a virtual clock from one
// event to the next (the shape of quinn-proto's test Pair).
//
// The harness does not import the engine: an endpoint is anything with the
// five methods of Endpoint, so the IKE engine's own tests can use it through a
// small adapter. Impairments (latency, jitter, loss, duplication, reordering,
// a NAT that rewrites the source address of one direction) are drawn from a
// seeded PRNG; the same seed gives the same run.
package harness

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Endpoint is one side of the pair: a sans-I/O protocol engine.
type Endpoint interface {
	// Handle delivers a UDP payload that arrived on local from remote.
	Handle(now time.Time, local, remote netip.AddrPort, data []byte)
	// HandleTimeout tells the endpoint that its deadline passed.
	HandleTimeout(now time.Time)
	// NextTimeout returns the endpoint's next deadline, if it has one.
	NextTimeout() (time.Time, bool)
	// PollTransmit returns the next datagram to send.
	PollTransmit() (local, remote netip.AddrPort, data []byte, ok bool)
}

// Link describes one direction of the path.
type Link struct {
	// Latency is the one-way delay of every datagram.
	Latency time.Duration
	// Jitter adds a uniformly distributed delay in [0, Jitter).
	Jitter time.Duration
	// Loss is the probability that a datagram is dropped.
	Loss float64
	// Duplicate is the probability that a datagram is delivered twice (the
	// copy gets its own delay).
	Duplicate float64
	// Reorder is the probability that a datagram is held back by an extra
	// ReorderDelay, so that later datagrams overtake it.
	Reorder      float64
	ReorderDelay time.Duration
	// MTU drops datagrams whose IP packet (UDP payload + 8 + IP header of
	// 20 or 40 octets) exceeds it; 0 means no limit.
	MTU int
}

// NAT rewrites the source address of datagrams going from A to B into
// Public, and the destination of datagrams going from B to Public back into
// the private address, like a single-binding NAPT in front of A.
type NAT struct {
	Public netip.AddrPort
}

// Record is one datagram in the pair's trace.
type Record struct {
	Time     time.Time
	FromA    bool
	Src, Dst netip.AddrPort
	Data     []byte
	// Fate is "sent", "lost", "mtu", "dup" (the extra copy) or "filtered".
	Fate string
}

// Pair is two endpoints and the path between them.
type Pair struct {
	A, B   Endpoint
	AtoB   Link
	BtoA   Link
	NAT    *NAT // optional, in front of A
	Now    time.Time
	Trace  []Record
	Filter func(fromA bool, src, dst netip.AddrPort, data []byte) (drop bool)
	// Delivered counts datagrams handed to each side.
	DeliveredToA, DeliveredToB int

	rng  *rand.Rand
	q    packetQueue
	seq  uint64
	natP netip.AddrPort // private address the NAT maps Public back to
}

// New returns a pair starting at start, with impairments drawn from a PRNG
// seeded with seed.
func New(a, b Endpoint, start time.Time, seed uint64) *Pair {
	return &Pair{A: a, B: b, Now: start, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

type packet struct {
	at       time.Time
	seq      uint64
	toA      bool
	src, dst netip.AddrPort
	data     []byte
}

type packetQueue []*packet

func (q packetQueue) Len() int { return len(q) }
func (q packetQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q packetQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *packetQueue) Push(x any)   { *q = append(*q, x.(*packet)) }
func (q *packetQueue) Pop() any     { o := *q; p := o[len(o)-1]; *q = o[:len(o)-1]; return p }
func (q packetQueue) peek() *packet { return q[0] }

// flush moves every datagram both endpoints want to send onto the path.
func (p *Pair) flush() {
	for _, fromA := range []bool{true, false} {
		ep, link := p.A, &p.AtoB
		if !fromA {
			ep, link = p.B, &p.BtoA
		}
		for {
			src, dst, data, ok := ep.PollTransmit()
			if !ok {
				break
			}
			p.send(fromA, link, src, dst, data)
		}
	}
}

func ipOverhead(a netip.AddrPort) int {
	if a.Addr().Is4() {
		return 20 + 8
	}
	return 40 + 8
}

func (p *Pair) send(fromA bool, l *Link, src, dst netip.AddrPort, data []byte) {
	data = append([]byte(nil), data...)
	rec := Record{Time: p.Now, FromA: fromA, Src: src, Dst: dst, Data: data, Fate: "sent"}
	switch {
	case p.Filter != nil && p.Filter(fromA, src, dst, data):
		rec.Fate = "filtered"
	case l.MTU > 0 && len(data)+ipOverhead(dst) > l.MTU:
		rec.Fate = "mtu"
	case l.Loss > 0 && p.rng.Float64() < l.Loss:
		rec.Fate = "lost"
	}
	p.Trace = append(p.Trace, rec)
	if rec.Fate != "sent" {
		return
	}
	if p.NAT != nil {
		if fromA {
			p.natP = src
			src = p.NAT.Public
		} else if dst == p.NAT.Public && p.natP.IsValid() {
			dst = p.natP
		}
	}
	p.enqueue(l, !fromA, src, dst, data)
	if l.Duplicate > 0 && p.rng.Float64() < l.Duplicate {
		p.Trace = append(p.Trace, Record{Time: p.Now, FromA: fromA, Src: src, Dst: dst, Data: data, Fate: "dup"})
		p.enqueue(l, !fromA, src, dst, data)
	}
}

func (p *Pair) enqueue(l *Link, toA bool, src, dst netip.AddrPort, data []byte) {
	d := l.Latency
	if l.Jitter > 0 {
		d += time.Duration(p.rng.Int64N(int64(l.Jitter)))
	}
	if l.Reorder > 0 && p.rng.Float64() < l.Reorder {
		d += l.ReorderDelay
	}
	p.seq++
	heap.Push(&p.q, &packet{at: p.Now.Add(d), seq: p.seq, toA: toA, src: src, dst: dst, data: data})
}

// Step advances the clock to the earliest pending event (a delivery or a
// deadline of either endpoint), handles it, and moves what the endpoints want
// to send onto the path. It returns false when nothing is pending.
func (p *Pair) Step() bool {
	p.flush()
	next, what := time.Time{}, 0 // 1: packet, 2: A timeout, 3: B timeout
	if len(p.q) > 0 {
		next, what = p.q.peek().at, 1
	}
	if t, ok := p.A.NextTimeout(); ok && (what == 0 || t.Before(next)) {
		next, what = t, 2
	}
	if t, ok := p.B.NextTimeout(); ok && (what == 0 || t.Before(next)) {
		next, what = t, 3
	}
	if what == 0 {
		return false
	}
	if next.After(p.Now) {
		p.Now = next
	}
	switch what {
	case 1:
		pk := heap.Pop(&p.q).(*packet)
		if pk.toA {
			p.DeliveredToA++
			p.A.Handle(p.Now, pk.dst, pk.src, pk.data)
		} else {
			p.DeliveredToB++
			p.B.Handle(p.Now, pk.dst, pk.src, pk.data)
		}
	case 2:
		p.A.HandleTimeout(p.Now)
	case 3:
		p.B.HandleTimeout(p.Now)
	}
	p.flush()
	return true
}

// ErrStalled is returned by Run when nothing is pending and the condition
// does not hold.
var ErrStalled = errors.New("harness: nothing pending")

// Run steps until done returns true, nothing is pending, or the clock passes
// deadline (whichever comes first). It checks done before every step.
func (p *Pair) Run(deadline time.Time, done func() bool) error {
	for steps := 0; ; steps++ {
		if done != nil && done() {
			return nil
		}
		if p.Now.After(deadline) {
			return fmt.Errorf("harness: deadline %v passed after %d steps", deadline, steps)
		}
		if !p.Step() {
			if done != nil && done() {
				return nil
			}
			return ErrStalled
		}
	}
}

// Pending reports the number of datagrams in flight.
func (p *Pair) Pending() int { return len(p.q) }
