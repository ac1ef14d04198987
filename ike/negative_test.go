package ike_test

import (
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/harness"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// One test per error notify the engine sends or acts on.

// onlyFailure returns the single EventFailed or EventExchangeFailed.
func onlyFailure(t testing.TB, p *endpoint) ike.Event {
	t.Helper()
	f := failures(p)
	if len(f) != 1 {
		t.Fatalf("want one failure, got %v", p.events)
	}
	return f[0]
}

func TestNotifyNoProposalChosen(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	resp.IKEProposals = []string{"aes128-sha256-modp2048"}
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 41})
	p.Run(p.Now.Add(time.Minute), func() bool { return len(a.find(ike.EventFailed)) > 0 })
	if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyNoProposalChosen || f.Reason.Cause != ike.CauseNotifyReceived {
		t.Fatalf("failure %v", f)
	}
	if st := b.e.Stats(); st.IKESAs != 0 || st.Dropped[ike.DropInvalid] != 1 {
		t.Fatalf("responder kept state or did not count: %+v", st)
	}
}

// TestNotifyInvalidKEPayload: the initiator guesses x25519, the responder
// wants ecp256; one extra round trip, then success.
func TestNotifyInvalidKEPayload(t *testing.T) {
	ini, resp := peerConfigs("aes256gcm16-prfsha384-x25519-ecp256-ke1_mlkem768", "aes256gcm16")
	resp.IKEProposals = []string{"aes256gcm16-prfsha384-ecp256-ke1_mlkem768"}
	a, b, _, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 42})
	checkEstablished(t, a, b)
	if m, _ := a.e.Metrics(id); m.RoundTrips != 4 {
		t.Fatalf("round trips %d, want 4 (INVALID_KE_PAYLOAD retry)", m.RoundTrips)
	}
	if s := a.find(ike.EventIKESAEstablished)[0].Suite; s.KE != wire.KEECP256 {
		t.Fatalf("negotiated %v", s.String())
	}
	// A group we did not offer is ignored.
	ini.IKEProposals = []string{"aes256gcm16-prfsha384-x25519-ke1_mlkem768"}
	resp.IKEProposals = []string{"aes256gcm16-prfsha384-ecp256-ke1_mlkem768"}
	a, _, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 42,
		iCfg: ike.Config{Retransmit: ike.RetransmitConfig{InitialTimeout: ike.Duration(time.Second), Base: 1, Tries: 1}}})
	p.Run(p.Now.Add(time.Minute), func() bool { return len(a.find(ike.EventFailed)) > 0 })
	if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyNoProposalChosen {
		t.Fatalf("failure %v", f)
	}
}

// TestNotifyCookie: above the half-open threshold the responder demands a
// COOKIE, and initiators that return it get through.
func TestNotifyCookie(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	rCfg := ike.Config{CookieThreshold: 1, Peers: []ike.PeerConfig{resp}}
	er, err := ike.NewEngine(rCfg, seeded(43))
	if err != nil {
		t.Fatal(err)
	}
	b := &endpoint{e: er}
	// A first initiator that never continues leaves one SA half open.
	ghost, _ := ike.NewEngine(ike.Config{}, seeded(44))
	g := ini
	g.Local = netip.MustParseAddrPort("192.0.2.77:500")
	ghost.Initiate(t0, g)
	d, _ := ghost.PollTransmit()
	b.Handle(t0, addrR, d.Local, d.Data)
	for {
		if _, ok := b.e.PollTransmit(); !ok {
			break
		}
	}
	if st := b.e.Stats(); st.HalfOpen != 1 {
		t.Fatalf("half open %d", st.HalfOpen)
	}
	ei, _ := ike.NewEngine(ike.Config{}, seeded(45))
	a := &endpoint{e: ei}
	p := harness.New(a, b, t0, 45)
	id, err := ei.Initiate(p.Now, ini)
	if err != nil {
		t.Fatal(err)
	}
	p.Run(t0.Add(time.Minute), func() bool { return len(a.find(ike.EventChildSAInstalled)) > 0 })
	checkEstablished(t, a, &endpoint{events: b.events[len(b.events)-2:]})
	if st := b.e.Stats(); st.CookiesSent != 1 || st.Dropped[ike.DropCookieRequired] != 1 {
		t.Fatalf("cookies %+v", st)
	}
	// COOKIE, IKE_SA_INIT again, IKE_INTERMEDIATE, IKE_AUTH.
	if m, _ := a.e.Metrics(id); m.RoundTrips != 4 {
		t.Fatalf("round trips %d, want 4", m.RoundTrips)
	}
	// The ghost's half-open SA expires.
	p.Run(t0.Add(2*time.Minute), nil)
	if f := b.find(ike.EventFailed); len(f) != 1 || f[0].Reason.Cause != ike.CauseHalfOpenTimeout {
		t.Fatalf("half-open expiry: %v", b.events)
	}
}

