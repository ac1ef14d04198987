package lab

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"time"

	"github.com/pqlab/pqlab/cmd/internal/results"
	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/sim"
	"github.com/pqlab/pqlab/sim/gateway"
)

// Handshake records are collected from the gateways' hooks and a link
// observer:
//
//   - bytes, datagrams and IKE fragments (SKF, RFC 7383) per exchange are
//     counted when each side's datagrams leave, both directions;
//   - IP fragments are the distinct fragments of the handshake's
//     datagrams seen on any link (created by the sender or by a router on
//     the path), attributed through the IKE header in the first fragment;
//   - retransmissions and round trips are the initiator engine's counters
//     (ike.Metrics, as the engine's events carry them);
//   - CPU time is what each side's operations for the SA cost on its node;
//   - latency runs from the initiation (the first datagram's work starts
//     then) to the moment the initiator has the IKE SA and its first Child
//     SA installed, CPU work included.

// Outcomes of a handshake record.
const (
	OutcomeEstablished = "established"
	OutcomeFailed      = "failed"
	// ReasonRunEnded is the reason of a handshake still in progress when
	// the run ended.
	ReasonRunEnded = "run-ended"
	// ReasonCrash is the reason of a handshake whose initiator crashed.
	ReasonCrash = "crash"
	// OutcomeCollisionLost is the outcome of a rekey exchange that lost a
	// rekey collision (results.OutcomeCollisionLost).
	OutcomeCollisionLost = results.OutcomeCollisionLost
	// ReasonRekeyCollision is the reason of a lost collision: the name of
	// ike.CauseRekeyCollision.
	ReasonRekeyCollision = "rekey-collision"
)

// Well-known ports (RFC 7296 Section 2, RFC 3948 Section 2).
const (
	portIKE  = 500
	portNATT = 4500
)

type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
}

type fragPiece struct {
	key         fragKey
	off, length int
}

// record is a handshake in progress or done.
type record struct {
	h        results.Handshake
	spi      uint64
	ini      *gateway.Gateway
	said     ike.SAID
	start    time.Time
	ikeUp    bool
	childUp  bool
	done     bool
	exch     map[string]int // exchange name -> index in h.Exchanges
	pieces   map[fragPiece]bool
	fragged  map[fragKey]bool
	resps    map[uint64]bool // hashes of responses the initiator received
	metrics  ike.Metrics
	haveMets bool
}

// collector gathers a run's handshake records.
type collector struct {
	epoch   time.Time
	models  map[string]string // gateway -> peer model
	records []*record
	bySPI   map[uint64]*record
	saSPI   map[*gateway.Gateway]map[ike.SAID]uint64
	owner   map[fragKey]uint64
	// allUp tracks, per gateway, the peers it expects tunnels with.
	expect map[string]map[string]bool
	up     map[string]map[string]bool
	allUp  map[string]time.Duration
	// onEvent lets the lab react to events (key log).
	onEvent func(g *gateway.Gateway, now time.Time, ev ike.Event)
	// traceSent, when set (tests), sees the header of every IKE datagram
	// a gateway sends.
	traceSent func(gw string, now time.Time, h wire.Header, n int)
	// Rekey exchanges in progress, by the IKE SA they run on, and all of
	// them in the order they started.
	rekeyPending map[rekeyKey]*rekeyRecord
	rekeys       []*rekeyRecord
	// created maps the live SAs that g's established rekeys created to
	// their records, so that a redundant SA deleted after a lost
	// collision changes its record.
	created map[createdSA]*rekeyRecord
	// peerOf names, per gateway, the peer of each IKE SA (by SPIi) its
	// events named; open lists, per gateway and peer, the rekey records
	// that may be open.
	peerOf map[*gateway.Gateway]map[uint64]string
	open   map[peerKey][]*rekeyRecord
}

type peerKey struct {
	g    *gateway.Gateway
	peer string
}

// createdSA names an SA a rekey created on gateway g: a Child SA by its
// inbound SPI or an IKE SA by its engine ID.
type createdSA struct {
	g     *gateway.Gateway
	child uint32
	ike   ike.SAID
}

