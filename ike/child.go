package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// Child SA negotiation shared by IKE_AUTH and CREATE_CHILD_SA: ESP
// proposals, traffic selector narrowing (RFC 7296 Section 2.9), KEYMAT
// (Section 2.17), installation and lifetimes.

func spiBytes32(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }

// localTS returns this end's selectors for a child: the configured ones, or
// the local address alone (strongSwan's "dynamic").
func (e *Engine) localTS(sa *ikeSA, ce *childEntry) []TrafficSelector {
	if len(ce.cfg.LocalTS) > 0 {
		return ce.cfg.LocalTS
	}
	return []TrafficSelector{hostTS(sa.local)}
}

// remoteTS returns the peer's selectors for a child.
func (e *Engine) remoteTS(sa *ikeSA, ce *childEntry) []TrafficSelector {
	if len(ce.cfg.RemoteTS) > 0 {
		return ce.cfg.RemoteTS
	}
	return []TrafficSelector{hostTS(sa.remote)}
}

func hostTS(a netip.AddrPort) TrafficSelector {
	ad := a.Addr().Unmap()
	return TrafficSelector{Start: ad, End: ad, EndPort: 0xffff}
}

// tsPayload encodes selectors as a TSi (responder false) or TSr payload.
func tsPayload(responder bool, ts []TrafficSelector) *wire.TS {
	p := &wire.TS{Responder: responder, Selectors: make([]wire.TrafficSelector, 0, len(ts))}
	for _, t := range ts {
		typ := wire.TSIPv4AddrRange
		if t.IsV6() {
			typ = wire.TSIPv6AddrRange
		}
		p.Selectors = append(p.Selectors, wire.TrafficSelector{Type: typ, IPProtocol: t.Protocol,
			StartPort: t.StartPort, EndPort: t.EndPort, Start: t.Start, End: t.End})
	}
	return p
}

// tsFromWire decodes the address-range selectors of a TS payload; other
// types are skipped (they cannot be narrowed to anything we configure).
func tsFromWire(p *wire.TS) []TrafficSelector {
	if p == nil {
		return nil
	}
	out := make([]TrafficSelector, 0, len(p.Selectors))
	for _, s := range p.Selectors {
		if s.Type != wire.TSIPv4AddrRange && s.Type != wire.TSIPv6AddrRange {
			continue
		}
		t := TrafficSelector{Start: s.Start, End: s.End, Protocol: s.IPProtocol, StartPort: s.StartPort, EndPort: s.EndPort}
		if t.Valid() {
			out = append(out, t)
		}
	}
	return out
}

// withoutKE returns the proposals with their key exchange transforms
// removed: ESP proposals in IKE_AUTH carry none (RFC 7296 Section 1.2).
func withoutKE(ps []*suite.Proposal) []*suite.Proposal {
	out := make([]*suite.Proposal, len(ps))
	for i, p := range ps {
		q := *p
		q.KE = nil
		q.AddKE = [suite.MaxAddKE][]uint16{}
		out[i] = &q
	}
	return out
}

// childResult is the outcome of a responder's Child SA negotiation.
type childResult struct {
	entry             *childEntry
	suite             suite.Suite
	inSPI, outSPI     uint32
	localTS, remoteTS []TrafficSelector
	// payloads are the response's SA, TSi and TSr, or the error notify.
	payloads []wire.Payload
	notify   wire.NotifyType
}

// negotiateChild selects, as responder, a child configuration of pe whose
// selectors intersect the initiator's (TSi is the initiator's side, our
// remote) and one of its ESP proposals. pfs keeps key exchange transforms
// (CREATE_CHILD_SA).
func (e *Engine) negotiateChild(sa *ikeSA, pe *peerEntry, sap *wire.SA, tsi, tsr *wire.TS, pfs bool) *childResult {
	return e.negotiateChildFor(sa, pe, sap, tsi, tsr, pfs, 0, nil)
}

