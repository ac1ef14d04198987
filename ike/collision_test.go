package ike

import (
	"bytes"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/wire"
)

// fixedNonces hands out chosen nonces first, then the wrapped entropy's.
type fixedNonces struct {
	entropy
	next [][]byte
}

func (f *fixedNonces) nonce(n int) ([]byte, error) {
	if len(f.next) > 0 {
		v := f.next[0]
		f.next = f.next[1:]
		return v, nil
	}
	return f.entropy.nonce(n)
}

func nonceOf(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// collisionNonces makes each end draw the given nonces next: first the one
// of its own request, then the one of its response to the peer.
func (p *wbPair) collisionNonces(reqA, respA, reqB, respB byte) {
	p.a.ent = &fixedNonces{entropy: p.a.ent, next: [][]byte{nonceOf(reqA), nonceOf(respA)}}
	p.b.ent = &fixedNonces{entropy: p.b.ent, next: [][]byte{nonceOf(reqB), nonceOf(respB)}}
}

func (p *wbPair) events(a bool) []Event {
	if a {
		return p.evA
	}
	return p.evB
}

// liveChildren replays one end's events into its Child SAs.
func (p *wbPair) liveChildren(a bool) map[uint32]ChildSA {
	m := map[uint32]ChildSA{}
	for _, ev := range p.events(a) {
		switch ev.Kind {
		case EventChildSAInstalled, EventChildSARekeyed:
			m[ev.Child.InboundSPI] = *ev.Child
		case EventChildSADeleted:
			delete(m, ev.Child.InboundSPI)
		}
	}
	return m
}

// liveIKE replays one end's events into its IKE SAs.
func (p *wbPair) liveIKE(a bool) map[SAID]Event {
	m := map[SAID]Event{}
	for _, ev := range p.events(a) {
		switch ev.Kind {
		case EventIKESAEstablished, EventIKESARekeyed:
			m[ev.SA] = ev
		case EventIKESADeleted:
			delete(m, ev.SA)
		}
	}
	return m
}

func (p *wbPair) deletions(a bool, c Cause) int {
	n := 0
	for _, ev := range p.events(a) {
		if (ev.Kind == EventChildSADeleted || ev.Kind == EventIKESADeleted) && ev.Reason.Cause == c {
			n++
		}
	}
	return n
}

// checkOneChild asserts that each end holds one Child SA of the given name,
// the same one, and returns both views.
func (p *wbPair) checkOneChild(t *testing.T, name string) (ChildSA, ChildSA) {
	t.Helper()
	var x, y *ChildSA
	for _, a := range []bool{true, false} {
		for _, c := range p.liveChildren(a) {
			if c.Name != name {
				continue
			}
			c := c
			if a {
				if x != nil {
					t.Fatalf("A holds two %q Child SAs: %v", name, p.evA)
				}
				x = &c
			} else {
				if y != nil {
					t.Fatalf("B holds two %q Child SAs: %v", name, p.evB)
				}
				y = &c
			}
		}
	}
	if x == nil || y == nil || x.InboundSPI != y.OutboundSPI || x.OutboundSPI != y.InboundSPI || !bytes.Equal(x.Outbound.Encr, y.Inbound.Encr) {
		t.Fatalf("Child SAs do not match:\n%v\n%v", p.evA, p.evB)
	}
	return *x, *y
}

// TestChildRekeyCollision: both ends rekey the same Child SA at once. Both
// CREATE_CHILD_SA exchanges complete; the Child SA created by the exchange
// with the lowest of the four nonces is deleted by the end that initiated
// that exchange, the other initiator deletes the old Child SA (RFC 7296
// Sections 2.8.1 and 2.25.1). With an additional key exchange the loser
// abandons its exchange before IKE_FOLLOWUP_KE (RFC 9370 Section 2.2.4).
func TestChildRekeyCollision(t *testing.T) {
	for _, c := range []struct {
		name, child              string
		reqA, respA, reqB, respB byte
		aWins, multiKE           bool
	}{
		// The lowest nonce is A's request nonce: A's exchange loses.
		{"A-lowest-request", "net", 0x10, 0x80, 0x90, 0xa0, false, false},
		// The lowest nonce is A's response nonce, which belongs to B's
		// exchange: B loses although A's request nonce is below B's.
		{"B-lowest-response", "net", 0x40, 0x10, 0x60, 0x80, true, false},
		// A nonce that is a prefix of equal octets: a byte-wise comparison.
		{"B-lowest-request", "net", 0x91, 0x92, 0x90, 0x93, true, false},
		{"multi-A-loses", "pfs", 0x10, 0x80, 0x90, 0xa0, false, true},
		{"multi-B-loses", "pfs", 0x40, 0x10, 0x60, 0x80, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, id := newWBPair(t)
			if c.child != "net" {
				p.a.CreateChildSA(p.now, id, c.child)
				p.settle()
			}
			var spiA, spiB uint32
			for s, ch := range p.liveChildren(true) {
				if ch.Name == c.child {
					spiA, spiB = s, ch.OutboundSPI
				}
			}
			nA, nB := len(p.evA), len(p.evB)
			p.collisionNonces(c.reqA, c.respA, c.reqB, c.respB)
			p.a.RekeyChildSA(p.now, spiA)
			p.b.RekeyChildSA(p.now, spiB)
			p.settle()
			x, y := p.checkOneChild(t, c.child)
			if x.InboundSPI == spiA {
				t.Fatal("the Child SA was not rekeyed")
			}
			// The survivor was created by the winner's exchange.
			if x.Initiator != c.aWins || y.Initiator == c.aWins {
				t.Fatalf("surviving Child SA created by the wrong exchange: A initiator %v, want %v", x.Initiator, c.aWins)
			}
			rekeysA, rekeysB := 0, 0
			loserIsA := !c.aWins
			for _, ev := range p.evA[nA:] {
				if ev.Kind == EventChildSARekeyed {
					rekeysA++
				}
			}
			for _, ev := range p.evB[nB:] {
				if ev.Kind == EventChildSARekeyed {
					rekeysB++
				}
			}
			checkCollisionFailures(t, p, nA, nB, c.multiKE, loserIsA)
			if c.multiKE {
				// Only the winner's SA was created; nothing redundant.
				if rekeysA != 1 || rekeysB != 1 || p.deletions(true, CauseRekeyCollision)+p.deletions(false, CauseRekeyCollision) != 0 {
					t.Fatalf("rekeys %d / %d\n%v\n%v", rekeysA, rekeysB, p.evA[nA:], p.evB[nB:])
				}
				return
			}
			// Both exchanges created an SA; the loser deleted its own.
			if rekeysA != 2 || rekeysB != 2 {
				t.Fatalf("rekeys %d / %d, want 2 each (both exchanges complete)\n%v\n%v", rekeysA, rekeysB, p.evA[nA:], p.evB[nB:])
			}
			if p.deletions(loserIsA, CauseRekeyCollision) != 1 || p.deletions(!loserIsA, CauseRekeyCollision) != 0 {
				t.Fatalf("redundant SA not deleted by the loser\n%v\n%v", p.evA[nA:], p.evB[nB:])
			}
		})
	}
}

