package lab

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMixedFleet runs topologies/mixed-fleet.toml: the Cloudflare-like hub
// gets hybrid tunnels from the Cisco, FortiOS 7.6.6 (behind NATs) and
// strongSwan branches (behind NATs or a fragment-dropping ISP, where RFC 7383
// fragments at 1280 octets pass); the FortiGate before 7.6.6 comes up only
// on its classical fallback; the Cisco router behind the fragment-dropping
// ISP times out (its 1400-octet IKE fragments become IP fragments); the
// legacy branch gets a classical tunnel.
func TestMixedFleet(t *testing.T) {
	r, err := Run(Spec{Topology: "../../../topologies/mixed-fleet.toml"})
	require.NoError(t, err)
	require.Len(t, r.Handshakes, 14)
	for _, h := range r.Handshakes {
		group := h.Initiator[:strings.LastIndex(h.Initiator, "-")]
		require.Equal(t, "hub", h.Responder)
		require.Equal(t, "cloudflare", h.ResponderModel)
		switch group {
		case "cisco", "forti", "swan-frag", "swan-lte":
			require.Equal(t, OutcomeEstablished, h.Outcome, "%s: %s", h.Initiator, h.Reason)
			require.Equal(t, "intermediate", h.Placement, h.Initiator)
			require.Zero(t, h.IPFragments, h.Initiator)
		case "forti-old", "legacy":
			require.Equal(t, OutcomeEstablished, h.Outcome, "%s: %s", h.Initiator, h.Reason)
			require.Equal(t, "none", h.Placement, h.Initiator)
		case "cisco-frag":
			require.Equal(t, OutcomeFailed, h.Outcome, h.Initiator)
			require.Equal(t, "timeout", h.Reason)
			require.Positive(t, h.IPFragments)
		default:
			t.Fatalf("unexpected initiator %s", h.Initiator)
		}
	}
	for _, h := range r.Handshakes {
		if strings.HasPrefix(h.Initiator, "swan-frag-") {
			require.Greater(t, h.Exchanges[1].Datagrams, 0)
		}
	}
}

// TestLabOverrides checks the overrides the lab applies itself: cores and
// speed of nodes and groups, and fields of peer models.
func TestLabOverrides(t *testing.T) {
	top, err := Load(Spec{Topology: "../../../topologies/hub-spoke-10.toml", Overrides: Overrides{
		"node[hub].cores": int64(3), "group[branch].speed": 0.5, "group[branch].count": int64(4)}})
	require.NoError(t, err)
	require.Equal(t, 3, top.Node("hub").CPU.Cores)
	require.Equal(t, 0.5, top.Node("branch-4").CPU.Speed)
	spec := Spec{Topology: twoSites, Overrides: Overrides{"model[strongswan-6].lifetimes.ike": "45s",
		"model[strongswan-6].fragmentation.size": int64(1000), "model[strongswan-6].ike.mlkem": []any{"mlkem768"}}}
	peers, err := LoadPeers(spec)
	require.NoError(t, err)
	require.Equal(t, "45s", peers["strongswan-6"].Lifetimes.IKE.String())
	require.Equal(t, 1000, peers["strongswan-6"].Fragmentation.Size)
	require.Equal(t, []string{"mlkem768"}, peers["strongswan-6"].IKE.MLKEM)
	fresh, err := LoadPeers(Spec{Topology: twoSites})
	require.NoError(t, err)
	require.Equal(t, 1280, fresh["strongswan-6"].Fragmentation.Size, "the profile on disk is untouched")
	for _, bad := range []struct {
		ov   Overrides
		want string
	}{
		{Overrides{"node[nosuch].cores": int64(2)}, `no node named "nosuch"`},
		{Overrides{"node[gw-a].cores": int64(0)}, "cores in 1..1024"},
		{Overrides{"model[nosuch].lifetimes.ike": "1s"}, `no peer model "nosuch"`},
		{Overrides{"model[strongswan-6].bogus.x": "1s"}, `no section "bogus"`},
		{Overrides{"model[strongswan-6].lifetimes.ike": 5}, "cannot use 5"},
		{Overrides{"model[strongswan-6].lifetimes": 5}, "want model[NAME].SECTION.FIELD"},
	} {
		_, err := Run(Spec{Topology: twoSites, Overrides: bad.ov})
		require.ErrorContains(t, err, bad.want)
	}
	// Rekeys: with a 30 s IKE lifetime, both ends rekey during a 70 s run
	// and the rekey records count CREATE_CHILD_SA and IKE_FOLLOWUP_KE.
	r, err := Run(Spec{Topology: twoSites, Duration: 70e9, Overrides: Overrides{
		"model[strongswan-6].lifetimes.ike": "30s", "model[strongswan-6].lifetimes.jitter": 0.0}})
	require.NoError(t, err)
	var ike int
	for _, k := range r.Rekeys {
		if k.Kind == "ike" && k.Outcome == OutcomeEstablished {
			ike++
			require.Positive(t, k.LatencyNs)
			require.GreaterOrEqual(t, k.Datagrams, 2)
		}
	}
	require.GreaterOrEqual(t, ike, 2)
	var followup bool
	for _, k := range r.Rekeys {
		if k.Kind == "ike" && k.Datagrams >= 4 && k.Bytes > 2000 {
			followup = true // CREATE_CHILD_SA plus IKE_FOLLOWUP_KE with ML-KEM-768
		}
	}
	require.True(t, followup)
}
