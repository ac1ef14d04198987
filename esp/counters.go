package esp

import (
	"strconv"
	"sync/atomic"
)

// DropReason says why a packet was discarded. It implements error, so the
// data-path functions return it directly (no allocation); test with
// errors.Is(err, esp.DropReplay) or errors.As.
type DropReason uint8

// Drop reasons (RFC 4303 Section 3.4, RFC 4301 Section 5.2).
const (
	DropMalformed    DropReason = iota + 1 // too short, misaligned, bad inner header
	DropBadSPI                             // no SA for the SPI (RFC 4303 Section 3.4.2)
	DropReplay                             // duplicate or left of the window (Section 3.4.3)
	DropAuth                               // ICV check failed (Section 3.4.4)
	DropBadPadding                         // pad length or pad bytes wrong (Section 2.4)
	DropSelector                           // inner packet outside the SA's traffic selectors
	DropNextHeader                         // next header not allowed in this mode
	DropDummy                              // dummy packet, next header 59 (Section 2.6)
	DropExpired                            // SA past its hard lifetime
	DropSeqExhausted                       // sequence number space used up; rekey needed
	DropNoSA                               // outbound: no SA matches the packet
	DropTooBig                             // outbound: packet exceeds what the caller allows
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropMalformed:    "malformed",
	DropBadSPI:       "bad SPI",
	DropReplay:       "replay",
	DropAuth:         "authentication failed",
	DropBadPadding:   "bad padding",
	DropSelector:     "selector mismatch",
	DropNextHeader:   "unexpected next header",
	DropDummy:        "dummy packet",
	DropExpired:      "SA expired",
	DropSeqExhausted: "sequence numbers exhausted",
	DropNoSA:         "no SA",
	DropTooBig:       "too big",
}

// String returns the reason's name.
func (r DropReason) String() string {
	if r > 0 && r < numDropReasons {
		return dropNames[r]
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// Error implements error.
func (r DropReason) Error() string { return "esp: drop: " + r.String() }

// DropReasons lists every drop reason, for reports.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, numDropReasons-1)
	for r := DropMalformed; r < numDropReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Counters is a snapshot of an SA's (or a DB's) traffic counters. Bytes
// count the protected payload (the inner IP packet in tunnel mode, the
// upper-layer payload in transport mode), without ESP overhead or padding.
type Counters struct {
	PacketsIn, BytesIn   uint64
	PacketsOut, BytesOut uint64
	// Drops is indexed by DropReason.
	Drops [numDropReasons]uint64
}

// Dropped returns the drop count for one reason.
func (c Counters) Dropped(r DropReason) uint64 {
	if r >= numDropReasons {
		return 0
	}
	return c.Drops[r]
}

// TotalDrops returns the sum of all drop counts.
func (c Counters) TotalDrops() uint64 {
	var n uint64
	for _, d := range c.Drops {
		n += d
	}
	return n
}

// counters is the live, atomically updated form of Counters.
type counters struct {
	packets, bytes atomic.Uint64
	drops          [numDropReasons]atomic.Uint64
}

func (c *counters) drop(r DropReason) DropReason {
	if r < numDropReasons {
		c.drops[r].Add(1)
	}
	return r
}

func (c *counters) snapshotDrops(s *Counters) {
	for i := range c.drops {
		s.Drops[i] = c.drops[i].Load()
	}
}
