package ike_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/harness"
	"github.com/pqlab/pqlab/ike/wire"
)

// TestLegacyResponder: a responder without RFC 9370 rejects proposals
// holding additional key exchange transforms, or ignores the transforms; an
// initiator whose ML-KEM round is optional then falls back to classical.
func TestLegacyResponder(t *testing.T) {
	legacy := ike.Config{Compat: ike.Compat{NoIntermediate: true}}
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	resp.IKEProposals = []string{"aes256gcm16-prfsha384-x25519"}
	a, _, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 61, rCfg: legacy})
	p.Run(p.Now.Add(time.Minute), func() bool { return len(a.find(ike.EventFailed)) > 0 })
	if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyNoProposalChosen {
		t.Fatalf("%v", f)
	}
	// Ignoring unknown transforms, with an optional ML-KEM round.
	legacy.Compat.IgnoreUnknownTransforms = true
	ini.IKEProposals = []string{"aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none"}
	a, b, _, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 62, rCfg: legacy})
	checkEstablished(t, a, b)
	if s := a.find(ike.EventIKESAEstablished)[0].Suite; len(s.AdditionalKeyExchanges()) != 0 {
		t.Fatalf("negotiated %s", s.String())
	}
	if m, _ := a.e.Metrics(id); m.RoundTrips != 2 {
		t.Fatalf("round trips %d", m.RoundTrips)
	}
}

func TestVendorIDsAndMaxChildSAs(t *testing.T) {
	ini, resp := pfsPeers("aes256gcm16")
	vid := ike.HexBytes{0x40, 0x48, 0xb7, 0xd5}
	a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 63,
		iCfg: ike.Config{VendorIDs: []ike.HexBytes{vid}}, rCfg: ike.Config{MaxChildSAs: 1}})
	checkEstablished(t, a, b)
	m, err := wire.ParseMessage(p.Trace[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if v := wire.First[*wire.VendorID](m.Payloads); v == nil || !bytes.Equal(v.Data, vid) {
		t.Fatal("no Vendor ID in IKE_SA_INIT")
	}
	a.e.CreateChildSA(p.Now, id, "pfs")
	runFor(t, p, time.Minute, func() bool { return len(failures(a)) > 0 })
	if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyNoAdditionalSAs {
		t.Fatalf("%v", f)
	}
}

// TestNoFollowupKE: a responder without IKE_FOLLOWUP_KE refuses a mandatory
// additional key exchange in CREATE_CHILD_SA and drops an optional one.
func TestNoFollowupKE(t *testing.T) {
	cfg := ike.Config{Compat: ike.Compat{NoFollowupKE: true}}
	ini, resp := pfsPeers("aes256gcm16-x25519-ke1_mlkem768")
	a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 64, rCfg: cfg})
	checkEstablished(t, a, b)
	a.e.CreateChildSA(p.Now, id, "pfs")
	runFor(t, p, time.Minute, func() bool { return len(failures(a)) > 0 })
	if f := onlyFailure(t, a); f.Reason.Notify != wire.NotifyNoProposalChosen {
		t.Fatalf("%v", f)
	}
	ini, resp = pfsPeers("aes256gcm16-x25519-ke1_mlkem768-ke1_none")
	a, b, p, id = runPair(t, pairSetup{ini: ini, resp: resp, seed: 65, rCfg: cfg})
	a.e.CreateChildSA(p.Now, id, "pfs")
	runFor(t, p, time.Minute, func() bool { return len(a.children()) == 2 && len(b.children()) == 2 })
	checkConsistent(t, a, b, 2)
	for _, c := range a.children() {
		if c.Name == "pfs" && (c.Suite.KE != wire.KECurve25519 || len(c.Suite.AdditionalKeyExchanges()) != 0) {
			t.Fatalf("pfs child suite %s", c.Suite.String())
		}
	}
}

