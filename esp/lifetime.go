package esp

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Lifetime holds an SA's soft and hard limits (RFC 4301 Section 4.4.2.1).
// Crossing a soft limit asks the IKE engine to rekey; crossing a hard limit
// makes the SA refuse traffic until the engine deletes it. A zero field is
// no limit. Bytes count the protected payload (see Counters). Time limits
// run from the time passed to DB.AddInbound/AddOutbound and fire in
// DB.HandleTimeout.
type Lifetime struct {
	SoftBytes, HardBytes     uint64
	SoftPackets, HardPackets uint64
	SoftTime, HardTime       time.Duration
}

// EventKind says which limit level an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventSoft: a soft limit was reached; the engine should rekey.
	EventSoft EventKind = iota + 1
	// EventHard: a hard limit was reached; the SA no longer carries traffic
	// and the engine should delete it.
	EventHard
)

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case EventSoft:
		return "soft"
	case EventHard:
		return "hard"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Limit names the quantity whose limit was reached.
type Limit uint8

// Limits.
const (
	LimitBytes Limit = iota + 1
	LimitPackets
	LimitTime
	// LimitSequence: the outbound sequence number space is nearly (soft) or
	// completely (hard) used up. RFC 4303 Section 3.3.3: the counter must not
	// cycle, a new SA must be established.
	LimitSequence
)

// String returns the limit's name.
func (l Limit) String() string {
	switch l {
	case LimitBytes:
		return "bytes"
	case LimitPackets:
		return "packets"
	case LimitTime:
		return "time"
	case LimitSequence:
		return "sequence"
	}
	return "Limit(" + strconv.Itoa(int(l)) + ")"
}

// Direction is the direction of an SA.
type Direction uint8

// Directions.
const (
	Inbound Direction = iota + 1
	Outbound
)

// String returns the direction's name.
func (d Direction) String() string {
	switch d {
	case Inbound:
		return "in"
	case Outbound:
		return "out"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// Event reports a lifetime limit reached by an SA. Each (SA, kind) pair is
// reported once.
type Event struct {
	Kind  EventKind
	Limit Limit
	Dir   Direction
	SPI   uint32
	IfID  uint32
}

// String formats the event for logs.
func (e Event) String() string {
	return e.Kind.String() + " " + e.Limit.String() + " limit, " + e.Dir.String() +
		" SPI " + strconv.FormatUint(uint64(e.SPI), 16)
}

// Last usable outbound sequence numbers. RFC 4303 Section 3.3.3 and RFC
// 4304 Section 2 forbid cycling; with ESN pqlab stops 2^32 short of 2^64 so
// that its 64-bit counter can never wrap, even under concurrent refused
// attempts. The soft event fires when one eighth of the space is left.
const (
	MaxSeq32  = 1<<32 - 1
	MaxSeqESN = 1<<64 - 1<<32
)

func seqSoft(max uint64) uint64 { return max - max/8 }

const (
	stateSoft uint32 = 1 << iota
	stateHard
)

// lifetimeState tracks which events an SA has fired.
type lifetimeState struct {
	// packetMark and byteMark are the lowest non-zero packet and byte
	// limits (all ones: none); they and state are read per packet.
	packetMark, byteMark uint64
	state                atomic.Uint32
	gone                 atomic.Bool // removed from its DB: time events no longer fire
	dir                  Direction
	spi                  uint32
	ifID                 uint32
	emit                 func(Event) // nil for SAs outside a DB
	limits               Lifetime
}

// fire records a limit crossing and reports whether this call was the
// first for its kind.
func (l *lifetimeState) fire(kind EventKind, lim Limit) {
	bit := stateSoft
	if kind == EventHard {
		bit = stateHard
	}
	for {
		old := l.state.Load()
		if old&bit != 0 {
			return
		}
		if l.state.CompareAndSwap(old, old|bit) {
			break
		}
	}
	if l.emit != nil {
		l.emit(Event{Kind: kind, Limit: lim, Dir: l.dir, SPI: l.spi, IfID: l.ifID})
	}
}

func (l *lifetimeState) hard() bool { return l.state.Load()&stateHard != 0 }

func newLifetimeState(limits Lifetime, dir Direction, spi, ifID uint32) lifetimeState {
	mark := func(soft, hard uint64) uint64 {
		m := ^uint64(0)
		for _, v := range []uint64{soft, hard} {
			if v != 0 {
				m = min(m, v)
			}
		}
		return m
	}
	return lifetimeState{limits: limits, dir: dir, spi: spi, ifID: ifID,
		packetMark: mark(limits.SoftPackets, limits.HardPackets),
		byteMark:   mark(limits.SoftBytes, limits.HardBytes)}
}

// account checks the byte and packet limits after a packet was counted
// (packets and bytes are the totals including it). Below the lowest
// limit it is two comparisons.
func (l *lifetimeState) account(packets, bytes uint64) {
	if packets >= l.packetMark || bytes >= l.byteMark {
		l.crossed(packets, bytes)
	}
}

func (l *lifetimeState) crossed(packets, bytes uint64) {
	lt := &l.limits
	if lt.HardPackets != 0 && packets >= lt.HardPackets {
		l.fire(EventSoft, LimitPackets)
		l.fire(EventHard, LimitPackets)
	} else if lt.SoftPackets != 0 && packets >= lt.SoftPackets {
		l.fire(EventSoft, LimitPackets)
	}
	if lt.HardBytes != 0 && bytes >= lt.HardBytes {
		l.fire(EventSoft, LimitBytes)
		l.fire(EventHard, LimitBytes)
	} else if lt.SoftBytes != 0 && bytes >= lt.SoftBytes {
		l.fire(EventSoft, LimitBytes)
	}
}