// TestIKERekeyCollision: both ends rekey the IKE SA at once. Both new IKE
// SAs are created; the one from the exchange with the lowest nonce is
// deleted by its creator, the survivor inherits the Child SAs and the old
// SA is deleted by the survivor's initiator (RFC 7296 Section 2.8.2). With
// an additional key exchange the loser abandons before IKE_FOLLOWUP_KE.
func TestIKERekeyCollision(t *testing.T) {
	for _, c := range []struct {
		name                     string
		proposal                 string
		reqA, respA, reqB, respB byte
		aWins, multiKE           bool
	}{
		{"A-loses", "aes256gcm16-prfsha384-x25519", 0x10, 0x80, 0x90, 0xa0, false, false},
		{"B-loses", "aes256gcm16-prfsha384-x25519", 0x40, 0x10, 0x60, 0x80, true, false},
		{"multi-A-loses", "aes256gcm16-prfsha384-x25519-ke1_mlkem768", 0x10, 0x80, 0x90, 0xa0, false, true},
		{"multi-B-loses", "aes256gcm16-prfsha384-x25519-ke1_mlkem768", 0x40, 0x10, 0x60, 0x80, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ini, resp := wbPeers()
			ini.IKEProposals, resp.IKEProposals = []string{c.proposal}, []string{c.proposal}
			p := newWBPairWith(t, ini, resp)
			idA := p.kinds(true, EventIKESAEstablished)[0].SA
			idB := p.kinds(false, EventIKESAEstablished)[0].SA
			p.a.CreateChildSA(p.now, idA, "pfs")
			p.settle()
			nA, nB := len(p.evA), len(p.evB)
			p.collisionNonces(c.reqA, c.respA, c.reqB, c.respB)
			p.a.RekeyIKESA(p.now, idA)
			p.b.RekeyIKESA(p.now, idB)
			p.settle()
			la, lb := p.liveIKE(true), p.liveIKE(false)
			if len(la) != 1 || len(lb) != 1 {
				t.Fatalf("live IKE SAs %d / %d\n%v\n%v", len(la), len(lb), p.evA[nA:], p.evB[nB:])
			}
			for id, ev := range la {
				if id == idA || ev.Initiator != c.aWins {
					t.Fatalf("A kept SA %d (initiator %v), want the one created by the winner", id, ev.Initiator)
				}
				info, _ := p.a.SA(id)
				if len(info.Children) != 2 {
					t.Fatalf("surviving IKE SA has %d Child SAs", len(info.Children))
				}
			}
			for id := range lb {
				if info, _ := p.b.SA(id); len(info.Children) != 2 {
					t.Fatalf("B's surviving IKE SA has %d Child SAs", len(info.Children))
				}
			}
			if len(p.a.sas) != 1 || len(p.b.sas) != 1 {
				t.Fatalf("engines hold %d / %d IKE SAs", len(p.a.sas), len(p.b.sas))
			}
			p.checkOneChild(t, "net")
			p.checkOneChild(t, "pfs")
			rekeys := len(p.kinds(true, EventIKESARekeyed)) + len(p.kinds(false, EventIKESARekeyed))
			collisions := p.deletions(true, CauseRekeyCollision) + p.deletions(false, CauseRekeyCollision)
			if c.multiKE && (rekeys != 2 || collisions != 0) || !c.multiKE && (rekeys != 4 || collisions != 1 ||
				p.deletions(!c.aWins, CauseRekeyCollision) != 1) {
				t.Fatalf("%d rekey events, %d collision deletions\n%v\n%v", rekeys, collisions, p.evA[nA:], p.evB[nB:])
			}
			for _, ev := range append(p.evA[nA:], p.evB[nB:]...) {
				if ev.Kind == EventChildSADeleted {
					t.Fatalf("unexpected %v", ev)
				}
			}
			checkCollisionFailures(t, p, nA, nB, c.multiKE, !c.aWins)
			// The survivor works.
			for id := range la {
				p.a.RekeyIKESA(p.now, id)
			}
			p.settle()
			if len(p.liveIKE(true)) != 1 || len(p.liveIKE(false)) != 1 {
				t.Fatal("rekey of the survivor failed")
			}
		})
	}
}