// negotiateChildFor is negotiateChild with the method of the initiator's KE
// payload (preferKE, 0 if none) and, for a rekey, the only child
// configuration to consider.
func (e *Engine) negotiateChildFor(sa *ikeSA, pe *peerEntry, sap *wire.SA, tsi, tsr *wire.TS, pfs bool, preferKE uint16, only *childEntry) *childResult {
	fail := func(n wire.NotifyType) *childResult {
		return &childResult{notify: n, payloads: []wire.Payload{&wire.Notify{NotifyType: n}}}
	}
	if tsi == nil || tsr == nil {
		return fail(wire.NotifyTSUnacceptable)
	}
	theirI, theirR := tsFromWire(tsi), tsFromWire(tsr)
	notify := wire.NotifyTSUnacceptable
	for i := range pe.children {
		ce := &pe.children[i]
		if only != nil && ce != only {
			continue
		}
		nl := narrow(theirR, e.localTS(sa, ce))
		nr := narrow(theirI, e.remoteTS(sa, ce))
		if len(nl) == 0 || len(nr) == 0 {
			continue
		}
		mine := ce.esp
		if !pfs {
			mine = withoutKE(mine)
		}
		offers := sap.Proposals
		if pfs && e.noAddKEInCreate() {
			offers = withoutAddKE(offers)
			mine = e.adjustProposals(mine, false, true)
		}
		s, num, spi, ok := selectProposal(mine, offers, wire.ProtocolESP, preferKE, e.selectOpts())
		if !ok || len(spi) != 4 {
			notify = wire.NotifyNoProposalChosen
			continue
		}
		if err := s.Validate(); err != nil {
			notify = wire.NotifyNoProposalChosen
			continue
		}
		in, err := e.newChildSPI()
		if err != nil {
			return fail(wire.NotifyNoAdditionalSAs)
		}
		r := &childResult{entry: ce, suite: s, inSPI: in, outSPI: binary.BigEndian.Uint32(spi), localTS: nl, remoteTS: nr}
		r.payloads = []wire.Payload{&wire.SA{Proposals: []wire.Proposal{suiteToWire(&s, num, spiBytes32(in))}},
			tsPayload(false, nr), tsPayload(true, nl)}
		return r
	}
	return fail(notify)
}

// checkChildResponse validates, as initiator, the responder's choice: one
// proposal we offered, a 4-octet SPI, selectors within what we proposed.
func (e *Engine) checkChildResponse(sa *ikeSA, ce *childEntry, sap *wire.SA, tsi, tsr *wire.TS, sentI, sentR []TrafficSelector, pfs bool) (*childResult, error) {
	if len(sap.Proposals) != 1 {
		return nil, errors.New("SA payload with other than one proposal")
	}
	p := &sap.Proposals[0]
	s, ok := suiteFromWire(p)
	mine := ce.esp
	if !pfs {
		mine = withoutKE(mine)
	}
	if !ok || s.Protocol != wire.ProtocolESP || !containsSuite(mine, &s) || len(p.SPI) != 4 {
		return nil, errors.New("responder chose a proposal we did not offer")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	gotI, gotR := tsFromWire(tsi), tsFromWire(tsr)
	if !subsetOf(gotI, sentI) || !subsetOf(gotR, sentR) {
		return nil, errors.New("narrowed traffic selectors outside the proposed ones")
	}
	return &childResult{entry: ce, suite: s, outSPI: binary.BigEndian.Uint32(p.SPI), localTS: gotI, remoteTS: gotR}, nil
}

// childKeyOps records the prf+ of a Child SA's KEYMAT.
func (e *Engine) childKeyOps(sa *ikeSA, s *suite.Suite) {
	l, _ := s.KeyLengths()
	e.op(sa, suite.OpPRFPlus, sa.suite.PRF, 2*(l.E+l.A))
}

// jitter returns a random duration in [0, max).
func (e *Engine) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	var b [8]byte
	if _, err := io.ReadFull(e.rand, b[:]); err != nil {
		return 0
	}
	return time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(max))
}

