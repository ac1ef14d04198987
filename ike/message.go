package ike

import (
	"container/heap"
	"errors"
	"net/netip"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// Outgoing protected messages (RFC 7296 Section 3.14) and their RFC 7383
// fragmentation:
//
//  1. The inner payloads are encoded as one plaintext P.
//  2. If the peer supports fragmentation, the policy allows it now and the
//     whole message would not fit the fragment size, P is cut into chunks
//     of the largest size that fits one fragment datagram, each sealed as
//     its own SKF payload (fragment 1 carries the first payload type).
//  3. Otherwise P is sealed as one SK payload.
//  4. Each message gets the non-ESP marker when sent from the NAT-T port.

// errFragmentTooSmall is returned when the fragment size leaves no room for
// content.
var errFragmentTooSmall = errors.New("ike: fragment size leaves no room for content")

// ipOverhead returns the IP and UDP header octets counted by the fragment
// size for a datagram to remote.
func (e *Engine) ipOverhead(sa *ikeSA) int {
	if e.cfg.Fragmentation.Counts == CountUDP {
		return 0
	}
	if sa.remote.Addr().Unmap().Is4() {
		return ipv4HeaderLen + udpHeaderLen
	}
	return ipv6HeaderLen + udpHeaderLen
}

// Header sizes counted by the fragment size.
const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
)

// fragmentSize returns the configured fragment size towards sa's peer.
func (e *Engine) fragmentSize(sa *ikeSA) int {
	f := &e.cfg.Fragmentation
	if f.SizeIPv6 != 0 && !sa.remote.Addr().Unmap().Is4() {
		return f.SizeIPv6
	}
	return f.Size
}

// datagramOverhead is what a datagram of sa adds in front of the IKE
// message as counted by the fragment size.
func (e *Engine) datagramOverhead(sa *ikeSA, local bool) int {
	n := e.ipOverhead(sa)
	if e.isNATT(sa.local) {
		n += nonESPMarkerLen
	}
	return n
}

// sealed is a protected message ready to send.
type sealed struct {
	dgrams [][]byte
	frag   bool
	hdr    wire.Header
	first  wire.PayloadType
	plain  []byte
}

// protect encodes and seals payloads under header h with sk. fragment
// selects whether fragmentation may be used for this transmission.
func (e *Engine) protect(sa *ikeSA, sk *suite.SK, h wire.Header, payloads []wire.Payload, fragment bool) (*sealed, error) {
	e.mapWireIDs(payloads)
	plain, err := wire.AppendPayloads(nil, payloads)
	if err != nil {
		return nil, err
	}
	s := &sealed{hdr: h, first: wire.FirstType(payloads), plain: plain}
	return s, e.seal(sa, sk, s, fragment)
}

// seal (re)builds s.dgrams from s.plain.
func (e *Engine) seal(sa *ikeSA, sk *suite.SK, s *sealed, fragment bool) error {
	over := e.datagramOverhead(sa, true)
	whole := over + wire.HeaderLen + wire.GenericHeaderLen + sk.SealedLen(len(s.plain))
	if fragment && sa.peerFrag && whole > e.fragmentSize(sa) {
		return e.sealFragments(sa, sk, s, over)
	}
	hdr, err := wire.AppendSKHeaders(make([]byte, 0, whole), s.hdr, s.first, sk.SealedLen(len(s.plain)))
	if err != nil {
		return err
	}
	msg, err := sk.Seal(hdr, s.plain)
	if err != nil {
		return err
	}
	e.op(sa, suite.OpSKSeal, sa.suite.Encr, len(s.plain))
	s.dgrams, s.frag = [][]byte{e.frame(sa.local, msg)}, false
	return nil
}

func (e *Engine) sealFragments(sa *ikeSA, sk *suite.SK, s *sealed, over int) error {
	room := e.fragmentSize(sa) - over - wire.HeaderLen - wire.SKFHeaderLen
	max := sk.MaxPlaintext(room)
	if max < 1 {
		return errFragmentTooSmall
	}
	total := (len(s.plain) + max - 1) / max
	if total == 0 {
		total = 1
	}
	if total > e.cfg.Fragmentation.MaxFragments || total > 0xffff {
		return errFragmentTooSmall
	}
	s.dgrams, s.frag = make([][]byte, 0, total), true
	for i := 0; i < total; i++ {
		chunk := s.plain[i*max : min(len(s.plain), (i+1)*max)]
		first := wire.PayloadNone
		if i == 0 {
			first = s.first
		}
		hdr, err := wire.AppendSKFHeaders(nil, s.hdr, first, uint16(i+1), uint16(total), sk.SealedLen(len(chunk)))
		if err != nil {
			return err
		}
		msg, err := sk.Seal(hdr, chunk)
		if err != nil {
			return err
		}
		e.op(sa, suite.OpSKSeal, sa.suite.Encr, len(chunk))
		s.dgrams = append(s.dgrams, e.frame(sa.local, msg))
	}
	return nil
}

