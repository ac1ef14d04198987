package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// IKE_AUTH (RFC 7296 Sections 1.2 and 2.15): identities, AUTH over the
// IKE_SA_INIT messages, the peer's nonce, the MACed identity and, after
// IKE_INTERMEDIATE exchanges, the IntAuth values (RFC 9242 Section 3.3); the
// first Child SA rides along.

// intAuthOctets returns the octets appended to AUTH's signed octets, nil
// when no IKE_INTERMEDIATE exchange took place.
func (hs *handshake) intAuthOctets(authMID uint32) []byte {
	if hs.intermediates == 0 {
		return nil
	}
	return suite.IntAuthOctets(hs.intAuthI, hs.intAuthR, authMID)
}

// sendAuth sends the initiator's IKE_AUTH request.
func (e *Engine) sendAuth(now time.Time, sa *ikeSA) error {
	hs, pe := sa.hs, sa.peer
	idi := pe.localID(sa.local).payload(false)
	mid := sa.nextReqMID
	octets := suite.SignedOctets(sa.prf, hs.initReq, hs.nr, hs.keys.Pi, idi.Prime(), hs.intAuthOctets(mid))
	e.op(sa, suite.OpPRF, sa.suite.PRF, len(idi.Prime()))
	signer := pe.signer(sa.prf)
	method, data, err := signer.Sign(e.rand, octets, hs.peerHashes)
	if err != nil {
		return err
	}
	e.authOps(sa, suite.OpSign, method, len(octets))
	ps := []wire.Payload{idi}
	for _, c := range signer.Certificates() {
		ps = append(ps, &wire.Cert{Encoding: wire.CertX509Signature, Data: c})
	}
	if cr := pe.certReq(); cr != nil {
		ps = append(ps, cr)
	}
	if pe.cfg.InitialContact {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyInitialContact})
	}
	ps = e.appendWindowSize(ps)
	if !pe.cfg.RemoteID.IsZero() {
		ps = append(ps, pe.cfg.RemoteID.payload(true))
	}
	ps = append(ps, &wire.Auth{Method: method, Data: data})
	if len(pe.children) > 0 {
		ce := &pe.children[0]
		spi, err := e.newChildSPI()
		if err != nil {
			return err
		}
		hs.child, hs.childSPI = ce, spi
		hs.tsi, hs.tsr = e.localTS(sa, ce), e.remoteTS(sa, ce)
		sap := &wire.SA{}
		for i, p := range ce.esp {
			sap.Proposals = append(sap.Proposals, proposalToWire(p, uint8(i+1), spiBytes32(spi), false))
		}
		ps = append(ps, sap, tsPayload(false, hs.tsi), tsPayload(true, hs.tsr))
		// Reserve the SPI so no other Child SA takes it meanwhile.
		e.children[spi] = nil
	}
	if _, err := e.sendRequest(now, sa, reqAuth, wire.ExchangeIKEAuth, ps, nil); err != nil {
		return err
	}
	sa.state = stAuthSent
	return nil
}

// appendWindowSize announces Config.Window with SET_WINDOW_SIZE (RFC 7296
// Section 3.10.1) when it is above the default of one.
func (e *Engine) appendWindowSize(ps []wire.Payload) []wire.Payload {
	if e.cfg.Window <= 1 {
		return ps
	}
	return append(ps, &wire.Notify{NotifyType: wire.NotifySetWindowSize, Data: binary.BigEndian.AppendUint32(nil, uint32(e.cfg.Window))})
}

// readWindowSize takes the peer's window from a SET_WINDOW_SIZE notify
// (4 octets; larger windows than MaxWindow are used as MaxWindow).
func readWindowSize(sa *ikeSA, ps []wire.Payload) {
	if n := wire.FindNotify(ps, wire.NotifySetWindowSize); n != nil && len(n.Data) == 4 {
		sa.peerWindow = min(binary.BigEndian.Uint32(n.Data), MaxWindow)
	}
}

// authOps records a signature or PSK MAC computation.
func (e *Engine) authOps(sa *ikeSA, o suite.Op, method wire.AuthMethod, n int) {
	if method == wire.AuthSharedKey {
		e.op(sa, suite.OpPRF, sa.suite.PRF, len(sa.peer.cfg.Auth.PSK))
		e.op(sa, suite.OpPRF, sa.suite.PRF, n)
		return
	}
	e.op(sa, o, uint16(method), n)
}