// installChild records a new Child SA and emits its installation (or
// rekey) event with the keys.
func (e *Engine) installChild(now time.Time, sa *ikeSA, ce *childEntry, s suite.Suite, inSPI, outSPI uint32, k *suite.ChildKeys, localTS, remoteTS []TrafficSelector, initiator bool, rekeyOf uint32) *childSA {
	l := ce.cfg.Lifetime.withDefaults(DefaultChildRekey)
	c := &childSA{ike: sa, cfg: ce.cfg, name: ce.cfg.Name, inSPI: inSPI, outSPI: outSPI, suite: s,
		localTS: localTS, remoteTS: remoteTS, initiator: initiator}
	c.life = ChildLifetime{HardTime: time.Duration(l.Life),
		SoftBytes: l.RekeyBytes, HardBytes: l.LifeBytes, SoftPackets: l.RekeyPackets, HardPackets: l.LifePackets}
	if l.Rekey > 0 {
		c.life.SoftTime = time.Duration(l.Rekey) - e.jitter(time.Duration(l.Jitter))
		c.rekeyAt = now.Add(c.life.SoftTime)
	}
	if l.Life > 0 {
		c.expireAt = now.Add(time.Duration(l.Life))
	}
	sa.children = append(sa.children, c)
	e.children[inSPI] = c
	e.nChildren++
	info := &ChildSA{Name: c.name, Protocol: wire.ProtocolESP, InboundSPI: inSPI, OutboundSPI: outSPI, Suite: s,
		LocalTS: localTS, RemoteTS: remoteTS, Encap: sa.encap, Local: sa.local, Remote: sa.remote,
		Lifetime: c.life, RekeyOf: rekeyOf, Initiator: initiator}
	// KEYMAT is split by the initiator of the exchange that created the
	// Child SA (RFC 7296 Section 2.17), not of the IKE SA.
	if initiator {
		info.Outbound = DirectionKeys{Encr: k.EncrI, Integ: k.IntegI}
		info.Inbound = DirectionKeys{Encr: k.EncrR, Integ: k.IntegR}
	} else {
		info.Outbound = DirectionKeys{Encr: k.EncrR, Integ: k.IntegR}
		info.Inbound = DirectionKeys{Encr: k.EncrI, Integ: k.IntegI}
	}
	kind := EventChildSAInstalled
	if rekeyOf != 0 {
		kind = EventChildSARekeyed
	}
	ev := sa.event(kind, now)
	ev.Child = info
	e.emit(ev)
	return c
}

// removeChild forgets a Child SA and emits its deletion.
func (e *Engine) removeChild(now time.Time, c *childSA, why Reason, detach bool) {
	if e.children[c.inSPI] == c {
		delete(e.children, c.inSPI)
		e.nChildren--
	}
	sa := c.ike
	if detach {
		for i, o := range sa.children {
			if o == c {
				sa.children = append(sa.children[:i], sa.children[i+1:]...)
				break
			}
		}
	}
	if !c.reported {
		e.emitChildDeleted(now, c, why)
	}
}

// emitChildDeleted tells the data plane to remove the Child SA c.
func (e *Engine) emitChildDeleted(now time.Time, c *childSA, why Reason) {
	ev := c.ike.event(EventChildSADeleted, now)
	ev.Child = &ChildSA{Name: c.name, Protocol: wire.ProtocolESP, InboundSPI: c.inSPI, OutboundSPI: c.outSPI,
		Suite: c.suite, LocalTS: c.localTS, RemoteTS: c.remoteTS, Initiator: c.initiator}
	ev.Reason = why
	e.emit(ev)
	c.reported = true
}

// armIKELifetime sets the IKE SA's rekey and expiry times.
func (e *Engine) armIKELifetime(now time.Time, sa *ikeSA) {
	l := sa.peer.cfg.IKELifetime.withDefaults(DefaultIKERekey)
	if l.Rekey > 0 && !e.cfg.ResponderOnly {
		sa.rekeyAt = now.Add(time.Duration(l.Rekey) - e.jitter(time.Duration(l.Jitter)))
	}
	if l.Life > 0 {
		sa.expireAt = now.Add(time.Duration(l.Life))
	}
	if d := sa.peer.cfg.DPDDelay; d > 0 {
		sa.dpdAt = now.Add(time.Duration(d))
	}
	if k := e.cfg.NATT.Keepalive; k > 0 && sa.natLocal {
		sa.keepalive = now.Add(time.Duration(k))
	}
}

// errNoChild is returned for an unknown Child SA.
var errNoChild = errors.New("ike: no such Child SA")

func childNotFound(spi uint32) error { return fmt.Errorf("%w: %08x", errNoChild, spi) }
