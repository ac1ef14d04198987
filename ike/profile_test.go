package ike_test

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/wire"
)

// Tests of the engine behaviours the peer profiles (models/peers) select.

// firstInit parses an unprotected datagram (an IKE_SA_INIT message).
func firstInit(t testing.TB, d []byte) *wire.Message {
	t.Helper()
	m, err := wire.ParseMessage(d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// keTransforms lists the IDs of the key exchange transforms of a message's
// SA payload by transform type.
func keTransforms(m *wire.Message) map[wire.TransformType][]uint16 {
	out := map[wire.TransformType][]uint16{}
	sa := wire.First[*wire.SA](m.Payloads)
	for _, p := range sa.Proposals {
		for _, t := range p.Transforms {
			if t.Type == wire.TransformKE || t.Type >= wire.TransformADDKE1 && t.Type <= wire.TransformADDKE7 {
				out[t.Type] = append(out[t.Type], t.ID)
			}
		}
	}
	return out
}

// TestLegacyPeerOutcomes: a peer without RFC 9242/9370 (Compat.NoIntermediate)
// facing additional key exchanges, with unknown transform types rejected
// (RFC 7296 Section 3.3.6) or ignored, as responder and as initiator.
func TestLegacyPeerOutcomes(t *testing.T) {
	reject := ike.Config{Compat: ike.Compat{NoIntermediate: true}}
	ignore := ike.Config{Compat: ike.Compat{NoIntermediate: true, IgnoreUnknownTransforms: true}}
	const (
		hybrid   = "aes256gcm16-prfsha384-x25519-ke1_mlkem768"
		optional = "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none"
		classic  = "aes256gcm16-prfsha384-x25519"
	)
	cases := []struct {
		name      string
		offer     []string
		rCfg      ike.Config
		notify    wire.NotifyType // failure notify received by the initiator
		detail    string          // failure detail at the initiator
		classical bool            // established without additional key exchange
	}{
		{"reject-mandatory", []string{hybrid}, reject, wire.NotifyNoProposalChosen, "", false},
		{"reject-optional", []string{optional}, reject, wire.NotifyNoProposalChosen, "", false},
		{"reject-with-classical-proposal", []string{hybrid, classic}, reject, 0, "", true},
		{"ignore-optional", []string{optional}, ignore, 0, "", true},
		{"ignore-mandatory", []string{hybrid}, ignore, 0, "no INTERMEDIATE_EXCHANGE_SUPPORTED", false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ini, resp := peerConfigs(hybrid, "aes256gcm16")
			ini.IKEProposals = c.offer
			resp.IKEProposals = []string{classic}
			a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 300 + uint64(i), rCfg: c.rCfg})
			if c.classical {
				checkEstablished(t, a, b)
				if s := a.find(ike.EventIKESAEstablished)[0].Suite; len(s.AdditionalKeyExchanges()) != 0 {
					t.Fatalf("negotiated %s", s.String())
				}
				return
			}
			f := onlyFailure(t, a)
			if f.Reason.Notify != c.notify || !strings.Contains(f.Reason.Detail, c.detail) {
				t.Fatalf("failure %v", f)
			}
			if c.detail != "" {
				// A clean failure: nothing after IKE_SA_INIT was sent.
				if len(p.Trace) != 2 {
					t.Fatalf("%d datagrams", len(p.Trace))
				}
				if f.Reason.Cause != ike.CauseProtocol {
					t.Fatalf("cause %v", f.Reason)
				}
			}
			if len(b.find(ike.EventIKESAEstablished)) != 0 {
				t.Fatal("responder established")
			}
		})
	}

	t.Run("legacy-initiator", func(t *testing.T) {
		e, err := ike.NewEngine(reject, seeded(310))
		if err != nil {
			t.Fatal(err)
		}
		ini, resp := peerConfigs(optional, "aes256gcm16")
		if _, err := e.Initiate(t0, ini); err == nil {
			t.Fatal("a legacy initiator offered additional key exchanges")
		}
		// Classical, towards a responder whose additional exchange is
		// optional: no INTERMEDIATE_EXCHANGE_SUPPORTED, classical SA.
		ini.IKEProposals = []string{classic}
		resp.IKEProposals = []string{optional}
		a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 311, iCfg: reject})
		checkEstablished(t, a, b)
		for _, r := range p.Trace[:2] {
			if wire.FindNotify(firstInit(t, r.Data).Payloads, wire.NotifyIntermediateExchangeSupported) != nil {
				t.Fatal("INTERMEDIATE_EXCHANGE_SUPPORTED sent")
			}
		}
		// A responder that requires the additional exchange refuses.
		resp.IKEProposals = []string{hybrid}
		a, _, _, _ = runPair(t, pairSetup{ini: ini, resp: resp, seed: 312, iCfg: reject})
		if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyNoProposalChosen {
			t.Fatalf("%v", f)
		}
	})
}