// authPayloads collects the payloads of an IKE_AUTH message.
type authPayloads struct {
	idi, idr   *wire.ID
	auth       *wire.Auth
	certs      [][]byte
	sa         *wire.SA
	tsi, tsr   *wire.TS
	initialCtc bool
	errNote    *wire.Notify
	transport  bool
}

func parseAuthPayloads(ps []wire.Payload) *authPayloads {
	ap := &authPayloads{}
	for _, p := range ps {
		switch p := p.(type) {
		case *wire.ID:
			if p.Responder {
				ap.idr = p
			} else {
				ap.idi = p
			}
		case *wire.Auth:
			ap.auth = p
		case *wire.Cert:
			if p.Encoding == wire.CertX509Signature && len(ap.certs) < auth.MaxChainCertificates {
				ap.certs = append(ap.certs, p.Data)
			}
		case *wire.SA:
			ap.sa = p
		case *wire.TS:
			if p.Responder {
				ap.tsr = p
			} else {
				ap.tsi = p
			}
		case *wire.Notify:
			switch {
			case p.NotifyType == wire.NotifyInitialContact:
				ap.initialCtc = true
			case p.NotifyType == wire.NotifyUseTransportMode:
				ap.transport = true
			case p.NotifyType.IsError() && ap.errNote == nil:
				ap.errNote = p
			}
		}
	}
	return ap
}

func idFromWire(p *wire.ID) Identity { return Identity{Type: p.IDType, Data: p.Data} }

// verifyAuth checks the peer's AUTH payload over octets with the
// connection's credentials.
func (e *Engine) verifyAuth(now time.Time, sa *ikeSA, pe *peerEntry, ap *authPayloads, peerID *wire.ID, octets []byte) error {
	a := ap.auth
	if a.Method == wire.AuthSharedKey || pe.cfg.Auth.Trust == nil {
		if pe.cfg.Auth.PSK == "" {
			return errors.New("ike: peer used a shared key, none configured")
		}
		e.authOps(sa, suite.OpVerify, wire.AuthSharedKey, len(octets))
		psk := &auth.PSK{Secret: []byte(pe.cfg.Auth.PSK), PRF: prfFunc(sa.prf)}
		return psk.Verify(a.Method, a.Data, octets)
	}
	id := authIdentity(idFromWire(peerID))
	e.op(sa, suite.OpVerify, uint16(a.Method), len(octets))
	_, err := pe.cfg.Auth.Trust.VerifyAuth(a.Method, a.Data, octets, ap.certs, auth.VerifyOptions{Time: now, Identity: &id})
	return err
}