// fragmentNow tells whether a message sent for the n-th time (0: first)
// may be fragmented under the configured policy.
func (e *Engine) fragmentNow(n int) bool {
	switch e.cfg.Fragmentation.Policy {
	case FragmentWhenLarger:
		return true
	case FragmentOnRetransmit:
		return n > 0
	}
	return false
}

// sendRequest protects payloads as a new request of sa and sends it.
func (e *Engine) sendRequest(now time.Time, sa *ikeSA, kind reqKind, exch wire.ExchangeType, payloads []wire.Payload, ctx *childExchange) (*request, error) {
	r, _, err := e.sendRequestSealed(now, sa, kind, exch, payloads, ctx)
	return r, err
}

// sendRequestSealed is sendRequest that also returns the sealed message
// (its plaintext feeds IntAuth).
func (e *Engine) sendRequestSealed(now time.Time, sa *ikeSA, kind reqKind, exch wire.ExchangeType, payloads []wire.Payload, ctx *childExchange) (*request, *sealed, error) {
	mid := sa.nextReqMID
	s, err := e.protect(sa, sa.skOut, sa.header(exch, mid, false), payloads, e.fragmentNow(0))
	if err != nil {
		return nil, nil, err
	}
	sa.nextReqMID++
	r := &request{mid: mid, exch: exch, kind: kind, dgrams: s.dgrams, frag: s.frag, hdr: s.hdr, first: s.first, ctx: ctx}
	if e.cfg.Fragmentation.Policy == FragmentOnRetransmit {
		r.plain = s.plain
	}
	sa.putRequest(r)
	e.transmit(now, sa, r)
	return r, s, nil
}

// transmit sends (or resends) an outstanding request and arms its timer.
func (e *Engine) transmit(now time.Time, sa *ikeSA, r *request) {
	if r.sent > 0 {
		sa.metrics.Retransmissions++
		if r.plain != nil && !r.frag && sa.peerFrag && e.fragmentNow(r.sent) && sa.skOut != nil && r.exch != wire.ExchangeIKESAInit {
			s := &sealed{hdr: r.hdr, first: r.first, plain: r.plain}
			if err := e.seal(sa, sa.skOut, s, true); err == nil {
				r.dgrams, r.frag = s.dgrams, s.frag
			}
		}
	}
	e.send(sa, sa.local, sa.remote, r.dgrams, r.frag)
	r.deadline = now.Add(e.cfg.Retransmit.Timeout(r.sent))
	r.sent++
}

// sendResponse protects payloads as the response to the peer's request
// mid, sends it to where the request came from and caches it.
func (e *Engine) sendResponse(now time.Time, sa *ikeSA, exch wire.ExchangeType, mid uint32, payloads []wire.Payload) {
	e.sendResponseSealed(now, sa, exch, mid, payloads)
}

// sendResponseSealed is sendResponse that also returns the sealed message,
// or nil after a failure (the SA is then gone).
func (e *Engine) sendResponseSealed(now time.Time, sa *ikeSA, exch wire.ExchangeType, mid uint32, payloads []wire.Payload) *sealed {
	sk := sa.skOut
	s, err := e.protect(sa, sk, sa.header(exch, mid, true), payloads, e.fragmentNow(0))
	if err != nil {
		e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: err.Error()})
		return nil
	}
	c := cachedResponse{valid: true, mid: mid, dgrams: s.dgrams, frag: s.frag, local: sa.local, remote: sa.remote}
	if e.cfg.Fragmentation.Policy == FragmentOnRetransmit && !s.frag {
		c.refrag = &refragment{hdr: s.hdr, first: s.first, plain: s.plain, sk: sk}
	}
	sa.storeResponse(c, e.recvWindow(sa))
	e.send(sa, sa.local, sa.remote, s.dgrams, s.frag)
	return s
}

// recvWindow returns the number of the peer's requests this end accepts
// and keeps responses for at once: one until the IKE SA is established,
// then Config.Window, which IKE_AUTH announced with SET_WINDOW_SIZE (RFC
// 7296 Section 2.3: the window is one until the initial exchanges
// complete).
func (e *Engine) recvWindow(sa *ikeSA) uint32 {
	if sa.state < stEstablished {
		return 1
	}
	return uint32(e.cfg.Window)
}