// rekeyKey names the CREATE_CHILD_SA exchange in progress on an IKE SA
// (SPIi) started by its original initiator or by its original responder:
// with a window of one, each side has at most one request outstanding.
type rekeyKey struct {
	spi        uint64
	byOrigInit bool
}

// rekeyRecord is a rekey exchange in progress or done.
type rekeyRecord struct {
	r       results.Rekey
	g       *gateway.Gateway
	key     rekeyKey
	start   time.Time
	done    bool
	discard bool // a new Child SA, not a rekey
	// peer is the other gateway ("" when not known at the start).
	peer string
	// peerKind is set ("ike" or "child", the first one) when a rekey by
	// the peer completed while this record was open; peerIKE says whether
	// one of them was an IKE SA rekey, peerChildren lists this side's
	// inbound SPIs of the Child SAs the peer rekeyed.
	peerKind     string
	peerIKE      bool
	peerChildren []uint32
}

func newCollector(epoch time.Time) *collector {
	return &collector{epoch: epoch, models: map[string]string{}, bySPI: map[uint64]*record{},
		saSPI: map[*gateway.Gateway]map[ike.SAID]uint64{}, owner: map[fragKey]uint64{},
		expect: map[string]map[string]bool{}, up: map[string]map[string]bool{}, allUp: map[string]time.Duration{},
		rekeyPending: map[rekeyKey]*rekeyRecord{}, created: map[createdSA]*rekeyRecord{},
		peerOf: map[*gateway.Gateway]map[uint64]string{}, open: map[peerKey][]*rekeyRecord{}}
}

func (c *collector) hooks() gateway.Hooks {
	return gateway.Hooks{Initiated: c.begin, Sent: c.sent, Received: c.received, Event: c.event, Cost: c.cost}
}

// expectPeer records that gateway g should get a tunnel with peer.
func (c *collector) expectPeer(g, peer string) {
	if c.expect[g] == nil {
		c.expect[g] = map[string]bool{}
	}
	c.expect[g][peer] = true
}

// begin starts a record for an IKE SA just initiated.
func (c *collector) begin(g *gateway.Gateway, now time.Time, peer string, said ike.SAID) {
	info, ok := g.Engine().SA(said)
	if !ok {
		return
	}
	pc, _ := g.Peer(peer)
	r := &record{spi: info.SPIi, ini: g, said: said, start: now, exch: map[string]int{},
		pieces: map[fragPiece]bool{}, fragged: map[fragKey]bool{}, resps: map[uint64]bool{}}
	r.h = results.Handshake{
		Initiator: g.Name(), Responder: peer,
		InitiatorModel: c.models[g.Name()], ResponderModel: c.models[peer],
		Auth: "psk", StartNs: int64(now.Sub(c.epoch)),
	}
	if len(pc.IKEProposals) > 0 {
		r.h.Suite = pc.IKEProposals[0]
		r.h.Placement = placementOf(pc.IKEProposals[0])
	}
	c.records = append(c.records, r)
	c.bySPI[r.spi] = r
	c.spiMap(g)[said] = r.spi
}

func (c *collector) spiMap(g *gateway.Gateway) map[ike.SAID]uint64 {
	m := c.saSPI[g]
	if m == nil {
		m = map[ike.SAID]uint64{}
		c.saSPI[g] = m
	}
	return m
}

// ikeMessage returns the IKE message in a UDP payload (without the
// non-ESP marker on the NAT-T port) and its parsed header; ok is false if
// the payload holds none.
func ikeMessage(local ike.Datagram) (msg []byte, h wire.Header, ok bool) {
	b := local.Data
	if local.Local.Port() == portNATT || local.Remote.Port() == portNATT {
		if len(b) < 4 || binary.BigEndian.Uint32(b) != 0 {
			return nil, h, false
		}
		b = b[4:]
	}
	if len(b) < wire.HeaderLen {
		return nil, h, false
	}
	h, err := wire.ParseHeader(b)
	if err != nil {
		return nil, h, false
	}
	return b, h, true
}