// TestPrivateTransformIDs: FortiOS before 7.6.6 sent its ML-KEM (Kyber)
// additional key exchange under private transform IDs. Two such peers agree;
// a standard peer does not recognise the ID: no ML-KEM agreement.
func TestPrivateTransformIDs(t *testing.T) {
	fortiPre := ike.Config{Compat: ike.Compat{PrivateTransformIDs: map[string]uint16{"mlkem512": 1080, "mlkem768": 1081, "mlkem1024": 1082}}}
	const (
		hybrid   = "aes256gcm16-prfsha384-ecp384-ke1_mlkem768"
		optional = "aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_none"
	)

	t.Run("private-to-private", func(t *testing.T) {
		ini, resp := peerConfigs(hybrid, "aes256gcm16-ecp384-ke1_mlkem768")
		a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 320, iCfg: fortiPre, rCfg: fortiPre})
		checkEstablished(t, a, b)
		if s := a.find(ike.EventIKESAEstablished)[0].Suite; s.AddKE[0] != wire.KEMLKEM768 {
			t.Fatalf("suite %s", s.String())
		}
		for i, r := range p.Trace[:2] {
			got := keTransforms(firstInit(t, r.Data))[wire.TransformADDKE1]
			if len(got) != 1 || got[0] != 1081 {
				t.Fatalf("message %d: ADDKE1 %v on the wire, want the private ID 1081", i, got)
			}
		}
		// CREATE_CHILD_SA and IKE_FOLLOWUP_KE carry the private ID as well:
		// an IKE SA rekey with the additional key exchange completes.
		a.e.RekeyIKESA(p.Now, id)
		runFor(t, p, time.Minute, func() bool { return len(a.find(ike.EventIKESARekeyed)) > 0 })
		r := a.find(ike.EventIKESARekeyed)
		if len(r) != 1 || r[0].Suite.AddKE[0] != wire.KEMLKEM768 || len(failures(a)) != 0 {
			t.Fatalf("rekey events %v", a.events)
		}
	})

	for i, c := range []struct {
		name     string
		ini, res ike.Config
		offer    string
	}{
		{"private-initiator-mandatory", fortiPre, ike.Config{}, hybrid},
		{"standard-initiator-mandatory", ike.Config{}, fortiPre, hybrid},
		{"private-initiator-optional", fortiPre, ike.Config{}, optional},
		{"standard-initiator-optional", ike.Config{}, fortiPre, optional},
	} {
		t.Run(c.name, func(t *testing.T) {
			ini, resp := peerConfigs(c.offer, "aes256gcm16")
			resp.IKEProposals = []string{optional}
			if c.offer == hybrid {
				resp.IKEProposals = []string{hybrid}
			}
			a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 321 + uint64(i), iCfg: c.ini, rCfg: c.res})
			if c.offer == hybrid {
				if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyNoProposalChosen {
					t.Fatalf("%v", f)
				}
				return
			}
			checkEstablished(t, a, b)
			if s := a.find(ike.EventIKESAEstablished)[0].Suite; len(s.AdditionalKeyExchanges()) != 0 {
				t.Fatalf("negotiated %s with a standard peer", s.String())
			}
		})
	}

	for _, bad := range []map[string]uint16{{"kyber768": 1081}, {"mlkem768": 36}, {"mlkem768": 100}, {"mlkem768": 1081, "mlkem512": 1081}} {
		if _, err := ike.NewEngine(ike.Config{Compat: ike.Compat{PrivateTransformIDs: bad}}, seeded(1)); err == nil {
			t.Errorf("accepted private_transform_ids %v", bad)
		}
	}
}