// TestNotifyAuthenticationFailed: a wrong PSK at the initiator is answered
// with AUTHENTICATION_FAILED; a wrong PSK at the responder makes the
// initiator reject the responder's AUTH and say so.
func TestNotifyAuthenticationFailed(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	ini.Auth.PSK = "wrong"
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 46})
	p.Run(p.Now.Add(time.Minute), func() bool { return len(a.find(ike.EventFailed)) > 0 })
	if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyAuthenticationFailed || f.Reason.Cause != ike.CauseNotifyReceived {
		t.Fatalf("initiator %v", f)
	}
	if f := onlyFailure(t, b); f.Reason.Cause != ike.CauseAuthFailed {
		t.Fatalf("responder %v", f)
	}
	// The initiator does not trust the responder's certificate: it fails
	// and informs the responder, which drops its SA.
	cs, other := newCertSet(t, auth.KeyEd25519), newCertSet(t, auth.KeyECDSAP256)
	ini, resp = peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	cs.apply(&ini, &resp)
	ini.Auth.Trust = other.ca.Pool()
	a, b, p, _ = runPair(t, pairSetup{ini: ini, resp: resp, seed: 47})
	p.Run(p.Now.Add(time.Minute), func() bool { return len(b.find(ike.EventIKESADeleted)) > 0 })
	if f := onlyFailure(t, a); f.Reason.Cause != ike.CauseAuthFailed {
		t.Fatalf("initiator %v", f)
	}
	if d := b.find(ike.EventIKESADeleted); len(d) != 1 || d[0].Reason.Notify != wire.NotifyAuthenticationFailed {
		t.Fatalf("responder %v", b.events)
	}
}

// TestNotifyTSUnacceptable and NO_PROPOSAL_CHOSEN for the first Child SA:
// the IKE SA is established, the Child SA is not (RFC 7296 Section 2.21.3).
func TestNotifyChildErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(ini, resp *ike.PeerConfig)
		want   wire.NotifyType
	}{
		{"ts", func(ini, resp *ike.PeerConfig) {
			resp.Children[0].RemoteTS = []ike.TrafficSelector{ike.MustTS("172.16.0.0/12")}
		}, wire.NotifyTSUnacceptable},
		{"proposal", func(ini, resp *ike.PeerConfig) {
			resp.Children[0].ESPProposals = []string{"chacha20poly1305"}
		}, wire.NotifyNoProposalChosen},
	} {
		t.Run(c.name, func(t *testing.T) {
			ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
			c.mutate(&ini, &resp)
			a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 48})
			p.Run(p.Now.Add(time.Minute), func() bool { return len(failures(a)) > 0 })
			if len(a.find(ike.EventIKESAEstablished)) != 1 || len(b.find(ike.EventIKESAEstablished)) != 1 {
				t.Fatal("IKE SA not established")
			}
			if f := onlyFailure(t, a); f.Kind != ike.EventExchangeFailed || f.Child == nil || f.Child.Name != "net" ||
				f.Reason.Notify != c.want || f.Reason.Cause != ike.CauseNotifyReceived {
				t.Fatalf("initiator %v", f)
			}
			if f := onlyFailure(t, b); f.Kind != ike.EventExchangeFailed || f.Reason.Notify != c.want || f.Reason.Cause != ike.CauseNotifySent {
				t.Fatalf("responder %v", f)
			}
			if len(a.children()) != 0 || len(b.children()) != 0 {
				t.Fatal("Child SA installed")
			}
		})
	}
}

