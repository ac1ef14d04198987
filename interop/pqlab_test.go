package interop

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/wire"
)

// pqlabCase is one pqlab-to-charon configuration, run with pqlab as initiator and as responder.
type pqlabCase struct {
	name string
	spec interopSpec
	// wantIKE and wantESP are charon's names of the negotiated algorithms
	// (encr-keysize/integ/prf/group and encr-keysize/integ); wantPFS is the Child SA's group after
	// a rekey ("" without PFS).
	wantIKE, wantESP, wantPFS string
	// lifecycle runs the long sequence: rekeys of both SAs and Child SA deletes and creations
	// started by each side.
	lifecycle bool
	// fragments expects IKE_AUTH in several datagrams from each side (RFC 7383).
	fragments bool
	// decrypt: Wireshark 4.0 can decrypt this ESP suite (it has no ChaCha20-Poly1305).
	decrypt bool
}

// pqlabCases cover, in each role, the IKE groups x25519, ecp256, ecp384 and modp2048, the
// algorithms aes256gcm16, chacha20poly1305 and aes128-sha256 (IKE and ESP), PSK, ECDSA P-256 and
// P-384 and Ed25519 certificates, Child SAs with and without PFS, and IKE fragmentation of a
// large certificate at a 576-octet fragment size.
var pqlabCases = []pqlabCase{
	{name: "PSK/x25519/aes256gcm16/PFS", lifecycle: true, decrypt: true,
		spec:    interopSpec{Proposals: "aes256gcm16-prfsha256-x25519", ESPProposals: "aes256gcm16-x25519"},
		wantIKE: "AES_GCM_16-256//PRF_HMAC_SHA2_256/CURVE_25519", wantESP: "AES_GCM_16-256/", wantPFS: "CURVE_25519"},
	{name: "ECDSA-P256/ecp256/aes128-sha256", decrypt: true,
		spec:    interopSpec{Proposals: "aes128-sha256-ecp256", ESPProposals: "aes128-sha256", Auth: KeyECDSAP256},
		wantIKE: "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", wantESP: "AES_CBC-128/HMAC_SHA2_256_128"},
	{name: "ECDSA-P384/ecp384/aes256gcm16/fragmented/PFS", fragments: true, decrypt: true,
		spec: interopSpec{Proposals: "aes256gcm16-prfsha384-ecp384", ESPProposals: "aes256gcm16-ecp384", Auth: KeyECDSAP384,
			CertPadding: 40, FragmentSize: 576},
		wantIKE: "AES_GCM_16-256//PRF_HMAC_SHA2_384/ECP_384", wantESP: "AES_GCM_16-256/", wantPFS: "ECP_384"},
	{name: "Ed25519/modp2048/chacha20poly1305/PFS",
		spec:    interopSpec{Proposals: "chacha20poly1305-prfsha256-modp2048", ESPProposals: "chacha20poly1305-modp2048", Auth: KeyEd25519},
		wantIKE: "CHACHA20_POLY1305-0//PRF_HMAC_SHA2_256/MODP_2048", wantESP: "CHACHA20_POLY1305-0/", wantPFS: "MODP_2048"},
}

// TestPqlabAgainstStrongSwan runs pqlab's engine and data plane (interop/driver) against
// strongSwan 5.9.8's charon with kernel-libipsec, in both roles, for every pqlabCase: the tunnel
// comes up with the expected algorithms on charon's side, carries ping and byte-exact TCP in both
// directions, survives a Child SA rekey (with PFS where configured) and, in the lifecycle case,
// rekeys and deletes of both SAs started by either side; the driver's shutdown deletes the IKE SA
// at charon. tshark then finds no malformed frame or expert error in the capture, and with
// pqlab's key log decrypts every ESP frame to its inner packet.
func TestPqlabAgainstStrongSwan(t *testing.T) {
	requireStrongSwan(t)
	for _, role := range []string{"initiator", "responder"} {
		for _, tc := range pqlabCases {
			t.Run(role+"/"+tc.name, func(t *testing.T) {
				runPqlabCase(t, tc, role == "initiator")
			})
		}
	}
}

