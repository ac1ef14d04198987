package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Direction is one of the two directions of a link.
type Direction int

// Link directions: AtoB carries packets sent by the first port given to
// Network.Connect.
const (
	AtoB Direction = iota
	BtoA
)

// String returns "a->b" or "b->a".
func (d Direction) String() string {
	switch d {
	case AtoB:
		return "a->b"
	case BtoA:
		return "b->a"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// DropReason says why a link dropped a packet.
type DropReason int

// Drop reasons, in the order a packet meets them.
const (
	// DropDown: the link was down when the packet was sent or arrived.
	DropDown DropReason = iota
	// DropMTU: the packet was larger than the link MTU.
	DropMTU
	// DropFragment: the fragment policy dropped an IP fragment.
	DropFragment
	// DropBlackHole: the packet exceeded the black-hole size limit.
	DropBlackHole
	// DropLoss: random loss (Bernoulli or Gilbert-Elliott).
	DropLoss
	// DropQueue: the drop-tail queue was full.
	DropQueue
	// DropNoPort: the receiving end was not able to take the packet.
	DropNoPort
	numDropReasons
)

// String returns the reason's name as used in counters and files.
func (r DropReason) String() string {
	switch r {
	case DropDown:
		return "down"
	case DropMTU:
		return "mtu"
	case DropFragment:
		return "fragment"
	case DropBlackHole:
		return "blackhole"
	case DropLoss:
		return "loss"
	case DropQueue:
		return "queue"
	case DropNoPort:
		return "noport"
	}
	return fmt.Sprintf("DropReason(%d)", int(r))
}

// DropReasons lists every drop reason.
func DropReasons() []DropReason {
	out := make([]DropReason, numDropReasons)
	for i := range out {
		out[i] = DropReason(i)
	}
	return out
}

// FragmentMode selects what a link does with IP fragments.
type FragmentMode int

// Fragment modes.
const (
	// FragmentPass forwards fragments like any packet.
	FragmentPass FragmentMode = iota
	// FragmentDropAll drops every IPv4 or IPv6 fragment, as middleboxes that
	// filter fragments do (RFC 8900, Section 3).
	FragmentDropAll
	// FragmentDropBeyond passes the first Keep fragments of each datagram
	// (in arrival order) and drops the rest.
	FragmentDropBeyond
)

// String returns the mode's name as used in topology files.
func (m FragmentMode) String() string {
	switch m {
	case FragmentPass:
		return "pass"
	case FragmentDropAll:
		return "drop"
	case FragmentDropBeyond:
		return "drop-beyond"
	}
	return fmt.Sprintf("FragmentMode(%d)", int(m))
}

// ParseFragmentMode parses "pass", "drop" or "drop-beyond".
func ParseFragmentMode(s string) (FragmentMode, error) {
	for m := FragmentPass; m <= FragmentDropBeyond; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("sim: unknown fragment mode %q (want pass, drop or drop-beyond)", s)
}

// FragmentPolicy is a link's (or middlebox's) treatment of fragments and
// large packets.
type FragmentPolicy struct {
	Mode FragmentMode
	// Keep is the number of fragments per datagram FragmentDropBeyond passes.
	Keep int
	// BlackHoleAbove silently drops packets whose IP length exceeds it, a
	// path-MTU black hole (RFC 2923, Section 2.1). Zero disables it.
	BlackHoleAbove int
}

// GilbertElliott is the two-state Markov loss model of Gilbert (1960) and
// Elliott (1963), evaluated once per packet: in the good state a packet is
// lost with probability LossGood, in the bad state with LossBad; after each
// packet the state moves good->bad with probability P and bad->good with R.
// The mean stationary loss rate is (R*LossGood + P*LossBad) / (P + R) and the
// mean bad-state sojourn is 1/R packets.
type GilbertElliott struct {
	P, R              float64
	LossGood, LossBad float64
}

// MeanLoss returns the stationary loss probability.
func (g GilbertElliott) MeanLoss() float64 {
	if g.P+g.R == 0 {
		return g.LossGood
	}
	return (g.R*g.LossGood + g.P*g.LossBad) / (g.P + g.R)
}

// Impairments is what one direction of a link does to packets.
type Impairments struct {
	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Jitter adds a uniform random delay in [-Jitter, +Jitter] (clamped at
	// zero total delay). Packets keep their order unless Reorder is set: a
	// packet that would overtake its predecessor arrives right after it,
	// which raises the mean delay when packets are sent closer together
	// than twice the jitter.
	Jitter time.Duration
	// Bandwidth in bit/s; zero means infinite (no serialization delay).
	Bandwidth int64
	// QueuePackets bounds the packets waiting for transmission (drop-tail);
	// zero means DefaultQueuePackets. Only used with a Bandwidth.
	QueuePackets int
	// QueueBytes additionally bounds the waiting bytes; zero means no bound.
	QueueBytes int
	// Loss is the Bernoulli loss probability, used when GE is nil.
	Loss float64
	// GE selects Gilbert-Elliott burst loss instead of Bernoulli loss.
	GE *GilbertElliott
	// Duplicate is the probability that a delivered packet is delivered
	// twice.
	Duplicate float64
	// Reorder is the probability that a packet is held back by ReorderDelay
	// so that later packets overtake it.
	Reorder float64
	// ReorderDelay is the extra delay of a reordered packet
	// (DefaultReorderDelay when zero).
	ReorderDelay time.Duration
	// Fragments is the fragment and black-hole policy.
	Fragments FragmentPolicy
}

// Defaults for Impairments.
const (
	DefaultQueuePackets = 1000
	DefaultReorderDelay = time.Millisecond
	// maxFragTrack bounds the datagrams FragmentDropBeyond tracks per
	// direction; the table is cleared when full.
	maxFragTrack = 4096
)

// Validate checks the impairments' ranges.
func (im *Impairments) Validate() error {
	prob := func(name string, p float64) error {
		if math.IsNaN(p) || p < 0 || p > 1 {
			return fmt.Errorf("sim: %s %v outside [0, 1]", name, p)
		}
		return nil
	}
	switch {
	case im.Delay < 0:
		return fmt.Errorf("sim: negative delay %v", im.Delay)
	case im.Jitter < 0:
		return fmt.Errorf("sim: negative jitter %v", im.Jitter)
	case im.Bandwidth < 0:
		return fmt.Errorf("sim: negative bandwidth %d", im.Bandwidth)
	case im.QueuePackets < 0 || im.QueueBytes < 0:
		return fmt.Errorf("sim: negative queue limit")
	case im.ReorderDelay < 0:
		return fmt.Errorf("sim: negative reorder delay %v", im.ReorderDelay)
	case im.Fragments.Keep < 0 || im.Fragments.BlackHoleAbove < 0:
		return fmt.Errorf("sim: negative fragment policy limit")
	case im.Fragments.Mode < FragmentPass || im.Fragments.Mode > FragmentDropBeyond:
		return fmt.Errorf("sim: invalid fragment mode %d", im.Fragments.Mode)
	}
	for _, p := range []struct {
		n string
		v float64
	}{{"loss", im.Loss}, {"duplicate", im.Duplicate}, {"reorder", im.Reorder}} {
		if err := prob(p.n, p.v); err != nil {
			return err
		}
	}
	if g := im.GE; g != nil {
		for _, p := range []struct {
			n string
			v float64
		}{{"gilbert p", g.P}, {"gilbert r", g.R}, {"gilbert loss_good", g.LossGood}, {"gilbert loss_bad", g.LossBad}} {
			if err := prob(p.n, p.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// LinkConfig configures a point-to-point link.
type LinkConfig struct {
	// Name is unique within the network; it also seeds the link's random
	// streams, so renaming a link changes its randomness and adding another
	// link does not.
	Name string
	// MTU of the link (DefaultMTU when zero); the NICs at both ends take it.
	MTU uint32
	// AB and BA are the impairments of each direction.
	AB, BA Impairments
	// Down starts the link down.
	Down bool
}

// Symmetric returns a LinkConfig with the same impairments both ways.
func Symmetric(name string, mtu uint32, im Impairments) LinkConfig {
	return LinkConfig{Name: name, MTU: mtu, AB: im, BA: im}
}

// LinkStats are the counters of one direction of a link.
type LinkStats struct {
	// Packets and Bytes offered to the link by the sender.
	Packets, Bytes uint64
	// Delivered packets and bytes (duplicates included).
	Delivered, DeliveredBytes uint64
	// Fragments counts IP fragments offered.
	Fragments uint64
	// Duplicated and Reordered count packets the model duplicated or held back.
	Duplicated, Reordered uint64
	// Drops by reason, indexed by DropReason.
	Drops [numDropReasons]uint64
	// MaxQueue is the largest number of packets waiting for transmission.
	MaxQueue int
}

// Dropped returns the total number of drops.
func (s *LinkStats) Dropped() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	return n
}

// Add accumulates o into s.
func (s *LinkStats) Add(o LinkStats) {
	s.Packets += o.Packets
	s.Bytes += o.Bytes
	s.Delivered += o.Delivered
	s.DeliveredBytes += o.DeliveredBytes
	s.Fragments += o.Fragments
	s.Duplicated += o.Duplicated
	s.Reordered += o.Reordered
	for i := range s.Drops {
		s.Drops[i] += o.Drops[i]
	}
	s.MaxQueue = max(s.MaxQueue, o.MaxQueue)
}

// PacketEventKind says what happened to a packet on a link.
type PacketEventKind int

// Packet event kinds.
const (
	// PacketSent: the sender handed the packet to the link.
	PacketSent PacketEventKind = iota
	// PacketDelivered: the packet reached the other end.
	PacketDelivered
	// PacketDropped: the link dropped the packet (see Reason).
	PacketDropped
)

// String returns "sent", "delivered" or "dropped".
func (k PacketEventKind) String() string {
	switch k {
	case PacketSent:
		return "sent"
	case PacketDelivered:
		return "delivered"
	case PacketDropped:
		return "dropped"
	}
	return fmt.Sprintf("PacketEventKind(%d)", int(k))
}

// PacketEvent is a packet's passage through a link, given to observers.
type PacketEvent struct {
	// Time is the virtual time (offset from the epoch).
	Time   time.Duration
	Link   *Link
	Dir    Direction
	Kind   PacketEventKind
	Reason DropReason
	// Packet is the IP packet; observers must not modify or retain it.
	Packet []byte
}

// Observer receives packet events from the links it is added to, on the
// scheduler's goroutine (or a TCP processor goroutine for PacketSent).
type Observer interface {
	Observe(ev *PacketEvent)
}

// Port is one end of a link: a NIC of a node, a side of a NAT box or a port
// of the Internet fabric.
type Port interface {
	// PortName names the port ("node/nic").
	PortName() string
	attach(l *Link, side int) error
	detach()
	deliver(pkt []byte)
}

// Link is a point-to-point link between two ports with a model of each
// direction.
type Link struct {
	name  string
	net   *Network
	mtu   uint32
	ports [2]Port

	mu        sync.Mutex
	down      bool
	dirs      [2]linkDir
	observers []Observer
}

type linkDir struct {
	im          Impairments
	rng         *rand.Rand
	geBad       bool
	busyUntil   time.Duration
	waiting     []queued // packets not yet started, FIFO
	waitBytes   int
	lastArrival time.Duration
	frags       map[fragKey]int
	stats       LinkStats
}

type queued struct {
	start time.Duration
	size  int
}

// Name returns the link's name.
func (l *Link) Name() string { return l.name }

// MTU returns the link's MTU.
func (l *Link) MTU() uint32 { return l.mtu }

// Port returns the port at side 0 (A) or 1 (B).
func (l *Link) Port(side int) Port { return l.ports[side&1] }

// Stats returns a copy of the counters of direction d.
func (l *Link) Stats(d Direction) LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dirs[d&1].stats
}

// Impairments returns the impairments of direction d.
func (l *Link) Impairments(d Direction) Impairments {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dirs[d&1].im
}

// SetImpairments replaces the impairments of direction d (for events such
// as a configuration change); the random stream and counters are kept.
func (l *Link) SetImpairments(d Direction, im Impairments) error {
	if err := im.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dirs[d&1].im = im
	return nil
}

// Down reports whether the link is down.
func (l *Link) Down() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.down
}

// SetDown takes the link down (true) or up (false). Packets in flight on a
// link that goes down are lost when they would arrive.
func (l *Link) SetDown(down bool) {
	l.mu.Lock()
	l.down = down
	l.mu.Unlock()
}

// AddObserver registers o for the link's packet events.
func (l *Link) AddObserver(o Observer) {
	l.mu.Lock()
	l.observers = append(l.observers, o)
	l.mu.Unlock()
}

func (l *Link) notify(ev *PacketEvent) {
	for _, o := range l.observers {
		o.Observe(ev)
	}
}

// transmit runs a packet sent from side through the model of that direction
// and schedules its delivery. It never blocks.
func (l *Link) transmit(side int, pkt []byte) {
	s := l.net.sched
	now := s.Elapsed()
	dir := Direction(side & 1)

	l.mu.Lock()
	defer l.mu.Unlock()
	d := &l.dirs[dir]
	d.stats.Packets++
	d.stats.Bytes += uint64(len(pkt))
	if len(l.observers) > 0 {
		l.notify(&PacketEvent{Time: now, Link: l, Dir: dir, Kind: PacketSent, Packet: pkt})
	}
	drop := func(r DropReason) {
		d.stats.Drops[r]++
		if len(l.observers) > 0 {
			l.notify(&PacketEvent{Time: now, Link: l, Dir: dir, Kind: PacketDropped, Reason: r, Packet: pkt})
		}
	}
	if l.down {
		drop(DropDown)
		return
	}
	if len(pkt) > int(l.mtu) {
		drop(DropMTU)
		return
	}
	im := &d.im
	if pi, ok := ParsePacket(pkt); ok && pi.Fragment {
		d.stats.Fragments++
		switch im.Fragments.Mode {
		case FragmentDropAll:
			drop(DropFragment)
			return
		case FragmentDropBeyond:
			k := fragKey{pi.Src, pi.Dst, pi.FragID, pi.Protocol}
			if d.frags == nil || len(d.frags) >= maxFragTrack {
				d.frags = make(map[fragKey]int)
			}
			d.frags[k]++
			if d.frags[k] > im.Fragments.Keep {
				drop(DropFragment)
				return
			}
		}
	}
	if b := im.Fragments.BlackHoleAbove; b > 0 && len(pkt) > b {
		drop(DropBlackHole)
		return
	}
	if l.lose(d) {
		drop(DropLoss)
		return
	}

	// Serialization and drop-tail queue.
	depart := now
	if im.Bandwidth > 0 {
		for len(d.waiting) > 0 && d.waiting[0].start <= now {
			d.waitBytes -= d.waiting[0].size
			d.waiting = d.waiting[1:]
		}
		start := max(now, d.busyUntil)
		if start > now {
			limit := im.QueuePackets
			if limit == 0 {
				limit = DefaultQueuePackets
			}
			if len(d.waiting) >= limit || (im.QueueBytes > 0 && d.waitBytes+len(pkt) > im.QueueBytes) {
				drop(DropQueue)
				return
			}
			d.waiting = append(d.waiting, queued{start, len(pkt)})
			d.waitBytes += len(pkt)
			d.stats.MaxQueue = max(d.stats.MaxQueue, len(d.waiting))
		}
		ser := time.Duration((int64(len(pkt))*8*int64(time.Second) + im.Bandwidth - 1) / im.Bandwidth)
		d.busyUntil = start + ser
		depart = d.busyUntil
	}

	// Propagation delay, jitter and reordering.
	delay := im.Delay
	if im.Jitter > 0 {
		delay += time.Duration(d.rng.Int64N(2*int64(im.Jitter)+1)) - im.Jitter
		delay = max(delay, 0)
	}
	arrive := depart + delay
	if im.Reorder > 0 && d.rng.Float64() < im.Reorder {
		rd := im.ReorderDelay
		if rd == 0 {
			rd = DefaultReorderDelay
		}
		arrive += rd
		d.stats.Reordered++
	} else {
		arrive = max(arrive, d.lastArrival)
		d.lastArrival = arrive
	}
	copies := 1
	if im.Duplicate > 0 && d.rng.Float64() < im.Duplicate {
		copies = 2
		d.stats.Duplicated++
	}
	to := l.ports[1-side&1]
	for i := 0; i < copies; i++ {
		p := pkt
		if i > 0 {
			p = append([]byte(nil), pkt...)
		}
		s.At(arrive, func() { l.arrive(dir, to, p) })
	}
}

// lose draws the loss decision of direction d. Called with l.mu held.
func (l *Link) lose(d *linkDir) bool {
	im := &d.im
	if g := im.GE; g != nil {
		p := g.LossGood
		if d.geBad {
			p = g.LossBad
		}
		lost := p > 0 && d.rng.Float64() < p
		if d.geBad {
			if g.R > 0 && d.rng.Float64() < g.R {
				d.geBad = false
			}
		} else if g.P > 0 && d.rng.Float64() < g.P {
			d.geBad = true
		}
		return lost
	}
	return im.Loss > 0 && d.rng.Float64() < im.Loss
}

// arrive delivers a packet at the far end, on the scheduler's goroutine.
func (l *Link) arrive(dir Direction, to Port, pkt []byte) {
	l.mu.Lock()
	d := &l.dirs[dir]
	if l.down {
		d.stats.Drops[DropDown]++
		if len(l.observers) > 0 {
			l.notify(&PacketEvent{Time: l.net.sched.Elapsed(), Link: l, Dir: dir, Kind: PacketDropped, Reason: DropDown, Packet: pkt})
		}
		l.mu.Unlock()
		return
	}
	d.stats.Delivered++
	d.stats.DeliveredBytes += uint64(len(pkt))
	if len(l.observers) > 0 {
		l.notify(&PacketEvent{Time: l.net.sched.Elapsed(), Link: l, Dir: dir, Kind: PacketDelivered, Packet: pkt})
	}
	l.mu.Unlock()
	to.deliver(pkt)
}
