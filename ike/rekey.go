package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// CREATE_CHILD_SA (RFC 7296 Sections 1.3 and 2.8): new Child SAs, Child SA
// rekeys and IKE SA rekeys, each optionally followed by IKE_FOLLOWUP_KE
// exchanges for the additional key exchanges of RFC 9370 Section 2.2.4.
//
// Collisions (RFC 7296 Sections 2.8.1, 2.8.2 and 2.25, RFC 9370 Section
// 2.2.4): a request to rekey or create an SA that this end is deleting, or
// a Child SA request while this end rekeys the IKE SA, is refused with
// TEMPORARY_FAILURE; a refused rekey is retried after a random delay. When
// both ends rekey the same SA at once, each answers the other's request as
// usual, so both exchanges complete and create redundant SAs. The SA created
// by the exchange holding the lowest of the four nonces (octet by octet, a
// shorter prefix being lower) is deleted by the end that initiated that
// exchange; the initiator of the other exchange deletes the old SA, and for
// an IKE SA the surviving new SA inherits the Child SAs. With additional key
// exchanges the collision is decided when the CREATE_CHILD_SA response
// arrives (the nonces are known then): the losing end abandons its exchange
// before any IKE_FOLLOWUP_KE, the winning end stops waiting for the peer's
// IKE_FOLLOWUP_KE; a rekey request that arrives after this end has started
// its IKE_FOLLOWUP_KE exchanges is refused with TEMPORARY_FAILURE. A lost
// exchange that is dropped without creating an SA is reported as
// EventExchangeFailed with CauseRekeyCollision.
//
// While the peer's rekey waits for its IKE_FOLLOWUP_KE rounds, this end
// starts no IKE SA rekey (nor, while the peer rekeys the IKE SA, any Child
// SA exchange): the peer would refuse it or see a collision. A refused
// rekey is retried sooner than usual when the SA's hard lifetime is near.
//
// The Child SAs during an IKE SA rekey collision without additional key
// exchanges: answering the peer's rekey moves them to the peer's new SA.
// If the peer then deletes that SA (it lost) before the response to our
// own rekey arrived, they go back to the old SA and on to ours; if we lost,
// a Delete of a Child SA that the peer sends on our redundant SA finds it
// on the peer's winning SA. Messages of one exchange may pass those of
// another (window above one, or a busy peer), so each order is handled.

// Collision retry delay bounds. A rekey refused with TEMPORARY_FAILURE is
// retried after retryMin plus up to retryJitter, or, when that would come
// later than half the time left before the hard lifetime of the SA being
// rekeyed, after a random quarter to half of that time, but no sooner than
// retryFloor (RFC 7296 Section 2.25: not immediately, only after a wait
// that lets the peer complete what caused the refusal).
const (
	retryMin    = 2 * time.Second
	retryJitter = 8 * time.Second
	retryFloor  = 100 * time.Millisecond
)

type xKind uint8

const (
	xNewChild xKind = iota
	xRekeyChild
	xRekeyIKE
	xDeleteChild
)

// childExchange is the state of a CREATE_CHILD_SA exchange (with its
// IKE_FOLLOWUP_KE rounds), or of a Child SA delete.
type childExchange struct {
	kind      xKind
	initiator bool
	old       *childSA    // Child SA rekeyed or deleted
	ce        *childEntry // configuration of a new or rekeyed Child SA
	why       Cause       // why old is deleted
	suite     suite.Suite
	ni, nr    []byte
	kes       []uint16 // key exchange methods: KE, then ADDKEs
	round     int
	keMethod  uint16
	keState   suite.InitiatorState
	secrets   [][]byte
	link      []byte
	retries   int

	inSPI, outSPI     uint32 // Child SA
	newSPI, peerSPI   uint64 // IKE SA rekey: our and the peer's new SPI
	localTS, remoteTS []TrafficSelector
	sentTSi, sentTSr  []TrafficSelector
	// collision is, on an exchange we initiate, the peer's exchange
	// rekeying the same SA that we answered successfully meanwhile;
	// collides is, on the peer's exchange, our colliding one.
	collision *childExchange
	collides  *childExchange
	// redundant: we lost the collision; the SA this exchange creates is
	// deleted once created, and lostTo is the peer's exchange that won.
	// winsOver is the peer's exchange we won against.
	redundant bool
	lostTo    *childExchange
	winsOver  *childExchange
	// newChild and newIKE are the SA a completed exchange created.
	newChild *childSA
	newIKE   *ikeSA
	// props are the proposals of an exchange we initiate, as adjusted by
	// the Compat switches.
	props []*suite.Proposal
	// giveUp is, on the peer's exchange waiting for IKE_FOLLOWUP_KE, when
	// the peer has certainly given it up (dropExpiredPeerExchanges).
	giveUp time.Time
}

func (x *childExchange) deleteReason() Cause {
	if x.why != CauseNone {
		return x.why
	}
	return CauseLocalDelete
}

// release frees reserved SPIs of an exchange that did not complete.
func (e *Engine) release(x *childExchange) {
	if x.inSPI != 0 {
		if c, ok := e.children[x.inSPI]; ok && c == nil {
			delete(e.children, x.inSPI)
		}
		x.inSPI = 0
	}
	if x.newSPI != 0 {
		if s, ok := e.sas[x.newSPI]; ok && s == nil {
			delete(e.sas, x.newSPI)
		}
		x.newSPI = 0
	}
}

// CreateChildSA creates an additional Child SA of an established IKE SA
// from the ChildConfig named child (RFC 7296 Section 1.3.1).
func (e *Engine) CreateChildSA(now time.Time, id SAID, child string) error {
	sa := e.byID[id]
	if sa == nil || sa.peer == nil {
		return errNoSA
	}
	for i := range sa.peer.children {
		ce := &sa.peer.children[i]
		if ce.cfg.Name == child {
			// The queue runs on the SA that holds it then: after an IKE SA
			// rekey, the new one.
			e.whenGate(now, sa, gateCreate, func(now time.Time, cur *ikeSA) {
				e.startExchange(now, cur, &childExchange{kind: xNewChild, initiator: true, ce: ce})
			})
			return nil
		}
	}
	return fmt.Errorf("ike: peer %q has no child %q", sa.peer.cfg.Name, child)
}

