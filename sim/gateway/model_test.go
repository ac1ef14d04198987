package gateway

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/sim"
)

var conns = []Connection{
	{Peer: "hub", Remote: netip.MustParseAddr("192.0.2.1"), Initiate: true,
		LocalTS: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}, RemoteTS: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}},
	{Peer: "branch2", LocalTS: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}, RemoteTS: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}},
}

func TestEveryProfileMakesAnEngine(t *testing.T) {
	peers, err := models.LoadPeers("../../models/peers")
	require.NoError(t, err)
	require.Len(t, peers, 7)
	for name, p := range peers {
		cs, ini := conns, slices.Contains(p.Roles, "initiator")
		if !ini {
			cs = []Connection{conns[1], conns[1]}
		}
		cfg, err := EngineConfig(p, NodeSpec{Name: "branch1", Addr: netip.MustParseAddr("192.0.2.7"), PSK: "k", Connections: cs})
		require.NoError(t, err, name)
		_, err = ike.NewEngine(cfg, sim.NewDeterministicReader(1, name))
		require.NoError(t, err, name)
		require.Len(t, cfg.Peers, 2)
		require.Equal(t, p.IKE.Proposals, cfg.Peers[0].IKEProposals, name)
		require.False(t, cfg.Peers[1].Remote.IsValid(), "a responder recognises its peer by identity")
		require.Equal(t, Identity("branch2"), cfg.Peers[1].RemoteID)
		if ini {
			require.Equal(t, netip.MustParseAddrPort("192.0.2.1:500"), cfg.Peers[0].Remote)
			require.True(t, cfg.Peers[0].InitialContact)
		}
	}
}

func TestProfileMapping(t *testing.T) {
	cisco := loadPeer(t, "cisco-8000")
	cfg, err := EngineConfig(cisco, NodeSpec{Name: "b", Addr: netip.MustParseAddr("192.0.2.7"), PSK: "k", Connections: conns[:1]})
	require.NoError(t, err)
	require.Equal(t, ike.Duration(2*time.Second), cfg.Retransmit.InitialTimeout)
	require.Equal(t, 2.0, cfg.Retransmit.Base)
	require.Equal(t, ike.FragmentWhenLarger, cfg.Fragmentation.Policy)
	require.Equal(t, 1400, cfg.Fragmentation.Size)
	require.Equal(t, ike.CountIP, cfg.Fragmentation.Counts)
	require.Equal(t, -1, cfg.CookieThreshold, "cookie challenge off")
	require.Len(t, cfg.VendorIDs, 1)
	require.Equal(t, ike.Duration(10*time.Second), cfg.Peers[0].DPDDelay)
	require.False(t, cfg.Peers[0].DPDPeriodic)
	require.Equal(t, ike.Duration(24*time.Hour), cfg.Peers[0].IKELifetime.Rekey)
	require.True(t, cfg.Peers[0].IKELifetime.NoJitter, "no jitter")
	require.Zero(t, cfg.Peers[0].IKELifetime.Jitter)
	require.Equal(t, []string{"aes256gcm16-noesn"}, cfg.Peers[0].Children[0].ESPProposals)

	sw := loadPeer(t, "strongswan-6")
	cfg, err = EngineConfig(sw, NodeSpec{Name: "b", Addr: netip.MustParseAddr("192.0.2.7"), PSK: "k", Connections: conns[:1],
		Proposals: []string{"aes256gcm16-prfsha384-mlkem768"}, ESPProposals: []string{"chacha20poly1305"}})
	require.NoError(t, err)
	require.Equal(t, []string{"aes256gcm16-prfsha384-mlkem768"}, cfg.Peers[0].IKEProposals, "the node's proposals override the profile's")
	require.Equal(t, []string{"chacha20poly1305"}, cfg.Peers[0].Children[0].ESPProposals)
	require.Equal(t, ike.Duration(24*time.Minute), cfg.Peers[0].IKELifetime.Jitter, "10 % of 4 h")
	require.Equal(t, ike.SwitchAtIntermediate, cfg.NATT.PortSwitch)
	require.Equal(t, ike.Duration(20*time.Second), cfg.NATT.Keepalive)
	require.False(t, cfg.Compat.NoIntermediate)

	legacy := loadPeer(t, "legacy-classical")
	cfg, err = EngineConfig(legacy, NodeSpec{Name: "b", Addr: netip.MustParseAddr("192.0.2.7"), PSK: "k", Connections: conns[:1]})
	require.NoError(t, err)
	require.True(t, cfg.Compat.NoIntermediate)
	require.True(t, cfg.Compat.NoFollowupKE)
	require.True(t, cfg.Compat.NoMLKEMInInit)
	require.True(t, cfg.Compat.RekeyWithoutAddKE)

	forti := loadPeer(t, "fortios-pre-7.6.6")
	cfg, err = EngineConfig(forti, NodeSpec{Name: "b", Addr: netip.MustParseAddr("192.0.2.7"), PSK: "k", Connections: conns[:1]})
	require.NoError(t, err)
	require.Equal(t, map[string]uint16{"mlkem512": 1080, "mlkem768": 1081, "mlkem1024": 1082}, cfg.Compat.PrivateTransformIDs)
	require.False(t, cfg.ResponderOnly)
	require.True(t, cfg.Compat.NoMLKEMInInit)
	require.Equal(t, 1, cfg.Window)
	require.Equal(t, 3, cfg.Peers[0].DPDRetries, "FortiOS dpd-retrycount")

	cf := loadPeer(t, "cloudflare")
	cfg, err = EngineConfig(cf, NodeSpec{Name: "b", Addr: netip.MustParseAddr("192.0.2.7"), PSK: "k", Connections: conns[1:]})
	require.NoError(t, err)
	require.True(t, cfg.ResponderOnly)
}