// resendResponse answers a retransmitted request from the cache.
func (e *Engine) resendResponse(sa *ikeSA, r *cachedResponse) {
	if f := r.refrag; f != nil && !r.frag && sa.peerFrag {
		s := &sealed{hdr: f.hdr, first: f.first, plain: f.plain}
		if err := e.seal(sa, f.sk, s, true); err == nil {
			r.dgrams, r.frag = s.dgrams, s.frag
		}
		r.refrag = nil
	}
	sa.metrics.ResponsesResent++
	e.send(sa, r.local, r.remote, r.dgrams, r.frag)
}

// inbound is a decrypted message.
type inbound struct {
	hdr      wire.Header
	rawHdr   []byte // the 28-octet IKE header as received
	first    wire.PayloadType
	plain    []byte
	payloads []wire.Payload
}

// unprotect authenticates and decrypts msg with sa.skIn, reassembling
// fragments. It returns nil (and counts the drop) when the message is not
// (yet) complete or not acceptable.
func (e *Engine) unprotect(sa *ikeSA, msg *wire.Message) *inbound {
	ad := msg.AssociatedData()
	in := &inbound{hdr: msg.Header, rawHdr: msg.Raw[:wire.HeaderLen]}
	switch {
	case msg.Encrypted() != nil:
		sk := msg.Encrypted()
		if sa.skIn == nil {
			e.drop(DropUnexpectedExchange)
			return nil
		}
		pt, err := sa.skIn.Open(ad, sk.Body)
		e.op(sa, suite.OpSKOpen, sa.suite.Encr, len(sk.Body))
		if err != nil {
			e.drop(DropIntegrity)
			return nil
		}
		in.first, in.plain = sk.FirstPayload, pt
	case msg.Fragment() != nil:
		f := msg.Fragment()
		if !sa.peerFrag || sa.skIn == nil {
			e.drop(DropFragment)
			return nil
		}
		pt, err := sa.skIn.Open(ad, f.Body)
		e.op(sa, suite.OpSKOpen, sa.suite.Encr, len(f.Body))
		if err != nil {
			e.drop(DropIntegrity)
			return nil
		}
		sa.metrics.FragmentsReceived++
		fc := &e.cfg.Fragmentation
		all, first, done, err := sa.reasm.add(msg.Header.MessageID, msg.Header.IsResponse(), f.Number, f.Total, uint8(f.FirstPayload), pt, fc.MaxFragments, fc.MaxReassembledSize)
		if err != nil {
			e.drop(DropFragment)
			return nil
		}
		if !done {
			return nil
		}
		in.first, in.plain = wire.PayloadType(first), all
	default:
		// Everything after IKE_SA_INIT must be protected (RFC 7296 Section 3.14).
		e.drop(DropUnexpectedExchange)
		return nil
	}
	ps, err := wire.ParsePayloads(in.first, in.plain)
	if err != nil {
		var uc *wire.UnsupportedCriticalPayloadError
		if errors.As(err, &uc) {
			e.drop(DropUnsupportedCritical)
		} else {
			e.drop(DropMalformed)
		}
		return nil
	}
	e.mapWireIDs(ps)
	in.payloads = ps
	return in
}

// handleResponse processes a response to our outstanding request.
func (e *Engine) handleResponse(now time.Time, sa *ikeSA, local, remote netip.AddrPort, msg *wire.Message) {
	r := sa.takeRequest(msg.Header.MessageID, msg.Header.Exchange)
	if r == nil {
		e.drop(DropUnexpectedResponse)
		return
	}
	in := e.unprotect(sa, msg)
	if in == nil {
		// Not (yet) acceptable: the request stays outstanding.
		sa.putRequest(r)
		return
	}
	sa.lastRecv = now
	sa.reasm.drop(r.mid, true)
	sa.metrics.RoundTrips++
	sa.metrics.Exchanges++
	switch r.kind {
	case reqIntermediate:
		e.onIntermediateResponse(now, sa, in)
	case reqAuth:
		e.onAuthResponse(now, sa, in)
	case reqCreateChild, reqFollowupKE:
		e.onChildResponse(now, sa, r, in)
	case reqDelete:
		why := CauseLocalDelete
		switch {
		case sa.collision:
			why = CauseRekeyCollision
		case sa.rekeyed:
			why = CauseRekeyed
		}
		e.removeSA(now, sa, Reason{Cause: why}, true)
		return
	case reqDeleteChild, reqInformational:
		e.onInformationalResponse(now, sa, r, in)
	case reqAuthFailedNotify:
	}
	if sa.state != stDead {
		e.runQueue(now, sa)
	}
}

