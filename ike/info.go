package ike

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/pqlab/pqlab/ike/wire"
)

// INFORMATIONAL exchanges (RFC 7296 Section 1.4): deletes of IKE and Child
// SAs, liveness checks (Section 2.4) and error notifies.

// Delete deletes an established IKE SA: an INFORMATIONAL request with a
// Delete payload is sent, and the SA (with its Child SAs) is removed when
// the peer answers or the request times out. A half-open SA is removed at
// once.
func (e *Engine) Delete(now time.Time, id SAID) error {
	sa := e.byID[id]
	if sa == nil {
		return errNoSA
	}
	if sa.state < stEstablished {
		e.removeSA(now, sa, Reason{Cause: CauseLocalDelete}, false)
		return nil
	}
	e.whenIdle(now, sa, func(now time.Time, _ *ikeSA) { e.sendDeleteIKE(now, sa) })
	return nil
}

var errNoSA = errors.New("ike: no such IKE SA")

// gate says when a queued local action may start.
type gate uint8

const (
	// gateIdle: no request of ours outstanding (IKE SA rekey and delete,
	// and everything while the peer's window is one).
	gateIdle gate = iota
	// gateCreate: a CREATE_CHILD_SA for a Child SA: room in the peer's
	// window and no IKE SA rekey of ours in progress. Several may be
	// outstanding at once (each concerns its own Child SA: a rekey starts
	// only on an installed Child SA), and INFORMATIONAL requests next to
	// them.
	gateCreate
	// gateInfo: an INFORMATIONAL about a Child SA (a delete): room in the
	// peer's window and no CREATE_CHILD_SA exchange of ours in progress,
	// since one may concern the same Child SA; several may be outstanding
	// at once.
	gateInfo
	// gateFollowup: the next IKE_FOLLOWUP_KE of our exchange: room in the
	// peer's window (queued ahead of everything else).
	gateFollowup
	// gateRekeyIKE: our IKE SA rekey: no request of ours outstanding and
	// no multi-round exchange of the peer open (the peer refuses an IKE SA
	// rekey next to its own exchanges, and one that collides with its IKE
	// SA rekey in its IKE_FOLLOWUP_KE rounds, RFC 7296 Section 2.25.2,
	// RFC 9370 Section 2.2.4).
	gateRekeyIKE
)

// queued is a local action waiting for its gate.
type queued struct {
	f    func(now time.Time, sa *ikeSA)
	gate gate
}

// canRun reports whether an action behind gate g may start on sa now.
func (e *Engine) canRun(sa *ikeSA, g gate) bool {
	if sa.state != stEstablished {
		return false
	}
	busy := sa.outstanding() > 0
	switch g {
	case gateCreate:
		// Not while the peer's IKE SA rekey is open either: the peer's
		// IKE_FOLLOWUP_KE rounds would end the IKE SA under it.
		rekeyingIKE := sa.ourExchange(func(x *childExchange) bool { return x.kind == xRekeyIKE }) != nil
		return sa.windowRoom() && (!rekeyingIKE || !busy) && !sa.peerRekeysIKE()
	case gateRekeyIKE:
		return !busy && len(sa.xchgs) == 0
	case gateInfo:
		return sa.windowRoom() && (len(sa.ixchgs) == 0 || !busy)
	case gateFollowup:
		return sa.windowRoom()
	}
	return !busy
}

// whenIdle runs f now if no request is outstanding, or queues it.
func (e *Engine) whenIdle(now time.Time, sa *ikeSA, f func(time.Time, *ikeSA)) {
	e.whenGate(now, sa, gateIdle, f)
}

// whenGate runs f now if nothing is queued and gate g allows it, or queues
// it.
func (e *Engine) whenGate(now time.Time, sa *ikeSA, g gate, f func(time.Time, *ikeSA)) {
	switch {
	case (len(sa.queue) == 0 || g == gateFollowup) && e.canRun(sa, g):
		f(now, sa)
	case g == gateFollowup:
		sa.queue = append([]queued{{f: f, gate: g}}, sa.queue...)
	default:
		sa.queue = append(sa.queue, queued{f: f, gate: g})
	}
	if sa.state != stDead {
		e.schedule(sa)
	}
}