// onAuthRequest authenticates the initiator as responder.
func (e *Engine) onAuthRequest(now time.Time, sa *ikeSA, in *inbound) {
	hs := sa.hs
	if sa.initiator || sa.state != stInitDone || hs == nil || hs.round < len(hs.kes) {
		e.drop(DropUnexpectedExchange)
		return
	}
	ap := parseAuthPayloads(in.payloads)
	if ap.idi == nil || ap.auth == nil {
		e.abortHandshake(now, sa, in, wire.NotifyInvalidSyntax, "IKE_AUTH request without IDi or AUTH")
		return
	}
	peerID := idFromWire(ap.idi)
	pe := e.peers.forAuth(peerID, func(p *peerEntry) bool {
		return p.matchesAddr(sa.local, sa.remote) && containsSuite(p.ike, &sa.suite) &&
			(ap.idr == nil || idFromWire(ap.idr).Equal(p.localID(sa.local)))
	})
	mid := in.hdr.MessageID
	var err error
	if pe == nil {
		err = errors.New("ike: no connection for the peer's identity " + peerID.String())
	} else {
		octets := suite.SignedOctets(sa.prf, hs.initReq, hs.nr, hs.keys.Pi, ap.idi.Prime(), hs.intAuthOctets(mid))
		e.op(sa, suite.OpPRF, sa.suite.PRF, len(ap.idi.Prime()))
		err = e.verifyAuth(now, sa, pe, ap, ap.idi, octets)
	}
	if err != nil {
		e.respondError(now, sa, in, wire.NotifyAuthenticationFailed, nil)
		e.failSA(now, sa, Reason{Cause: CauseAuthFailed, Notify: wire.NotifyAuthenticationFailed, Detail: err.Error()})
		return
	}
	sa.peer, sa.peerID = pe, Identity{Type: peerID.Type, Data: bytes.Clone(peerID.Data)}
	readWindowSize(sa, in.payloads)
	idr := pe.localID(sa.local).payload(true)
	octets := suite.SignedOctets(sa.prf, hs.initResp, hs.ni, hs.keys.Pr, idr.Prime(), hs.intAuthOctets(mid))
	e.op(sa, suite.OpPRF, sa.suite.PRF, len(idr.Prime()))
	signer := pe.signer(sa.prf)
	method, data, err := signer.Sign(e.rand, octets, hs.peerHashes)
	if err != nil {
		e.respondError(now, sa, in, wire.NotifyAuthenticationFailed, nil)
		e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	e.authOps(sa, suite.OpSign, method, len(octets))
	ps := []wire.Payload{idr}
	for _, c := range signer.Certificates() {
		ps = append(ps, &wire.Cert{Encoding: wire.CertX509Signature, Data: c})
	}
	ps = append(ps, &wire.Auth{Method: method, Data: data})
	ps = e.appendWindowSize(ps)
	var child *childResult
	if ap.sa != nil {
		// Only tunnel mode is offered: USE_TRANSPORT_MODE is not echoed
		// (RFC 7296 Section 1.3.1).
		child = e.negotiateChild(sa, pe, ap.sa, ap.tsi, ap.tsr, false)
		ps = append(ps, child.payloads...)
	}
	e.sendResponse(now, sa, in.hdr.Exchange, mid, ps)
	if sa.state == stDead {
		return
	}
	if ap.initialCtc {
		e.initialContact(now, sa, peerID)
	}
	e.establish(now, sa)
	if child != nil {
		if child.notify != 0 {
			ev := sa.event(EventExchangeFailed, now)
			ev.Reason = Reason{Cause: CauseNotifySent, Notify: child.notify, Detail: "first Child SA"}
			ev.Child = &ChildSA{Name: firstChildName(pe), Protocol: wire.ProtocolESP}
			e.emit(ev)
		} else {
			keys, err := child.suite.ChildKeys(sa.prf, hs.keys.D, nil, hs.ni, hs.nr)
			if err == nil {
				e.childKeyOps(sa, &child.suite)
				e.installChild(now, sa, child.entry, child.suite, child.inSPI, child.outSPI, keys, child.localTS, child.remoteTS, false, 0)
			}
		}
	}
	sa.hs = nil
}

// onAuthResponse authenticates the responder as initiator.
func (e *Engine) onAuthResponse(now time.Time, sa *ikeSA, in *inbound) {
	hs := sa.hs
	if sa.state != stAuthSent || hs == nil {
		e.drop(DropUnexpectedExchange)
		return
	}
	ap := parseAuthPayloads(in.payloads)
	if ap.auth == nil || ap.idr == nil {
		why := Reason{Cause: CauseProtocol, Detail: "IKE_AUTH response without IDr or AUTH"}
		if ap.errNote != nil {
			why = Reason{Cause: CauseNotifyReceived, Notify: ap.errNote.NotifyType}
		}
		e.releaseChildSPI(hs)
		e.failSA(now, sa, why)
		return
	}
	pe := sa.peer
	var err error
	if !pe.matchesRemoteID(idFromWire(ap.idr)) {
		err = errors.New("ike: responder identity " + idFromWire(ap.idr).String() + " not the configured one")
	} else {
		octets := suite.SignedOctets(sa.prf, hs.initResp, hs.ni, hs.keys.Pr, ap.idr.Prime(), hs.intAuthOctets(in.hdr.MessageID))
		e.op(sa, suite.OpPRF, sa.suite.PRF, len(ap.idr.Prime()))
		err = e.verifyAuth(now, sa, pe, ap, ap.idr, octets)
	}
	if err != nil {
		// RFC 7296 Section 2.21.2: tell the responder in a separate
		// INFORMATIONAL exchange, then forget the SA.
		e.sendRequest(now, sa, reqAuthFailedNotify, wire.ExchangeInformational,
			[]wire.Payload{&wire.Notify{NotifyType: wire.NotifyAuthenticationFailed}}, nil)
		e.releaseChildSPI(hs)
		e.failSA(now, sa, Reason{Cause: CauseAuthFailed, Detail: err.Error()})
		return
	}
	sa.peerID = Identity{Type: ap.idr.IDType, Data: bytes.Clone(ap.idr.Data)}
	readWindowSize(sa, in.payloads)
	e.establish(now, sa)
	if hs.child != nil {
		e.finishFirstChild(now, sa, hs, ap)
	}
	sa.hs = nil
	e.runQueue(now, sa)
}

func (e *Engine) releaseChildSPI(hs *handshake) {
	if hs.childSPI != 0 {
		if c, ok := e.children[hs.childSPI]; ok && c == nil {
			delete(e.children, hs.childSPI)
		}
		hs.childSPI = 0
	}
}

// finishFirstChild installs the Child SA of IKE_AUTH as initiator, or
// reports why the responder refused it (RFC 7296 Section 2.21.3: the IKE SA
// stays up).
func (e *Engine) finishFirstChild(now time.Time, sa *ikeSA, hs *handshake, ap *authPayloads) {
	spi := hs.childSPI
	e.releaseChildSPI(hs)
	fail := func(r Reason) {
		ev := sa.event(EventExchangeFailed, now)
		r.Detail = joinDetail("first Child SA", r.Detail)
		ev.Reason = r
		ev.Child = &ChildSA{Name: hs.child.cfg.Name, Protocol: wire.ProtocolESP, InboundSPI: spi}
		e.emit(ev)
	}
	if ap.sa == nil {
		if ap.errNote != nil {
			fail(Reason{Cause: CauseNotifyReceived, Notify: ap.errNote.NotifyType})
		} else {
			fail(Reason{Cause: CauseProtocol, Detail: "no SA payload"})
		}
		return
	}
	res, err := e.checkChildResponse(sa, hs.child, ap.sa, ap.tsi, ap.tsr, hs.tsi, hs.tsr, false)
	if err != nil {
		fail(Reason{Cause: CauseProtocol, Detail: err.Error()})
		return
	}
	keys, err := res.suite.ChildKeys(sa.prf, hs.keys.D, nil, hs.ni, hs.nr)
	if err != nil {
		fail(Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	e.childKeyOps(sa, &res.suite)
	e.installChild(now, sa, hs.child, res.suite, spi, res.outSPI, keys, res.localTS, res.remoteTS, true, 0)
}

// establish marks the IKE SA as established and arms its timers.
func (e *Engine) establish(now time.Time, sa *ikeSA) {
	sa.state = stEstablished
	sa.metrics.Established = now
	e.indexIdentity(sa)
	e.leaveHalfOpen(sa)
	e.armIKELifetime(now, sa)
	ev := sa.event(EventIKESAEstablished, now)
	ev.Metrics = sa.metricsCopy()
	if sa.hs != nil {
		ev.PeerVendorIDs = sa.hs.peerVIDs
	}
	e.emit(ev)
}

// firstChildName names the child a responder would have created: the
// first of the connection.
func firstChildName(pe *peerEntry) string {
	if len(pe.children) > 0 {
		return pe.children[0].cfg.Name
	}
	return ""
}

// initialContact deletes the other IKE SAs with the same peer identity
// (RFC 7296 Section 2.4).
func (e *Engine) initialContact(now time.Time, keep *ikeSA, id Identity) {
	for _, other := range append([]*ikeSA(nil), e.byIdentity[idKey(id)]...) {
		if other != keep && other.state == stEstablished && other.peer == keep.peer {
			e.removeSA(now, other, Reason{Cause: CauseInitialContact}, true)
		}
	}
}

// indexIdentity records an established SA under its peer's identity (for
// INITIAL_CONTACT); unindexIdentity removes it.
func (e *Engine) indexIdentity(sa *ikeSA) {
	k := idKey(sa.peerID)
	e.byIdentity[k] = append(e.byIdentity[k], sa)
}

func (e *Engine) unindexIdentity(sa *ikeSA) {
	k := idKey(sa.peerID)
	l := e.byIdentity[k]
	for i, o := range l {
		if o == sa {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(e.byIdentity, k)
	} else {
		e.byIdentity[k] = l
	}
}
