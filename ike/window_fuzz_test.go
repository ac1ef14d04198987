package ike

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/wire"
)

// Fuzz targets for the message-ID window (RFC 7296 Section 2.3): a
// schedule of local actions and of network fates (delivery in any order,
// duplication, loss, time passing) run by two engines with an established
// IKE SA, and sealed requests with chosen message IDs to an established
// responder. Normal test runs execute only the seed corpus; `make fuzz`
// explores.

// Schedule operations: each is two octets, the operation and its argument.
const (
	schedCreateA     = iota // A creates a Child SA (argument bit 0: "net" or "pfs")
	schedCreateB            // B creates a Child SA
	schedRekeyChild         // argument bit 0: side (0 A, 1 B), the rest: which Child SA
	schedRekeyIKE           // argument bit 0: side
	schedDeleteChild        // argument bit 0: side, the rest: which Child SA
	schedDeliver            // deliver in-flight datagram argument (modulo their number)
	schedDeliver2           // the same, to weigh delivery up
	schedDuplicate          // deliver a copy of datagram argument and keep it in flight
	schedDrop               // lose datagram argument
	schedAdvance            // advance time by (argument+1) * 50 ms and run the timers
	numSchedOps
)

// Schedule bounds: at most schedMaxOps operations, at most schedMaxFlight
// datagrams in flight (the oldest is lost beyond), and at most
// schedMaxElapsed of virtual time, well inside the retransmission schedule
// (the fifth retransmission comes 89.5 s after the first transmission), so
// that no exchange can time out: after the schedule the network delivers
// everything, and both ends must agree.
const (
	schedMaxOps     = 48
	schedMaxFlight  = 128
	schedMaxElapsed = 80 * time.Second
	schedSettle     = 10 * time.Minute
)

type schedFlight struct {
	toB bool
	d   Datagram
}

// schedRun is one execution of a schedule.
type schedRun struct {
	t       *testing.T
	p       *wbPair
	w       int
	pool    []schedFlight
	elapsed time.Duration
	// issued counts the Child SA creations and rekeys each end was asked
	// for (index 0: A).
	issued [2]int
	ops    int
	// trace logs every operation (for reproducing a failure by hand).
	trace bool
}

// describe names a datagram for the trace.
func describe(f schedFlight) string {
	dir := "B->A"
	if f.toB {
		dir = "A->B"
	}
	m, err := wire.ParseMessage(f.d.Data)
	if err != nil {
		return dir + " ?"
	}
	kind := "req"
	if m.Header.IsResponse() {
		kind = "resp"
	}
	s := fmt.Sprintf("%s %v %s mid=%d spi=%016x", dir, m.Header.Exchange, kind, m.Header.MessageID, m.Header.SPIi)
	if fr := m.Fragment(); fr != nil {
		s += fmt.Sprintf(" frag %d/%d", fr.Number, fr.Total)
	}
	return s
}

var schedChildNames = [2]string{"net", "pfs"}

func (r *schedRun) engine(b bool) *Engine {
	if b {
		return r.p.b
	}
	return r.p.a
}

// collect moves what both engines sent into the network.
func (r *schedRun) collect() {
	for _, d := range drainOut(r.p.a) {
		r.pool = append(r.pool, schedFlight{toB: true, d: d})
	}
	for _, d := range drainOut(r.p.b) {
		r.pool = append(r.pool, schedFlight{toB: false, d: d})
	}
	if n := len(r.pool) - schedMaxFlight; n > 0 {
		r.pool = slices.Delete(r.pool, 0, n)
	}
	r.p.drain()
}

func (r *schedRun) deliver(f schedFlight) {
	if r.trace {
		r.t.Logf("%v deliver %s", r.p.now.Sub(t0r), describe(f))
	}
	r.p.now = r.p.now.Add(time.Millisecond)
	r.engine(f.toB).Handle(r.p.now, f.d.Remote, f.d.Local, f.d.Data)
	r.collect()
}

// liveIKE returns the established IKE SA of e that is not being replaced
// (the one with the lowest SAID if there are several), or nil.
func liveIKE(e *Engine) *ikeSA {
	var best *ikeSA
	for id, sa := range e.byID {
		if sa.state == stEstablished && !sa.rekeyed && !sa.collision && (best == nil || id < best.id) {
			best = sa
		}
	}
	return best
}

// childSPIs returns the inbound SPIs of e's installed Child SAs, sorted.
func childSPIs(e *Engine) []uint32 {
	var out []uint32
	for spi, c := range e.children {
		if c != nil {
			out = append(out, spi)
		}
	}
	slices.Sort(out)
	return out
}