func TestProfileRefusals(t *testing.T) {
	spec := func(props ...string) NodeSpec {
		return NodeSpec{Name: "b", Addr: netip.MustParseAddr("192.0.2.7"), PSK: "k", Connections: conns, Proposals: props}
	}
	_, err := EngineConfig(loadPeer(t, "cisco-8000"), spec("aes256gcm16-prfsha384-mlkem768"))
	require.ErrorContains(t, err, "node b (peer model cisco-8000): proposal \"aes256gcm16-prfsha384-mlkem768\" puts mlkem768 in IKE_SA_INIT (mlkem_in_init = false)")
	_, err = EngineConfig(loadPeer(t, "legacy-classical"), spec("aes256gcm16-prfsha384-x25519-ke1_mlkem768"))
	require.ErrorContains(t, err, "uses mlkem768, which the profile does not implement")
	_, err = EngineConfig(loadPeer(t, "strongswan-6"), spec("aes256gcm16-prfsha384-nosuchgroup"))
	require.Error(t, err)
	_, err = EngineConfig(loadPeer(t, "cloudflare"), spec())
	require.ErrorContains(t, err, "does not initiate", "Cloudflare's profile only responds")
	_, err = EngineConfig(loadPeer(t, "strongswan-6"), NodeSpec{Name: "b", PSK: "k", Connections: []Connection{{Peer: "x", Initiate: true}}})
	require.ErrorContains(t, err, "no address to initiate to")
}

// TestCheckProposal: the initiator-only IKE_INTERMEDIATE check and the
// short phrasing the lab records for points it cannot configure.
func TestCheckProposal(t *testing.T) {
	legacy, cisco := loadPeer(t, "legacy-classical"), loadPeer(t, "cisco-8000")
	const addKE = "aes256gcm16-prfsha384-x25519-ke1_mlkem768"
	var pe *ProposalError
	require.ErrorAs(t, CheckProposal(legacy, addKE, true), &pe)
	require.Equal(t, "has no additional key exchanges (no IKE_INTERMEDIATE)", pe.Short())
	require.ErrorAs(t, CheckProposal(legacy, addKE, false), &pe)
	require.Equal(t, "implements no mlkem768", pe.Short())
	require.ErrorAs(t, CheckProposal(cisco, "aes256gcm16-prfsha384-mlkem768", true), &pe)
	require.Equal(t, "cannot put mlkem768 in IKE_SA_INIT (mlkem_in_init = false)", pe.Short())
	require.NoError(t, CheckProposal(cisco, addKE, true))
	err := CheckProposal(cisco, "aes256gcm16-prfsha384-nosuchgroup", true)
	require.Error(t, err)
	require.False(t, errors.As(err, &pe), "a parse error is no ProposalError")
}