// fragmentNumber returns the SKF fragment number (RFC 7383 Section 2.5),
// 0 when the message is not a fragment.
func fragmentNumber(h wire.Header, msg []byte) int {
	if h.NextPayload != wire.PayloadSKF || len(msg) < wire.HeaderLen+6 {
		return 0
	}
	return int(binary.BigEndian.Uint16(msg[wire.HeaderLen+4:]))
}

func hash64(b []byte) uint64 {
	f := fnv.New64a()
	f.Write(b)
	return f.Sum64()
}

func (c *collector) sent(g *gateway.Gateway, now time.Time, d ike.Datagram) {
	_, h, ok := ikeMessage(d)
	if !ok {
		return
	}
	if c.traceSent != nil {
		c.traceSent(g.Name(), now, h, len(d.Data))
	}
	c.rekeySent(g, now, h, len(d.Data))
	r := c.bySPI[h.SPIi]
	if r == nil || r.done {
		return
	}
	name := h.Exchange.String()
	i, ok := r.exch[name]
	if !ok {
		i = len(r.h.Exchanges)
		r.exch[name] = i
		r.h.Exchanges = append(r.h.Exchanges, results.Exchange{Name: name})
	}
	r.h.Exchanges[i].Bytes += len(d.Data)
	r.h.Exchanges[i].Datagrams++
	r.h.Bytes += len(d.Data)
	r.h.Datagrams++
	if h.NextPayload == wire.PayloadSKF {
		r.h.IKEFragments++
	}
	if g == r.ini {
		c.readMetrics(r)
	}
}

func (c *collector) received(g *gateway.Gateway, _ time.Time, d ike.Datagram) {
	msg, h, ok := ikeMessage(d)
	if !ok {
		return
	}
	r := c.bySPI[h.SPIi]
	if r == nil || r.done || g != r.ini || !h.IsResponse() || fragmentNumber(h, msg) > 1 {
		return
	}
	r.resps[hash64(msg)] = true
}

func (c *collector) readMetrics(r *record) {
	if m, ok := r.ini.Engine().Metrics(r.said); ok {
		r.metrics, r.haveMets = m, true
	}
}

func (c *collector) cost(g *gateway.Gateway, said ike.SAID, d time.Duration) {
	if said == 0 {
		return
	}
	m := c.spiMap(g)
	spi, ok := m[said]
	if !ok {
		info, ok := g.Engine().SA(said)
		if !ok {
			return
		}
		spi = info.SPIi
		m[said] = spi
	}
	r := c.bySPI[spi]
	if r == nil || r.done {
		return
	}
	if g == r.ini {
		r.h.InitiatorCPUNs += int64(d)
	} else {
		r.h.ResponderCPUNs += int64(d)
	}
}

func (c *collector) event(g *gateway.Gateway, now time.Time, ev ike.Event) {
	if c.onEvent != nil {
		c.onEvent(g, now, ev)
	}
	if ev.Kind == ike.EventChildSAInstalled && c.expect[g.Name()][ev.Peer] {
		u := c.up[g.Name()]
		if u == nil {
			u = map[string]bool{}
			c.up[g.Name()] = u
		}
		if !u[ev.Peer] {
			u[ev.Peer] = true
			if len(u) == len(c.expect[g.Name()]) {
				c.allUp[g.Name()] = now.Sub(c.epoch)
			}
		}
	}
	if ev.SPIi != 0 {
		if m := c.spiMap(g); m[ev.SA] == 0 {
			m[ev.SA] = ev.SPIi
		}
		if ev.Peer != "" {
			m := c.peerOf[g]
			if m == nil {
				m = map[uint64]string{}
				c.peerOf[g] = m
			}
			m[ev.SPIi] = ev.Peer
		}
	}
	c.rekeyEvent(g, now, ev)
	if ev.Kind == ike.EventIKESADeleted || ev.Kind == ike.EventFailed {
		delete(c.peerOf[g], ev.SPIi)
	}
	spi := c.spiMap(g)[ev.SA]
	r := c.bySPI[spi]
	if r == nil || r.done || g != r.ini || ev.SA != r.said {
		return
	}
	if ev.Metrics != nil {
		r.metrics, r.haveMets = *ev.Metrics, true
	}
	switch ev.Kind {
	case ike.EventIKESAEstablished:
		r.ikeUp = true
		r.h.Suite = ev.Suite.String()
		r.h.Placement = placementOfSuite(&ev.Suite)
		c.readMetrics(r)
	case ike.EventChildSAInstalled:
		r.childUp = true
		c.readMetrics(r)
	case ike.EventFailed, ike.EventIKESADeleted:
		c.finish(r, now, OutcomeFailed, reasonOf(ev.Reason))
		return
	case ike.EventExchangeFailed:
		if !r.childUp { // the first Child SA was refused in IKE_AUTH
			c.finish(r, now, OutcomeFailed, reasonOf(ev.Reason))
			return
		}
	}
	if r.ikeUp && r.childUp {
		c.finish(r, now, OutcomeEstablished, "")
	}
}