// badKE sends an ML-KEM encapsulation key that fails the FIPS 203
// Section 7.2 modulus check.
type badKE struct{ suite.Method }

func (m badKE) Initiate(r io.Reader) (suite.InitiatorState, []byte, error) {
	st, data, err := m.Method.Initiate(r)
	for i := range data {
		data[i] = 0xff
	}
	return st, data, err
}

// TestNotifyInvalidSyntaxMLKEM: a bad encapsulation key in IKE_INTERMEDIATE
// is answered with INVALID_SYNTAX (draft-ietf-ipsecme-ikev2-mlkem Section 3).
func TestNotifyInvalidSyntaxMLKEM(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	iCfg := ike.Config{KEMethod: func(id uint16) (suite.Method, error) {
		m, err := suite.MethodByID(id)
		if id == wire.KEMLKEM768 {
			return badKE{m}, err
		}
		return m, err
	}}
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 49, iCfg: iCfg})
	p.Run(p.Now.Add(time.Minute), func() bool { return len(a.find(ike.EventFailed)) > 0 })
	if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyInvalidSyntax {
		t.Fatalf("initiator %v", f)
	}
	if f := onlyFailure(t, b); f.Reason.Notify != wire.NotifyInvalidSyntax || f.Reason.Cause != ike.CauseNotifySent {
		t.Fatalf("responder %v", f)
	}
}

// initRequest builds an unprotected IKE_SA_INIT request.
func initRequest(t testing.TB, ps []wire.Payload, minor uint8) []byte {
	t.Helper()
	m := &wire.Message{Header: wire.Header{SPIi: 0x1122334455667788, Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagInitiator, MinorVersion: minor}, Payloads: ps}
	b, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer delivers one datagram to a fresh responder and returns its single
// answer's notify type (0 if it did not answer).
func answer(t testing.TB, d []byte) (wire.NotifyType, ike.Stats) {
	t.Helper()
	_, resp := peerConfigs("aes256gcm16-prfsha384-x25519", "aes256gcm16")
	e, _ := ike.NewEngine(ike.Config{Peers: []ike.PeerConfig{resp}}, seeded(50))
	e.Handle(t0, addrR, addrI, d)
	out, ok := e.PollTransmit()
	if !ok {
		return 0, e.Stats()
	}
	m, err := wire.ParseMessage(out.Data)
	if err != nil || len(m.Payloads) != 1 {
		t.Fatalf("answer %x: %v", out.Data, err)
	}
	if m.Header.SPIi != 0x1122334455667788 || m.Header.SPIr != 0 || !m.Header.IsResponse() {
		t.Fatalf("answer header %+v", m.Header)
	}
	if st := e.Stats(); st.IKESAs != 0 {
		t.Fatalf("state kept for a refused request: %+v", st)
	}
	return m.Payloads[0].(*wire.Notify).NotifyType, e.Stats()
}

func TestNotifyInvalidSyntaxInit(t *testing.T) {
	sa := &wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtocolIKE, Transforms: []wire.Transform{
		{Type: wire.TransformENCR, ID: wire.EncrAESGCM16, Attributes: []wire.Attribute{wire.KeyLengthAttr(256)}},
		{Type: wire.TransformPRF, ID: wire.PRFHMACSHA2384}, {Type: wire.TransformKE, ID: wire.KECurve25519}}}}}
	ke := &wire.KE{Method: wire.KECurve25519, Data: make([]byte, 32)}
	// No nonce.
	if n, _ := answer(t, initRequest(t, []wire.Payload{sa, ke}, 0)); n != wire.NotifyInvalidSyntax {
		t.Fatalf("missing nonce: %v", n)
	}
	// An all-zero X25519 value (low order) is invalid KE data.
	nonce := &wire.Nonce{Data: make([]byte, 32)}
	if n, _ := answer(t, initRequest(t, []wire.Payload{sa, ke, nonce}, 0)); n != wire.NotifyInvalidSyntax {
		t.Fatalf("bad KE: %v", n)
	}
}