// TestConfigTOML decodes a complete configuration.
func TestConfigTOML(t *testing.T) {
	const doc = `
cookie_threshold = 10
half_open_timeout = "20s"
vendor_ids = ["4048b7d5"]
max_child_sas = 4
[retransmit]
initial_timeout = "500ms"
base = 2.0
tries = 7
max_timeout = "60s"
[fragmentation]
policy = "on_retransmit"
size = 576
size_ipv6 = 1280
counts = "ip"
[nat_traversal]
port_switch = "auth"
keepalive = "20s"
[compat]
no_followup_ke = true
[[peer]]
name = "hub"
local_id = "hub.example.org"
remote_id = "branch@example.org"
ike_proposals = ["aes256gcm16-prfsha384-x25519-ke1_mlkem768", "aes128-sha256-modp2048"]
dpd_delay = "10s"
[peer.auth]
psk = "secret"
[peer.ike_lifetime]
rekey_time = "4h"
rand_time = "10m"
[[peer.child]]
name = "lan"
esp_proposals = ["aes256gcm16-esn"]
local_ts = ["10.2.0.0/16"]
remote_ts = ["10.1.0.0/16[udp/500-600]"]
[peer.child.lifetime]
rekey_time = "1h"
rekey_bytes = 1000000000
`
	var c ike.Config
	md, err := toml.Decode(doc, &c)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("undecoded keys %v", u)
	}
	if time.Duration(c.Retransmit.InitialTimeout) != 500*time.Millisecond || c.Retransmit.Tries != 7 ||
		c.Fragmentation.Policy != ike.FragmentOnRetransmit || c.Fragmentation.Size != 576 ||
		c.NATT.PortSwitch != ike.SwitchAtAuth || !c.Compat.NoFollowupKE || len(c.VendorIDs[0]) != 4 {
		t.Fatalf("%+v", c)
	}
	p := c.Peers[0]
	if p.LocalID.Type != wire.IDFQDN || p.RemoteID.Type != wire.IDRFC822Addr || p.Auth.PSK != "secret" ||
		p.Children[0].RemoteTS[0] != ike.MustTS("10.1.0.0/16[udp/500-600]") || p.Children[0].Lifetime.RekeyBytes != 1e9 {
		t.Fatalf("%+v", p)
	}
	if _, err := ike.NewEngine(c, seeded(1)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`[fragmentation]
policy = "sometimes"`, `[retransmit]
initial_timeout = "soon"`, `[[peer]]
name = "x"
ike_proposals = ["aes256gcm16-prfsha384-nosuchgroup"]
[peer.auth]
psk = "k"`} {
		var c ike.Config
		_, err := toml.Decode(bad, &c)
		if err == nil {
			_, err = ike.NewEngine(c, seeded(1))
		}
		if err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestHubManyPeers: a responder with one connection per branch (distinct
// identities and keys) picks the right one.
func TestHubManyPeers(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", ""), "aes256gcm16")
	hub, err := ike.NewEngine(ike.Config{}, seeded(91))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		p := resp
		p.Name = fmt.Sprintf("branch-%d", i)
		p.RemoteID = mustID(fmt.Sprintf("branch-%d@pqlab", i))
		p.Auth.PSK = fmt.Sprintf("psk-%d", i)
		if err := hub.AddPeer(p); err != nil {
			t.Fatal(err)
		}
	}
	ini.LocalID = mustID("branch-1777@pqlab")
	ini.Auth.PSK = "psk-1777"
	ei, _ := ike.NewEngine(ike.Config{}, seeded(92))
	a, b := &endpoint{e: ei}, &endpoint{e: hub}
	p := harness.New(a, b, t0, 93)
	ei.Initiate(p.Now, ini)
	p.Run(t0.Add(time.Minute), func() bool {
		return len(b.find(ike.EventChildSAInstalled)) > 0 && len(a.find(ike.EventChildSAInstalled)) > 0
	})
	checkEstablished(t, a, b)
	if got := b.find(ike.EventIKESAEstablished)[0].Peer; got != "branch-1777" {
		t.Fatalf("hub chose %q", got)
	}
}