// reasonOf names a failure: the notify when there was one, else the
// local cause.
func reasonOf(r ike.Reason) string {
	if r.Notify != 0 {
		return r.Notify.String()
	}
	return r.Cause.String()
}

func (c *collector) finish(r *record, now time.Time, outcome, reason string) {
	r.done = true
	r.h.Outcome, r.h.Reason = outcome, reason
	if outcome == OutcomeEstablished {
		r.h.LatencyNs = int64(now.Sub(r.start))
	}
	r.h.Retransmissions = int(r.metrics.Retransmissions)
	r.h.RoundTrips = int(r.metrics.RoundTrips)
	if !r.haveMets { // the SA vanished without an event (crash)
		r.h.RoundTrips = len(r.resps)
	}
	r.h.IPFragments = len(r.pieces)
	r.h.IPPackets = r.h.Datagrams - len(r.fragged) + len(r.pieces)
}

// crashed ends the records of an initiator that crashed.
func (c *collector) crashed(g *gateway.Gateway, now time.Time) {
	for _, r := range c.records {
		if !r.done && r.ini == g {
			c.finish(r, now, OutcomeFailed, ReasonCrash)
		}
	}
	delete(c.saSPI, g)
}

// rekeySent attributes a CREATE_CHILD_SA or IKE_FOLLOWUP_KE datagram to
// the rekey exchange it belongs to, starting a record at the first request.
// A new request on an IKE SA where the peer's rekey completed while this
// side's record was open (a lost collision, see peerRekeyed) ends that
// record and starts another; any other new request continues the record
// (a retry after TEMPORARY_FAILURE, RFC 7296 Section 2.25).
func (c *collector) rekeySent(g *gateway.Gateway, now time.Time, h wire.Header, n int) {
	if h.Exchange != wire.ExchangeCreateChildSA && h.Exchange != wire.ExchangeIKEFollowupKE {
		return
	}
	k := rekeyKey{spi: h.SPIi, byOrigInit: h.IsInitiator() != h.IsResponse()}
	rec := c.rekeyPending[k]
	if rec != nil && rec.peerKind != "" && !h.IsResponse() && h.Exchange == wire.ExchangeCreateChildSA {
		c.closeRekey(rec, rec.peerKind, OutcomeCollisionLost, ReasonRekeyCollision)
		rec = nil
	}
	if rec == nil {
		if h.IsResponse() || h.Exchange != wire.ExchangeCreateChildSA {
			return
		}
		rec = &rekeyRecord{g: g, key: k, start: now, peer: c.peerOf[g][h.SPIi]}
		rec.r = results.Rekey{Initiator: g.Name(), StartNs: int64(now.Sub(c.epoch))}
		c.rekeyPending[k] = rec
		c.rekeys = append(c.rekeys, rec)
		if rec.peer != "" {
			pk := peerKey{g, rec.peer}
			c.open[pk] = append(c.open[pk], rec)
		}
	}
	rec.r.Bytes += n
	rec.r.Datagrams++
}