// checkCollisionFailures checks the failure events after a rekey
// collision: none, except, when the loser abandoned its exchange before
// IKE_FOLLOWUP_KE (lostEarly), one EventExchangeFailed with
// CauseRekeyCollision at the loser.
func checkCollisionFailures(t *testing.T, p *wbPair, nA, nB int, lostEarly, loserIsA bool) {
	t.Helper()
	for _, a := range []bool{true, false} {
		evs := p.evB[nB:]
		if a {
			evs = p.evA[nA:]
		}
		lost := 0
		for _, ev := range evs {
			switch {
			case ev.Kind == EventExchangeFailed && ev.Reason.Cause == CauseRekeyCollision:
				lost++
			case ev.Kind == EventFailed || ev.Kind == EventExchangeFailed:
				t.Fatalf("failure %v", ev)
			}
		}
		want := 0
		if lostEarly && a == loserIsA {
			want = 1
		}
		if lost != want {
			t.Fatalf("A=%v: %d lost-collision events, want %d\n%v\n%v", a, lost, want, p.evA[nA:], p.evB[nB:])
		}
	}
}

// childKeys maps one end's live Child SAs to their inbound keys.
func (p *wbPair) childKeys(a bool) map[uint32]string {
	m := map[uint32]string{}
	for spi, c := range p.liveChildren(a) {
		m[spi] = fmt.Sprintf("%x/%x/%08x", c.Inbound.Encr, c.Outbound.Encr, c.OutboundSPI)
	}
	return m
}