func (e *Engine) sendDeleteIKE(now time.Time, sa *ikeSA) {
	if sa.state != stEstablished {
		return
	}
	if _, err := e.sendRequest(now, sa, reqDelete, wire.ExchangeInformational,
		[]wire.Payload{&wire.Delete{Protocol: wire.ProtocolIKE}}, nil); err != nil {
		e.removeSA(now, sa, Reason{Cause: CauseLocalDelete}, true)
		return
	}
	sa.state = stDeleting
	sa.queue = nil
}

// DeleteChildSA deletes a Child SA, named by its inbound SPI.
func (e *Engine) DeleteChildSA(now time.Time, inboundSPI uint32) error {
	c := e.children[inboundSPI]
	if c == nil {
		return childNotFound(inboundSPI)
	}
	sa := c.ike
	e.whenGate(now, sa, gateInfo, func(now time.Time, _ *ikeSA) { e.sendDeleteChild(now, c.ike, c) })
	return nil
}

func (e *Engine) sendDeleteChild(now time.Time, sa *ikeSA, c *childSA) {
	if e.children[c.inSPI] != c || sa.state != stEstablished {
		return
	}
	c.state = childDeleting
	ctx := &childExchange{kind: xDeleteChild, old: c, why: c.why}
	if _, err := e.sendRequest(now, sa, reqDeleteChild, wire.ExchangeInformational,
		[]wire.Payload{&wire.Delete{Protocol: wire.ProtocolESP, SPISize: 4, SPIs: [][]byte{spiBytes32(c.inSPI)}}}, ctx); err != nil {
		e.removeChild(now, c, Reason{Cause: CauseLocalDelete}, true)
		return
	}
	// The Delete lists SAs the sender has removed (RFC 7296 Sections 1.4.1
	// and 3.11): the peer stops accepting our outbound SA as soon as it
	// reads it, so the data plane must stop sending on it now, not when
	// the response arrives. The record stays until the response. (A
	// Delete sent again, after the IKE SA that carried the first one went
	// away, was reported then.)
	if !c.reported {
		e.emitChildDeleted(now, c, Reason{Cause: ctx.deleteReason()})
	}
}

// onInformationalRequest answers the peer's INFORMATIONAL request.
func (e *Engine) onInformationalRequest(now time.Time, sa *ikeSA, in *inbound) {
	if sa.state < stEstablished {
		// Before IKE_AUTH completed only an error notify makes sense
		// (an initiator telling us our AUTH failed): answer, then drop
		// the half-open SA.
		if n := firstErrorNotify(in.payloads); n != nil && !sa.initiator {
			e.sendResponse(now, sa, in.hdr.Exchange, in.hdr.MessageID, nil)
			e.failSA(now, sa, Reason{Cause: CauseNotifyReceived, Notify: n.NotifyType})
			return
		}
		e.drop(DropUnexpectedExchange)
		return
	}
	if n := wire.FindNotify(in.payloads, wire.NotifyAuthenticationFailed); n != nil && !sa.initiator {
		// RFC 7296 Section 2.21.2: the initiator rejected our AUTH and says
		// so in a separate INFORMATIONAL exchange.
		e.sendResponse(now, sa, in.hdr.Exchange, in.hdr.MessageID, nil)
		e.removeSA(now, sa, Reason{Cause: CauseNotifyReceived, Notify: n.NotifyType}, true)
		return
	}
	readWindowSize(sa, in.payloads)
	var resp []wire.Payload
	deleteIKE := false
	var gone []*childSA
	for _, p := range in.payloads {
		d, ok := p.(*wire.Delete)
		if !ok {
			continue
		}
		switch d.Protocol {
		case wire.ProtocolIKE:
			deleteIKE = true
		case wire.ProtocolESP, wire.ProtocolAH:
			var ours [][]byte
			for _, spi := range d.SPIs {
				if len(spi) != 4 {
					continue
				}
				c := sa.childForDelete(binary.BigEndian.Uint32(spi))
				if c == nil {
					sa.noteEarlyDelete(binary.BigEndian.Uint32(spi))
					continue
				}
				gone = append(gone, c)
				// RFC 7296 Section 1.4.1: answer with the inbound SPIs of
				// the deleted pairs, except for SAs we are deleting too.
				if c.state != childDeleting {
					ours = append(ours, spiBytes32(c.inSPI))
				}
			}
			if len(ours) > 0 {
				resp = append(resp, &wire.Delete{Protocol: d.Protocol, SPISize: 4, SPIs: ours})
			}
		}
	}
	if deleteIKE {
		// The response to a Delete of the IKE SA is empty (Section 1.4.1).
		e.sendResponse(now, sa, in.hdr.Exchange, in.hdr.MessageID, nil)
		why := CausePeerDeleted
		if e.rivalDeleted(now, sa) || sa.rekeyed {
			why = CauseRekeyed
		}
		e.removeSA(now, sa, Reason{Cause: why}, true)
		return
	}
	e.sendResponse(now, sa, in.hdr.Exchange, in.hdr.MessageID, resp)
	for _, c := range gone {
		why := CausePeerDeleted
		if c.state == childRekeyed || sa.ourExchange(func(x *childExchange) bool { return x.collision != nil && x.collision.newChild == c }) != nil {
			// Replaced: by a rekey, or the peer's redundant SA of a Child
			// SA rekey collision, whose Delete overtook the response that
			// decides it for us (RFC 7296 Section 2.8.1).
			why = CauseRekeyed
		}
		e.removeChild(now, c, Reason{Cause: why}, true)
	}
	if len(sa.xchgs) > 0 {
		e.afterPeerDelete(now, sa, gone)
	}
}