// pendingOf returns the rekey exchange g started on the IKE SA with
// initiator SPI spi, if one is in progress.
func (c *collector) pendingOf(g *gateway.Gateway, spi uint64) *rekeyRecord {
	for _, by := range []bool{true, false} {
		if rec := c.rekeyPending[rekeyKey{spi, by}]; rec != nil && rec.g == g {
			return rec
		}
	}
	return nil
}

// closeRekey ends an open rekey record. Only an established rekey keeps
// its latency.
func (c *collector) closeRekey(rec *rekeyRecord, kind, outcome, reason string) {
	delete(c.rekeyPending, rec.key)
	rec.done = true
	if rec.peer != "" {
		pk := peerKey{rec.g, rec.peer}
		c.open[pk] = slices.DeleteFunc(c.open[pk], func(r *rekeyRecord) bool { return r == rec })
		if len(c.open[pk]) == 0 {
			delete(c.open, pk)
		}
	}
	if rec.r.Kind == "" {
		rec.r.Kind = kind
	}
	rec.r.Outcome, rec.r.Reason = outcome, reason
	if outcome != OutcomeEstablished {
		rec.r.LatencyNs = 0
	}
}

// rekeyEvent follows the rekeys a gateway initiated through its engine's
// events. In a rekey collision (both ends rekey the same SA at once, RFC
// 7296 Sections 2.8.1 and 2.8.2, RFC 9370 Section 2.2.4) the engine of the
// side that loses reports:
//
//   - without additional key exchanges, its exchange completing
//     (EventChildSARekeyed or EventIKESARekeyed of its own exchange), then
//     the SA it created deleted with ike.CauseRekeyCollision: the record,
//     established at first, becomes collision-lost then;
//   - with IKE_FOLLOWUP_KE, or when the peer refused its request with
//     TEMPORARY_FAILURE because its own rekey of the SA was further on,
//     nothing about its own exchange: it is abandoned silently. What the
//     loser sees is the peer's rekey completing while its own record is
//     open (peerRekeyed: on the same IKE SA, or on another IKE SA with the
//     same peer, as when a Child SA rekey was started on the redundant
//     IKE SA of an IKE SA rekey collision); the record is collision-lost
//     unless its own exchange still completes (the winner of a collision
//     without additional key exchanges sees the peer's exchange complete
//     first). It is closed when this side starts another exchange on the
//     IKE SA, when the IKE SA is gone, or at the end of the run; a failure
//     of its exchange after the peer rekeyed the same SA (the peer, having
//     resolved the collision, answers an IKE_FOLLOWUP_KE with
//     STATE_NOT_FOUND) is a lost collision too. A record whose exchange
//     never completes and that saw no rekey of the peer's complete keeps
//     the old treatment (failed, run-ended, at the end).
//
// The winner's exchange is established.
func (c *collector) rekeyEvent(g *gateway.Gateway, now time.Time, ev ike.Event) {
	switch ev.Kind {
	case ike.EventIKESARekeyed:
		spi := c.spiMap(g)[ev.OldSA]
		if spi == 0 {
			return
		}
		if !ev.Initiator { // the new IKE SA comes from the peer's exchange
			c.peerRekeyed(g, spi, "ike", ev.Peer, 0)
			return
		}
		if rec := c.pendingOf(g, spi); rec != nil {
			c.established(rec, now, "ike", ev.Peer)
			c.created[createdSA{g: g, ike: ev.SA}] = rec
		}
	case ike.EventChildSARekeyed:
		if ev.Child == nil {
			return
		}
		if !ev.Child.Initiator {
			c.peerRekeyed(g, ev.SPIi, "child", ev.Peer, ev.Child.RekeyOf)
			return
		}
		if rec := c.pendingOf(g, ev.SPIi); rec != nil {
			c.established(rec, now, "child", ev.Peer)
			c.created[createdSA{g: g, child: ev.Child.InboundSPI}] = rec
		}
	case ike.EventChildSAInstalled:
		if ev.Child == nil || !ev.Child.Initiator {
			return
		}
		if rec := c.pendingOf(g, ev.SPIi); rec != nil {
			rec.discard = true // a new Child SA
			c.established(rec, now, "child", ev.Peer)
		}
	case ike.EventChildSADeleted:
		if ev.Child != nil {
			c.createdGone(createdSA{g: g, child: ev.Child.InboundSPI}, ev.Reason.Cause)
		}
	case ike.EventExchangeFailed, ike.EventIKESADeleted, ike.EventFailed:
		if ev.Kind == ike.EventIKESADeleted {
			c.createdGone(createdSA{g: g, ike: ev.SA}, ev.Reason.Cause)
		}
		rec := c.pendingOf(g, ev.SPIi)
		if rec == nil {
			return
		}
		kind := "child"
		if ev.Kind == ike.EventExchangeFailed && ev.Child == nil {
			kind = "ike"
		}
		rec.r.Responder = ev.Peer
		switch {
		case ev.Reason.Cause == ike.CauseRekeyed && rec.peerKind != "":
			// The IKE SA was replaced after the peer's rekey won over
			// ours.
			c.closeRekey(rec, rec.peerKind, OutcomeCollisionLost, ReasonRekeyCollision)
		case ev.Reason.Cause == ike.CauseRekeyed:
			// The IKE SA was replaced with this side's exchange still
			// open: it goes on on the new SA or ends with the run.
		case ev.Kind == ike.EventExchangeFailed && (ev.Reason.Cause == ike.CauseRekeyCollision || rec.lostTo(ev.Child)):
			c.closeRekey(rec, kind, OutcomeCollisionLost, ReasonRekeyCollision)
		default:
			c.closeRekey(rec, kind, OutcomeFailed, reasonOf(ev.Reason))
		}
	}
}

