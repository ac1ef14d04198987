package ike

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// IKE_SA_INIT (RFC 7296 Section 1.2) with COOKIE (Section 2.6),
// INVALID_KE_PAYLOAD (Section 1.3), NAT detection (Section 2.23),
// IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383), SIGNATURE_HASH_ALGORITHMS
// (RFC 7427) and INTERMEDIATE_EXCHANGE_SUPPORTED (RFC 9242).

// Cookie parameters (RFC 7296 Section 2.6).
const (
	cookieSecretLen = 32
	cookieVersion   = 1
	cookieMACLen    = 16
	// maxInitRetries bounds IKE_SA_INIT retries after COOKIE or
	// INVALID_KE_PAYLOAD answers.
	maxInitRetries = 4
)

// Initiate starts an IKE SA with peer as its configuration: it sends the
// IKE_SA_INIT request from peer.Local to peer.Remote and returns the SA's
// ID. The first proposal's first key exchange method is sent in the KE
// payload; the first Child SA of peer.Children is requested in IKE_AUTH.
// It fails with ErrResponderOnly under Config.ResponderOnly, and for
// proposals the Compat switches rule out (additional key exchanges with
// NoIntermediate, an ML-KEM KE method with NoMLKEMInInit).
func (e *Engine) Initiate(now time.Time, peer PeerConfig) (SAID, error) {
	if e.cfg.ResponderOnly {
		return 0, ErrResponderOnly
	}
	pe, err := newPeerEntry(&peer)
	if err != nil {
		return 0, err
	}
	if err := e.checkInitiatorProposals(pe); err != nil {
		return 0, err
	}
	if !peer.Remote.IsValid() || !peer.Local.IsValid() {
		return 0, fmt.Errorf("ike: peer %q: Local and Remote addresses are required to initiate", peer.Name)
	}
	spi, err := e.newIKESPI()
	if err != nil {
		return 0, err
	}
	ni, err := e.newNonce()
	if err != nil {
		return 0, err
	}
	e.nextID++
	sa := &ikeSA{id: e.nextID, initiator: true, state: stInitSent, spiI: spi, peer: pe,
		local: peer.Local, remote: peer.Remote, heapIdx: -1}
	sa.hs = &handshake{ni: ni, keMethod: pe.ike[0].KE[0]}
	sa.metrics.Start = now
	e.sas[spi] = sa
	e.byID[sa.id] = sa
	if err := e.sendInit(now, sa); err != nil {
		e.removeSA(now, sa, Reason{Cause: CauseInternal}, false)
		return 0, err
	}
	e.schedule(sa)
	return sa.id, nil
}

// natHash returns SHA-1(SPIi | SPIr | IP | Port) (RFC 7296 Section 2.23).
func natHash(spiI, spiR uint64, a netip.AddrPort) []byte {
	h := sha1.New()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], spiI)
	binary.BigEndian.PutUint64(b[8:], spiR)
	h.Write(b[:])
	h.Write(a.Addr().Unmap().AsSlice())
	binary.BigEndian.PutUint16(b[:2], a.Port())
	h.Write(b[:2])
	return h.Sum(nil)
}

// initNotifies returns the status notifies of an IKE_SA_INIT message.
func (e *Engine) initNotifies(sa *ikeSA, spiR uint64, withIntermediate bool) []wire.Payload {
	var ps []wire.Payload
	if !e.cfg.NATT.Disable {
		src := natHash(sa.spiI, spiR, sa.local)
		if e.cfg.NATT.ForceEncap {
			// A hash of an address nobody has: the peer sees a NAT.
			src = natHash(sa.spiI, spiR, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
			src[0] ^= 0xff
		}
		ps = append(ps,
			&wire.Notify{NotifyType: wire.NotifyNATDetectionSourceIP, Data: src},
			&wire.Notify{NotifyType: wire.NotifyNATDetectionDestinationIP, Data: natHash(sa.spiI, spiR, sa.remote)})
	}
	if e.cfg.Fragmentation.Policy != FragmentNever {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyIKEv2FragmentationSupported})
	}
	ps = append(ps, &wire.Notify{NotifyType: wire.NotifySignatureHashAlgorithms, Data: auth.AppendHashAlgorithms(nil, auth.SupportedHashes())})
	if withIntermediate && !e.cfg.Compat.NoIntermediate {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyIntermediateExchangeSupported})
	}
	for _, v := range e.cfg.VendorIDs {
		ps = append(ps, &wire.VendorID{Data: v})
	}
	return ps
}