func TestNotifyInvalidMajorVersion(t *testing.T) {
	d := initRequest(t, []wire.Payload{&wire.Nonce{Data: make([]byte, 32)}}, 0)
	d[17] = 3 << 4
	n, st := answer(t, d)
	if n != wire.NotifyInvalidMajorVersion || st.Dropped[ike.DropVersion] != 1 {
		t.Fatalf("%v %v", n, st.Dropped)
	}
}

func TestNotifyUnsupportedCriticalPayload(t *testing.T) {
	d := initRequest(t, []wire.Payload{&wire.Unknown{PayloadType: 200, Critical: true, Body: []byte{1, 2}}}, 0)
	n, st := answer(t, d)
	if n != wire.NotifyUnsupportedCriticalPayload || st.Dropped[ike.DropUnsupportedCritical] != 1 {
		t.Fatalf("%v %v", n, st.Dropped)
	}
}

// TestNotifyTemporaryFailure: a rekey request for a Child SA the responder
// is deleting is refused; the initiator retries later and the rekey is then
// moot because the Child SA is gone.
func TestNotifyTemporaryFailure(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 51, link: harness.Link{Latency: 10 * time.Millisecond}})
	checkEstablished(t, a, b)
	var spiA, spiB uint32
	for s, c := range a.children() {
		spiA, spiB = s, c.OutboundSPI
	}
	b.e.DeleteChildSA(p.Now, spiB)
	a.e.RekeyChildSA(p.Now, spiA)
	runFor(t, p, time.Minute, nil)
	if st := b.e.Stats(); st.Dropped[ike.DropInvalid] != 1 {
		t.Fatalf("responder refusals %v", st.Dropped)
	}
	if len(a.children()) != 0 || len(b.children()) != 0 || len(failures(a)) != 0 {
		t.Fatalf("events %v / %v", a.events, b.events)
	}
}

var _ = binary.BigEndian

// badCT answers with a truncated ML-KEM ciphertext.
type badCT struct{ suite.Method }

func (m badCT) Respond(r io.Reader, peer []byte) ([]byte, []byte, error) {
	pub, shared, err := m.Method.Respond(r, peer)
	return pub[:len(pub)-1], shared, err
}

// TestBadCiphertextDeletesIKESA: an ML-KEM ciphertext that fails the FIPS
// 203 Section 7.3 check in IKE_FOLLOWUP_KE fails the exchange and the
// initiator deletes the IKE SA (draft-ietf-ipsecme-ikev2-mlkem Section 3).
func TestBadCiphertextDeletesIKESA(t *testing.T) {
	ini, resp := pfsPeers("aes256gcm16-x25519-ke1_mlkem768")
	calls := 0
	rCfg := ike.Config{KEMethod: func(id uint16) (suite.Method, error) {
		m, err := suite.MethodByID(id)
		if id == wire.KEMLKEM768 {
			calls++
			if calls > 1 { // the handshake's IKE_INTERMEDIATE is left alone
				return badCT{m}, err
			}
		}
		return m, err
	}}
	a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 53, rCfg: rCfg})
	checkEstablished(t, a, b)
	a.e.CreateChildSA(p.Now, id, "pfs")
	runFor(t, p, time.Minute, func() bool { return len(a.liveSAs()) == 0 && len(b.liveSAs()) == 0 })
	if f := onlyFailure(t, a); f.Kind != ike.EventExchangeFailed {
		t.Fatalf("%v", f)
	}
	if d := b.find(ike.EventIKESADeleted); len(d) != 1 || d[0].Reason.Cause != ike.CausePeerDeleted {
		t.Fatalf("responder %v", b.events)
	}
}