// lostTo reports whether a failure of this record's exchange, which
// rekeyed the Child SA child (nil: the IKE SA), comes after the peer's
// rekey of the same SA completed: the exchange lost a collision the peer
// resolved, and its failure (such as STATE_NOT_FOUND for an IKE_FOLLOWUP_KE
// the peer no longer expects) is the consequence.
func (rec *rekeyRecord) lostTo(child *ike.ChildSA) bool {
	if child == nil {
		return rec.peerIKE
	}
	return child.InboundSPI != 0 && slices.Contains(rec.peerChildren, child.InboundSPI)
}

// established ends a rekey record whose exchange created its SA.
func (c *collector) established(rec *rekeyRecord, now time.Time, kind, peer string) {
	rec.r.Responder = peer
	c.closeRekey(rec, kind, OutcomeEstablished, "")
	rec.r.LatencyNs = int64(now.Sub(rec.start))
}

// peerRekeyed notes that the peer's rekey of an SA (kind "ike" or
// "child"; for a Child SA, rekeyOf is this side's inbound SPI of the one
// replaced) completed on g: a rekey g started with that peer and that has
// not completed lost a collision, unless it still completes. The records
// looked at are those of the IKE SA with initiator SPI spi and those of
// other IKE SAs with the same peer, such as a redundant IKE SA of an IKE
// SA rekey collision that a Child SA rekey had started on.
func (c *collector) peerRekeyed(g *gateway.Gateway, spi uint64, kind, peer string, rekeyOf uint32) {
	mark := func(rec *rekeyRecord) {
		if rec.peerKind == "" {
			rec.peerKind = kind
		}
		if kind == "ike" {
			rec.peerIKE = true
		} else if rekeyOf != 0 {
			rec.peerChildren = append(rec.peerChildren, rekeyOf)
		}
		rec.r.Responder = peer
	}
	same := c.pendingOf(g, spi)
	if same != nil {
		mark(same)
	}
	if peer == "" {
		return
	}
	for _, rec := range c.open[peerKey{g, peer}] {
		if rec != same {
			mark(rec)
		}
	}
}

// createdGone turns the established record of the SA just deleted into a
// lost collision when the SA was deleted as the redundant one of a rekey
// collision, and forgets the SA.
func (c *collector) createdGone(k createdSA, why ike.Cause) {
	rec := c.created[k]
	if rec == nil {
		return
	}
	delete(c.created, k)
	if why == ike.CauseRekeyCollision && rec.r.Outcome == OutcomeEstablished {
		rec.r.Outcome, rec.r.Reason, rec.r.LatencyNs = OutcomeCollisionLost, ReasonRekeyCollision, 0
	}
}