// noteEarlyDelete remembers spi, named in a Delete of the peer that found
// no Child SA here, while a CREATE_CHILD_SA exchange of ours is open: the
// peer may have created that Child SA as the responder of our exchange and
// deleted it at once, its Delete passing its response (which was lost, or
// overtaken: the peer's requests and its responses to ours travel
// independently, RFC 7296 Section 2.3). finishExchange then removes the
// Child SA as soon as it is installed instead of keeping one the peer no
// longer has (a half-closed SA, Section 1.4.1). At most MaxWindow SPIs
// are kept, the oldest forgotten first.
func (sa *ikeSA) noteEarlyDelete(spi uint32) {
	if sa.ourExchange(func(x *childExchange) bool { return x.kind == xNewChild || x.kind == xRekeyChild }) == nil {
		sa.earlyDeletes = nil
		return
	}
	if len(sa.earlyDeletes) == MaxWindow {
		sa.earlyDeletes = append(sa.earlyDeletes[:0], sa.earlyDeletes[1:]...)
	}
	sa.earlyDeletes = append(sa.earlyDeletes, spi)
}

// takeEarlyDelete reports whether the peer deleted its Child SA spi
// before this end learnt of it (noteEarlyDelete), and forgets it.
func (sa *ikeSA) takeEarlyDelete(spi uint32) bool {
	for i, s := range sa.earlyDeletes {
		if s == spi {
			sa.earlyDeletes = append(sa.earlyDeletes[:i], sa.earlyDeletes[i+1:]...)
			return true
		}
	}
	return false
}

// childForDelete finds the Child SA named by the peer's SPI in a Delete
// that came on sa: one of sa's, or one of the SA's that holds sa's Child
// SAs now (successor): the winning SA when sa is the redundant SA of an
// IKE SA rekey collision we lost, or the new SA when sa was rekeyed. The
// peer sends Child SA deletes with the IKE SA that holds them on its side
// (RFC 7296 Section 1.4), which may not have been rekeyed there yet. The
// search follows at most maxSuccessors rekeys.
func (sa *ikeSA) childForDelete(spi uint32) *childSA {
	for range maxSuccessors + 1 {
		if c := sa.childByOutSPI(spi); c != nil {
			return c
		}
		if sa = sa.successor; sa == nil || sa.state != stEstablished {
			return nil
		}
	}
	return nil
}

// maxSuccessors bounds the rekeys childForDelete follows.
const maxSuccessors = 4

// childByOutSPI finds a Child SA of sa by the peer's SPI.
func (sa *ikeSA) childByOutSPI(spi uint32) *childSA {
	for _, c := range sa.children {
		if c.outSPI == spi {
			return c
		}
	}
	return nil
}

// onInformationalResponse finishes our INFORMATIONAL request.
func (e *Engine) onInformationalResponse(now time.Time, sa *ikeSA, r *request, in *inbound) {
	if r.kind == reqDeleteChild && r.ctx != nil && r.ctx.old != nil {
		if e.children[r.ctx.old.inSPI] == r.ctx.old {
			e.removeChild(now, r.ctx.old, Reason{Cause: r.ctx.deleteReason()}, true)
		}
	}
}