// RekeyChildSA rekeys the Child SA with the given inbound SPI (RFC 7296
// Section 2.8).
func (e *Engine) RekeyChildSA(now time.Time, inboundSPI uint32) error {
	c := e.children[inboundSPI]
	if c == nil {
		return childNotFound(inboundSPI)
	}
	sa := c.ike
	e.whenGate(now, sa, gateCreate, func(now time.Time, _ *ikeSA) { e.startChildRekey(now, c.ike, c) })
	return nil
}

// RekeyIKESA rekeys an established IKE SA (RFC 7296 Section 2.18).
func (e *Engine) RekeyIKESA(now time.Time, id SAID) error {
	if e.cfg.ResponderOnly {
		return ErrResponderOnly
	}
	sa := e.byID[id]
	if sa == nil {
		return errNoSA
	}
	e.whenGate(now, sa, gateRekeyIKE, func(now time.Time, _ *ikeSA) { e.startIKERekey(now, sa) })
	return nil
}

func (sa *ikeSA) entryFor(cfg *ChildConfig) *childEntry {
	for i := range sa.peer.children {
		if sa.peer.children[i].cfg == cfg {
			return &sa.peer.children[i]
		}
	}
	return nil
}

func (e *Engine) startChildRekey(now time.Time, sa *ikeSA, c *childSA) {
	if c.state != childInstalled || sa.state != stEstablished || e.children[c.inSPI] != c {
		return
	}
	ce := sa.entryFor(c.cfg)
	if ce == nil {
		return
	}
	c.state = childRekeying
	e.startExchange(now, sa, &childExchange{kind: xRekeyChild, initiator: true, old: c, ce: ce})
}

func (e *Engine) startIKERekey(now time.Time, sa *ikeSA) {
	if sa.state != stEstablished || sa.rekeyed {
		return
	}
	e.startExchange(now, sa, &childExchange{kind: xRekeyIKE, initiator: true})
}

// proposals returns the proposals of a CREATE_CHILD_SA we initiate (set
// by startExchange).
func (x *childExchange) proposals(*ikeSA) []*suite.Proposal { return x.props }

// exchangeProposals returns the proposals of a CREATE_CHILD_SA we initiate:
// the IKE proposals for an IKE SA rekey, the ESP proposals otherwise, each
// adjusted by the Compat switches.
func (e *Engine) exchangeProposals(sa *ikeSA, x *childExchange) []*suite.Proposal {
	if x.kind == xRekeyIKE {
		return e.adjustProposals(sa.peer.ike, true, e.noAddKEInRekey())
	}
	return e.adjustProposals(x.ce.esp, false, e.noAddKEInCreate())
}

// startExchange sends the CREATE_CHILD_SA request of x.
func (e *Engine) startExchange(now time.Time, sa *ikeSA, x *childExchange) {
	if sa.state != stEstablished {
		return
	}
	fail := func(err error) {
		e.release(x)
		e.exchangeFailed(now, sa, x, Reason{Cause: CauseInternal, Detail: err.Error()})
	}
	var err error
	if x.ni == nil {
		if x.ni, err = e.newNonce(); err != nil {
			fail(err)
			return
		}
	}
	if x.props == nil {
		x.props = e.exchangeProposals(sa, x)
	}
	props := x.props
	var spi []byte
	switch x.kind {
	case xRekeyIKE:
		if x.newSPI == 0 {
			if x.newSPI, err = e.newIKESPI(); err != nil {
				fail(err)
				return
			}
			e.sas[x.newSPI] = nil // reserved
		}
		spi = binary.BigEndian.AppendUint64(nil, x.newSPI)
		if x.keMethod == 0 {
			x.keMethod = sa.suite.KE
		}
	default:
		if x.inSPI == 0 {
			if x.inSPI, err = e.newChildSPI(); err != nil {
				fail(err)
				return
			}
			e.children[x.inSPI] = nil // reserved
		}
		spi = spiBytes32(x.inSPI)
		if x.keMethod == 0 && len(props[0].KE) > 0 {
			x.keMethod = props[0].KE[0]
		}
	}
	var ps []wire.Payload
	if x.kind == xRekeyChild {
		ps = append(ps, &wire.Notify{Protocol: wire.ProtocolESP, SPI: spiBytes32(x.old.inSPI), NotifyType: wire.NotifyRekeySA})
	}
	sap := &wire.SA{}
	for i, p := range props {
		sap.Proposals = append(sap.Proposals, proposalToWire(p, uint8(i+1), spi, true))
	}
	ps = append(ps, sap, &wire.Nonce{Data: x.ni})
	if x.keMethod != wire.KENone {
		m, err := e.cfg.KEMethod(x.keMethod)
		if err != nil {
			fail(err)
			return
		}
		st, data, err := m.Initiate(e.rand)
		if err != nil {
			fail(err)
			return
		}
		e.keOps(sa, x.keMethod, suite.KEInitiate)
		x.keState = st
		ps = append(ps, &wire.KE{Method: x.keMethod, Data: data})
	}
	if x.kind != xRekeyIKE {
		if x.kind == xRekeyChild {
			x.sentTSi, x.sentTSr = x.old.localTS, x.old.remoteTS
		} else {
			x.sentTSi, x.sentTSr = e.localTS(sa, x.ce), e.remoteTS(sa, x.ce)
		}
		ps = append(ps, tsPayload(false, x.sentTSi), tsPayload(true, x.sentTSr))
	}
	if _, err := e.sendRequest(now, sa, reqCreateChild, wire.ExchangeCreateChildSA, ps, x); err != nil {
		fail(err)
		return
	}
	if !sa.isOurs(x) {
		sa.ixchgs = append(sa.ixchgs, x)
	}
}

// exchangeFailed reports a CREATE_CHILD_SA exchange of ours that did not
// complete and restores what it had locked.
func (e *Engine) exchangeFailed(now time.Time, sa *ikeSA, x *childExchange, why Reason) {
	removeExchange(&sa.ixchgs, x)
	if x.old != nil && x.old.state == childRekeying {
		x.old.state = childInstalled
	}
	e.emitExchangeFailed(now, sa, x, why)
}

