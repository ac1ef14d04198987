package ike_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/harness"
	"github.com/pqlab/pqlab/ike/wire"
)

// TestRekeyCollisionStorm runs both ends with the same short lifetimes
// and no jitter (Child SAs 20 s soft / 22 s hard, the IKE SA 30 s / 33 s),
// so that nearly every rekey of one end meets the peer's rekey of the same
// SA or of the IKE SA (RFC 7296 Sections 2.8.1, 2.8.2 and 2.25, RFC 9370
// Section 2.2.4), over a path that delays and reorders datagrams. Whatever
// the order in which requests, responses and Deletes arrive, no Child SA
// or IKE SA may reach its hard lifetime or die with a redundant IKE SA,
// and both ends keep the same Child SAs with the same keys.
func TestRekeyCollisionStorm(t *testing.T) {
	links := []struct {
		name string
		link harness.Link
	}{
		{"near", harness.Link{Latency: 15 * time.Millisecond, Jitter: 10 * time.Millisecond, Reorder: 0.2, ReorderDelay: 20 * time.Millisecond}},
		{"far", harness.Link{Latency: 40 * time.Millisecond, Jitter: 60 * time.Millisecond, Reorder: 0.3, ReorderDelay: 50 * time.Millisecond, Duplicate: 0.1}},
	}
	for _, c := range []struct {
		name, ike string
	}{
		{"classical", proposalFor("x25519", "")},
		{"hybrid", proposalFor("x25519", "mlkem768")},
	} {
		for _, l := range links {
			for seed := uint64(50); seed < 58; seed++ {
				t.Run(fmt.Sprintf("%s/%s/%d", c.name, l.name, seed), func(t *testing.T) { testCollisionStorm(t, c.ike, l.link, seed) })
			}
		}
	}
}

func testCollisionStorm(t *testing.T, ikeProposal string, link harness.Link, seed uint64) {
	ini, resp := pfsPeers("aes256gcm16-x25519-ke1_mlkem768")
	for _, pc := range []*ike.PeerConfig{&ini, &resp} {
		pc.IKEProposals = []string{ikeProposal}
		pc.IKELifetime = ike.Lifetime{Rekey: ike.Duration(30 * time.Second), Life: ike.Duration(33 * time.Second), NoJitter: true}
		for i := range pc.Children {
			pc.Children[i].Lifetime = ike.Lifetime{Rekey: ike.Duration(20 * time.Second), Life: ike.Duration(22 * time.Second), NoJitter: true}
		}
	}
	a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: seed, link: link})
	checkEstablished(t, a, b)
	a.e.CreateChildSA(p.Now, id, "pfs")
	runFor(t, p, 10*time.Minute, nil)
	defer func() {
		if t.Failed() {
			t.Log("timeline:\n" + timeline(a, b, p))
		}
	}()
	for _, e := range []*endpoint{a, b} {
		if f := failures(e); len(f) > 0 {
			t.Fatalf("failures %v", f)
		}
		// A Child SA replaced by a rekey may reach its hard lifetime before
		// the Delete of the rekey's initiator arrives (retransmitted after
		// 4 s, the soft-to-hard gap is 2 s): not a failure.
		replaced := map[uint32]bool{}
		for _, ev := range e.find(ike.EventChildSARekeyed) {
			replaced[ev.Child.RekeyOf] = true
		}
		for _, ev := range e.events {
			switch {
			case ev.Kind == ike.EventChildSADeleted && ev.Reason.Cause == ike.CauseLifetime && replaced[ev.Child.InboundSPI]:
			case ev.Kind == ike.EventChildSADeleted && (ev.Reason.Cause == ike.CauseLifetime || ev.Reason.Cause == ike.CauseIKEDeleted),
				ev.Kind == ike.EventIKESADeleted && ev.Reason.Cause != ike.CauseRekeyed && ev.Reason.Cause != ike.CauseRekeyCollision:
				t.Fatalf("%v\n%v", ev, e.events)
			}
		}
	}
	checkConsistent(t, a, b, 2)
	// One IKE SA holds the Child SAs at each end; another may be the
	// redundant SA of the last collision, still awaiting the loser's
	// Delete, or, when the loser never created it, its removal after twice
	// the retransmission schedule.
	for _, e := range []*endpoint{a, b} {
		holders := 0
		for id := range e.liveSAs() {
			if info, ok := e.e.SA(id); ok && len(info.Children) > 0 {
				holders++
			}
		}
		if holders != 1 || len(e.liveSAs()) > 2 {
			t.Fatalf("live IKE SAs %v / %v, %d holding Child SAs", a.liveSAs(), b.liveSAs(), holders)
		}
	}
	// 10 min / 20 s per Child SA x 2, 10 min / 30 s, with some retried.
	if n, m := len(a.find(ike.EventChildSARekeyed)), len(a.find(ike.EventIKESARekeyed)); n < 50 || m < 15 {
		t.Fatalf("%d Child SA rekeys, %d IKE SA rekeys", n, m)
	}
}

// timeline returns both ends' events and the IKE datagrams on the path in
// time order (the last 300), for failure messages.
func timeline(a, b *endpoint, p *harness.Pair) string {
	type line struct {
		at time.Time
		s  string
	}
	var ls []line
	for _, e := range []struct {
		name string
		ep   *endpoint
	}{{"A", a}, {"B", b}} {
		for _, ev := range e.ep.events {
			ls = append(ls, line{ev.Time, fmt.Sprintf("%s event %v spii=%016x", e.name, ev, ev.SPIi)})
		}
	}
	for _, r := range p.Trace {
		h, err := wire.ParseHeader(r.Data)
		if err != nil {
			continue
		}
		from := "B"
		if r.FromA {
			from = "A"
		}
		ls = append(ls, line{r.Time, fmt.Sprintf("%s %s %v spii=%016x mid=%d resp=%v %d octets", from, r.Fate, h.Exchange, h.SPIi, h.MessageID, h.IsResponse(), len(r.Data))})
	}
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].at.Before(ls[j].at) })
	if len(ls) > 300 {
		ls = ls[len(ls)-300:]
	}
	var sb strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&sb, "%12v %s\n", l.at.Sub(t0), l.s)
	}
	return sb.String()
}