func runPqlabCase(t *testing.T, tc pqlabCase, pqlabInitiates bool) {
	s := newPqlabPair(t, tc.spec)
	ctx := testContext(t)
	start := time.Now()
	if pqlabInitiates {
		if _, err := s.D.Initiate(ctx, pqlabPeerName); err != nil {
			t.Fatal(err)
		}
	} else if err := s.C.Initiate(ctx, "", childName); err != nil {
		t.Fatal(err)
	}
	sa := s.established(t, ctx)
	t.Logf("established in %v", time.Since(start).Round(time.Millisecond))
	if sa.Initiator == pqlabInitiates {
		t.Errorf("charon initiator = %v", sa.Initiator)
	}
	ikeAlgs := fmt.Sprintf("%s-%d/%s/%s/%s", sa.EncrAlg, sa.EncrKeysize, sa.IntegAlg, sa.PRFAlg, sa.DHGroup)
	ch := sa.Children[0]
	espAlgs := fmt.Sprintf("%s-%d/%s", ch.EncrAlg, ch.EncrKeysize, ch.IntegAlg)
	if ikeAlgs != tc.wantIKE || espAlgs != tc.wantESP {
		t.Errorf("negotiated IKE %s ESP %s, want %s and %s", ikeAlgs, espAlgs, tc.wantIKE, tc.wantESP)
	}
	if sa.LocalPort != 4500 || sa.RemotePort != 4500 || !ch.Encap || ch.Mode != "TUNNEL" {
		t.Errorf("IKE SA on ports %d/%d, Child SA encap %v mode %s: want 4500, ESP in UDP, tunnel", sa.LocalPort, sa.RemotePort, ch.Encap, ch.Mode)
	}

	s.pingBoth(t, ctx, 3, 56)
	s.pingBoth(t, ctx, 2, 1300)
	n := 64 << 10
	if tc.lifecycle {
		n = 256 << 10
	}
	s.transferBoth(t, ctx, n)
	if st := s.D.Stats(); st.ESPIn == 0 || st.ESPOut == 0 || st.InDrops != 0 || st.SendErrors != 0 {
		t.Errorf("pqlab data plane: %+v", st)
	}

	// A Child SA rekey, started by the side that did not initiate: with PFS, a new key exchange
	// of the configured group in CREATE_CHILD_SA (RFC 7296 Section 1.3.3).
	if pqlabInitiates {
		s.rekeyChildByCharon(t, ctx, tc.wantPFS)
	} else {
		s.rekeyChildByPqlab(t, ctx, tc.wantPFS)
	}
	s.pingBoth(t, ctx, 1, 56)

	if tc.lifecycle {
		s.lifecycle(t, ctx, tc, pqlabInitiates)
	} else {
		// Clean shutdown: the driver deletes its IKE SA (RFC 7296 Section 1.4.1).
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.C.WaitSAs(ctx, func(sas []IKESA) bool { return len(sas) == 0 }); err != nil {
			t.Fatalf("charon still holds SAs after pqlab's shutdown: %v", err)
		}
	}
	r := s.checkCapture(t, tc.decrypt)
	for _, ex := range []wire.ExchangeType{wire.ExchangeIKESAInit, wire.ExchangeIKEAuth, wire.ExchangeCreateChildSA, wire.ExchangeInformational} {
		if !r.HasExchange(int(ex)) {
			t.Errorf("capture has no %v exchange", ex)
		}
	}
	fromA, fromB := 0, 0
	for _, f := range r.Frames {
		for _, ex := range f.Exchanges {
			if ex != int(wire.ExchangeIKEAuth) {
				continue
			}
			switch f.Src {
			case s.A.Outer.String():
				fromA++
			case s.B.Outer.String():
				fromB++
			}
		}
	}
	if frag := fromA > 1 && fromB > 1; frag != tc.fragments {
		t.Errorf("IKE_AUTH datagrams: %d from charon, %d from pqlab; fragmented = %v, want %v", fromA, fromB, frag, tc.fragments)
	}
	t.Logf("IKE_AUTH datagrams: %d from charon, %d from pqlab; total %v", fromA, fromB, time.Since(start).Round(time.Millisecond))
}