// runQueue starts queued local actions, in order, while the next one may
// run, and reschedules sa for the requests they sent: sa need not be the
// SA the caller reschedules (the new SA of an IKE SA rekey, to which the
// queue moved), and a request without its retransmission timer would wait
// for the SA's next lifetime event.
func (e *Engine) runQueue(now time.Time, sa *ikeSA) {
	ran := false
	for len(sa.queue) > 0 && e.canRun(sa, sa.queue[0].gate) {
		q := sa.queue[0]
		sa.queue[0] = queued{}
		sa.queue = sa.queue[1:]
		q.f(now, sa)
		ran = true
	}
	if ran && sa.state != stDead {
		e.schedule(sa)
	}
}

// handleRequest processes a request of the peer. A retransmission of a
// request answered before gets the stored response again and is not
// processed again (RFC 7296 Section 2.1; for fragments only on fragment 1,
// RFC 7383 Section 2.6.1). Other requests are processed when their message
// ID lies in the receive window: from the lowest one not answered yet to
// the window size ahead of it, so that with a window above one a request
// is processed even when one before it has not arrived yet (the requests
// "may pass one another over the network", Section 2.3). Message IDs below
// the window (responses forgotten) or beyond it are dropped.
func (e *Engine) handleRequest(now time.Time, sa *ikeSA, local, remote netip.AddrPort, msg *wire.Message) {
	mid := msg.Header.MessageID
	if c := sa.cachedFor(mid); c != nil {
		e.drop(DropRetransmit)
		if f := msg.Fragment(); f != nil && f.Number != 1 {
			return
		}
		e.resendResponse(sa, c)
		return
	}
	if !sa.inWindow(mid, e.recvWindow(sa)) {
		e.drop(DropOutOfWindow)
		return
	}
	if sa.state == stDeleting && msg.Header.Exchange != wire.ExchangeInformational {
		e.drop(DropUnexpectedExchange)
		return
	}
	in := e.unprotect(sa, msg)
	if in == nil {
		return
	}
	sa.lastRecv = now
	// A whole copy may complete a message whose fragments were buffered.
	sa.reasm.drop(mid, false)
	if open := len(sa.xchgs); open > 0 {
		// Local actions waiting for the peer's exchanges (gateRekeyIKE,
		// gateCreate) may run once one of them ended (after the
		// address below is settled).
		defer func() {
			if sa.state != stDead && len(sa.xchgs) < open {
				e.runQueue(now, sa)
			}
		}()
	}
	// The responder answers to where the request came from (RFC 7296
	// Section 2.11), and follows the peer's address when it is behind a NAT
	// (Section 2.23): the address of its newest request, so a request that
	// was overtaken by a later one (window above one) does not take the SA
	// back to an address the peer's NAT may have left.
	if prevLocal, prevRemote := sa.local, sa.remote; sa.answeredAbove(mid) {
		defer func() {
			if sa.state != stDead {
				sa.local, sa.remote = prevLocal, prevRemote
			}
		}()
	}
	sa.local, sa.remote = local, remote
	switch msg.Header.Exchange {
	case wire.ExchangeIKEIntermediate:
		e.onIntermediateRequest(now, sa, in)
	case wire.ExchangeIKEAuth:
		e.onAuthRequest(now, sa, in)
	case wire.ExchangeCreateChildSA:
		e.onCreateChildRequest(now, sa, in)
	case wire.ExchangeIKEFollowupKE:
		e.onFollowupKERequest(now, sa, in)
	case wire.ExchangeInformational:
		e.onInformationalRequest(now, sa, in)
	default:
		e.drop(DropUnexpectedExchange)
		return
	}
	if sa.state != stDead && sa.cachedFor(mid) != nil {
		sa.metrics.Exchanges++
	}
}

// respondError answers the peer's request with a single error notify
// without changing the SA's state (RFC 7296 Section 2.21.2).
func (e *Engine) respondError(now time.Time, sa *ikeSA, in *inbound, t wire.NotifyType, data []byte) {
	e.drop(DropInvalid)
	e.sendResponse(now, sa, in.hdr.Exchange, in.hdr.MessageID, []wire.Payload{&wire.Notify{NotifyType: t, Data: data}})
}