func (r *schedRun) step(op, arg byte) {
	side := arg&1 == 1
	if r.trace {
		r.t.Logf("%v op %d arg %d, in flight: %d", r.p.now.Sub(t0r), op%numSchedOps, arg, len(r.pool))
	}
	e := r.engine(side)
	switch op % numSchedOps {
	case schedCreateA, schedCreateB:
		b := op%numSchedOps == schedCreateB
		if sa := liveIKE(r.engine(b)); sa != nil {
			if r.engine(b).CreateChildSA(r.p.now, sa.id, schedChildNames[arg&1]) == nil {
				r.issued[b2i(b)]++
			}
		}
	case schedRekeyChild:
		if spis := childSPIs(e); len(spis) > 0 {
			if e.RekeyChildSA(r.p.now, spis[int(arg>>1)%len(spis)]) == nil {
				r.issued[b2i(side)]++
			}
		}
	case schedRekeyIKE:
		if sa := liveIKE(e); sa != nil {
			_ = e.RekeyIKESA(r.p.now, sa.id)
		}
	case schedDeleteChild:
		if spis := childSPIs(e); len(spis) > 0 {
			_ = e.DeleteChildSA(r.p.now, spis[int(arg>>1)%len(spis)])
		}
	case schedDeliver, schedDeliver2, schedDuplicate, schedDrop:
		if len(r.pool) == 0 {
			return
		}
		i := int(arg) % len(r.pool)
		f := r.pool[i]
		if op%numSchedOps != schedDuplicate {
			r.pool = slices.Delete(r.pool, i, i+1)
		}
		if op%numSchedOps != schedDrop {
			r.deliver(f)
		}
	case schedAdvance:
		d := time.Duration(int(arg)+1) * 50 * time.Millisecond
		if r.elapsed+d > schedMaxElapsed {
			d = schedMaxElapsed - r.elapsed
		}
		r.elapsed += d
		r.p.now = r.p.now.Add(d)
		r.p.a.HandleTimeout(r.p.now)
		r.p.b.HandleTimeout(r.p.now)
	}
	r.collect()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkBounds checks what must hold at any time: the stored responses, the
// peer's exchanges and the reassemblies within their bounds, our requests
// within the peer's window, the engine's maps bounded.
func (r *schedRun) checkBounds(name string, e *Engine) {
	t := r.t
	t.Helper()
	w := max(e.cfg.Window, 1)
	// Every operation starts at most one exchange, which reserves at most
	// one Child SA and one IKE SA; the handshake made one of each.
	bound := 4 + 2*r.ops
	if len(e.children) > bound || len(e.sas) > bound || len(e.byID) > bound || len(e.byIdentity) > 1 || len(e.halfOpen) > 0 {
		t.Fatalf("%s: maps grew: %d children, %d SAs by SPI, %d by ID, %d identities, %d half-open",
			name, len(e.children), len(e.sas), len(e.byID), len(e.byIdentity), len(e.halfOpen))
	}
	n := 0
	for _, c := range e.children {
		if c != nil {
			n++
		}
	}
	if n != e.nChildren {
		t.Fatalf("%s: %d Child SAs counted, %d held", name, e.nChildren, n)
	}
	for id, sa := range e.byID {
		if sa.id != id || sa.state == stDead {
			t.Fatalf("%s: SA %d indexed as %d in state %d", name, sa.id, id, sa.state)
		}
		if len(sa.resps) > w {
			t.Fatalf("%s: SA %d stores %d responses with a window of %d", name, id, len(sa.resps), w)
		}
		valid := 0
		for i := range sa.resps {
			if c := &sa.resps[i]; c.valid {
				valid++
				if c.mid >= sa.recvMID || sa.recvMID-c.mid > uint32(2*w) {
					// Stored responses answer requests below the
					// window's top (recvMID + w); below recvMID - w
					// a slot would have been reused.
					if c.mid >= sa.recvMID+uint32(w) {
						t.Fatalf("%s: SA %d stores the response to %d, beyond the window at %d", name, id, c.mid, sa.recvMID)
					}
				}
			}
		}
		if len(sa.xchgs) > w {
			t.Fatalf("%s: SA %d holds %d exchanges of the peer with a window of %d", name, id, len(sa.xchgs), w)
		}
		if out, pw := sa.outstanding(), max(int(sa.peerWindow), 1); out > pw {
			t.Fatalf("%s: SA %d has %d requests outstanding, peer window %d", name, id, out, pw)
		}
		for _, q := range append([]*request{sa.req}, sa.more...) {
			// Every request has its retransmission timer armed.
			if q != nil && (sa.heapIdx < 0 || sa.deadline.After(q.deadline)) {
				t.Fatalf("%s: SA %d request %d (%v) due at %v, SA's timer at %v (in heap %v)", name, id, q.mid, q.exch, q.deadline, sa.deadline, sa.heapIdx >= 0)
			}
		}
		if len(sa.reasm.bufs) > maxReassemblies {
			t.Fatalf("%s: SA %d reassembles %d messages", name, id, len(sa.reasm.bufs))
		}
		if len(sa.queue) > 4*r.ops+4 {
			t.Fatalf("%s: SA %d queue of %d", name, id, len(sa.queue))
		}
	}
}

// settleAll delivers everything in flight, in order, and runs both
// engines without loss until they are quiet.
func (r *schedRun) settleAll() {
	for len(r.pool) > 0 {
		f := r.pool[0]
		r.pool = r.pool[1:]
		r.deliver(f)
	}
	r.p.runUntil(r.p.now.Add(schedSettle))
	r.collect()
	if len(r.pool) > 0 {
		r.t.Fatalf("%d datagrams still in flight", len(r.pool))
	}
}

// checkAgreement checks the state after settling: one live IKE SA each,
// the same one, no exchange open, the same Child SAs crosswise, each
// installed once, the events matching the engines' state.
func (r *schedRun) checkAgreement() {
	t := r.t
	t.Helper()
	p := r.p
	dump := func() string { return fmt.Sprintf("\nA: %v\nB: %v", p.evA, p.evB) }
	for i, e := range []*Engine{p.a, p.b} {
		name := [2]string{"A", "B"}[i]
		r.checkBounds(name, e)
		if len(e.byID) != 1 {
			t.Fatalf("%s holds %d IKE SAs after settling%s", name, len(e.byID), dump())
		}
		for _, sa := range e.byID {
			if sa.state != stEstablished || sa.rekeyed || sa.collision || sa.peerRedundant {
				t.Fatalf("%s: IKE SA %d in state %d (rekeyed %v, collision %v, redundant %v)%s", name, sa.id, sa.state, sa.rekeyed, sa.collision, sa.peerRedundant, dump())
			}
			if sa.outstanding() != 0 || len(sa.xchgs) != 0 || len(sa.ixchgs) != 0 || len(sa.queue) != 0 || len(sa.reasm.bufs) != 0 {
				t.Fatalf("%s: IKE SA %d not quiet: %d requests, %d+%d exchanges, %d queued, %d reassemblies%s",
					name, sa.id, sa.outstanding(), len(sa.xchgs), len(sa.ixchgs), len(sa.queue), len(sa.reasm.bufs), dump())
			}
			if sa.rival != nil || sa.rivalOld != nil || sa.successor != nil {
				t.Fatalf("%s: IKE SA %d keeps collision state (rival %v, old %v, successor %v)%s", name, sa.id, sa.rival != nil, sa.rivalOld != nil, sa.successor != nil, dump())
			}
		}
		for spi, s := range e.sas {
			if s == nil || s.state == stDead {
				t.Fatalf("%s: SPI %016x reserved or dead after settling", name, spi)
			}
		}
		for spi, c := range e.children {
			if c == nil {
				t.Fatalf("%s: Child SPI %08x still reserved after settling", name, spi)
			}
			if c.state != childInstalled || e.byID[c.ike.id] != c.ike {
				t.Fatalf("%s: Child SA %08x in state %d on SA %d%s", name, spi, c.state, c.ike.id, dump())
			}
		}
	}
	sa, sb := liveIKE(p.a), liveIKE(p.b)
	if sa.spiI != sb.spiI || sa.spiR != sb.spiR || sa.nextReqMID != sb.recvMID || sb.nextReqMID != sa.recvMID {
		t.Fatalf("IKE SAs differ: A %016x/%016x mids %d/%d, B %016x/%016x mids %d/%d%s",
			sa.spiI, sa.spiR, sa.nextReqMID, sa.recvMID, sb.spiI, sb.spiR, sb.nextReqMID, sb.recvMID, dump())
	}
	if len(sa.children) != len(sb.children) || len(sa.children) != p.a.nChildren || len(sb.children) != p.b.nChildren {
		t.Fatalf("Child SAs: A %d (%d), B %d (%d)%s", len(sa.children), p.a.nChildren, len(sb.children), p.b.nChildren, dump())
	}
	for _, c := range sa.children {
		d := sb.childByOutSPI(c.inSPI)
		if d == nil || d.inSPI != c.outSPI || d.name != c.name {
			t.Fatalf("A's Child SA %08x/%08x has no partner at B%s", c.inSPI, c.outSPI, dump())
		}
	}
	for i, side := range []bool{true, false} {
		seen := map[uint32]bool{}
		mine := 0
		for _, ev := range p.events(side) {
			switch ev.Kind {
			case EventChildSAInstalled, EventChildSARekeyed:
				if seen[ev.Child.InboundSPI] {
					t.Fatalf("side %d: Child SA %08x installed twice%s", i, ev.Child.InboundSPI, dump())
				}
				seen[ev.Child.InboundSPI] = true
				if ev.Child.Initiator {
					mine++
				}
			}
		}
		// The first Child SA came with IKE_AUTH (A initiated it).
		if limit := r.issued[i] + 1 - i; mine > limit {
			t.Fatalf("side %d: %d Child SAs of its own exchanges for %d requests%s", i, mine, limit, dump())
		}
		live := p.liveChildren(side)
		e := r.engine(!side)
		if len(live) != e.nChildren {
			t.Fatalf("side %d: events leave %d Child SAs, engine holds %d%s", i, len(live), e.nChildren, dump())
		}
		for spi := range live {
			if e.children[spi] == nil {
				t.Fatalf("side %d: events leave Child SA %08x the engine does not hold%s", i, spi, dump())
			}
		}
		if ike := p.liveIKE(side); len(ike) != 1 {
			t.Fatalf("side %d: events leave %d IKE SAs%s", i, len(ike), dump())
		}
	}
}

// runSchedule executes the schedule in data (see FuzzWindowSchedule).
func runSchedule(t *testing.T, data []byte) { runScheduleTrace(t, data, false) }

func runScheduleTrace(t *testing.T, data []byte, trace bool) {
	if len(data) < 1 {
		return
	}
	w := int(data[0]&7) + 1
	ca, cb := Config{Window: w}, Config{Window: w}
	if data[0]&0x80 != 0 {
		// B offers its own window.
		cb.Window = int(data[0]>>4&7) + 1
	}
	if data[0]&8 != 0 {
		// Small fragments: CREATE_CHILD_SA with ML-KEM and its response
		// travel as several fragments each.
		ca.Fragmentation.Size, cb.Fragmentation.Size = 512, 512
	}
	ini, resp := wbPeers()
	p := newWBPairConfig(t, ca, cb, ini, resp, 21, 22)
	r := &schedRun{t: t, p: p, w: w, trace: trace}
	ops := data[1:]
	if len(ops) > 2*schedMaxOps {
		ops = ops[:2*schedMaxOps]
	}
	for i := 0; i+1 < len(ops); i += 2 {
		r.ops++
		r.step(ops[i], ops[i+1])
		r.checkBounds("A", p.a)
		r.checkBounds("B", p.b)
	}
	r.settleAll()
	r.checkAgreement()
}

// sched builds a schedule from (operation, argument) pairs.
func sched(head byte, ops ...byte) []byte { return append([]byte{head}, ops...) }

// FuzzWindowSchedule runs two engines offering a window of 1 to 8 (the
// same, or each its own) through a
// schedule of Child SA creations, rekeys and deletions by either end and of
// datagram fates chosen by the fuzzer, then lets the network deliver
// everything: both ends must agree on the IKE SA and the Child SAs, no
// request may have created two Child SAs, and the window state stays within
// its bounds throughout.
func FuzzWindowSchedule(f *testing.F) {
	const (
		cA, cB, rk, rkIKE, del = schedCreateA, schedCreateB, schedRekeyChild, schedRekeyIKE, schedDeleteChild
		dl, dup, drop, adv     = schedDeliver, schedDuplicate, schedDrop, schedAdvance
	)
	// Four creations by A delivered in reverse, responses in order.
	f.Add(sched(3, cA, 0, cA, 0, cA, 1, cA, 0, dl, 3, dl, 2, dl, 1, dl, 0, dl, 0, dl, 0, dl, 0, dl, 0))
	// The first request lost, the others answered, retransmission after 4 s.
	f.Add(sched(3, cA, 0, cA, 0, cA, 0, drop, 0, dl, 0, dl, 0, dl, 0, dl, 0, adv, 79, dl, 0))
	// Crossing IKE SA rekeys, crossing Child SA rekeys, with fragments.
	f.Add(sched(8|3, rkIKE, 0, rkIKE, 1, dl, 1, dl, 0, dl, 0, dl, 0))
	f.Add(sched(3, rk, 0, rk, 1, dl, 1, dl, 0, dl, 1, dl, 0))
	// Multi-round creations of both ends interleaved, duplicated, reordered.
	f.Add(sched(8|3, cA, 1, cB, 1, cA, 1, dup, 2, dl, 1, dup, 0, dl, 3, adv, 200, dl, 2, del, 0, dl, 0))
	// A offers 8, B 2: A keeps two requests in flight, B up to eight.
	f.Add(sched(0x80|0x10|7, cA, 0, cA, 1, cA, 0, cB, 0, cB, 1, cB, 0, dl, 5, dl, 4, dl, 3, dl, 2, dl, 1, dl, 0, adv, 99, dl, 0))
	// Window 1 with a deletion next to a creation and a rekey.
	f.Add(sched(0, del, 0, cA, 0, rk, 1, dl, 0, drop, 0, adv, 100, dl, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		runSchedule(t, data)
	})
}

// winRecord is one request of FuzzWindowRequests: the message ID relative
// to the responder's lowest unanswered one, and how it is sent.
type winRecord struct {
	delta    int8
	exch     wire.ExchangeType
	first    wire.PayloadType
	fragment bool // as fragments (when long enough)
	partial  bool // only the first half of the fragments
	plain    []byte
}

// FuzzWindowRequests sends an established responder offering a window of
// 4 a series of requests sealed under the IKE SA's keys, with message IDs
// chosen around the window (below it, inside, at its edge and beyond),
// exchange types and inner payloads chosen by the fuzzer, some as
// fragments, some repeated. Requests outside the window must be dropped
// and counted, and a message ID answered once must be answered with the
// same octets ever after (it is processed at most once).
func FuzzWindowRequests(f *testing.F) {
	ini, resp := wbPeers()
	// Seeds: the payloads of a real CREATE_CHILD_SA request and of an empty
	// INFORMATIONAL, around the window edges.
	seedPair := newWBPairConfig(f, Config{Window: 4}, Config{Window: 4}, ini, resp, 31, 32)
	sa := liveIKE(seedPair.a)
	if err := seedPair.a.CreateChildSA(seedPair.now, sa.id, "net"); err != nil {
		f.Fatal(err)
	}
	if sa.req == nil {
		f.Fatal("no CREATE_CHILD_SA request outstanding")
	}
	ccsa, first := openRequest(f, seedPair, sa.req), sa.req.first
	rec := func(delta int8, exch wire.ExchangeType, first wire.PayloadType, flags byte, plain []byte) []byte {
		out := []byte{byte(delta), byte(exch), byte(first), flags, byte(len(plain) >> 8), byte(len(plain))}
		return append(out, plain...)
	}
	cc, inf := wire.ExchangeCreateChildSA, wire.ExchangeInformational
	f.Add(slices.Concat(rec(0, inf, 0, 0, nil), rec(0, inf, 0, 0, nil), rec(3, inf, 0, 0, nil), rec(4, inf, 0, 0, nil), rec(-1, inf, 0, 0, nil)))
	f.Add(slices.Concat(rec(3, cc, first, 0, ccsa), rec(1, cc, first, 1, ccsa), rec(0, cc, first, 0, ccsa), rec(-2, cc, first, 0, ccsa), rec(2, cc, first, 0, ccsa)))
	f.Add(slices.Concat(rec(1, cc, first, 3, ccsa), rec(2, cc, first, 3, ccsa), rec(3, cc, first, 3, ccsa), rec(0, cc, first, 3, ccsa), rec(1, cc, first, 1, ccsa), rec(0, cc, first, 1, ccsa)))
	f.Add(slices.Concat(rec(5, inf, 0, 0, nil), rec(-5, inf, 0, 0, nil), rec(0, 0, 0, 0, []byte{1, 2, 3})))
	f.Fuzz(func(t *testing.T, data []byte) {
		runWindowRequests(t, data)
	})
}

// openRequest returns the plaintext of r, a request of A sent unfragmented.
func openRequest(t testing.TB, p *wbPair, r *request) []byte {
	sb := liveIKE(p.b)
	msg, err := wire.ParseMessage(r.dgrams[0])
	if err != nil || msg.Encrypted() == nil {
		t.Fatalf("request not a whole SK message: %v", err)
	}
	pt, err := sb.skIn.Open(msg.AssociatedData(), msg.Encrypted().Body)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

// parseWinRecords decodes the records of FuzzWindowRequests: delta,
// exchange type, first payload type, flags (bit 0 fragments, bit 1 only
// half of them), a 2-octet length and the plaintext.
func parseWinRecords(data []byte) []winRecord {
	var out []winRecord
	for len(data) >= 6 && len(out) < 16 {
		n := min(int(data[4])<<8|int(data[5]), len(data)-6, 4096)
		out = append(out, winRecord{delta: int8(data[0]), exch: wire.ExchangeType(data[1]), first: wire.PayloadType(data[2]),
			fragment: data[3]&1 != 0, partial: data[3]&2 != 0, plain: data[6 : 6+n]})
		data = data[6+n:]
	}
	return out
}

func runWindowRequests(t *testing.T, data []byte) {
	const w = 4
	recs := parseWinRecords(data)
	if len(recs) == 0 {
		return
	}
	ini, resp := wbPeers()
	ca := Config{Window: w}
	ca.Fragmentation.Size = MinFragmentSize
	p := newWBPairConfig(t, ca, Config{Window: w}, ini, resp, 31, 32)
	sa, sb := liveIKE(p.a), liveIKE(p.b)
	answers := map[uint32][]byte{}
	for i, rec := range recs {
		delta := int(rec.delta) % 8 // -7 .. 7 around the window's bottom
		mid := uint32(int(sb.recvMID) + delta)
		if delta < 0 && -delta > int(sb.recvMID) {
			mid = 0
		}
		s := &sealed{hdr: sa.header(rec.exch, mid, false), first: rec.first, plain: rec.plain}
		if err := p.a.seal(sa, sa.skOut, s, rec.fragment); err != nil {
			continue
		}
		dgrams := s.dgrams
		if rec.partial && len(dgrams) > 1 {
			dgrams = dgrams[:len(dgrams)/2]
		}
		recvMID, cached := sb.recvMID, sb.cachedFor(mid) != nil
		before := p.b.Stats().Dropped
		exchanges, events := sb.metrics.Exchanges, len(p.evB)
		var out []byte
		for _, d := range dgrams {
			p.now = p.now.Add(time.Millisecond)
			p.b.Handle(p.now, sa.remote, sa.local, d)
			for _, o := range drainOut(p.b) {
				out = append(out, o.Data...)
				out = append(out, 0xff) // datagram boundary
			}
		}
		p.drain()
		after := p.b.Stats().Dropped
		if rec.exch == wire.ExchangeIKESAInit {
			// Not a request of the IKE SA: the engine treats it as
			// the start of a new one (and drops it, SPIr being set).
			if len(out) != 0 {
				t.Fatalf("request %d: IKE_SA_INIT with both SPIs answered", i)
			}
			continue
		}
		outside := !cached && (mid < recvMID || mid-recvMID >= w)
		if outside {
			if len(out) != 0 {
				t.Fatalf("request %d: message ID %d outside the window at %d answered", i, mid, recvMID)
			}
			if got := after[DropOutOfWindow] - before[DropOutOfWindow]; got != uint64(len(dgrams)) {
				t.Fatalf("request %d: message ID %d outside the window at %d: %d out-of-window drops for %d datagrams", i, mid, recvMID, got, len(dgrams))
			}
			continue
		}
		if cached && (sb.metrics.Exchanges != exchanges || len(p.evB) != events) {
			t.Fatalf("request %d: message ID %d, answered before, processed again", i, mid)
		}
		if after[DropOutOfWindow] != before[DropOutOfWindow] {
			t.Fatalf("request %d: message ID %d inside the window at %d dropped as outside", i, mid, recvMID)
		}
		if len(out) == 0 {
			continue
		}
		if prev, ok := answers[mid]; ok && !bytes.Equal(prev, out) {
			t.Fatalf("request %d: message ID %d answered twice with different responses", i, mid)
		}
		if _, ok := answers[mid]; !ok {
			answers[mid] = out
		}
		if p.b.byID[sb.id] != sb || sb.state != stEstablished {
			return // the request deleted or replaced the IKE SA
		}
		if len(sb.resps) > w || len(sb.xchgs) > w || len(sb.reasm.bufs) > maxReassemblies {
			t.Fatalf("request %d: %d responses, %d exchanges, %d reassemblies", i, len(sb.resps), len(sb.xchgs), len(sb.reasm.bufs))
		}
	}
}

// TestWindowScheduleRegressions runs the schedules on which
// FuzzWindowSchedule found bugs (the same inputs are in
// testdata/fuzz/FuzzWindowSchedule).
func TestWindowScheduleRegressions(t *testing.T) {
	const (
		cA, cB, rkIKE, del = schedCreateA, schedCreateB, schedRekeyIKE, schedDeleteChild
		dl, drop, adv      = schedDeliver, schedDrop, schedAdvance
	)
	for _, c := range []struct {
		name  string
		sched []byte
	}{
		// Both ends rekey the IKE SA (with an additional key exchange);
		// A's request is lost, so B completes its rekey without seeing a
		// collision and deletes the old SA, with which A's own rekey
		// ends undecided. A's new SA kept referring to the old one (and
		// so on back through every such rekey): a removed SA now drops
		// its collision links, and those to it.
		{"ike-rekey-collision-ends-with-old-sa", sched(8|1, rkIKE, 0, rkIKE, 1, drop, 0, adv, 48)},
		// Window 1: both ends rekey the IKE SA, A answers B's request
		// first, B answers A's and completes A's rekey, then learns that
		// it lost and abandons its own before IKE_FOLLOWUP_KE. B's new
		// SA kept referring to the abandoned exchange and the old SA.
		{"ike-rekey-collision-abandoned", sched(0, rkIKE, 1, rkIKE, 0, dl, 0, drop, 0, drop, 0, drop, 0, adv, 88, dl, 0, dl, 1)},
		// A answers B's CREATE_CHILD_SA, the response is lost, and A
		// deletes the new Child SA; the Delete reaches B before the
		// response to B's retransmission, so B installed a Child SA A no
		// longer had (half-closed, forever).
		// Window 1: B queues a new Child SA while A rekeys the IKE SA;
		// completing the rekey, B sends it on the new SA, which A does
		// not know yet (B's last IKE_FOLLOWUP_KE response is lost). The
		// request had no retransmission timer (the queue ran after the
		// new SA was scheduled) and waited for the rekey hours later.
		{"queued-request-on-new-ike-sa", sched(0, rkIKE, 0, dl, 0, adv, 48, cB, 0, dl, 0, dl, 0, dl, 0, drop, 0)},
		// Window 1: A rekeys the IKE SA twice in a row; B's Delete of
		// the Child SA, sent on the first SA, and A's Delete of that SA
		// are lost. B's retransmitted Delete reaches the first SA, whose
		// Child SAs are by then on the third: the link to where they
		// went ran through the second SA, removed meanwhile, so A
		// answered as if the Child SA did not exist and kept it.
		{"child-delete-after-two-ike-rekeys", sched(0, rkIKE, 0, dl, 0, dl, 0, del, 1, dl, 0, dl, 0, dl, 1, drop, 0, drop, 0, rkIKE, 0)},
		{"delete-overtakes-create-response", sched(7, cB, 0, adv, 88, cA, 1, cA, 0, dl, 0, drop, 0, drop, 0, del, 50, drop, 0, drop, 0)},
	} {
		t.Run(c.name, func(t *testing.T) { runSchedule(t, c.sched) })
	}
}

// TestWindowDeleteOvertakesCreateResponse: the responder of a
// CREATE_CHILD_SA deletes the new Child SA while its response is lost; the
// initiator, which gets the Delete before the response to its
// retransmitted request, removes the Child SA as soon as it installs it
// instead of keeping one the peer no longer has (RFC 7296 Section 1.4.1).
func TestWindowDeleteOvertakesCreateResponse(t *testing.T) {
	p, _ := newWinPair(t, 4)
	idB := p.kinds(false, EventIKESAEstablished)[0].SA
	if err := p.b.CreateChildSA(p.now, idB, "net"); err != nil {
		t.Fatal(err)
	}
	req := drainOut(p.b)
	if len(req) != 1 {
		t.Fatalf("%d datagrams for the request", len(req))
	}
	_ = p.deliverTo(p.a, req[0]) // the response is lost
	inst := p.kinds(true, EventChildSAInstalled)
	spi := inst[len(inst)-1].Child.InboundSPI
	if err := p.a.DeleteChildSA(p.now, spi); err != nil {
		t.Fatal(err)
	}
	del := drainOut(p.a)
	if len(del) != 1 {
		t.Fatalf("%d datagrams for the Delete", len(del))
	}
	for _, d := range p.deliverTo(p.b, del[0]) {
		p.deliverTo(p.a, d)
	}
	p.now = p.now.Add(DefaultRetransmitTimeout)
	p.b.HandleTimeout(p.now)
	again := drainOut(p.b)
	if len(again) != 1 {
		t.Fatalf("%d retransmitted datagrams", len(again))
	}
	resp := p.deliverTo(p.a, again[0])
	if len(resp) != 1 {
		t.Fatalf("%d datagrams answer the retransmission", len(resp))
	}
	if out := p.deliverTo(p.b, resp[0]); len(out) != 0 {
		t.Fatalf("B sent %d datagrams after the response (a Delete A could not use)", len(out))
	}
	evs := p.events(false)
	if n := len(evs); n < 2 || evs[n-2].Kind != EventChildSAInstalled || evs[n-1].Kind != EventChildSADeleted ||
		evs[n-1].Child.OutboundSPI != spi || evs[n-1].Reason.Cause != CausePeerDeleted {
		t.Fatalf("B's events end %v", evs)
	}
	if p.a.nChildren != 1 || p.b.nChildren != 1 || len(p.liveChildren(false)) != 1 {
		t.Fatalf("Child SAs: A %d, B %d", p.a.nChildren, p.b.nChildren)
	}
	if e := onlySA(t, p.b).earlyDeletes; len(e) != 0 {
		t.Fatalf("B still remembers %d early Deletes", len(e))
	}
}

// TestWindowChildDeleteCrossesIKERekey: A deletes a Child SA while B's
// IKE SA rekey (with an additional key exchange) runs; B completes the
// rekey, moving the Child SA to the new IKE SA, before A's Delete, sent on
// the old one, arrives. B finds the Child SA on the SA that replaced the
// old one and deletes it (RFC 7296 Sections 1.4.1 and 2.18) instead of
// answering that it has no such SA while keeping it.
func TestWindowChildDeleteCrossesIKERekey(t *testing.T) {
	p, _ := newWinPair(t, 4)
	deliver := func(dst *Engine, ds []Datagram) []Datagram {
		var out []Datagram
		for _, d := range ds {
			out = append(out, p.deliverTo(dst, d)...)
		}
		return out
	}
	idB := p.kinds(false, EventIKESAEstablished)[0].SA
	if err := p.b.RekeyIKESA(p.now, idB); err != nil {
		t.Fatal(err)
	}
	resp := deliver(p.a, drainOut(p.b)) // CREATE_CHILD_SA
	spi := p.kinds(true, EventChildSAInstalled)[0].Child.InboundSPI
	if err := p.a.DeleteChildSA(p.now, spi); err != nil {
		t.Fatal(err)
	}
	del := drainOut(p.a)
	if len(del) != 1 || exchangeOf(t, del[0]) != wire.ExchangeInformational {
		t.Fatalf("%d datagrams for the Delete", len(del))
	}
	resp = deliver(p.a, deliver(p.b, resp)) // IKE_FOLLOWUP_KE
	later := deliver(p.b, resp)             // B completes its rekey
	if len(p.kinds(false, EventIKESARekeyed)) != 1 {
		t.Fatal("B did not complete its rekey")
	}
	ack := deliver(p.b, del)
	if len(ack) != 1 {
		t.Fatalf("%d datagrams answer the Delete", len(ack))
	}
	deliver(p.a, ack)
	p.pump(p.a, later)
	p.settle()
	if p.a.nChildren != 0 || p.b.nChildren != 0 {
		t.Fatalf("Child SAs left: A %d, B %d\nA: %v\nB: %v", p.a.nChildren, p.b.nChildren, p.evA, p.evB)
	}
	if n := p.deletions(false, CausePeerDeleted); n != 1 {
		t.Fatalf("B reported %d Child SAs deleted by the peer, want 1: %v", n, p.evB)
	}
}

// TestEngineStartsNoGoroutines: the engine is sans-I/O and runs only in
// its caller's goroutine, so no schedule can leave goroutines behind: no
// source file of the package (nor of its subpackages) has a go statement.
// (Counting goroutines around a fuzz execution is unreliable: the fuzzing
// worker runs its own.)
func TestEngineStartsNoGoroutines(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob("*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	fset := token.NewFileSet()
	for _, name := range append(files, more...) {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		n++
		ast.Inspect(f, func(node ast.Node) bool {
			if g, ok := node.(*ast.GoStmt); ok {
				t.Errorf("%v: go statement", fset.Position(g.Pos()))
			}
			return true
		})
	}
	if n < 20 {
		t.Fatalf("only %d source files found", n)
	}
}