// lifecycle rekeys both SAs from both sides, deletes and recreates the Child SA from both sides and
// finally deletes the IKE SA from the side that did not initiate it.
func (s *pqlabPair) lifecycle(t *testing.T, ctx context.Context, tc pqlabCase, pqlabInitiates bool) {
	t.Helper()
	if pqlabInitiates {
		s.rekeyChildByPqlab(t, ctx, tc.wantPFS)
	} else {
		s.rekeyChildByCharon(t, ctx, tc.wantPFS)
	}
	s.pingBoth(t, ctx, 1, 56)
	s.rekeyIKE(t, ctx, true)
	s.pingBoth(t, ctx, 1, 56)
	s.rekeyIKE(t, ctx, false)
	s.pingBoth(t, ctx, 1, 56)
	// After the IKE SA rekeys the Child SA must still rekey (it moved to the new IKE SA).
	s.rekeyChildByPqlab(t, ctx, tc.wantPFS)
	s.pingBoth(t, ctx, 1, 56)

	// Child SA deleted by pqlab, created again by charon (CREATE_CHILD_SA on the existing IKE SA,
	// pqlab responding), deleted by charon, created by pqlab.
	sa := s.established(t, ctx)
	from := s.D.NumEvents()
	if err := s.D.Do(ctx, func(now time.Time, e *ike.Engine) error {
		return e.DeleteChildSA(now, mustSPI(t, sa.Children[0].SPIOut))
	}); err != nil {
		t.Fatal(err)
	}
	s.waitChildless(t, ctx)
	s.waitPqlab(t, ctx, from, ike.EventChildSADeleted)
	from = s.D.NumEvents()
	if err := s.C.Initiate(ctx, "", childName); err != nil {
		t.Fatal(err)
	}
	s.waitPqlab(t, ctx, from, ike.EventChildSAInstalled)
	s.established(t, ctx)
	s.pingBoth(t, ctx, 1, 56)
	from = s.D.NumEvents()
	if err := s.C.TerminateChild(ctx, childName); err != nil {
		t.Fatal(err)
	}
	s.waitPqlab(t, ctx, from, ike.EventChildSADeleted)
	s.waitChildless(t, ctx)
	id := s.pqlabIKESA(t, ctx).ID
	if err := s.D.Do(ctx, func(now time.Time, e *ike.Engine) error {
		return e.CreateChildSA(now, id, childName)
	}); err != nil {
		t.Fatal(err)
	}
	s.established(t, ctx)
	s.pingBoth(t, ctx, 1, 56)
	if err := TransferTCP(ctx, s.B.NS, s.B.Inner, s.A.NS, s.A.Inner, 32<<10, 13); err != nil {
		t.Fatal(err)
	}

	// IKE SA deleted by the responder.
	from = s.D.NumEvents()
	id = s.pqlabIKESA(t, ctx).ID
	if pqlabInitiates {
		if err := s.C.Terminate(ctx, connName); err != nil {
			t.Fatal(err)
		}
	} else if err := s.D.Do(ctx, func(now time.Time, e *ike.Engine) error {
		return e.Delete(now, id)
	}); err != nil {
		t.Fatal(err)
	}
	s.waitPqlab(t, ctx, from, ike.EventIKESADeleted)
	if _, err := s.C.WaitSAs(ctx, func(sas []IKESA) bool { return len(sas) == 0 }); err != nil {
		t.Fatal(err)
	}
	s.waitPqlabSAs(t, ctx, "after the IKE SA delete", func(sas []ike.SAInfo) bool { return len(sas) == 0 })
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
}

