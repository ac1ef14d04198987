package ike

import (
	"encoding/binary"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// IKE_INTERMEDIATE (RFC 9242) carrying the additional key exchanges of
// RFC 9370 Section 2.2.2: one exchange per ADDKE round, each followed by a
// key update, with the IntAuth chain that IKE_AUTH signs.

// spiBytes returns SPIi and SPIr as 8-octet strings.
func (sa *ikeSA) spiBytes() (i, r []byte) {
	i = binary.BigEndian.AppendUint64(nil, sa.spiI)
	r = binary.BigEndian.AppendUint64(nil, sa.spiR)
	return i, r
}

// intAuthData returns the RFC 9242 A|P octets of a message.
func intAuthData(hdr wire.Header, first wire.PayloadType, plain []byte) ([]byte, error) {
	return suite.IntAuthData(hdr.Append(nil), first, plain)
}

// sendIntermediate sends the IKE_INTERMEDIATE request of the current round.
func (e *Engine) sendIntermediate(now time.Time, sa *ikeSA) error {
	hs := sa.hs
	id := hs.kes[hs.round]
	m, err := e.cfg.KEMethod(id)
	if err != nil {
		return err
	}
	st, data, err := m.Initiate(e.rand)
	if err != nil {
		return err
	}
	e.keOps(sa, id, suite.KEInitiate)
	hs.keState, hs.keMethod = st, id
	r, s, err := e.sendRequestSealed(now, sa, reqIntermediate, wire.ExchangeIKEIntermediate, []wire.Payload{&wire.KE{Method: id, Data: data}}, nil)
	if err != nil {
		return err
	}
	_ = r
	ap, err := intAuthData(s.hdr, s.first, s.plain)
	if err != nil {
		return err
	}
	hs.intAuthI = suite.IntAuth(sa.prf, hs.keys.Pi, hs.intAuthI, ap)
	e.op(sa, suite.OpPRF, sa.suite.PRF, len(ap))
	sa.state = stIntermediate
	return nil
}

// firstErrorNotify returns the first error notify among ps.
func firstErrorNotify(ps []wire.Payload) *wire.Notify {
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}

// onIntermediateResponse completes one additional key exchange as initiator.
func (e *Engine) onIntermediateResponse(now time.Time, sa *ikeSA, in *inbound) {
	hs := sa.hs
	if sa.state != stIntermediate || hs == nil {
		e.drop(DropUnexpectedExchange)
		return
	}
	ap, err := intAuthData(in.hdr, in.first, in.plain)
	if err != nil {
		e.failSA(now, sa, Reason{Cause: CauseProtocol, Detail: err.Error()})
		return
	}
	hs.intAuthR = suite.IntAuth(sa.prf, hs.keys.Pr, hs.intAuthR, ap)
	e.op(sa, suite.OpPRF, sa.suite.PRF, len(ap))
	if n := firstErrorNotify(in.payloads); n != nil {
		e.failSA(now, sa, Reason{Cause: CauseNotifyReceived, Notify: n.NotifyType})
		return
	}
	ke := wire.First[*wire.KE](in.payloads)
	if ke == nil || ke.Method != hs.keMethod {
		e.failSA(now, sa, Reason{Cause: CauseProtocol, Detail: "IKE_INTERMEDIATE response without the expected KE payload"})
		return
	}
	shared, err := hs.keState.Complete(ke.Data)
	e.keOps(sa, hs.keMethod, suite.KEComplete)
	hs.keState = nil
	if err != nil {
		e.failSA(now, sa, Reason{Cause: CauseProtocol, Detail: err.Error()})
		return
	}
	if err := e.intermediateKeys(sa, shared); err != nil {
		e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	e.nextHandshakeStep(now, sa)
}

// intermediateKeys performs the key update after an IKE_INTERMEDIATE
// exchange (RFC 9370 Section 2.2.2).
func (e *Engine) intermediateKeys(sa *ikeSA, shared []byte) error {
	hs := sa.hs
	spiI, spiR := sa.spiBytes()
	k, err := sa.suite.IntermediateKeys(hs.keys, shared, hs.ni, hs.nr, spiI, spiR)
	if err != nil {
		return err
	}
	e.keyOps(sa, len(shared)+len(hs.ni)+len(hs.nr))
	hs.round++
	hs.intermediates++
	return e.installKeys(sa, k)
}

// onIntermediateRequest runs one additional key exchange as responder.
func (e *Engine) onIntermediateRequest(now time.Time, sa *ikeSA, in *inbound) {
	hs := sa.hs
	if sa.initiator || sa.state != stInitDone || hs == nil || hs.round >= len(hs.kes) {
		e.drop(DropUnexpectedExchange)
		return
	}
	ap, err := intAuthData(in.hdr, in.first, in.plain)
	if err != nil {
		e.drop(DropInvalid)
		return
	}
	id := hs.kes[hs.round]
	ke := wire.First[*wire.KE](in.payloads)
	if ke == nil || ke.Method != id {
		e.abortHandshake(now, sa, in, wire.NotifyInvalidSyntax, "IKE_INTERMEDIATE request without the negotiated KE payload")
		return
	}
	m, err := e.cfg.KEMethod(id)
	if err != nil {
		e.abortHandshake(now, sa, in, wire.NotifyInvalidSyntax, err.Error())
		return
	}
	pub, shared, err := m.Respond(e.rand, ke.Data)
	e.keOps(sa, id, suite.KERespond)
	if err != nil {
		// draft-ietf-ipsecme-ikev2-mlkem Section 3: a bad encapsulation
		// key is answered with INVALID_SYNTAX.
		e.abortHandshake(now, sa, in, wire.NotifyInvalidSyntax, err.Error())
		return
	}
	hs.intAuthI = suite.IntAuth(sa.prf, hs.keys.Pi, hs.intAuthI, ap)
	e.op(sa, suite.OpPRF, sa.suite.PRF, len(ap))
	s := e.sendResponseSealed(now, sa, in.hdr.Exchange, in.hdr.MessageID, []wire.Payload{&wire.KE{Method: id, Data: pub}})
	if s == nil {
		return
	}
	apr, err := intAuthData(s.hdr, s.first, s.plain)
	if err != nil {
		e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	hs.intAuthR = suite.IntAuth(sa.prf, hs.keys.Pr, hs.intAuthR, apr)
	e.op(sa, suite.OpPRF, sa.suite.PRF, len(apr))
	if err := e.intermediateKeys(sa, shared); err != nil {
		e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: err.Error()})
	}
}

// abortHandshake answers a request of an unfinished handshake with an error
// notify and deletes the half-open SA.
func (e *Engine) abortHandshake(now time.Time, sa *ikeSA, in *inbound, t wire.NotifyType, detail string) {
	e.respondError(now, sa, in, t, nil)
	e.failSA(now, sa, Reason{Cause: CauseNotifySent, Notify: t, Detail: detail})
}