// collisionLost drops our exchange x, which lost a rekey collision before
// it created an SA (RFC 7296 Section 2.8.2, RFC 9370 Section 2.2.4), and
// reports it as EventExchangeFailed with CauseRekeyCollision. The SA it
// rekeyed is left as the peer's winning exchange has it.
func (e *Engine) collisionLost(now time.Time, sa *ikeSA, x *childExchange) {
	removeExchange(&sa.ixchgs, x)
	e.release(x)
	e.emitExchangeFailed(now, sa, x, Reason{Cause: CauseRekeyCollision})
}

// emitExchangeFailed emits EventExchangeFailed for our exchange x.
func (e *Engine) emitExchangeFailed(now time.Time, sa *ikeSA, x *childExchange, why Reason) {
	ev := sa.event(EventExchangeFailed, now)
	if x.ce != nil {
		ev.Child = &ChildSA{Name: x.ce.cfg.Name, Protocol: wire.ProtocolESP}
	}
	if x.old != nil {
		ev.Child = &ChildSA{Name: x.old.name, Protocol: wire.ProtocolESP, InboundSPI: x.old.inSPI, OutboundSPI: x.old.outSPI}
	}
	switch x.kind {
	case xRekeyIKE:
		why.Detail = joinDetail("IKE SA rekey", why.Detail)
	case xRekeyChild:
		why.Detail = joinDetail("Child SA rekey", why.Detail)
	default:
		why.Detail = joinDetail("new Child SA", why.Detail)
	}
	ev.Reason = why
	e.emit(ev)
}

