package lab

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/cmd/internal/results"
	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/wire"
)

// collisionSpec is two-sites where both gateways rekey at the same
// moments: lifetimes without jitter on both ends (the Child SA at 20 s and
// 40 s, the IKE SA at 30 s), so each rekey timer of one gateway fires
// within a one-way delay of the other's and both CREATE_CHILD_SA requests
// cross on the wire (RFC 7296 Sections 2.8.1 and 2.8.2). The trace hooks
// log every IKE event and every rekey datagram (go test -v).
func collisionSpec(t *testing.T, ikeProposal, espProposal string) Spec {
	ov := suiteOverrides(ikeProposal)
	ov["node[gw-a].esp_proposals"] = []string{espProposal}
	ov["node[gw-b].esp_proposals"] = []string{espProposal}
	ov["model[strongswan-6].lifetimes.ike"] = "30s"
	ov["model[strongswan-6].lifetimes.child"] = "20s"
	ov["model[strongswan-6].lifetimes.jitter"] = 0.0
	spec := Spec{Topology: twoSites, Duration: 45 * time.Second, Overrides: ov}
	spec.trace = func(gw string, now time.Time, ev ike.Event) {
		t.Logf("%s %13d event %s spii=%016x sa-initiator=%v old=%d", gw, now.UnixNano(), ev, ev.SPIi, ev.Initiator, ev.OldSA)
	}
	spec.traceSent = func(gw string, now time.Time, h wire.Header, n int) {
		if h.Exchange == wire.ExchangeCreateChildSA || h.Exchange == wire.ExchangeIKEFollowupKE {
			t.Logf("%s %13d sent  %s spii=%016x mid=%d I=%v R=%v %d octets", gw, now.UnixNano(), h.Exchange, h.SPIi, h.MessageID, h.IsInitiator(), h.IsResponse(), n)
		}
	}
	return spec
}

// TestRekeyCollisionRecords provokes Child SA and IKE SA rekey collisions,
// with and without IKE_FOLLOWUP_KE (RFC 9370), and checks the rekey
// records: per colliding pair, the winner's exchange is established (with
// its latency) and the loser's collision-lost (reason rekey-collision, no
// latency), with the right initiator, responder and kind. Without
// additional key exchanges the loser's exchange completed and its redundant
// SA was deleted (same wire cost as the winner's); with them the loser
// stopped after CREATE_CHILD_SA (or had its request refused) and sent no
// IKE_FOLLOWUP_KE.
func TestRekeyCollisionRecords(t *testing.T) {
	const classical = "aes256gcm16-prfsha384-x25519"
	for _, c := range []struct {
		name, ike, esp string
		// rounds lists the expected colliding rekeys in time order: the
		// kind and whether the rekey repeats additional key exchanges.
		rounds []string
	}{
		{"classical", classical, "aes256gcm16", []string{"child", "ike", "child"}},
		{"hybrid-ike", hybrid768, "aes256gcm16", []string{"child", "ike+addke"}},
		// At 30 s gw-a's IKE rekey is due just after it answered gw-b's
		// (the requests do not cross: gw-a waits for the peer's
		// IKE_FOLLOWUP_KE and then has nothing left to rekey), and at 40 s
		// gw-b's Child SA rekey is superseded by gw-a's: one real
		// collision, the first.
		{"hybrid-ike-and-child", hybrid768, "aes256gcm16-x25519-ke1_mlkem768", []string{"child+addke"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Run(collisionSpec(t, c.ike, c.esp))
			require.NoError(t, err)
			for _, k := range r.Rekeys {
				t.Logf("record %+v", k)
			}
			pairs, single := collisionPairs(r.Rekeys)
			for _, k := range single { // a rekey nobody collided with
				require.Equal(t, OutcomeEstablished, k.Outcome, "%+v", k)
			}
			require.Len(t, pairs, len(c.rounds), "colliding pairs")
			for i, p := range pairs {
				want := c.rounds[i]
				addke := want == "child+addke" || want == "ike+addke"
				kind := want
				if addke {
					kind = want[:len(want)-len("+addke")]
				}
				won, lost := p[0], p[1]
				if won.Outcome != OutcomeEstablished {
					won, lost = lost, won
				}
				msg := fmt.Sprintf("pair %d (%s): %+v / %+v", i, want, won, lost)
				require.Equal(t, OutcomeEstablished, won.Outcome, msg)
				require.Equal(t, OutcomeCollisionLost, lost.Outcome, msg)
				require.Equal(t, ReasonRekeyCollision, lost.Reason, msg)
				require.Empty(t, won.Reason, msg)
				require.Equal(t, kind, won.Kind, msg)
				require.Equal(t, kind, lost.Kind, msg)
				require.NotEqual(t, won.Initiator, lost.Initiator, msg)
				require.Equal(t, won.Initiator, lost.Responder, msg)
				require.Equal(t, lost.Initiator, won.Responder, msg)
				require.Positive(t, won.LatencyNs, msg)
				require.Zero(t, lost.LatencyNs, msg, "a lost collision has no latency")
				if addke {
					// CREATE_CHILD_SA, then one IKE_FOLLOWUP_KE round
					// (the ML-KEM-768 key in two datagrams, RFC 7383
					// fragments, and its answer) for the winner only.
					require.Equal(t, 2, lost.Datagrams, msg)
					require.GreaterOrEqual(t, won.Datagrams, 5, msg)
					require.Greater(t, won.Bytes, lost.Bytes+2000, msg)
				} else {
					require.Equal(t, 2, lost.Datagrams, msg)
					require.Equal(t, 2, won.Datagrams, msg)
				}
			}
		})
	}
}