// TestNoMLKEMInInit: a peer that runs ML-KEM only as an additional key
// exchange refuses to propose it as the KE method and, as responder, does
// not select it.
func TestNoMLKEMInInit(t *testing.T) {
	cfg := ike.Config{Compat: ike.Compat{NoMLKEMInInit: true}}
	e, err := ike.NewEngine(cfg, seeded(330))
	if err != nil {
		t.Fatal(err)
	}
	ini, resp := peerConfigs("aes256gcm16-prfsha384-mlkem768", "aes256gcm16")
	if _, err := e.Initiate(t0, ini); err == nil {
		t.Fatal("initiated with ML-KEM in IKE_SA_INIT")
	}
	// Responder: ML-KEM alone is not selected.
	a, _, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 331, rCfg: cfg})
	if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyNoProposalChosen {
		t.Fatalf("%v", f)
	}
	// With a classical alternative in the same proposal the responder asks
	// for it with INVALID_KE_PAYLOAD.
	both := "aes256gcm16-prfsha384-mlkem768-x25519"
	ini.IKEProposals, resp.IKEProposals = []string{both}, []string{both}
	for _, c := range []struct {
		cfg  ike.Config
		want uint16
	}{{ike.Config{}, wire.KEMLKEM768}, {cfg, wire.KECurve25519}} {
		a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 332, rCfg: c.cfg})
		checkEstablished(t, a, b)
		if s := a.find(ike.EventIKESAEstablished)[0].Suite; s.KE != c.want {
			t.Fatalf("KE method %d, want %d", s.KE, c.want)
		}
	}
}

// TestResponderOnly: a responder-only engine (Cloudflare) refuses to
// initiate and leaves IKE SA rekeying to its peer.
func TestResponderOnly(t *testing.T) {
	cfg := ike.Config{ResponderOnly: true}
	e, err := ike.NewEngine(cfg, seeded(340))
	if err != nil {
		t.Fatal(err)
	}
	ini, resp := peerConfigs(proposalFor("ecp384", "mlkem768"), "aes256gcm16")
	if _, err := e.Initiate(t0, ini); !errors.Is(err, ike.ErrResponderOnly) {
		t.Fatalf("Initiate: %v", err)
	}
	// The responder's IKE lifetime is the shorter: an ordinary responder
	// rekeys the IKE SA after about 2 minutes.
	resp.IKELifetime = ike.Lifetime{Rekey: ike.Duration(2 * time.Minute), Life: ike.Duration(time.Hour), Jitter: ike.Duration(time.Second)}
	ini.IKELifetime = ike.Lifetime{Rekey: ike.Duration(30 * time.Minute)}
	for _, only := range []bool{false, true} {
		a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 341, rCfg: ike.Config{ResponderOnly: only}})
		checkEstablished(t, a, b)
		runFor(t, p, 10*time.Minute, nil)
		rekeys := b.find(ike.EventIKESARekeyed)
		if only && len(rekeys) != 0 || !only && (len(rekeys) == 0 || !rekeys[0].Initiator) {
			t.Fatalf("responder only %v: rekeys %v", only, rekeys)
		}
		if err := b.e.RekeyIKESA(p.Now, b.find(ike.EventIKESAEstablished)[0].SA); only != errors.Is(err, ike.ErrResponderOnly) {
			t.Fatalf("RekeyIKESA: %v", err)
		}
		if len(a.liveSAs()) != 1 || len(b.liveSAs()) != 1 {
			t.Fatalf("live SAs %v / %v", a.liveSAs(), b.liveSAs())
		}
	}
}

// TestRekeyWithoutAddKE: a peer whose IKE SA rekeys do not repeat the
// additional key exchanges.
func TestRekeyWithoutAddKE(t *testing.T) {
	noRepeat := ike.Config{Compat: ike.Compat{RekeyWithoutAddKE: true}}
	const hybrid, classic = "aes256gcm16-prfsha384-x25519-ke1_mlkem768", "aes256gcm16-prfsha384-x25519"
	// As initiator of the rekey: a classical rekey proposal, accepted by a
	// responder that also accepts classical proposals.
	ini, resp := peerConfigs(hybrid, "aes256gcm16")
	resp.IKEProposals = []string{hybrid, classic}
	for _, c := range []struct {
		cfg    ike.Config
		addKEs int
	}{{ike.Config{}, 1}, {noRepeat, 0}} {
		a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 350, iCfg: c.cfg})
		checkEstablished(t, a, b)
		if s := a.find(ike.EventIKESAEstablished)[0].Suite; len(s.AdditionalKeyExchanges()) != 1 {
			t.Fatalf("initial suite %s", s.String())
		}
		a.e.RekeyIKESA(p.Now, id)
		runFor(t, p, time.Minute, func() bool { return len(a.find(ike.EventIKESARekeyed)) > 0 })
		r := a.find(ike.EventIKESARekeyed)
		if len(r) != 1 || len(r[0].Suite.AdditionalKeyExchanges()) != c.addKEs {
			t.Fatalf("rekey %v", a.events)
		}
	}
	// As responder: a mandatory additional exchange is refused, an optional
	// one dropped.
	for _, c := range []struct {
		offer string
		ok    bool
	}{{hybrid, false}, {hybrid + "-ke1_none", true}} {
		ini, resp := peerConfigs(c.offer, "aes256gcm16")
		a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 351, rCfg: noRepeat})
		checkEstablished(t, a, b)
		a.e.RekeyIKESA(p.Now, id)
		runFor(t, p, time.Minute, func() bool { return len(a.find(ike.EventIKESARekeyed)) > 0 || len(failures(a)) > 0 })
		if !c.ok {
			if f := onlyFailure(t, a); f.Kind != ike.EventExchangeFailed || f.Reason.Notify != wire.NotifyNoProposalChosen {
				t.Fatalf("%v", f)
			}
			continue
		}
		if r := a.find(ike.EventIKESARekeyed); len(r) != 1 || len(r[0].Suite.AdditionalKeyExchanges()) != 0 {
			t.Fatalf("rekey %v", a.events)
		}
	}
}