// TestIKERekeyCollisionDeleteFirst: a classical IKE SA rekey collision
// that A wins (B's exchange holds the lowest nonce), where B's Delete of
// its redundant IKE SA reaches A before the response to A's own
// CREATE_CHILD_SA (RFC 7296 Section 2.8.2; a busy gateway may complete
// its jobs out of order). A moved the Child SAs to B's new SA when it
// answered B's request; they must not die with it but end on the
// surviving SA, A's, at both ends, with their keys unchanged.
func TestIKERekeyCollisionDeleteFirst(t *testing.T) {
	ini, resp := wbPeers()
	const prop = "aes256gcm16-prfsha384-x25519"
	ini.IKEProposals, resp.IKEProposals = []string{prop}, []string{prop}
	p := newWBPairWith(t, ini, resp)
	idA := p.kinds(true, EventIKESAEstablished)[0].SA
	idB := p.kinds(false, EventIKESAEstablished)[0].SA
	p.a.CreateChildSA(p.now, idA, "pfs")
	p.settle()
	keysA, keysB := p.childKeys(true), p.childKeys(false)
	if len(keysA) != 2 || len(keysB) != 2 {
		t.Fatalf("Child SAs %d / %d", len(keysA), len(keysB))
	}
	nA, nB := len(p.evA), len(p.evB)
	p.collisionNonces(0x40, 0x10, 0x60, 0x80) // B's exchange holds 0x10: A wins
	p.a.RekeyIKESA(p.now, idA)
	p.b.RekeyIKESA(p.now, idB)
	reqA, reqB := drainOut(p.a), drainOut(p.b)
	if len(reqA) != 1 || len(reqB) != 1 {
		t.Fatalf("requests %d / %d", len(reqA), len(reqB))
	}
	respToB := p.deliverTo(p.a, reqB[0]) // A answers B's rekey
	respToA := p.deliverTo(p.b, reqA[0]) // B answers A's rekey
	if len(respToB) != 1 || len(respToA) != 1 {
		t.Fatalf("responses %d / %d", len(respToB), len(respToA))
	}
	del := p.deliverTo(p.b, respToB[0]) // B lost: deletes its new SA
	if len(del) != 1 {
		t.Fatalf("B sent %d datagrams after losing, want its Delete", len(del))
	}
	if len(p.liveChildren(true)) != 2 {
		t.Fatal("setup: A lost Child SAs before the Delete")
	}
	delResp := p.deliverTo(p.a, del[0]) // the Delete overtakes ...
	if len(p.liveChildren(true)) != 2 {
		t.Fatalf("A deleted the Child SAs with B's redundant IKE SA\n%v", p.evA[nA:])
	}
	out := p.deliverTo(p.a, respToA[0]) // ... A's response
	p.pump(p.b, delResp)
	p.pump(p.b, out)
	p.settle()
	la, lb := p.liveIKE(true), p.liveIKE(false)
	if len(la) != 1 || len(lb) != 1 || len(p.a.sas) != 1 || len(p.b.sas) != 1 {
		t.Fatalf("live IKE SAs %d / %d\n%v\n%v", len(la), len(lb), p.evA[nA:], p.evB[nB:])
	}
	for id, ev := range la {
		if id == idA || !ev.Initiator {
			t.Fatalf("A kept SA %d (initiator %v), want the one its own exchange created", id, ev.Initiator)
		}
		if info, _ := p.a.SA(id); len(info.Children) != 2 {
			t.Fatalf("A's surviving IKE SA has %d Child SAs\n%v", len(info.Children), p.evA[nA:])
		}
	}
	for id := range lb {
		if info, _ := p.b.SA(id); len(info.Children) != 2 {
			t.Fatalf("B's surviving IKE SA has %d Child SAs\n%v", len(info.Children), p.evB[nB:])
		}
	}
	if !maps.Equal(keysA, p.childKeys(true)) || !maps.Equal(keysB, p.childKeys(false)) {
		t.Fatalf("traffic keys changed:\n%v\n%v", keysA, p.childKeys(true))
	}
	for _, ev := range append(p.evA[nA:], p.evB[nB:]...) {
		if ev.Kind == EventChildSADeleted || ev.Kind == EventFailed || ev.Kind == EventExchangeFailed {
			t.Fatalf("unexpected %v", ev)
		}
	}
	if p.deletions(false, CauseRekeyCollision) != 1 {
		t.Fatalf("B did not delete its redundant SA\n%v", p.evB[nB:])
	}
	// The Child SAs work on the survivor: rekey one from each end.
	for spi := range keysA {
		if err := p.a.RekeyChildSA(p.now, spi); err != nil {
			t.Fatal(err)
		}
		break
	}
	p.settle()
	for spi, c := range p.liveChildren(false) {
		if c.Name == "pfs" {
			if err := p.b.RekeyChildSA(p.now, spi); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.settle()
	p.checkOneChild(t, "net")
	p.checkOneChild(t, "pfs")
	if n := len(p.kinds(true, EventChildSARekeyed)); n < 2 {
		t.Fatalf("%d Child SA rekeys on the survivor", n)
	}
	for _, ev := range append(p.evA[nA:], p.evB[nB:]...) {
		if ev.Kind == EventExchangeFailed || ev.Kind == EventFailed {
			t.Fatalf("unexpected %v", ev)
		}
	}
}

// TestChildRekeyCollisionLateRefusal: both ends rekey the Child SA "net",
// but B's exchange completes at B before A's request arrives there, so B
// sees no collision and refuses A's request with TEMPORARY_FAILURE. A,
// which answered B's rekey meanwhile, drops its exchange (RFC 7296
// Section 2.8.2, last paragraph) and reports it as a lost collision.
func TestChildRekeyCollisionLateRefusal(t *testing.T) {
	p, _ := newWBPair(t)
	var spiA, spiB uint32
	for s, ch := range p.liveChildren(true) {
		if ch.Name == "net" {
			spiA, spiB = s, ch.OutboundSPI
		}
	}
	nA, nB := len(p.evA), len(p.evB)
	p.a.RekeyChildSA(p.now, spiA)
	p.b.RekeyChildSA(p.now, spiB)
	reqA, reqB := drainOut(p.a), drainOut(p.b)
	if len(reqA) != 1 || len(reqB) != 1 {
		t.Fatalf("requests %d / %d", len(reqA), len(reqB))
	}
	respToB := p.deliverTo(p.a, reqB[0])
	afterB := p.deliverTo(p.b, respToB[0]) // B's rekey completes: it deletes the old Child SA
	refusal := p.deliverTo(p.b, reqA[0])
	if len(refusal) != 1 {
		t.Fatalf("B answered A's rekey with %d datagrams", len(refusal))
	}
	if evs := p.kinds(true, EventExchangeFailed); len(evs) != 0 {
		t.Fatalf("setup: %v", evs)
	}
	p.deliverTo(p.a, refusal[0])
	lost := p.kinds(true, EventExchangeFailed)
	if len(lost) != 1 || lost[0].Reason.Cause != CauseRekeyCollision || lost[0].Child == nil || lost[0].Child.Name != "net" {
		t.Fatalf("A's lost exchange reported as %v", lost)
	}
	p.pump(p.a, afterB)
	p.settle()
	x, _ := p.checkOneChild(t, "net")
	if x.InboundSPI == spiA || x.Initiator {
		t.Fatalf("surviving Child SA %+v, want B's", x)
	}
	if f := p.kinds(false, EventExchangeFailed); len(f) != 0 || len(p.kinds(true, EventExchangeFailed)) != 1 {
		t.Fatalf("failures\n%v\n%v", p.evA[nA:], p.evB[nB:])
	}
}

// exchangeOf returns the exchange type of a datagram (port 500).
func exchangeOf(t *testing.T, d Datagram) wire.ExchangeType {
	t.Helper()
	h, err := wire.ParseHeader(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	return h.Exchange
}

// TestOwnRekeyWaitsForPeerRekey: while the peer's rekey is waiting for
// its IKE_FOLLOWUP_KE rounds (RFC 9370 Section 2.2.4), this end starts no
// rekey the peer would have to refuse or that would collide with it: no
// IKE SA rekey and no Child SA rekey while the peer rekeys the IKE SA, no
// IKE SA rekey while it rekeys a Child SA (RFC 7296 Section 2.25.2). They
// start once the peer's exchange is over.
func TestOwnRekeyWaitsForPeerRekey(t *testing.T) {
	t.Run("peer-rekeys-IKE", func(t *testing.T) {
		p, idA := newWBPair(t)
		idB := p.kinds(false, EventIKESAEstablished)[0].SA
		spiA := childNamed(p.liveChildren(true), "net")
		p.b.RekeyIKESA(p.now, idB)
		resp := firstRoundToA(t, p) // A answers; B's IKE_FOLLOWUP_KE is due
		if err := p.a.RekeyChildSA(p.now, spiA); err != nil {
			t.Fatal(err)
		}
		if err := p.a.RekeyIKESA(p.now, idA); err != nil {
			t.Fatal(err)
		}
		if out := drainOut(p.a); len(out) != 0 {
			t.Fatalf("A sent %d requests while B's IKE SA rekey was open", len(out))
		}
		out := p.deliverAll(t, p.a, p.deliverTo(p.b, resp[0]), wire.ExchangeIKEFollowupKE)
		// The response, then the Child SA rekey on the new IKE SA; the IKE
		// SA rekey is moot (the SA was just rekeyed).
		if creates := createRequests(t, out); creates != 1 {
			t.Fatalf("A sent %d CREATE_CHILD_SA requests after B's rekey, want the Child SA rekey", creates)
		}
		p.pump(p.b, out)
		p.settle()
		if len(p.liveIKE(true)) != 1 || len(p.liveIKE(false)) != 1 {
			t.Fatalf("live IKE SAs\n%v\n%v", p.evA, p.evB)
		}
		x, _ := p.checkOneChild(t, "net")
		if x.InboundSPI == spiA || len(p.kinds(true, EventChildSARekeyed)) != 1 || len(p.kinds(true, EventIKESARekeyed)) != 1 {
			t.Fatalf("rekeys\n%v", p.evA)
		}
		noFailedExchanges(t, p)
	})
	t.Run("peer-rekeys-child", func(t *testing.T) {
		p, idA := newWBPair(t)
		p.a.CreateChildSA(p.now, idA, "pfs")
		p.settle()
		spiB := childNamed(p.liveChildren(false), "pfs")
		p.b.RekeyChildSA(p.now, spiB)
		resp := firstRoundToA(t, p)
		if err := p.a.RekeyIKESA(p.now, idA); err != nil {
			t.Fatal(err)
		}
		if out := drainOut(p.a); len(out) != 0 {
			t.Fatalf("A sent %d requests while B's Child SA rekey was open", len(out))
		}
		out := p.deliverAll(t, p.a, p.deliverTo(p.b, resp[0]), wire.ExchangeIKEFollowupKE)
		if creates := createRequests(t, out); creates != 1 {
			t.Fatalf("A sent %d CREATE_CHILD_SA requests after B's rekey, want its IKE SA rekey", creates)
		}
		p.pump(p.b, out)
		p.settle()
		la := p.liveIKE(true)
		if len(la) != 1 || len(p.liveIKE(false)) != 1 || len(p.kinds(true, EventIKESARekeyed)) != 1 {
			t.Fatalf("IKE SAs\n%v\n%v", p.evA, p.evB)
		}
		for id := range la {
			if id == idA {
				t.Fatal("the IKE SA was not rekeyed")
			}
		}
		p.checkOneChild(t, "net")
		p.checkOneChild(t, "pfs")
		noFailedExchanges(t, p)
	})
}

// firstRoundToA delivers B's one pending request (the first round of a
// multi-round exchange) to A and returns A's response, checking that A now
// waits for B's IKE_FOLLOWUP_KE.
func firstRoundToA(t *testing.T, p *wbPair) []Datagram {
	t.Helper()
	req := drainOut(p.b)
	resp := p.deliverTo(p.a, req[0])
	if len(resp) != 1 || len(onlySA(t, p.a).xchgs) != 1 {
		t.Fatalf("setup: %d responses, peer exchanges %d", len(resp), len(onlySA(t, p.a).xchgs))
	}
	return resp
}

// noFailedExchanges fails the test if either end reported a failed
// exchange.
func noFailedExchanges(t *testing.T, p *wbPair) {
	t.Helper()
	if f := append(p.kinds(true, EventExchangeFailed), p.kinds(false, EventExchangeFailed)...); len(f) > 0 {
		t.Fatalf("failed exchanges %v", f)
	}
}

// childNamed returns the inbound SPI of the live Child SA named name.
func childNamed(live map[uint32]ChildSA, name string) uint32 {
	for spi, ch := range live {
		if ch.Name == name {
			return spi
		}
	}
	return 0
}

// createRequests counts the CREATE_CHILD_SA requests among out.
func createRequests(t *testing.T, out []Datagram) int {
	n := 0
	for _, d := range out {
		if exchangeOf(t, d) == wire.ExchangeCreateChildSA && !isResponse(t, d) {
			n++
		}
	}
	return n
}

func isResponse(t *testing.T, d Datagram) bool {
	t.Helper()
	h, err := wire.ParseHeader(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	return h.IsResponse()
}

// deliverAll hands dst the datagrams (fragments) of one message of
// exchange type exch and returns what dst sends in reply.
func (p *wbPair) deliverAll(t *testing.T, dst *Engine, ds []Datagram, exch wire.ExchangeType) []Datagram {
	t.Helper()
	if len(ds) == 0 {
		t.Fatalf("no %v sent", exch)
	}
	var out []Datagram
	for _, d := range ds {
		if got := exchangeOf(t, d); got != exch {
			t.Fatalf("%v sent, want %v", got, exch)
		}
		out = append(out, p.deliverTo(dst, d)...)
	}
	return out
}

// pump delivers ds to dst and everything sent in reply, back and forth,
// until both ends are quiet.
func (p *wbPair) pump(dst *Engine, ds []Datagram) {
	for len(ds) > 0 {
		var next []Datagram
		for _, d := range ds {
			next = append(next, p.deliverTo(dst, d)...)
		}
		ds = next
		if dst == p.a {
			dst = p.b
		} else {
			dst = p.a
		}
	}
}

// runUntil runs both engines' timers and shuttles their datagrams until
// the virtual clock reaches end.
func (p *wbPair) runUntil(end time.Time) {
	for {
		p.settle()
		next := end
		for _, e := range []*Engine{p.a, p.b} {
			if t, ok := e.NextTimeout(); ok && t.Before(next) {
				next = t
			}
		}
		if next.Before(p.now) {
			next = p.now
		}
		if !next.Before(end) {
			p.now = end
			p.a.HandleTimeout(p.now)
			p.b.HandleTimeout(p.now)
			p.settle()
			return
		}
		p.now = next
		p.a.HandleTimeout(p.now)
		p.b.HandleTimeout(p.now)
	}
}

// TestRekeyRefusalRetryBeforeHardLifetime: an IKE SA rekey (A) and a
// Child SA rekey (B) start at the same moment; each end refuses the
// other's request with TEMPORARY_FAILURE (RFC 7296 Section 2.25.2). B's
// Child SA reaches its hard lifetime 2 s after its soft one, sooner than
// the usual retry delay (2 to 10 s): the retry comes within the time left,
// and the Child SA is rekeyed before it expires.
func TestRekeyRefusalRetryBeforeHardLifetime(t *testing.T) {
	ini, resp := wbPeers()
	ini.Children = ini.Children[:1]
	resp.Children = resp.Children[:1]
	ini.Children[0].Lifetime = Lifetime{Rekey: Duration(time.Hour), NoJitter: true}
	resp.Children[0].Lifetime = Lifetime{Rekey: Duration(20 * time.Second), Life: Duration(22 * time.Second), NoJitter: true}
	p := newWBPairWith(t, ini, resp)
	start := p.now
	idA := p.kinds(true, EventIKESAEstablished)[0].SA
	sb := onlySA(t, p.b)
	if len(sb.children) != 1 {
		t.Fatalf("B holds %d Child SAs", len(sb.children))
	}
	c := sb.children[0]
	hard := c.expireAt
	if hard.IsZero() || c.rekeyAt.IsZero() || hard.Sub(c.rekeyAt) != 2*time.Second {
		t.Fatalf("B's Child SA lifetimes: rekey %v, hard %v", c.rekeyAt, c.expireAt)
	}
	// B's soft lifetime fires; A starts an IKE SA rekey at the same moment.
	p.now = c.rekeyAt
	p.b.HandleTimeout(p.now)
	if err := p.a.RekeyIKESA(p.now, idA); err != nil {
		t.Fatal(err)
	}
	reqA, reqB := drainOut(p.a), drainOut(p.b)
	if len(reqA) != 1 || len(reqB) != 1 {
		t.Fatalf("requests %d / %d", len(reqA), len(reqB))
	}
	refusalToB := p.deliverTo(p.a, reqB[0])
	refusalToA := p.deliverTo(p.b, reqA[0])
	refused := p.now
	p.pump(p.b, refusalToB)
	p.pump(p.a, refusalToA)
	if p.a.Stats().Dropped[DropInvalid] != 1 || p.b.Stats().Dropped[DropInvalid] != 1 {
		t.Fatalf("refusals: A %d, B %d, want one each", p.a.Stats().Dropped[DropInvalid], p.b.Stats().Dropped[DropInvalid])
	}
	if c.state != childInstalled || c.rekeyAt.IsZero() || !c.rekeyAt.Before(hard) ||
		c.rekeyAt.Sub(refused) < retryFloor || c.rekeyAt.Sub(refused) > hard.Sub(refused)/2 {
		t.Fatalf("B retries at %v after the refusal, hard lifetime %v after it", c.rekeyAt.Sub(refused), hard.Sub(refused))
	}
	if sa := onlySA(t, p.a); sa.rekeyAt.Sub(refused) < retryMin {
		t.Fatalf("A retries its IKE SA rekey %v after the refusal, want the usual delay", sa.rekeyAt.Sub(refused))
	}
	p.runUntil(start.Add(40 * time.Second))
	for _, a := range []bool{true, false} {
		for _, ev := range p.events(a) {
			if ev.Kind == EventChildSADeleted && ev.Reason.Cause == CauseLifetime || ev.Kind == EventExchangeFailed || ev.Kind == EventFailed {
				t.Fatalf("A=%v: %v", a, ev)
			}
		}
	}
	rk := p.kinds(false, EventChildSARekeyed)
	if len(rk) == 0 || !rk[0].Time.Before(hard) {
		t.Fatalf("B's Child SA rekeys %v, want one before %v", rk, hard)
	}
	p.checkOneChild(t, "net")
	if len(p.kinds(true, EventIKESARekeyed)) != 1 || len(p.liveIKE(true)) != 1 || len(p.liveIKE(false)) != 1 {
		t.Fatalf("IKE SA rekey\n%v\n%v", p.evA, p.evB)
	}
}

// TestChildRekeyCollisionDeleteFirst: both ends rekey the Child SA "net";
// A wins, and B's Delete of its redundant Child SA reaches A before the
// response to A's own request. A reports the redundant SA replaced, not
// deleted by the peer, and both ends end with A's Child SA (RFC 7296
// Section 2.8.1).
func TestChildRekeyCollisionDeleteFirst(t *testing.T) {
	p, _ := newWBPair(t)
	var spiA, spiB uint32
	for s, ch := range p.liveChildren(true) {
		if ch.Name == "net" {
			spiA, spiB = s, ch.OutboundSPI
		}
	}
	nA := len(p.evA)
	p.collisionNonces(0x40, 0x10, 0x60, 0x80) // B's exchange holds 0x10: A wins
	p.a.RekeyChildSA(p.now, spiA)
	p.b.RekeyChildSA(p.now, spiB)
	reqA, reqB := drainOut(p.a), drainOut(p.b)
	respToB := p.deliverTo(p.a, reqB[0])
	respToA := p.deliverTo(p.b, reqA[0])
	del := p.deliverTo(p.b, respToB[0]) // B lost: deletes its new Child SA
	if len(del) != 1 {
		t.Fatalf("B sent %d datagrams after losing, want its Delete", len(del))
	}
	delResp := p.deliverTo(p.a, del[0])
	var gone []Event
	for _, ev := range p.evA[nA:] {
		if ev.Kind == EventChildSADeleted {
			gone = append(gone, ev)
		}
	}
	if len(gone) != 1 || gone[0].Reason.Cause != CauseRekeyed {
		t.Fatalf("A's deletions %v, want B's redundant Child SA replaced", gone)
	}
	out := p.deliverTo(p.a, respToA[0])
	p.pump(p.b, delResp)
	p.pump(p.b, out)
	p.settle()
	x, _ := p.checkOneChild(t, "net")
	if !x.Initiator || x.InboundSPI == spiA {
		t.Fatalf("surviving Child SA %+v, want A's", x)
	}
	if f := append(p.kinds(true, EventExchangeFailed), p.kinds(false, EventExchangeFailed)...); len(f) > 0 {
		t.Fatalf("failed exchanges %v", f)
	}
}

// TestPeerExchangeGivenUp: the peer's IKE SA rekey never sends its
// IKE_FOLLOWUP_KE. Once the peer has certainly given it up (twice its
// retransmission schedule), this end forgets it, and the Child SA rekey
// that waited for it starts.
func TestPeerExchangeGivenUp(t *testing.T) {
	p, _ := newWBPair(t)
	idB := p.kinds(false, EventIKESAEstablished)[0].SA
	var spiA uint32
	for s, ch := range p.liveChildren(true) {
		if ch.Name == "net" {
			spiA = s
		}
	}
	p.b.RekeyIKESA(p.now, idB)
	if resp := p.deliverTo(p.a, drainOut(p.b)[0]); len(resp) != 1 {
		t.Fatalf("%d responses", len(resp))
	}
	answered := p.now
	if err := p.a.RekeyChildSA(p.now, spiA); err != nil {
		t.Fatal(err)
	}
	sa := onlySA(t, p.a)
	for len(sa.xchgs) > 0 {
		if out := drainOut(p.a); len(out) != 0 {
			t.Fatalf("A sent %d datagrams at %v while B's rekey was open", len(out), p.now.Sub(answered))
		}
		next, ok := p.a.NextTimeout()
		if !ok || next.Sub(answered) > time.Hour {
			t.Fatal("B's exchange is never given up")
		}
		p.now = next
		p.a.HandleTimeout(p.now)
	}
	if waited := p.now.Sub(answered); waited != p.a.peerExchangeTimeout() {
		t.Fatalf("given up after %v, want %v", waited, p.a.peerExchangeTimeout())
	}
	out := drainOut(p.a)
	if len(out) != 1 || exchangeOf(t, out[0]) != wire.ExchangeCreateChildSA || isResponse(t, out[0]) {
		t.Fatalf("A sent %d datagrams once B's rekey was given up, want its Child SA rekey", len(out))
	}
}

// TestChildDeleteOnRedundantIKESA: during a classical IKE SA rekey
// collision that A wins, A holds the Child SAs on B's new IKE SA (it
// answered B's rekey) and deletes one there. At B that SA is the
// redundant one (B lost), while B holds the Child SAs on A's new SA: the
// Delete still finds the Child SA, so both ends drop it (RFC 7296
// Sections 1.4.1 and 2.8.2).
func TestChildDeleteOnRedundantIKESA(t *testing.T) {
	ini, resp := wbPeers()
	const prop = "aes256gcm16-prfsha384-x25519"
	ini.IKEProposals, resp.IKEProposals = []string{prop}, []string{prop}
	p := newWBPairWith(t, ini, resp)
	idA := p.kinds(true, EventIKESAEstablished)[0].SA
	idB := p.kinds(false, EventIKESAEstablished)[0].SA
	p.a.CreateChildSA(p.now, idA, "pfs")
	p.settle()
	var spiNet, spiNetB uint32
	for s, ch := range p.liveChildren(true) {
		if ch.Name == "net" {
			spiNet, spiNetB = s, ch.OutboundSPI
		}
	}
	p.collisionNonces(0x40, 0x10, 0x60, 0x80) // B's exchange holds 0x10: A wins
	p.a.RekeyIKESA(p.now, idA)
	p.b.RekeyIKESA(p.now, idB)
	reqA, reqB := drainOut(p.a), drainOut(p.b)
	respToB := p.deliverTo(p.a, reqB[0])
	if err := p.a.DeleteChildSA(p.now, spiNet); err != nil {
		t.Fatal(err)
	}
	delChild := drainOut(p.a)
	if len(delChild) != 1 || exchangeOf(t, delChild[0]) != wire.ExchangeInformational {
		t.Fatalf("A sent %d datagrams, want its Delete of the Child SA", len(delChild))
	}
	respToA := p.deliverTo(p.b, reqA[0])
	delIKE := p.deliverTo(p.b, respToB[0]) // B lost: deletes its redundant SA
	answer := p.deliverTo(p.b, delChild[0])
	if _, ok := p.liveChildren(false)[spiNetB]; ok || spiNetB == 0 {
		t.Fatalf("B kept the Child SA A deleted\n%v", p.evB)
	}
	p.pump(p.a, answer)
	p.pump(p.a, delIKE)
	p.pump(p.a, respToA)
	p.settle()
	la, lb := p.liveChildren(true), p.liveChildren(false)
	if len(la) != 1 || len(lb) != 1 || len(p.a.children) != 1 || len(p.b.children) != 1 {
		t.Fatalf("Child SAs A %v, B %v\n%v\n%v", la, lb, p.evA, p.evB)
	}
	p.checkOneChild(t, "pfs")
	if len(p.liveIKE(true)) != 1 || len(p.liveIKE(false)) != 1 {
		t.Fatalf("IKE SAs\n%v\n%v", p.evA, p.evB)
	}
}

// TestChildDeleteLostWithRedundantIKESA: as TestChildDeleteOnRedundantIKESA,
// but B's Delete of its redundant IKE SA reaches A before B's answer to
// A's Delete of the Child SA, and before the response to A's own IKE SA
// rekey. The Child SA Delete, lost with the redundant SA, is sent again on
// the surviving SA; the Child SA is gone at both ends and reported deleted
// once.
func TestChildDeleteLostWithRedundantIKESA(t *testing.T) {
	ini, resp := wbPeers()
	const prop = "aes256gcm16-prfsha384-x25519"
	ini.IKEProposals, resp.IKEProposals = []string{prop}, []string{prop}
	p := newWBPairWith(t, ini, resp)
	idA := p.kinds(true, EventIKESAEstablished)[0].SA
	idB := p.kinds(false, EventIKESAEstablished)[0].SA
	p.a.CreateChildSA(p.now, idA, "pfs")
	p.settle()
	var spiNet uint32
	for s, ch := range p.liveChildren(true) {
		if ch.Name == "net" {
			spiNet = s
		}
	}
	p.collisionNonces(0x40, 0x10, 0x60, 0x80) // B's exchange holds 0x10: A wins
	p.a.RekeyIKESA(p.now, idA)
	p.b.RekeyIKESA(p.now, idB)
	reqA, reqB := drainOut(p.a), drainOut(p.b)
	respToB := p.deliverTo(p.a, reqB[0])
	if err := p.a.DeleteChildSA(p.now, spiNet); err != nil {
		t.Fatal(err)
	}
	delChild := drainOut(p.a)
	respToA := p.deliverTo(p.b, reqA[0])
	delIKE := p.deliverTo(p.b, respToB[0])
	p.deliverTo(p.b, delChild[0]) // B's answer is lost
	if len(delIKE) != 1 {
		t.Fatalf("B sent %d datagrams after losing, want its Delete", len(delIKE))
	}
	p.pump(p.a, delIKE)
	p.pump(p.a, respToA)
	p.settle()
	la, lb := p.liveChildren(true), p.liveChildren(false)
	if len(la) != 1 || len(lb) != 1 || len(p.a.children) != 1 || len(p.b.children) != 1 {
		t.Fatalf("Child SAs A %v (%d), B %v (%d)\n%v\n%v", la, len(p.a.children), lb, len(p.b.children), p.evA, p.evB)
	}
	p.checkOneChild(t, "pfs")
	n := 0
	for _, ev := range p.kinds(true, EventChildSADeleted) {
		if ev.Child.InboundSPI == spiNet {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("A reported the deletion %d times", n)
	}
	for id := range p.liveIKE(true) {
		if info, _ := p.a.SA(id); len(info.Children) != 1 {
			t.Fatalf("A's IKE SA holds %d Child SAs", len(info.Children))
		}
	}
}