// lifetimeTimers runs the lifetime, liveness and keepalive timers.
func (e *Engine) lifetimeTimers(now time.Time, sa *ikeSA) {
	if len(sa.xchgs) > 0 && sa.state == stEstablished {
		e.dropExpiredPeerExchanges(now, sa)
	}
	if !sa.expireAt.IsZero() && !sa.expireAt.After(now) {
		sa.expireAt = time.Time{}
		if sa.peerRedundant {
			e.removeSA(now, sa, Reason{Cause: CauseRekeyed}, true)
			return
		}
		if sa.state == stEstablished && sa.outstanding() == 0 {
			e.sendDeleteIKE(now, sa)
		} else {
			e.removeSA(now, sa, Reason{Cause: CauseLifetime}, true)
			return
		}
	}
	if !sa.rekeyAt.IsZero() && !sa.rekeyAt.After(now) {
		sa.rekeyAt = time.Time{}
		if sa.state == stEstablished {
			e.whenGate(now, sa, gateRekeyIKE, func(now time.Time, _ *ikeSA) { e.startIKERekey(now, sa) })
		}
	}
	if !sa.dpdAt.IsZero() && !sa.dpdAt.After(now) {
		sa.dpdAt = time.Time{}
		if d := sa.peer.cfg.DPDDelay; d > 0 && sa.state == stEstablished {
			idle := now.Sub(sa.lastRecv)
			if (idle >= time.Duration(d) || sa.peer.cfg.DPDPeriodic) && sa.outstanding() == 0 {
				if r, err := e.sendRequest(now, sa, reqInformational, wire.ExchangeInformational, nil, nil); err == nil {
					r.tries = sa.peer.cfg.DPDRetries
				}
				sa.dpdAt = now.Add(time.Duration(d))
			} else {
				sa.dpdAt = sa.lastRecv.Add(time.Duration(d))
				if !sa.dpdAt.After(now) {
					sa.dpdAt = now.Add(time.Duration(d))
				}
			}
		}
	}
	if !sa.keepalive.IsZero() && !sa.keepalive.After(now) {
		e.send(sa, sa.local, sa.remote, [][]byte{{0xff}}, false)
		sa.keepalive = now.Add(time.Duration(e.cfg.NATT.Keepalive))
	}
	for _, c := range append([]*childSA(nil), sa.children...) {
		if !c.expireAt.IsZero() && !c.expireAt.After(now) {
			c.expireAt = time.Time{}
			c.why = CauseLifetime
			e.whenGate(now, sa, gateInfo, func(now time.Time, _ *ikeSA) { e.sendDeleteChild(now, c.ike, c) })
			continue
		}
		if !c.rekeyAt.IsZero() && !c.rekeyAt.After(now) {
			c.rekeyAt = time.Time{}
			if c.state == childInstalled {
				e.whenGate(now, sa, gateCreate, func(now time.Time, _ *ikeSA) { e.startChildRekey(now, c.ike, c) })
			}
		}
	}
}

// ChildSALimit reports that the data plane reached a byte, packet or
// sequence-number limit of the Child SA with the given SPI (inbound: the
// SPI this end chose; otherwise the peer's). A soft limit starts a rekey,
// a hard one deletes the Child SA.
func (e *Engine) ChildSALimit(now time.Time, spi uint32, inbound, hard bool) error {
	c := e.children[spi]
	if !inbound {
		c = nil
		for _, sa := range e.sas {
			if c = sa.childByOutSPI(spi); c != nil {
				break
			}
		}
	}
	if c == nil {
		return childNotFound(spi)
	}
	sa := c.ike
	if hard {
		c.why = CauseLifetime
		e.whenGate(now, sa, gateInfo, func(now time.Time, _ *ikeSA) { e.sendDeleteChild(now, c.ike, c) })
		return nil
	}
	if c.state == childInstalled {
		c.rekeyAt = time.Time{}
		e.whenGate(now, sa, gateCreate, func(now time.Time, _ *ikeSA) { e.startChildRekey(now, c.ike, c) })
	}
	return nil
}