// TestNoFollowupKEInitiator: an initiator without IKE_FOLLOWUP_KE proposes
// no additional key exchange in CREATE_CHILD_SA.
func TestNoFollowupKEInitiator(t *testing.T) {
	ini, resp := pfsPeers("aes256gcm16-x25519-ke1_mlkem768-ke1_none")
	for _, c := range []struct {
		cfg    ike.Config
		addKEs int
	}{{ike.Config{}, 1}, {ike.Config{Compat: ike.Compat{NoFollowupKE: true}}, 0}} {
		a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 360, iCfg: c.cfg})
		checkEstablished(t, a, b)
		a.e.CreateChildSA(p.Now, id, "pfs")
		runFor(t, p, time.Minute, func() bool { return len(a.children()) == 2 && len(b.children()) == 2 })
		checkConsistent(t, a, b, 2)
		for _, ch := range a.children() {
			if ch.Name == "pfs" && (ch.Suite.KE != wire.KECurve25519 || len(ch.Suite.AdditionalKeyExchanges()) != c.addKEs) {
				t.Fatalf("pfs child suite %s", ch.Suite.String())
			}
		}
	}
}

// TestPeerVendorIDs: the Vendor IDs of one end (Cisco's fragmentation
// Vendor ID) reach the other end's established event.
func TestPeerVendorIDs(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("ecp384", "mlkem1024"), "aes256gcm16")
	a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 370,
		iCfg: ike.Config{VendorIDs: []ike.HexBytes{ike.VendorIDCiscoFragmentation}}})
	checkEstablished(t, a, b)
	got := b.find(ike.EventIKESAEstablished)[0].PeerVendorIDs
	if len(got) != 1 || !bytes.Equal(got[0], ike.VendorIDCiscoFragmentation) {
		t.Fatalf("responder saw vendor IDs %x", got)
	}
	if got := a.find(ike.EventIKESAEstablished)[0].PeerVendorIDs; len(got) != 0 {
		t.Fatalf("initiator saw vendor IDs %x", got)
	}
}

// TestCompatTOML decodes the profile switches from TOML.
func TestCompatTOML(t *testing.T) {
	const doc = `
responder_only = true
[compat]
no_intermediate = true
ignore_unknown_transforms = true
no_mlkem_in_init = true
rekey_without_addke = true
private_transform_ids = { mlkem512 = 1080, mlkem768 = 1081 }
`
	var c ike.Config
	md, err := toml.Decode(doc, &c)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("undecoded keys %v", u)
	}
	want := ike.Compat{NoIntermediate: true, IgnoreUnknownTransforms: true, NoMLKEMInInit: true, RekeyWithoutAddKE: true,
		PrivateTransformIDs: map[string]uint16{"mlkem512": 1080, "mlkem768": 1081}}
	if !c.ResponderOnly || !reflect.DeepEqual(c.Compat, want) {
		t.Fatalf("%+v", c)
	}
	if _, err := ike.NewEngine(c, seeded(1)); err != nil {
		t.Fatal(err)
	}
}