// wantsIntermediate reports whether any proposal has an additional key
// exchange, so that INTERMEDIATE_EXCHANGE_SUPPORTED must be sent.
func wantsIntermediate(ps []*suite.Proposal) bool {
	for _, p := range ps {
		for _, l := range p.AddKE {
			for _, id := range l {
				if id != wire.KENone {
					return true
				}
			}
		}
	}
	return false
}

// sendInit builds and sends the initiator's IKE_SA_INIT request (again
// after a COOKIE or INVALID_KE_PAYLOAD answer).
func (e *Engine) sendInit(now time.Time, sa *ikeSA) error {
	hs := sa.hs
	m, err := e.cfg.KEMethod(hs.keMethod)
	if err != nil {
		return err
	}
	st, data, err := m.Initiate(e.rand)
	if err != nil {
		return fmt.Errorf("ike: key exchange: %w", err)
	}
	e.keOps(sa, hs.keMethod, suite.KEInitiate)
	hs.keState, hs.keData = st, data
	var ps []wire.Payload
	if hs.cookie != nil {
		ps = append(ps, &wire.Notify{NotifyType: wire.NotifyCookie, Data: hs.cookie})
	}
	sap := &wire.SA{}
	for i, p := range sa.peer.ike {
		sap.Proposals = append(sap.Proposals, proposalToWire(p, uint8(i+1), nil, true))
	}
	ps = append(ps, sap, &wire.KE{Method: hs.keMethod, Data: data}, &wire.Nonce{Data: hs.ni})
	ps = append(ps, e.initNotifies(sa, 0, wantsIntermediate(sa.peer.ike))...)
	e.mapWireIDs(ps)
	msg, err := wire.Marshal(&wire.Message{Header: sa.header(wire.ExchangeIKESAInit, 0, false), Payloads: ps})
	if err != nil {
		return err
	}
	hs.initReq = msg
	sa.req = &request{mid: 0, exch: wire.ExchangeIKESAInit, kind: reqInit, dgrams: [][]byte{e.frame(sa.local, msg)}}
	sa.nextReqMID = 1
	e.transmit(now, sa, sa.req)
	return nil
}

// initPayloads collects the payloads of an IKE_SA_INIT message.
type initPayloads struct {
	sa      *wire.SA
	ke      *wire.KE
	nonce   *wire.Nonce
	cookie  *wire.Notify
	natSrc  [][]byte
	natDst  []byte
	frag    bool
	inter   bool
	hashes  []wire.HashAlgorithm
	errNote *wire.Notify
	invKE   *wire.Notify
	dup     bool
	vids    [][]byte
}

func parseInitPayloads(ps []wire.Payload) *initPayloads {
	ip := &initPayloads{}
	for i, p := range ps {
		switch p := p.(type) {
		case *wire.SA:
			ip.dup = ip.dup || ip.sa != nil
			ip.sa = p
		case *wire.KE:
			ip.dup = ip.dup || ip.ke != nil
			ip.ke = p
		case *wire.Nonce:
			ip.dup = ip.dup || ip.nonce != nil
			ip.nonce = p
		case *wire.VendorID:
			ip.vids = append(ip.vids, bytes.Clone(p.Data))
		case *wire.Notify:
			switch p.NotifyType {
			case wire.NotifyCookie:
				if i == 0 {
					ip.cookie = p
				}
			case wire.NotifyNATDetectionSourceIP:
				if len(ip.natSrc) < wire.MaxPayloads {
					ip.natSrc = append(ip.natSrc, p.Data)
				}
			case wire.NotifyNATDetectionDestinationIP:
				ip.natDst = p.Data
			case wire.NotifyIKEv2FragmentationSupported:
				ip.frag = true
			case wire.NotifyIntermediateExchangeSupported:
				ip.inter = true
			case wire.NotifySignatureHashAlgorithms:
				if h, err := auth.ParseHashAlgorithms(p.Data); err == nil {
					ip.hashes = h
				}
			case wire.NotifyInvalidKEPayload:
				ip.invKE = p
			default:
				if p.NotifyType.IsError() && ip.errNote == nil {
					ip.errNote = p
				}
			}
		}
	}
	return ip
}