func joinDetail(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// retryLater re-arms the rekey of x after a random delay.
func (e *Engine) retryLater(now time.Time, sa *ikeSA, x *childExchange) {
	removeExchange(&sa.ixchgs, x)
	e.release(x)
	var hard time.Time
	switch x.kind {
	case xRekeyIKE:
		hard = sa.expireAt
	case xRekeyChild:
		hard = x.old.expireAt
	}
	at := now.Add(e.retryDelay(now, hard))
	switch x.kind {
	case xRekeyIKE:
		sa.rekeyAt = at
	case xRekeyChild:
		if x.old.state == childRekeying {
			x.old.state = childInstalled
			x.old.rekeyAt = at
		}
	default:
		e.exchangeFailed(now, sa, x, Reason{Cause: CauseNotifyReceived, Notify: wire.NotifyTemporaryFailure})
	}
}

// retryDelay returns the wait before retrying a refused rekey of an SA
// whose hard lifetime ends at hard (zero: none).
func (e *Engine) retryDelay(now, hard time.Time) time.Duration {
	d := retryMin + e.jitter(retryJitter)
	if hard.IsZero() {
		return d
	}
	if left := hard.Sub(now); d > left/2 {
		// Retried so late, the SA would reach its hard lifetime first.
		d = max(left/4+e.jitter(left/4), retryFloor)
	}
	return d
}

// createPayloads collects the payloads of a CREATE_CHILD_SA or
// IKE_FOLLOWUP_KE message.
type createPayloads struct {
	sa       *wire.SA
	nonce    *wire.Nonce
	ke       *wire.KE
	tsi, tsr *wire.TS
	rekey    *wire.Notify
	addke    *wire.Notify
	invKE    *wire.Notify
	errNote  *wire.Notify
}

func parseCreatePayloads(ps []wire.Payload) *createPayloads {
	cp := &createPayloads{}
	for _, p := range ps {
		switch p := p.(type) {
		case *wire.SA:
			cp.sa = p
		case *wire.Nonce:
			cp.nonce = p
		case *wire.KE:
			cp.ke = p
		case *wire.TS:
			if p.Responder {
				cp.tsr = p
			} else {
				cp.tsi = p
			}
		case *wire.Notify:
			switch {
			case p.NotifyType == wire.NotifyRekeySA:
				cp.rekey = p
			case p.NotifyType == wire.NotifyAdditionalKeyExchange:
				cp.addke = p
			case p.NotifyType == wire.NotifyInvalidKEPayload:
				cp.invKE = p
			case p.NotifyType.IsError() && cp.errNote == nil:
				cp.errNote = p
			}
		}
	}
	return cp
}

// onChildResponse handles the response to our CREATE_CHILD_SA or
// IKE_FOLLOWUP_KE request.
func (e *Engine) onChildResponse(now time.Time, sa *ikeSA, r *request, in *inbound) {
	x := r.ctx
	cp := parseCreatePayloads(in.payloads)
	if r.kind == reqCreateChild && x.collision != nil && cp.sa == nil && (cp.errNote != nil || cp.invKE != nil) {
		// We answered the peer's rekey of the same SA, and the peer, which
		// completed its rekey before our request arrived and so did not see
		// a collision, refused ours (TEMPORARY_FAILURE, CHILD_SA_NOT_FOUND):
		// its SA replaces the old one, ours is dropped (RFC 7296 Section
		// 2.8.2, last paragraph).
		if p := x.collision.newIKE; p != nil {
			p.rival, p.rivalOld = nil, nil // decided: the peer's SA stays
		}
		e.collisionLost(now, sa, x)
		return
	}
	if r.kind == reqCreateChild {
		switch {
		case cp.invKE != nil && cp.sa == nil:
			if len(cp.invKE.Data) == 2 && x.retries < maxInitRetries {
				g := binary.BigEndian.Uint16(cp.invKE.Data)
				if g != x.keMethod && offersKE(x.proposals(sa), g) {
					x.retries++
					x.keMethod = g
					e.startExchange(now, sa, x)
					return
				}
			}
			e.release(x)
			e.exchangeFailed(now, sa, x, Reason{Cause: CauseNotifyReceived, Notify: wire.NotifyInvalidKEPayload})
			return
		case cp.errNote != nil && cp.errNote.NotifyType == wire.NotifyTemporaryFailure:
			e.retryLater(now, sa, x)
			return
		case cp.errNote != nil:
			e.release(x)
			e.exchangeFailed(now, sa, x, Reason{Cause: CauseNotifyReceived, Notify: cp.errNote.NotifyType})
			return
		}
		if err := e.acceptCreateResponse(sa, x, cp); err != nil {
			e.release(x)
			e.exchangeFailed(now, sa, x, Reason{Cause: CauseProtocol, Detail: err.Error()})
			e.deleteOnBadKE(now, sa, err)
			return
		}
		if x.collision != nil && e.resolveCollision(now, sa, x) {
			return
		}
	} else {
		if cp.errNote != nil {
			e.release(x)
			e.exchangeFailed(now, sa, x, Reason{Cause: CauseNotifyReceived, Notify: cp.errNote.NotifyType})
			return
		}
		if cp.ke == nil || cp.ke.Method != x.kes[x.round] {
			e.release(x)
			e.exchangeFailed(now, sa, x, Reason{Cause: CauseProtocol, Detail: "IKE_FOLLOWUP_KE response without the expected KE"})
			return
		}
		shared, err := x.keState.Complete(cp.ke.Data)
		e.keOps(sa, cp.ke.Method, suite.KEComplete)
		if err != nil {
			e.release(x)
			e.exchangeFailed(now, sa, x, Reason{Cause: CauseProtocol, Detail: err.Error()})
			e.deleteOnBadKE(now, sa, err)
			return
		}
		x.secrets = append(x.secrets, shared)
		x.round++
		x.link = nil
		if cp.addke != nil {
			x.link = bytes.Clone(cp.addke.Data)
		}
	}
	if x.round < len(x.kes) {
		if x.link == nil {
			e.release(x)
			e.exchangeFailed(now, sa, x, Reason{Cause: CauseProtocol, Detail: "additional key exchange without ADDITIONAL_KEY_EXCHANGE"})
			return
		}
		e.whenGate(now, sa, gateFollowup, func(now time.Time, cur *ikeSA) { e.sendFollowup(now, cur, x) })
		return
	}
	e.finishExchange(now, sa, x)
}

// lowerNonce returns the lower of an exchange's two nonces (RFC 7296
// Section 2.8.1: octet by octet, a prefix being lower than the longer
// nonce, which is what bytes.Compare does).
func (x *childExchange) lowerNonce() []byte {
	if bytes.Compare(x.ni, x.nr) < 0 {
		return x.ni
	}
	return x.nr
}

// resolveCollision decides, once the response to our CREATE_CHILD_SA x is
// in, the simultaneous rekey of the same SA by x and the peer's exchange
// x.collision (which we answered). The exchange holding the lowest nonce
// loses (RFC 7296 Sections 2.8.1 and 2.8.2). A lost exchange that still
// needs IKE_FOLLOWUP_KE rounds is abandoned (RFC 9370 Section 2.2.4); a
// complete one creates its SA, which finishExchange then deletes. Winning,
// we stop waiting for the peer's IKE_FOLLOWUP_KE, which it will not send.
// It reports whether x is finished (abandoned, reported as
// EventExchangeFailed with CauseRekeyCollision).
func (e *Engine) resolveCollision(now time.Time, sa *ikeSA, x *childExchange) bool {
	other := x.collision
	x.collision = nil
	if bytes.Compare(x.lowerNonce(), other.lowerNonce()) < 0 {
		if x.round < len(x.kes) {
			if p := other.newIKE; p != nil && p.rival == x {
				p.rival, p.rivalOld = nil, nil // decided: the peer's SA stays
			}
			e.collisionLost(now, sa, x)
			return true
		}
		x.redundant, x.lostTo = true, other
		return false
	}
	if removeExchange(&sa.xchgs, other) {
		e.release(other)
	}
	x.winsOver = other
	return false
}

// deleteOnBadKE deletes the IKE SA when the responder's KE data in a
// CREATE_CHILD_SA or IKE_FOLLOWUP_KE response was invalid
// (draft-ietf-ipsecme-ikev2-mlkem Section 3: the peer is broken or
// malicious; the same rule is applied to every method).
func (e *Engine) deleteOnBadKE(now time.Time, sa *ikeSA, err error) {
	if errors.Is(err, suite.ErrInvalidKEData) && sa.state == stEstablished {
		e.whenIdle(now, sa, func(now time.Time, _ *ikeSA) { e.sendDeleteIKE(now, sa) })
	}
}

// acceptCreateResponse checks the responder's CREATE_CHILD_SA answer and
// completes its first key exchange.
func (e *Engine) acceptCreateResponse(sa *ikeSA, x *childExchange, cp *createPayloads) error {
	if cp.sa == nil || cp.nonce == nil || len(cp.sa.Proposals) != 1 {
		return errors.New("CREATE_CHILD_SA response without SA or Nonce")
	}
	p := &cp.sa.Proposals[0]
	s, ok := suiteFromWire(p)
	if !ok || !containsSuite(x.proposals(sa), &s) {
		return errors.New("responder chose a proposal we did not offer")
	}
	if err := s.Validate(); err != nil {
		return err
	}
	x.suite = s
	x.nr = bytes.Clone(cp.nonce.Data)
	x.kes = s.KeyExchanges()
	switch x.kind {
	case xRekeyIKE:
		if len(p.SPI) != 8 || s.KE == wire.KENone {
			return errors.New("IKE SA rekey response without SPI or key exchange")
		}
		x.peerSPI = binary.BigEndian.Uint64(p.SPI)
	default:
		if len(p.SPI) != 4 {
			return errors.New("Child SA proposal without a 4-octet SPI")
		}
		x.outSPI = binary.BigEndian.Uint32(p.SPI)
		gotI, gotR := tsFromWire(cp.tsi), tsFromWire(cp.tsr)
		if !subsetOf(gotI, x.sentTSi) || !subsetOf(gotR, x.sentTSr) {
			return errors.New("narrowed traffic selectors outside the proposed ones")
		}
		x.localTS, x.remoteTS = gotI, gotR
	}
	if s.KE != wire.KENone {
		if s.KE != x.keMethod || cp.ke == nil || cp.ke.Method != s.KE {
			return errors.New("responder's KE does not match the chosen method")
		}
		shared, err := x.keState.Complete(cp.ke.Data)
		e.keOps(sa, s.KE, suite.KEComplete)
		if err != nil {
			return err
		}
		x.secrets = append(x.secrets, shared)
		x.round = 1
	}
	x.keState = nil
	if cp.addke != nil {
		x.link = bytes.Clone(cp.addke.Data)
	}
	return nil
}

// sendFollowup sends the IKE_FOLLOWUP_KE request of the current round.
func (e *Engine) sendFollowup(now time.Time, sa *ikeSA, x *childExchange) {
	id := x.kes[x.round]
	m, err := e.cfg.KEMethod(id)
	var st suite.InitiatorState
	var data []byte
	if err == nil {
		st, data, err = m.Initiate(e.rand)
	}
	if err != nil {
		e.release(x)
		e.exchangeFailed(now, sa, x, Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	e.keOps(sa, id, suite.KEInitiate)
	x.keState = st
	ps := []wire.Payload{&wire.KE{Method: id, Data: data}, &wire.Notify{NotifyType: wire.NotifyAdditionalKeyExchange, Data: x.link}}
	if _, err := e.sendRequest(now, sa, reqFollowupKE, wire.ExchangeIKEFollowupKE, ps, x); err != nil {
		e.release(x)
		e.exchangeFailed(now, sa, x, Reason{Cause: CauseInternal, Detail: err.Error()})
	}
}

// finishExchange derives the keys of a completed exchange and installs the
// new Child SA or IKE SA.
func (e *Engine) finishExchange(now time.Time, sa *ikeSA, x *childExchange) {
	removeExchange(&sa.ixchgs, x)
	removeExchange(&sa.xchgs, x)
	if x.kind == xRekeyIKE {
		e.finishIKERekey(now, sa, x)
		return
	}
	ni, nr := x.ni, x.nr
	if !x.initiator {
		ni, nr = x.nr, x.ni // x.ni is always ours
	}
	k, err := x.suite.ChildKeys(sa.prf, sa.skd, x.secrets, ni, nr)
	if err != nil {
		e.release(x)
		e.exchangeFailed(now, sa, x, Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	e.childKeyOps(sa, &x.suite)
	in := x.inSPI
	delete(e.children, in) // the reservation
	x.inSPI = 0
	var rekeyOf uint32
	if x.kind == xRekeyChild {
		rekeyOf = x.old.inSPI
		x.old.state = childRekeyed
	}
	c := e.installChild(now, sa, x.ce, x.suite, in, x.outSPI, k, x.localTS, x.remoteTS, x.initiator, rekeyOf)
	x.newChild = c
	if w := x.winsOver; w != nil && w.newChild != nil && w.newChild.state == childInstalled {
		// The peer's redundant Child SA: the peer deletes it.
		w.newChild.state, w.newChild.rekeyAt = childRekeyed, time.Time{}
	}
	early := x.initiator && sa.takeEarlyDelete(x.outSPI)
	if x.initiator && sa.ourExchange(func(y *childExchange) bool { return y.kind == xNewChild || y.kind == xRekeyChild }) == nil {
		sa.earlyDeletes = nil
	}
	switch {
	case early:
		// The peer deleted the Child SA before its response reached us
		// (noteEarlyDelete): it is gone there, so it goes here too. The
		// old one of a rekey is ours to delete all the same.
		e.removeChild(now, c, Reason{Cause: CausePeerDeleted}, true)
		if old := x.old; x.kind == xRekeyChild && !x.redundant {
			old.why = CauseRekeyed
			e.whenGate(now, sa, gateInfo, func(now time.Time, _ *ikeSA) { e.sendDeleteChild(now, old.ike, old) })
		}
	case x.redundant:
		// We lost a rekey collision: we delete the SA we created and the
		// peer deletes the old one (RFC 7296 Section 2.8.1).
		c.why = CauseRekeyCollision
		e.whenGate(now, sa, gateInfo, func(now time.Time, _ *ikeSA) { e.sendDeleteChild(now, c.ike, c) })
	case x.kind == xRekeyChild && x.initiator:
		// The initiator of the rekey deletes the old Child SA (RFC 7296
		// Section 2.8).
		old := x.old
		old.why = CauseRekeyed
		e.whenGate(now, sa, gateInfo, func(now time.Time, _ *ikeSA) { e.sendDeleteChild(now, old.ike, old) })
	}
}

// finishIKERekey creates the new IKE SA and moves the Child SAs to it
// (RFC 7296 Section 2.18).
func (e *Engine) finishIKERekey(now time.Time, old *ikeSA, x *childExchange) {
	ni, nr := x.ni, x.nr
	spiI, spiR := x.newSPI, x.peerSPI
	if !x.initiator {
		ni, nr = x.nr, x.ni
		spiI, spiR = x.peerSPI, x.newSPI
	}
	bi := binary.BigEndian.AppendUint64(nil, spiI)
	br := binary.BigEndian.AppendUint64(nil, spiR)
	k, err := x.suite.RekeyKeys(old.prf, old.skd, x.secrets, ni, nr, bi, br)
	if err != nil {
		e.release(x)
		e.exchangeFailed(now, old, x, Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	n := 0
	for _, s := range x.secrets {
		n += len(s)
	}
	e.nextID++
	sa := &ikeSA{id: e.nextID, initiator: x.initiator, state: stEstablished, spiI: spiI, spiR: spiR,
		peer: old.peer, peerID: old.peerID, local: old.local, remote: old.remote, heapIdx: -1,
		peerFrag: old.peerFrag, natLocal: old.natLocal, natRemote: old.natRemote, encap: old.encap, peerWindow: old.peerWindow,
		suite: x.suite, lastRecv: now, nextReqMID: 0, recvMID: 0}
	sa.prf, _ = x.suite.PRFAlg()
	sa.metrics.Start, sa.metrics.Established = now, now
	e.keyOps(sa, n+len(ni)+len(nr))
	if err := e.installKeys(sa, k); err != nil {
		e.release(x)
		e.exchangeFailed(now, old, x, Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	e.sas[x.newSPI] = sa
	x.newSPI = 0
	x.newIKE = sa
	if ix := old.ourExchange(func(y *childExchange) bool { return y.collision == x }); ix != nil && !x.initiator {
		// The peer's rekey collides with ours, undecided yet.
		sa.rival, sa.rivalOld = ix, old
	}
	e.byID[sa.id] = sa
	e.indexIdentity(sa)
	// The Child SAs and pending local actions move to the new SA: from the
	// old one, or, when we won a collision whose losing exchange completed
	// first, from the peer's redundant new SA (RFC 7296 Section 2.8.2).
	from := old
	if w := x.winsOver; w != nil && w.newIKE != nil {
		w.newIKE.rival, w.newIKE.rivalOld = nil, nil // decided
	}
	if w := x.winsOver; w != nil && w.newIKE != nil && w.newIKE.state == stEstablished {
		from = w.newIKE
		from.rekeyed, from.peerRedundant = true, true
		from.rekeyAt, from.dpdAt = time.Time{}, time.Time{}
		from.expireAt = now.Add(e.cfg.Retransmit.Timeout(e.cfg.Retransmit.Tries) * 2)
	}
	if !x.redundant {
		sa.children, from.children = from.children, nil
		for _, c := range sa.children {
			c.ike = sa
		}
		sa.queue, from.queue = from.queue, nil
		// The peer may still send a Delete of one of them on the SA it
		// knew them on, before it learnt of the rekey (childForDelete).
		from.successor, old.successor = sa, sa
		// So do those of SAs rekeyed before, not yet deleted, whose
		// Child SAs had moved to from or old.
		for _, s := range e.byIdentity[idKey(sa.peerID)] {
			if s.successor == from || s.successor == old {
				s.successor = sa
			}
		}
	}
	old.rekeyed = true
	old.rekeyAt, old.expireAt, old.dpdAt = time.Time{}, time.Time{}, time.Time{}
	e.armIKELifetime(now, sa)
	ev := sa.event(EventIKESARekeyed, now)
	ev.OldSA = old.id
	ev.Metrics = old.metricsCopy()
	e.emit(ev)
	switch {
	case x.redundant:
		// We lost a rekey collision: we delete the SA we created and the
		// peer deletes the old one.
		sa.collision = true
		if w := x.lostTo; w != nil && w.newIKE != nil && w.newIKE.state == stEstablished {
			sa.successor = w.newIKE
			w.newIKE.rival, w.newIKE.rivalOld = nil, nil // decided
		}
		e.whenIdle(now, sa, func(now time.Time, _ *ikeSA) { e.sendDeleteIKE(now, sa) })
		old.expireAt = now.Add(e.cfg.Retransmit.Timeout(e.cfg.Retransmit.Tries) * 2)
	case x.initiator:
		e.whenIdle(now, old, func(now time.Time, _ *ikeSA) { e.sendDeleteIKE(now, old) })
	default:
		// The peer deletes the old SA; if it does not within the
		// retransmission schedule, it goes anyway.
		old.expireAt = now.Add(e.cfg.Retransmit.Timeout(e.cfg.Retransmit.Tries) * 2)
	}
	e.schedule(sa)
	if from != old {
		e.schedule(from)
	}
	e.runQueue(now, sa)
}

// onCreateChildRequest answers a CREATE_CHILD_SA request.
func (e *Engine) onCreateChildRequest(now time.Time, sa *ikeSA, in *inbound) {
	if sa.state != stEstablished || sa.rekeyed || sa.collision {
		if sa.state == stEstablished || sa.state == stDeleting {
			e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
			return
		}
		e.drop(DropUnexpectedExchange)
		return
	}
	cp := parseCreatePayloads(in.payloads)
	if cp.sa == nil || cp.nonce == nil {
		e.respondError(now, sa, in, wire.NotifyInvalidSyntax, nil)
		return
	}
	ikeRekey := len(cp.sa.Proposals) > 0 && cp.sa.Proposals[0].Protocol == wire.ProtocolIKE
	if len(sa.xchgs) >= e.cfg.Window || sa.peerRekeysIKE() || ikeRekey && len(sa.xchgs) > 0 {
		// As many multi-round exchanges of the peer are open as this end
		// offers requests in its window (no state for another), or the
		// peer's IKE SA rekey is open, or an IKE SA rekey comes while
		// other exchanges of the peer are: the IKE SA rekey runs alone.
		e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
		return
	}
	x := &childExchange{nr: bytes.Clone(cp.nonce.Data)}
	var err error
	if x.ni, err = e.newNonce(); err != nil {
		e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
		return
	}
	// x.ni is our nonce, x.nr the peer's, whatever the roles.
	if ikeRekey {
		x.kind = xRekeyIKE
		for _, ix := range sa.ixchgs {
			// A Child SA exchange of ours, or our IKE SA rekey already in
			// its IKE_FOLLOWUP_KE rounds: refuse (RFC 7296 Section 2.25.2,
			// RFC 9370 Section 2.2.4). Otherwise a collision: answer as
			// usual and decide when our response arrives.
			if ix.kind != xRekeyIKE || ix.nr != nil {
				e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
				return
			}
			x.collides = ix
		}
		e.respondIKERekey(now, sa, in, cp, x)
		return
	}
	if sa.ourExchange(func(ix *childExchange) bool { return ix.kind == xRekeyIKE }) != nil {
		e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
		return
	}
	x.kind = xNewChild
	var only *childEntry
	if cp.rekey != nil {
		x.kind = xRekeyChild
		if len(cp.rekey.SPI) != 4 {
			e.respondError(now, sa, in, wire.NotifyInvalidSyntax, nil)
			return
		}
		c := sa.childByOutSPI(binary.BigEndian.Uint32(cp.rekey.SPI))
		if c == nil {
			e.respondError(now, sa, in, wire.NotifyChildSANotFound, nil)
			return
		}
		switch c.state {
		case childDeleting, childRekeyed:
			e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
			return
		case childRekeying:
			for _, px := range sa.xchgs {
				if px.old == c {
					// The peer's own rekey of it is still open.
					e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
					return
				}
			}
			if ix := sa.ourExchange(func(ix *childExchange) bool { return ix.old == c }); ix != nil {
				// Both ends rekey this Child SA (RFC 7296 Section 2.25.1):
				// answer as usual unless our IKE_FOLLOWUP_KE rounds have
				// begun (RFC 9370 Section 2.2.4).
				if ix.nr != nil {
					e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
					return
				}
				x.collides = ix
			}
		}
		x.old = c
		only = sa.entryFor(c.cfg)
		if only == nil {
			e.respondError(now, sa, in, wire.NotifyChildSANotFound, nil)
			return
		}
	}
	preferKE := uint16(0)
	if cp.ke != nil {
		preferKE = cp.ke.Method
	}
	if x.kind == xNewChild && e.cfg.MaxChildSAs > 0 && len(sa.children) >= e.cfg.MaxChildSAs {
		e.respondError(now, sa, in, wire.NotifyNoAdditionalSAs, nil)
		return
	}
	res := e.negotiateChildFor(sa, sa.peer, cp.sa, cp.tsi, cp.tsr, true, preferKE, only)
	if res.notify != 0 {
		e.respondError(now, sa, in, res.notify, nil)
		return
	}
	x.ce, x.suite, x.inSPI, x.outSPI, x.localTS, x.remoteTS = res.entry, res.suite, res.inSPI, res.outSPI, res.localTS, res.remoteTS
	e.children[x.inSPI] = nil // reserved until installed
	ps := []wire.Payload{res.payloads[0], &wire.Nonce{Data: x.ni}}
	if !e.respondKE(now, sa, in, cp, x, &ps) {
		e.release(x)
		return
	}
	ps = append(ps, res.payloads[1:]...)
	e.finishResponse(now, sa, in, x, ps)
}

// respondKE runs the responder's side of the first key exchange of a
// CREATE_CHILD_SA and appends its KE payload. It answers errors itself and
// returns false then.
func (e *Engine) respondKE(now time.Time, sa *ikeSA, in *inbound, cp *createPayloads, x *childExchange, ps *[]wire.Payload) bool {
	s := &x.suite
	x.kes = s.KeyExchanges()
	if s.KE == wire.KENone {
		return true
	}
	if cp.ke == nil || cp.ke.Method != s.KE {
		var d [2]byte
		binary.BigEndian.PutUint16(d[:], s.KE)
		e.respondError(now, sa, in, wire.NotifyInvalidKEPayload, d[:])
		return false
	}
	m, err := e.cfg.KEMethod(s.KE)
	if err != nil {
		e.respondError(now, sa, in, wire.NotifyNoProposalChosen, nil)
		return false
	}
	pub, shared, err := m.Respond(e.rand, cp.ke.Data)
	e.keOps(sa, s.KE, suite.KERespond)
	if err != nil {
		e.respondError(now, sa, in, wire.NotifyInvalidSyntax, nil)
		return false
	}
	x.secrets = append(x.secrets, shared)
	x.round = 1
	*ps = append(*ps, &wire.KE{Method: s.KE, Data: pub})
	return true
}

// finishResponse sends the CREATE_CHILD_SA response and either completes
// the exchange or waits for the IKE_FOLLOWUP_KE rounds.
func (e *Engine) finishResponse(now time.Time, sa *ikeSA, in *inbound, x *childExchange, ps []wire.Payload) {
	if ix := x.collides; ix != nil && sa.isOurs(ix) {
		ix.collision = x // decided when the response to ix arrives
	}
	x.collides = nil
	if x.round < len(x.kes) {
		link, err := e.newLink(sa)
		if err != nil {
			e.release(x)
			e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
			return
		}
		x.link = link
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyAdditionalKeyExchange, Data: link})
		if x.old != nil {
			x.old.state = childRekeying
		}
		x.giveUp = now.Add(e.peerExchangeTimeout())
		sa.xchgs = append(sa.xchgs, x)
		e.sendResponse(now, sa, in.hdr.Exchange, in.hdr.MessageID, ps)
		return
	}
	e.sendResponse(now, sa, in.hdr.Exchange, in.hdr.MessageID, ps)
	if sa.state != stDead {
		e.finishExchange(now, sa, x)
	}
}

// respondIKERekey answers a CREATE_CHILD_SA that rekeys the IKE SA.
func (e *Engine) respondIKERekey(now time.Time, sa *ikeSA, in *inbound, cp *createPayloads, x *childExchange) {
	preferKE := uint16(0)
	if cp.ke != nil {
		preferKE = cp.ke.Method
	}
	offers := cp.sa.Proposals
	if e.noAddKEInRekey() {
		offers = withoutAddKE(offers)
	}
	mine := e.adjustProposals(sa.peer.ike, true, e.noAddKEInRekey())
	s, num, spi, ok := selectProposal(mine, offers, wire.ProtocolIKE, preferKE, e.selectOpts())
	if !ok || len(spi) != 8 {
		e.respondError(now, sa, in, wire.NotifyNoProposalChosen, nil)
		return
	}
	x.suite = s
	x.peerSPI = binary.BigEndian.Uint64(spi)
	var err error
	if x.newSPI, err = e.newIKESPI(); err != nil {
		e.respondError(now, sa, in, wire.NotifyTemporaryFailure, nil)
		return
	}
	e.sas[x.newSPI] = nil
	ps := []wire.Payload{&wire.SA{Proposals: []wire.Proposal{suiteToWire(&s, num, binary.BigEndian.AppendUint64(nil, x.newSPI))}},
		&wire.Nonce{Data: x.ni}}
	if !e.respondKE(now, sa, in, cp, x, &ps) {
		e.release(x)
		return
	}
	e.finishResponse(now, sa, in, x, ps)
}

// onFollowupKERequest answers an IKE_FOLLOWUP_KE request (RFC 9370
// Section 2.2.4).
func (e *Engine) onFollowupKERequest(now time.Time, sa *ikeSA, in *inbound) {
	if sa.state != stEstablished {
		e.drop(DropUnexpectedExchange)
		return
	}
	// The link names the exchange: with a window above one several may be
	// open, and other requests may come between their rounds.
	n := wire.FindNotify(in.payloads, wire.NotifyAdditionalKeyExchange)
	var x *childExchange
	if n != nil {
		x = sa.peerExchange(n.Data)
	}
	if x == nil {
		e.respondError(now, sa, in, wire.NotifyStateNotFound, nil)
		return
	}
	ke := wire.First[*wire.KE](in.payloads)
	abort := func(t wire.NotifyType) {
		removeExchange(&sa.xchgs, x)
		e.release(x)
		if x.old != nil && x.old.state == childRekeying {
			x.old.state = childInstalled
		}
		e.respondError(now, sa, in, t, nil)
	}
	if ke == nil || ke.Method != x.kes[x.round] {
		abort(wire.NotifyInvalidSyntax)
		return
	}
	m, err := e.cfg.KEMethod(ke.Method)
	if err != nil {
		abort(wire.NotifyInvalidSyntax)
		return
	}
	pub, shared, err := m.Respond(e.rand, ke.Data)
	e.keOps(sa, ke.Method, suite.KERespond)
	if err != nil {
		abort(wire.NotifyInvalidSyntax)
		return
	}
	x.secrets = append(x.secrets, shared)
	x.round++
	ps := []wire.Payload{&wire.KE{Method: ke.Method, Data: pub}}
	if x.round < len(x.kes) {
		link, err := e.newLink(sa)
		if err != nil {
			abort(wire.NotifyTemporaryFailure)
			return
		}
		x.link = link
		x.giveUp = now.Add(e.peerExchangeTimeout())
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyAdditionalKeyExchange, Data: link})
		e.sendResponse(now, sa, in.hdr.Exchange, in.hdr.MessageID, ps)
		return
	}
	e.sendResponse(now, sa, in.hdr.Exchange, in.hdr.MessageID, ps)
	if sa.state != stDead {
		e.finishExchange(now, sa, x)
	}
}

// peerExchangeTimeout is how long the peer's exchange may wait for its
// next IKE_FOLLOWUP_KE: twice the peer's whole retransmission schedule
// (assumed to be ours), once for the response that may need its request
// retransmitted and once for the next request. Later, the peer has given
// the exchange up.
func (e *Engine) peerExchangeTimeout() time.Duration {
	var d time.Duration
	for n := 0; n <= e.cfg.Retransmit.Tries; n++ {
		d += e.cfg.Retransmit.Timeout(n)
	}
	return 2 * d
}

// dropExpiredPeerExchanges forgets the peer's exchanges whose
// IKE_FOLLOWUP_KE did not come in time (peerExchangeTimeout), so that they
// no longer hold back our own rekeys (gateRekeyIKE, gateCreate).
func (e *Engine) dropExpiredPeerExchanges(now time.Time, sa *ikeSA) {
	n := len(sa.xchgs)
	for _, x := range append([]*childExchange(nil), sa.xchgs...) {
		if !x.giveUp.IsZero() && !x.giveUp.After(now) {
			removeExchange(&sa.xchgs, x)
			e.release(x)
			if x.old != nil && x.old.state == childRekeying {
				x.old.state = childInstalled
			}
		}
	}
	if len(sa.xchgs) < n {
		e.runQueue(now, sa)
	}
}

// newLink draws the data of an ADDITIONAL_KEY_EXCHANGE notify that no
// other open exchange of the peer uses, so that each IKE_FOLLOWUP_KE finds
// its own exchange.
func (e *Engine) newLink(sa *ikeSA) ([]byte, error) {
	for range maxSPITries {
		link, err := e.ent.link()
		if err != nil {
			return nil, err
		}
		if sa.peerExchange(link) == nil {
			return link, nil
		}
	}
	return nil, errors.New("ike: no unused ADDITIONAL_KEY_EXCHANGE data")
}

// afterPeerDelete notices that the peer deleted the Child SA a pending
// multi-round exchange rekeys.
func (e *Engine) afterPeerDelete(now time.Time, sa *ikeSA, gone []*childSA) {
	for _, c := range gone {
		for _, x := range append([]*childExchange(nil), sa.xchgs...) {
			if x.old == c {
				removeExchange(&sa.xchgs, x)
				e.release(x)
			}
		}
	}
}

// rivalDeleted is called when the peer deletes sa, an IKE SA created by
// its rekey exchange that collided with our own rekey of the same IKE SA,
// before the response to ours decided the collision: the peer lost and
// deletes its redundant SA, whose Delete overtook our response. The Child
// SAs, which moved here when we answered the peer's exchange, belong to
// the winner (RFC 7296 Section 2.8.2): they go back to the old IKE SA, and
// with it to the new one our exchange creates. It reports whether they
// did.
func (e *Engine) rivalDeleted(now time.Time, sa *ikeSA) bool {
	ix, old := sa.rival, sa.rivalOld
	if ix == nil || ix.collision == nil || ix.collision.newIKE != sa || old.state != stEstablished || !old.isOurs(ix) {
		return false
	}
	sa.rival, sa.rivalOld = nil, nil
	sa.rekeyed = true
	for _, c := range sa.children {
		c.ike = old
		// A Delete or a rekey of it still open on the redundant SA is
		// taken up on the surviving one when that SA goes (removeSA).
		old.children = append(old.children, c)
	}
	sa.children = nil
	old.queue = append(old.queue, sa.queue...)
	sa.queue = nil
	e.schedule(old)
	return true
}

// rekeyLostWith is called for each CREATE_CHILD_SA exchange x, ours or the
// peer's, still open on sa when sa is removed. When x rekeys a Child SA
// that has moved on to another IKE SA meanwhile (the IKE SA was rekeyed,
// or replaced in a rekey collision), the Child SA must not stay locked in
// its rekey: the peer's rekey is the peer's to retry; ours is started
// again on the IKE SA that holds the Child SA.
func (e *Engine) rekeyLostWith(now time.Time, sa *ikeSA, x *childExchange) {
	c := x.old
	if x.kind != xRekeyChild || c == nil || c.ike == sa || e.children[c.inSPI] != c || c.state != childRekeying {
		return
	}
	cur := c.ike
	busy := func(y *childExchange) bool { return y.old == c }
	if cur.ourExchange(busy) != nil {
		return
	}
	for _, y := range cur.xchgs {
		if busy(y) {
			return
		}
	}
	c.state = childInstalled
	if x.initiator {
		e.whenGate(now, cur, gateCreate, func(now time.Time, _ *ikeSA) { e.startChildRekey(now, c.ike, c) })
	}
}