func TestUnsupportedFields(t *testing.T) {
	// Every field these profiles set has an engine knob.
	require.Empty(t, UnsupportedFields(loadPeer(t, "cisco-8000")))
	require.Empty(t, UnsupportedFields(loadPeer(t, "strongswan-6")))
	// A zero jitter is no jitter, not the engine's default.
	require.Equal(t, ike.Lifetime{Rekey: ike.Duration(time.Hour), NoJitter: true}, lifetime(time.Hour, 0))
	require.Equal(t, ike.Lifetime{Rekey: ike.Duration(time.Hour), Jitter: ike.Duration(6 * time.Minute)}, lifetime(time.Hour, 0.1))
}

func TestCostNamesInReferenceTable(t *testing.T) {
	tab, err := sim.LoadCostTable("../../models/cpu/reference.toml")
	require.NoError(t, err)
	has := func(cs []Cost) {
		t.Helper()
		for _, c := range cs {
			_, ok := tab.Cost(c.Op, c.Units)
			require.True(t, ok, c.Op)
		}
	}
	for _, m := range suite.Methods() {
		for _, step := range []suite.KEStep{suite.KEInitiate, suite.KERespond, suite.KEComplete} {
			for _, o := range suite.KEOps(m.ID(), step) {
				has(OpCosts(ike.CryptoOp{Op: o, Alg: m.ID()}))
			}
		}
	}
	for _, prf := range []uint16{2, 5, 6, 7} {
		has(OpCosts(ike.CryptoOp{Op: suite.OpPRF, Alg: prf, Bytes: 10}))
		has(OpCosts(ike.CryptoOp{Op: suite.OpPRFPlus, Alg: prf, Bytes: 10}))
	}
	for _, encr := range []uint16{12, 18, 19, 20, 28} {
		has(OpCosts(ike.CryptoOp{Op: suite.OpSKSeal, Alg: encr, Bytes: 10}))
		has(OpCosts(ike.CryptoOp{Op: suite.OpSKOpen, Alg: encr, Bytes: 10}))
	}
	for _, s := range CalibrationSuites {
		has(ESPCosts(s, 100))
	}
	require.Equal(t, []Cost{{"ike.prf.prfsha384.call", 1}, {"ike.prf.prfsha384.byte", 64}}, OpCosts(ike.CryptoOp{Op: suite.OpPRF, Alg: 6, Bytes: 64}))
	require.Equal(t, []Cost{{"ike.ke.mlkem768.encaps", 1}}, OpCosts(ike.CryptoOp{Op: suite.OpKEEncaps, Alg: 36}))
}

func TestCalibrationOpsRun(t *testing.T) {
	ops, err := CalibrationOps()
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, op := range ops {
		require.False(t, seen[op.Name], op.Name)
		seen[op.Name] = true
		op.Fn()
	}
	require.True(t, seen["ike.ke.mlkem1024.decaps"])
	require.True(t, seen["esp.aes256gcm16.byte"])
}

func TestRangePrefixes(t *testing.T) {
	p := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	a := netip.MustParseAddr
	require.Equal(t, p("10.0.0.0/24"), rangePrefixes(a("10.0.0.0"), a("10.0.0.255")))
	require.Equal(t, p("10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/32"), rangePrefixes(a("10.0.0.1"), a("10.0.0.4")))
	require.Equal(t, p("0.0.0.0/0"), rangePrefixes(a("0.0.0.0"), a("255.255.255.255")))
	require.Equal(t, p("fd00::/64"), rangePrefixes(a("fd00::"), a("fd00::ffff:ffff:ffff:ffff")))
	require.Nil(t, rangePrefixes(a("10.0.0.5"), a("10.0.0.4")))
	require.Nil(t, rangePrefixes(a("10.0.0.5"), a("fd00::1")))
	require.Len(t, rangePrefixes(a("0.0.0.1"), a("255.255.255.254")), 62)
}