// detectNAT compares the peer's NAT detection hashes with the addresses
// seen (RFC 7296 Section 2.23). spiR is the SPIr of the header of the
// message that carried the hashes: zero in an IKE_SA_INIT request.
func (e *Engine) detectNAT(sa *ikeSA, ip *initPayloads, spiR uint64) {
	if e.cfg.NATT.Disable || ip.natDst == nil || len(ip.natSrc) == 0 {
		return
	}
	want := natHash(sa.spiI, spiR, sa.remote)
	sa.natRemote = true
	for _, s := range ip.natSrc {
		if hmac.Equal(s, want) {
			sa.natRemote = false
		}
	}
	sa.natLocal = !hmac.Equal(ip.natDst, natHash(sa.spiI, spiR, sa.local)) || e.cfg.NATT.ForceEncap
	sa.encap = sa.natLocal || sa.natRemote
}

// cookieFor computes the COOKIE a responder expects from an initiator
// (RFC 7296 Section 2.6): version | HMAC(secret, Ni | IPi | SPIi).
func (e *Engine) cookieFor(ni []byte, remote netip.AddrPort, spiI uint64) []byte {
	m := hmac.New(sha256.New, e.cookieSecret[:])
	m.Write(ni)
	m.Write(remote.Addr().Unmap().AsSlice())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spiI)
	m.Write(b[:])
	return append([]byte{cookieVersion}, m.Sum(nil)[:cookieMACLen]...)
}