// TestProfileOutcomes runs the pairings whose outcomes the public documents
// state (issue 6), with engine settings mirroring models/peers: Cloudflare
// (responder only) with Cisco 8000 and FortiOS 7.6.6 establishes hybrid
// SAs, FortiOS before 7.6.6 (private Kyber IDs) reaches no ML-KEM agreement,
// a legacy peer offered a mandatory additional key exchange answers
// NO_PROPOSAL_CHOSEN.
func TestProfileOutcomes(t *testing.T) {
	type profile struct {
		cfg       ike.Config
		proposals []string
	}
	cloudflare := profile{ike.Config{ResponderOnly: true, MaxChildSAs: 100, Compat: ike.Compat{NoMLKEMInInit: true}},
		[]string{"aes256gcm16-aes128gcm16-prfsha256-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024", "aes256gcm16-aes128gcm16-prfsha256-prfsha384-ecp384"}}
	cisco := profile{ike.Config{VendorIDs: []ike.HexBytes{ike.VendorIDCiscoFragmentation}, Compat: ike.Compat{NoMLKEMInInit: true},
		Fragmentation: ike.FragmentConfig{Size: 1400}}, []string{"aes256gcm16-prfsha384-ecp384-ke1_mlkem1024"}}
	forti := profile{ike.Config{Compat: ike.Compat{NoMLKEMInInit: true}, Fragmentation: ike.FragmentConfig{Size: 1200}},
		[]string{"aes256gcm16-prfsha384-ecp384-ke1_mlkem768"}}
	fortiPre := forti
	fortiPre.cfg.Compat.PrivateTransformIDs = map[string]uint16{"mlkem512": 1080, "mlkem768": 1081, "mlkem1024": 1082}
	legacy := profile{ike.Config{Compat: ike.Compat{NoIntermediate: true}}, []string{"aes256gcm16-prfsha384-ecp384", "aes128-sha256-modp2048"}}

	for i, c := range []struct {
		name       string
		ini, resp  profile
		addKE      uint16          // negotiated ADDKE1, 0 for classical
		failNotify wire.NotifyType // or the initiator's failure
	}{
		{"cisco-cloudflare", cisco, cloudflare, wire.KEMLKEM1024, 0},
		{"fortios-7.6.6-cloudflare", forti, cloudflare, wire.KEMLKEM768, 0},
		{"fortios-pre-7.6.6-cloudflare", fortiPre, cloudflare, 0, wire.NotifyNoProposalChosen},
		{"legacy-cloudflare", legacy, cloudflare, 0, 0},
		{"cisco-legacy", cisco, legacy, 0, wire.NotifyNoProposalChosen},
		{"fortios-pre-7.6.6-pair", fortiPre, fortiPre, wire.KEMLKEM768, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ini, resp := peerConfigs(c.ini.proposals[0], "aes256gcm16")
			ini.IKEProposals, resp.IKEProposals = c.ini.proposals, c.resp.proposals
			a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 390 + uint64(i), iCfg: c.ini.cfg, rCfg: c.resp.cfg})
			if c.failNotify != 0 {
				if f := onlyFailure(t, a); f.Reason.Notify != c.failNotify {
					t.Fatalf("%v", f)
				}
				return
			}
			checkEstablished(t, a, b)
			if s := a.find(ike.EventIKESAEstablished)[0].Suite; s.AddKE[0] != c.addKE {
				t.Fatalf("negotiated %s", s.String())
			}
		})
	}
}

// TestDPDRetries: a liveness check is retransmitted DPDRetries times (not
// Retransmit.Tries) before the peer is declared dead.
func TestDPDRetries(t *testing.T) {
	for _, retries := range []int{0, 2} {
		ini, resp := peerConfigs(proposalFor("ecp384", "mlkem768"), "aes256gcm16")
		ini.DPDDelay, ini.DPDRetries = ike.Duration(20*time.Second), retries
		cfg := ike.Config{Retransmit: ike.RetransmitConfig{InitialTimeout: ike.Duration(time.Second), Base: 2, Tries: 5}}
		a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 395, iCfg: cfg})
		checkEstablished(t, a, b)
		n := len(p.Trace)
		p.Filter = func(fromA bool, _, _ netip.AddrPort, _ []byte) bool { return !fromA }
		runFor(t, p, 10*time.Minute, func() bool { return len(a.liveSAs()) == 0 })
		d := a.find(ike.EventIKESADeleted)
		if len(d) != 1 || d[0].Reason.Cause != ike.CauseTimeout {
			t.Fatalf("events %v", a.events)
		}
		checks := 0
		for _, r := range p.Trace[n:] {
			if h, ok := headerOf(r); ok && r.FromA && h.Exchange == wire.ExchangeInformational && !h.IsResponse() {
				checks++
			}
		}
		want := 1 + 5
		if retries > 0 {
			want = 1 + retries
		}
		if checks != want {
			t.Fatalf("dpd_retries %d: %d transmissions of the liveness check, want %d", retries, checks, want)
		}
	}
}