func mustSPI(t *testing.T, hex string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

// pqlabIKESA returns pqlab's only IKE SA.
func (s *pqlabPair) pqlabIKESA(t *testing.T, ctx context.Context) ike.SAInfo {
	t.Helper()
	sas, err := s.D.SAs(ctx)
	if err != nil || len(sas) != 1 {
		t.Fatalf("pqlab holds %d IKE SAs (%v), want 1", len(sas), err)
	}
	return sas[0]
}

// waitPqlab waits for an event of kind on pqlab's side at or after event index from.
func (s *pqlabPair) waitPqlab(t *testing.T, ctx context.Context, from int, kind ike.EventKind) ike.Event {
	t.Helper()
	ev, _, err := s.D.WaitEvent(ctx, from, func(ev ike.Event) bool { return ev.Kind == kind || ev.Kind == ike.EventFailed })
	if err != nil {
		t.Fatalf("waiting for %v: %v (events %v)", kind, err, s.D.Events()[from:])
	}
	if ev.Kind != kind {
		t.Fatalf("waiting for %v: %v", kind, ev)
	}
	return ev
}

// waitChildless waits until charon's IKE SA has no Child SA.
func (s *pqlabPair) waitChildless(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := s.C.WaitSAs(ctx, func(sas []IKESA) bool {
		e := Established(sas, connName)
		return len(e) == 1 && len(e[0].Children) == 0
	}); err != nil {
		t.Fatal(err)
	}
}

// rekeyChildByPqlab rekeys the Child SA from pqlab and checks the new SA's PFS group at charon.
func (s *pqlabPair) rekeyChildByPqlab(t *testing.T, ctx context.Context, wantPFS string) {
	t.Helper()
	old := s.established(t, ctx)
	from := s.D.NumEvents()
	if err := s.D.Do(ctx, func(now time.Time, e *ike.Engine) error {
		return e.RekeyChildSA(now, mustSPI(t, old.Children[0].SPIOut))
	}); err != nil {
		t.Fatal(err)
	}
	s.waitPqlab(t, ctx, from, ike.EventChildSARekeyed)
	s.checkChildRekeyed(t, ctx, old, wantPFS)
}

// rekeyChildByCharon rekeys the Child SA from charon.
func (s *pqlabPair) rekeyChildByCharon(t *testing.T, ctx context.Context, wantPFS string) {
	t.Helper()
	old := s.established(t, ctx)
	from := s.D.NumEvents()
	if err := s.C.Rekey(ctx, "", childName); err != nil {
		t.Fatal(err)
	}
	s.waitPqlab(t, ctx, from, ike.EventChildSARekeyed)
	s.checkChildRekeyed(t, ctx, old, wantPFS)
}

func (s *pqlabPair) checkChildRekeyed(t *testing.T, ctx context.Context, old IKESA, wantPFS string) {
	t.Helper()
	var cur IKESA
	if _, err := s.C.WaitSAs(ctx, func(sas []IKESA) bool {
		e := Established(sas, connName)
		if len(e) != 1 || len(e[0].Children) != 1 || e[0].Children[0].SPIIn == old.Children[0].SPIIn {
			return false
		}
		cur = e[0]
		return s.pqlabHasChild(ctx, cur.Children[0])
	}); err != nil {
		t.Fatalf("Child SA rekey: %v", err)
	}
	if g := cur.Children[0].DHGroup; g != wantPFS {
		t.Errorf("rekeyed Child SA with group %q, want %q", g, wantPFS)
	}
}

// rekeyIKE rekeys the IKE SA from pqlab (byPqlab) or charon and waits until both sides use the new
// SPIs, with the Child SA moved over.
func (s *pqlabPair) rekeyIKE(t *testing.T, ctx context.Context, byPqlab bool) {
	t.Helper()
	old := s.established(t, ctx)
	from := s.D.NumEvents()
	var err error
	if byPqlab {
		err = s.D.Do(ctx, func(now time.Time, e *ike.Engine) error {
			return e.RekeyIKESA(now, s.pqlabIKESAIn(e).ID)
		})
	} else {
		err = s.C.Rekey(ctx, connName, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	ev := s.waitPqlab(t, ctx, from, ike.EventIKESARekeyed)
	if _, err := s.C.WaitSAs(ctx, func(sas []IKESA) bool {
		e := Established(sas, connName)
		return len(sas) == 1 && len(e) == 1 && len(e[0].Children) == 1 && e[0].InitiatorSPI != old.InitiatorSPI &&
			e[0].InitiatorSPI == fmt.Sprintf("%016x", ev.SPIi) && e[0].ResponderSPI == fmt.Sprintf("%016x", ev.SPIr)
	}); err != nil {
		t.Fatalf("IKE SA rekey (by pqlab %v, pqlab's new SA %016x_%016x): %v", byPqlab, ev.SPIi, ev.SPIr, err)
	}
	// pqlab forgets the old IKE SA when the Delete exchange completes, possibly just after charon.
	s.waitPqlabSAs(t, ctx, "after the IKE SA rekey", func(sas []ike.SAInfo) bool {
		return len(sas) == 1 && sas[0].ID == ev.SA && len(sas[0].Children) == 1
	})
}

// waitPqlabSAs polls pqlab's IKE SAs until ok accepts them.
func (s *pqlabPair) waitPqlabSAs(t *testing.T, ctx context.Context, what string, ok func([]ike.SAInfo) bool) {
	t.Helper()
	for {
		sas, err := s.D.SAs(ctx)
		if err == nil && ok(sas) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pqlab's IKE SAs %s: %+v (%v)", what, sas, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pqlabIKESAIn returns the only IKE SA of e (on the engine goroutine).
func (s *pqlabPair) pqlabIKESAIn(e *ike.Engine) ike.SAInfo {
	for _, id := range e.SAs() {
		if info, ok := e.SA(id); ok && info.Established {
			return info
		}
	}
	return ike.SAInfo{}
}

// TestPqlabAuthenticationFailures proves that both sides really check each other: with a CA
// that did not issue charon's certificate (same name, other key), pqlab rejects charon's AUTH
// (RFC 7296 Section 2.21.2: it deletes the IKE SA and tells charon with AUTHENTICATION_FAILED in
// an INFORMATIONAL exchange); with a CA that did not issue pqlab's, charon answers pqlab's
// IKE_AUTH with AUTHENTICATION_FAILED; and with another PSK, charon rejects pqlab's AUTH. No
// Child SA is installed on either side.
func TestPqlabAuthenticationFailures(t *testing.T) {
	requireStrongSwan(t)
	for _, tc := range []struct {
		name string
		spec interopSpec
		want ike.Cause
	}{
		{"pqlab distrusts charon", interopSpec{Auth: KeyECDSAP256, PqlabTrustsOther: true}, ike.CauseAuthFailed},
		{"charon distrusts pqlab", interopSpec{Auth: KeyEd25519, CharonTrustsOther: true}, ike.CauseNotifyReceived},
		{"wrong PSK", interopSpec{PqlabPSK: "not the key charon has"}, ike.CauseNotifyReceived},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Proposals, tc.spec.ESPProposals = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
			s := newPqlabPair(t, tc.spec)
			ctx := testContext(t)
			if _, err := s.D.Initiate(ctx, pqlabPeerName); err != nil {
				t.Fatal(err)
			}
			ev, _, err := s.D.WaitEvent(ctx, 0, func(ev ike.Event) bool {
				return ev.Kind == ike.EventFailed || ev.Kind == ike.EventChildSAInstalled
			})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != ike.EventFailed || ev.Reason.Cause != tc.want {
				t.Fatalf("pqlab: %v, want a failure with cause %v", ev, tc.want)
			}
			if tc.want == ike.CauseNotifyReceived && ev.Reason.Notify != wire.NotifyAuthenticationFailed {
				t.Errorf("pqlab received %v, want AUTHENTICATION_FAILED", ev.Reason.Notify)
			}
			if _, err := s.C.WaitSAs(ctx, func(sas []IKESA) bool { return len(sas) == 0 }); err != nil {
				t.Errorf("charon kept an SA: %v", err)
			}
			if sas, err := s.D.SAs(ctx); err != nil || len(sas) != 0 {
				t.Errorf("pqlab kept %d SAs (%v)", len(sas), err)
			}
			if st := s.D.Stats(); st.ESPIn+st.ESPOut != 0 {
				t.Errorf("ESP without a Child SA: %+v", st)
			}
			t.Logf("pqlab: %v", ev)
			checkCapture(t, s.Capture)
		})
	}
}