// collisionPairs groups rekey records that started within 100 ms of each
// other, in start order, and returns the others apart.
func collisionPairs(rs []results.Rekey) (pairs [][2]results.Rekey, single []results.Rekey) {
	for i := 0; i < len(rs); i++ {
		if i+1 < len(rs) && rs[i+1].StartNs-rs[i].StartNs < int64(100*time.Millisecond) {
			pairs = append(pairs, [2]results.Rekey{rs[i], rs[i+1]})
			i++
			continue
		}
		single = append(single, rs[i])
	}
	return pairs, single
}

// TestRekeyCollisionDeterministic: the same topology and seed give the
// same results, collisions included.
func TestRekeyCollisionDeterministic(t *testing.T) {
	hub := Spec{Topology: "../../../topologies/hub-spoke-10.toml", Duration: 70 * time.Second, Seed: 3, Overrides: Overrides{
		"node[hub].peer_model": "strongswan-6", "model[strongswan-6].lifetimes.ike": "30s",
		"model[strongswan-6].lifetimes.child": "20s", "model[strongswan-6].lifetimes.jitter": 0.0}}
	two := collisionSpec(t, hybrid768, "aes256gcm16-x25519-ke1_mlkem768")
	two.trace, two.traceSent = nil, nil
	two.Seed = 7
	for _, spec := range []Spec{two, hub} {
		run := func() []byte {
			r, err := Run(spec)
			require.NoError(t, err)
			return encode(t, r)
		}
		a := run()
		require.Contains(t, string(a), `"outcome": "collision-lost"`)
		require.Equal(t, string(a), string(run()))
	}
}

// TestRekeyCollisionsHubSpoke: a hub and 20 branches with the same
// lifetimes without jitter, so every tunnel sees Child SA and IKE SA
// rekey collisions, some of them at the same time as each other (a Child
// SA rekey started on an IKE SA that turns out to be the redundant one of
// an IKE SA rekey collision). Every collision-lost record has the winner's
// established record of the same kind, the other way round, within a
// second; no record is left open.
func TestRekeyCollisionsHubSpoke(t *testing.T) {
	for _, s := range []string{"aes256gcm16-prfsha384-x25519", hybrid768} {
		ov := Overrides{"node[hub].peer_model": "strongswan-6", "group[branch].count": int64(20),
			"model[strongswan-6].lifetimes.ike": "30s", "model[strongswan-6].lifetimes.child": "20s",
			"model[strongswan-6].lifetimes.jitter": 0.0, "node[hub].proposals": []string{s}, "group[branch].proposals": []string{s}}
		r, err := Run(Spec{Topology: "../../../topologies/hub-spoke-10.toml", Duration: 100 * time.Second, Overrides: ov})
		require.NoError(t, err)
		lost := map[string]int{}
		for _, l := range r.Rekeys {
			require.NotEqual(t, "unknown", l.Kind, "%+v", l)
			require.NotEqual(t, ReasonRunEnded, l.Reason, "%+v", l)
			if l.Outcome != OutcomeCollisionLost {
				continue
			}
			lost[l.Kind]++
			won := 0
			for _, w := range r.Rekeys {
				if w.Outcome == OutcomeEstablished && w.Kind == l.Kind && w.Initiator == l.Responder && w.Responder == l.Initiator &&
					max(w.StartNs-l.StartNs, l.StartNs-w.StartNs) < int64(time.Second) {
					won++
				}
			}
			require.Equal(t, 1, won, "%s: the winner of %+v", s, l)
		}
		t.Logf("%s: %v collisions lost", s, lost)
		require.Positive(t, lost["ike"], s)
		require.Positive(t, lost["child"], s)
	}
}