// endRekeys returns the rekey records: those still open are lost
// collisions when the peer's rekey completed meanwhile, else failed as
// run-ended.
func (c *collector) endRekeys() []results.Rekey {
	var out []results.Rekey
	for _, rec := range c.rekeys {
		if rec.discard {
			continue
		}
		if !rec.done {
			if rec.peerKind != "" {
				c.closeRekey(rec, rec.peerKind, OutcomeCollisionLost, ReasonRekeyCollision)
			} else {
				rec.r.Outcome, rec.r.Reason = OutcomeFailed, ReasonRunEnded
				if rec.r.Kind == "" {
					rec.r.Kind = "unknown"
				}
			}
		}
		out = append(out, rec.r)
	}
	return out
}

// end closes the records still open when the run ends.
func (c *collector) end(now time.Time) []results.Handshake {
	out := make([]results.Handshake, 0, len(c.records))
	for _, r := range c.records {
		if !r.done {
			c.finish(r, now, OutcomeFailed, ReasonRunEnded)
		}
		out = append(out, r.h)
	}
	return out
}

// Observe implements sim.Observer: it attributes IP fragments to
// handshakes.
func (c *collector) Observe(ev *sim.PacketEvent) {
	if ev.Kind != sim.PacketSent {
		return
	}
	pi, ok := sim.ParsePacket(ev.Packet)
	if !ok || !pi.Fragment {
		return
	}
	key := fragKey{src: pi.Src.As16(), dst: pi.Dst.As16(), id: pi.FragID, proto: pi.Protocol}
	if pi.FragOffset == 0 && pi.Protocol == 17 {
		if spi, ok := ikeSPIOfUDP(ev.Packet[pi.HeaderLen:]); ok {
			c.owner[key] = spi
		}
	}
	spi, ok := c.owner[key]
	if !ok {
		return
	}
	r := c.bySPI[spi]
	if r == nil || r.done {
		return
	}
	p := fragPiece{key: key, off: pi.FragOffset, length: len(ev.Packet) - pi.HeaderLen}
	if !r.pieces[p] {
		r.pieces[p] = true
		r.fragged[key] = true
	}
}

// ikeSPIOfUDP reads the initiator SPI of an IKE message in a UDP packet
// (header included) on port 500 or 4500.
func ikeSPIOfUDP(u []byte) (uint64, bool) {
	const udpHeader = 8
	if len(u) < udpHeader {
		return 0, false
	}
	sp, dp := binary.BigEndian.Uint16(u), binary.BigEndian.Uint16(u[2:])
	b := u[udpHeader:]
	switch {
	case sp == portNATT || dp == portNATT:
		if len(b) < 4 || binary.BigEndian.Uint32(b) != 0 {
			return 0, false
		}
		b = b[4:]
	case sp == portIKE || dp == portIKE:
	default:
		return 0, false
	}
	if len(b) < wire.HeaderLen {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// placementOf says where ML-KEM runs in an offered proposal: "init" (the
// Transform Type 4 method), "intermediate" (an additional key exchange)
// or "none".
func placementOf(proposal string) string {
	ps, err := suite.ParseProposals(wire.ProtocolIKE, proposal)
	if err != nil || len(ps) == 0 {
		return "none"
	}
	p := ps[0]
	s := suite.Suite{}
	if len(p.KE) > 0 {
		s.KE = p.KE[0]
	}
	for i, r := range p.AddKE {
		if len(r) > 0 {
			s.AddKE[i] = r[0]
		}
	}
	return placementOfSuite(&s)
}

func placementOfSuite(s *suite.Suite) string {
	if isMLKEM(s.KE) {
		return "init"
	}
	for _, id := range s.AddKE {
		if isMLKEM(id) {
			return "intermediate"
		}
	}
	return "none"
}

func isMLKEM(id uint16) bool {
	return id == wire.KEMLKEM512 || id == wire.KEMLKEM768 || id == wire.KEMLKEM1024
}