// handleInitRequest answers an IKE_SA_INIT request as responder.
func (e *Engine) handleInitRequest(now time.Time, local, remote netip.AddrPort, msg *wire.Message, size int) {
	h := &msg.Header
	if h.SPIr != 0 || h.MessageID != 0 || h.IsInitiator() == false || h.SPIi == 0 {
		e.drop(DropMalformed)
		return
	}
	key := initKey{h.SPIi, remote}
	if sa := e.halfOpen[key]; sa != nil {
		// A retransmission of a request we answered (or a new one with the
		// same SPI from the same address, which RFC 7296 Section 2.1 tells
		// us to treat as a retransmission).
		e.drop(DropRetransmit)
		if c := sa.cachedFor(0); c != nil {
			sa.metrics.DatagramsReceived++
			sa.metrics.BytesReceived += uint64(size)
			e.resendResponse(sa, c)
		}
		return
	}
	ip := parseInitPayloads(msg.Payloads)
	if ip.sa == nil || ip.ke == nil || ip.nonce == nil || ip.dup {
		e.drop(DropMalformed)
		e.sendUnprotected(local, remote, h.SPIi, 0, h.Exchange, 0, &wire.Notify{NotifyType: wire.NotifyInvalidSyntax})
		return
	}
	if e.cfg.MaxHalfOpen > 0 && e.nHalf >= e.cfg.MaxHalfOpen {
		e.drop(DropHalfOpenLimit)
		return
	}
	if e.cfg.CookieThreshold > 0 && e.nHalf >= e.cfg.CookieThreshold {
		want := e.cookieFor(ip.nonce.Data, remote, h.SPIi)
		if ip.cookie == nil || !hmac.Equal(ip.cookie.Data, want) {
			e.drop(DropCookieRequired)
			e.stats.CookiesSent++
			e.sendUnprotected(local, remote, h.SPIi, 0, h.Exchange, 0, &wire.Notify{NotifyType: wire.NotifyCookie, Data: want})
			return
		}
	}
	pe := e.peers.forInit(local, remote)
	if pe == nil {
		e.drop(DropNoConfig)
		e.sendUnprotected(local, remote, h.SPIi, 0, h.Exchange, 0, &wire.Notify{NotifyType: wire.NotifyNoProposalChosen})
		return
	}
	offers := ip.sa.Proposals
	if !ip.inter && !e.cfg.Compat.NoIntermediate {
		offers = withoutAddKE(offers)
	}
	s, num, _, ok := selectProposal(e.adjustProposals(pe.ike, true, false), offers, wire.ProtocolIKE, ip.ke.Method, e.selectOpts())
	if !ok {
		e.drop(DropInvalid)
		e.sendUnprotected(local, remote, h.SPIi, 0, h.Exchange, 0, &wire.Notify{NotifyType: wire.NotifyNoProposalChosen})
		return
	}
	if s.KE != ip.ke.Method {
		e.drop(DropInvalid)
		var d [2]byte
		binary.BigEndian.PutUint16(d[:], s.KE)
		e.sendUnprotected(local, remote, h.SPIi, 0, h.Exchange, 0, &wire.Notify{NotifyType: wire.NotifyInvalidKEPayload, Data: d[:]})
		return
	}
	m, err := e.cfg.KEMethod(s.KE)
	if err != nil {
		e.drop(DropInvalid)
		return
	}
	spiR, err := e.newIKESPI()
	if err != nil {
		e.drop(DropInvalid)
		return
	}
	nr, err := e.newNonce()
	if err != nil {
		e.drop(DropInvalid)
		return
	}
	e.nextID++
	sa := &ikeSA{id: e.nextID, state: stInitDone, spiI: h.SPIi, spiR: spiR, peer: pe,
		local: local, remote: remote, heapIdx: -1, suite: s, peerFrag: ip.frag && e.cfg.Fragmentation.Policy != FragmentNever}
	sa.metrics.Start = now
	sa.metrics.DatagramsReceived++
	sa.metrics.BytesReceived += uint64(size)
	pub, shared, err := m.Respond(e.rand, ip.ke.Data)
	e.keOps(sa, s.KE, suite.KERespond)
	if err != nil {
		e.drop(DropInvalid)
		e.sendUnprotected(local, remote, h.SPIi, 0, h.Exchange, 0, &wire.Notify{NotifyType: wire.NotifyInvalidSyntax})
		return
	}
	sa.prf, _ = s.PRFAlg()
	hs := &handshake{ni: bytes.Clone(ip.nonce.Data), nr: nr, kes: s.KeyExchanges(), round: 1,
		peerIntermediate: ip.inter && !e.cfg.Compat.NoIntermediate, peerHashes: ip.hashes, initReq: msg.Raw, initRemote: remote,
		peerVIDs: ip.vids}
	sa.hs = hs
	if err := e.initialKeys(sa, shared); err != nil {
		e.drop(DropInvalid)
		return
	}
	e.detectNAT(sa, ip, h.SPIr) // the request's SPIr is zero (RFC 7296 Section 2.23)
	ps := []wire.Payload{&wire.SA{Proposals: []wire.Proposal{suiteToWire(&s, num, nil)}},
		&wire.KE{Method: s.KE, Data: pub}, &wire.Nonce{Data: nr}}
	if cr := pe.certReq(); cr != nil {
		ps = append(ps, cr)
	}
	ps = append(ps, e.initNotifies(sa, spiR, ip.inter && len(hs.kes) > 1 || ip.inter && wantsIntermediate(pe.ike))...)
	e.mapWireIDs(ps)
	resp, err := wire.Marshal(&wire.Message{Header: sa.header(wire.ExchangeIKESAInit, 0, true), Payloads: ps})
	if err != nil {
		e.drop(DropInvalid)
		return
	}
	hs.initResp = resp
	e.sas[spiR] = sa
	e.byID[sa.id] = sa
	e.halfOpen[key] = sa
	e.nHalf++
	sa.halfOpen = now.Add(time.Duration(e.cfg.HalfOpenTimeout))
	sa.lastRecv = now
	c := cachedResponse{valid: true, mid: 0, dgrams: [][]byte{e.frame(local, resp)}, local: local, remote: remote}
	sa.storeResponse(c, 1) // recvMID becomes 1
	sa.metrics.Exchanges++
	e.send(sa, local, remote, c.dgrams, false)
	e.schedule(sa)
}

// withoutAddKE removes, for a peer that did not announce
// INTERMEDIATE_EXCHANGE_SUPPORTED, the additional key exchanges from its
// proposals: a proposal whose rounds are all optional (keN_none) is kept
// without them, one with a mandatory round is dropped (RFC 9370 Section 2.2).
func withoutAddKE(offers []wire.Proposal) []wire.Proposal {
	out := make([]wire.Proposal, 0, len(offers))
	for _, p := range offers {
		var ts []wire.Transform
		keep := true
		seen := map[wire.TransformType]bool{}
		hasNone := map[wire.TransformType]bool{}
		for _, t := range p.Transforms {
			if t.Type >= wire.TransformADDKE1 && t.Type <= wire.TransformADDKE7 {
				seen[t.Type] = true
				if t.ID == wire.KENone {
					hasNone[t.Type] = true
				}
				continue
			}
			ts = append(ts, t)
		}
		for t := range seen {
			if !hasNone[t] {
				keep = false
			}
		}
		if keep {
			p.Transforms = ts
			out = append(out, p)
		}
	}
	return out
}