// onTimer runs the due timers of sa.
func (e *Engine) onTimer(now time.Time, sa *ikeSA) {
	defer func() {
		if sa.state != stDead {
			e.schedule(sa)
		}
	}()
	for _, r := range append([]*request{sa.req}, sa.more...) {
		if r == nil || r.deadline.After(now) {
			continue
		}
		tries := e.cfg.Retransmit.Tries
		if r.tries > 0 {
			tries = r.tries
		}
		if r.sent > tries {
			e.failSA(now, sa, Reason{Cause: CauseTimeout, Detail: r.exch.String() + " not answered"})
			return
		}
		e.transmit(now, sa, r)
	}
	if !sa.halfOpen.IsZero() && !sa.halfOpen.After(now) {
		e.failSA(now, sa, Reason{Cause: CauseHalfOpenTimeout})
		return
	}
	e.lifetimeTimers(now, sa)
}

// failSA reports a failure (or the deletion of an established SA) and
// removes the SA.
func (e *Engine) failSA(now time.Time, sa *ikeSA, why Reason) {
	if sa.state == stDead {
		return
	}
	if sa.state < stEstablished {
		ev := sa.event(EventFailed, now)
		ev.Reason = why
		ev.Metrics = sa.metricsCopy()
		e.emit(ev)
		e.removeSA(now, sa, why, false)
		return
	}
	e.removeSA(now, sa, why, true)
}

// removeSA forgets sa and its Child SAs, emitting deletion events.
func (e *Engine) removeSA(now time.Time, sa *ikeSA, why Reason, emitIKE bool) {
	if sa.state == stDead {
		return
	}
	for _, c := range sa.children {
		e.removeChild(now, c, Reason{Cause: CauseIKEDeleted}, false)
	}
	sa.children = nil
	if emitIKE {
		ev := sa.event(EventIKESADeleted, now)
		ev.Reason = why
		ev.Metrics = sa.metricsCopy()
		e.emit(ev)
	}
	e.leaveHalfOpen(sa)
	if e.sas[sa.localSPI()] == sa {
		delete(e.sas, sa.localSPI())
	}
	delete(e.byID, sa.id)
	if sa.state >= stEstablished {
		e.unindexIdentity(sa)
	}
	sa.state = stDead
	for _, x := range append(sa.xchgs, sa.ixchgs...) {
		e.release(x)
		e.rekeyLostWith(now, sa, x)
		if p := x.collision; x.initiator && p != nil && p.newIKE != nil && p.newIKE.rival == x {
			// Our IKE SA rekey, which collided with the peer's, ends
			// with the SA it rekeyed, undecided: the peer's new SA
			// stays, and no longer refers to this one.
			p.newIKE.rival, p.newIKE.rivalOld = nil, nil
		}
	}
	// A dead SA refers to no other, so that none is kept alive through it.
	sa.rival, sa.rivalOld, sa.successor = nil, nil, nil
	for _, r := range append([]*request{sa.req}, sa.more...) {
		if r != nil && r.ctx != nil {
			e.release(r.ctx)
			if c := r.ctx.old; r.kind == reqDeleteChild && c != nil && c.ike != sa && e.children[c.inSPI] == c {
				// Our Delete of a Child SA that moved on to the IKE SA
				// that replaced this one (rekey collision): sent again
				// there, since its response is lost with this SA.
				e.whenGate(now, c.ike, gateInfo, func(now time.Time, _ *ikeSA) { e.sendDeleteChild(now, c.ike, c) })
			}
		}
	}
	if sa.hs != nil {
		e.releaseChildSPI(sa.hs)
	}
	sa.req, sa.more, sa.queue, sa.hs, sa.xchgs, sa.ixchgs = nil, nil, nil, nil, nil, nil
	sa.resps = nil
	if sa.heapIdx >= 0 {
		heap.Remove(&e.timers, sa.heapIdx)
	}
}

// leaveHalfOpen removes sa from the half-open accounting (the count bounded
// by Config.MaxHalfOpen, its deadline) and from the index of IKE_SA_INIT
// retransmissions, when it is established or deleted.
func (e *Engine) leaveHalfOpen(sa *ikeSA) {
	if !sa.halfOpen.IsZero() {
		e.nHalf--
		sa.halfOpen = time.Time{}
	}
	if !sa.initiator && sa.hs != nil {
		k := initKey{sa.spiI, sa.hs.initRemote}
		if e.halfOpen[k] == sa {
			delete(e.halfOpen, k)
		}
	}
}