// initialKeys derives the keys after IKE_SA_INIT and installs the SK pair.
func (e *Engine) initialKeys(sa *ikeSA, shared []byte) error {
	hs := sa.hs
	var spiI, spiR [8]byte
	binary.BigEndian.PutUint64(spiI[:], sa.spiI)
	binary.BigEndian.PutUint64(spiR[:], sa.spiR)
	k, err := sa.suite.InitialKeys(shared, hs.ni, hs.nr, spiI[:], spiR[:])
	if err != nil {
		return err
	}
	e.keyOps(sa, len(shared)+len(hs.ni)+len(hs.nr))
	return e.installKeys(sa, k)
}

// keyOps records the PRF work of one key derivation.
func (e *Engine) keyOps(sa *ikeSA, prfInput int) {
	l, _ := sa.suite.KeyLengths()
	e.op(sa, suite.OpPRF, sa.suite.PRF, prfInput)
	e.op(sa, suite.OpPRFPlus, sa.suite.PRF, l.D+2*l.A+2*l.E+2*l.P)
}

func (e *Engine) installKeys(sa *ikeSA, k *suite.IKEKeys) error {
	out, in, err := sa.suite.SKPair(k, sa.initiator, e.rand)
	if err != nil {
		return err
	}
	sa.skOut, sa.skIn = out, in
	// A copy, so that the rest of the keying material (SK_e, SK_p) is not
	// kept alive by the slice.
	sa.skd = bytes.Clone(k.D)
	if sa.hs != nil {
		sa.hs.keys = k
	}
	e.logKeys(sa, k)
	return nil
}

// handleInitResponse processes the responder's IKE_SA_INIT answer.
func (e *Engine) handleInitResponse(now time.Time, local, remote netip.AddrPort, msg *wire.Message, size int) {
	h := &msg.Header
	sa := e.sas[h.SPIi]
	if sa == nil || !sa.initiator || sa.state != stInitSent || sa.req == nil || h.MessageID != 0 || h.IsInitiator() {
		e.drop(DropUnexpectedResponse)
		return
	}
	sa.metrics.DatagramsReceived++
	sa.metrics.BytesReceived += uint64(size)
	hs := sa.hs
	ip := parseInitPayloads(msg.Payloads)
	switch {
	case ip.cookie != nil && ip.sa == nil:
		if hs.retries >= maxInitRetries || len(ip.cookie.Data) == 0 || len(ip.cookie.Data) > 64 {
			e.drop(DropInvalid)
			return
		}
		hs.retries++
		hs.cookie = bytes.Clone(ip.cookie.Data)
		sa.metrics.RoundTrips++
		e.resendInit(now, sa)
		return
	case ip.invKE != nil && ip.sa == nil:
		if len(ip.invKE.Data) != 2 || hs.retries >= maxInitRetries {
			e.drop(DropInvalid)
			return
		}
		g := binary.BigEndian.Uint16(ip.invKE.Data)
		if g == hs.keMethod || !offersKE(sa.peer.ike, g) {
			// RFC 7296 Section 1.3: only a group we offered is acceptable.
			e.drop(DropInvalid)
			return
		}
		hs.retries++
		hs.keMethod = g
		sa.metrics.RoundTrips++
		e.resendInit(now, sa)
		return
	case ip.errNote != nil && ip.sa == nil:
		// An unauthenticated error; RFC 7296 Section 2.21.1 suggests
		// waiting for a better answer, but a NO_PROPOSAL_CHOSEN or
		// INVALID_SYNTAX from the responder ends this attempt.
		sa.metrics.RoundTrips++
		e.failSA(now, sa, Reason{Cause: CauseNotifyReceived, Notify: ip.errNote.NotifyType})
		return
	}
	if ip.sa == nil || ip.ke == nil || ip.nonce == nil || ip.dup || h.SPIr == 0 || len(ip.sa.Proposals) != 1 {
		e.drop(DropMalformed)
		return
	}
	s, ok := suiteFromWire(&ip.sa.Proposals[0])
	if ok && !ip.inter && !containsSuite(sa.peer.ike, &s) && containsSuite(e.adjustProposals(sa.peer.ike, false, true), &s) {
		// A responder without RFC 9370 (no INTERMEDIATE_EXCHANGE_SUPPORTED)
		// that ignored the ADDKE transforms chose a proposal without the
		// additional key exchanges this end requires (RFC 9370 Section 2.2):
		// abandon the SA.
		sa.metrics.RoundTrips++
		e.failSA(now, sa, Reason{Cause: CauseProtocol, Detail: "the responder does not support additional key exchanges (no INTERMEDIATE_EXCHANGE_SUPPORTED) and chose a proposal without the ones this end requires"})
		return
	}
	if !ok || s.Protocol != wire.ProtocolIKE || !containsSuite(sa.peer.ike, &s) || s.KE != hs.keMethod || ip.ke.Method != s.KE {
		e.drop(DropInvalid)
		sa.metrics.RoundTrips++
		e.failSA(now, sa, Reason{Cause: CauseProtocol, Detail: "responder chose a proposal we did not offer"})
		return
	}
	if len(s.AdditionalKeyExchanges()) > 0 && !ip.inter {
		e.failSA(now, sa, Reason{Cause: CauseProtocol, Detail: "additional key exchange without INTERMEDIATE_EXCHANGE_SUPPORTED"})
		return
	}
	shared, err := hs.keState.Complete(ip.ke.Data)
	sa.suite = s
	e.keOps(sa, s.KE, suite.KEComplete)
	if err != nil {
		e.failSA(now, sa, Reason{Cause: CauseProtocol, Detail: err.Error()})
		return
	}
	sa.req = nil
	sa.metrics.RoundTrips++
	sa.metrics.Exchanges++
	sa.spiR = h.SPIr
	sa.prf, _ = s.PRFAlg()
	sa.lastRecv = now
	hs.nr = bytes.Clone(ip.nonce.Data)
	hs.initResp = msg.Raw
	hs.kes = s.KeyExchanges()
	hs.round = 1
	hs.peerIntermediate = ip.inter
	hs.peerHashes = ip.hashes
	hs.peerVIDs = ip.vids
	hs.keState, hs.keData = nil, nil
	sa.peerFrag = ip.frag && e.cfg.Fragmentation.Policy != FragmentNever
	if err := e.initialKeys(sa, shared); err != nil {
		e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	e.detectNAT(sa, ip, sa.spiR)
	e.nextHandshakeStep(now, sa)
	if sa.state != stDead {
		e.schedule(sa)
	}
}

// resendInit sends a new IKE_SA_INIT request after COOKIE or
// INVALID_KE_PAYLOAD; the retransmission schedule restarts.
func (e *Engine) resendInit(now time.Time, sa *ikeSA) {
	sa.req = nil
	if err := e.sendInit(now, sa); err != nil {
		e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: err.Error()})
		return
	}
	e.schedule(sa)
}

func offersKE(ps []*suite.Proposal, id uint16) bool {
	for _, p := range ps {
		if slices.Contains(p.KE, id) {
			return true
		}
	}
	return false
}

func containsSuite(ps []*suite.Proposal, s *suite.Suite) bool {
	for _, p := range ps {
		if p.Contains(s) {
			return true
		}
	}
	return false
}

// floatPorts moves the initiator to the NAT-T port when a NAT was detected
// (or FloatAlways is set), RFC 7296 Section 2.23.
func (e *Engine) floatPorts(sa *ikeSA) {
	if e.cfg.NATT.Disable || e.isNATT(sa.local) {
		return
	}
	if !sa.encap && !e.cfg.NATT.FloatAlways {
		return
	}
	sa.local = netip.AddrPortFrom(sa.local.Addr(), e.cfg.NATT.Port)
	sa.remote = netip.AddrPortFrom(sa.remote.Addr(), e.cfg.NATT.Port)
}

// nextHandshakeStep sends the initiator's next handshake request: the next
// IKE_INTERMEDIATE with an additional key exchange, or IKE_AUTH.
func (e *Engine) nextHandshakeStep(now time.Time, sa *ikeSA) {
	hs := sa.hs
	if hs.round < len(hs.kes) {
		if hs.round == 1 && e.cfg.NATT.PortSwitch == SwitchAtIntermediate {
			e.floatPorts(sa)
		}
		if err := e.sendIntermediate(now, sa); err != nil {
			e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: err.Error()})
		}
		return
	}
	e.floatPorts(sa)
	if err := e.sendAuth(now, sa); err != nil {
		e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: err.Error()})
	}
}
