package ike_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/harness"
)

// children replays an endpoint's events into its current Child SAs.
func (p *endpoint) children() map[uint32]ike.ChildSA {
	m := map[uint32]ike.ChildSA{}
	for _, ev := range p.events {
		switch ev.Kind {
		case ike.EventChildSAInstalled, ike.EventChildSARekeyed:
			m[ev.Child.InboundSPI] = *ev.Child
		case ike.EventChildSADeleted:
			delete(m, ev.Child.InboundSPI)
		}
	}
	return m
}

// liveSAs replays an endpoint's events into its current IKE SAs.
func (p *endpoint) liveSAs() map[ike.SAID]bool {
	m := map[ike.SAID]bool{}
	for _, ev := range p.events {
		switch ev.Kind {
		case ike.EventIKESAEstablished, ike.EventIKESARekeyed:
			m[ev.SA] = true
		case ike.EventIKESADeleted:
			delete(m, ev.SA)
		}
	}
	return m
}

// checkConsistent asserts that both ends hold the same Child SAs with
// matching keys, n of them.
func checkConsistent(t testing.TB, a, b *endpoint, n int) {
	t.Helper()
	ca, cb := a.children(), b.children()
	if len(ca) != n || len(cb) != n {
		t.Fatalf("children: %d / %d, want %d\n%v\n%v", len(ca), len(cb), n, tail(a.events), tail(b.events))
	}
	for spi, x := range ca {
		y, ok := cb[x.OutboundSPI]
		if !ok || y.OutboundSPI != spi {
			t.Fatalf("child %08x has no peer", spi)
		}
		if !bytes.Equal(x.Outbound.Encr, y.Inbound.Encr) || !bytes.Equal(x.Inbound.Encr, y.Outbound.Encr) ||
			!bytes.Equal(x.Outbound.Integ, y.Inbound.Integ) {
			t.Fatalf("child %08x keys differ", spi)
		}
	}
}

func tail(evs []ike.Event) []ike.Event {
	if len(evs) > 12 {
		return evs[len(evs)-12:]
	}
	return evs
}

// failures returns p's failure events, except rekey exchanges dropped
// because they lost a rekey collision (the peer's rekey of the same SA
// won, RFC 7296 Section 2.8): those are reported but are no failure.
func failures(p *endpoint) []ike.Event {
	var out []ike.Event
	for _, ev := range append(p.find(ike.EventFailed), p.find(ike.EventExchangeFailed)...) {
		if ev.Kind != ike.EventExchangeFailed || ev.Reason.Cause != ike.CauseRekeyCollision {
			out = append(out, ev)
		}
	}
	return out
}

// pfsPeers returns connections with a second child that uses PFS with an
// additional key exchange.
func pfsPeers(esp string) (ike.PeerConfig, ike.PeerConfig) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	ini.Children = append(ini.Children, ike.ChildConfig{Name: "pfs", ESPProposals: []string{esp},
		LocalTS: []ike.TrafficSelector{ike.MustTS("10.1.1.0/24")}, RemoteTS: []ike.TrafficSelector{ike.MustTS("10.2.1.0/24")}})
	resp.Children = append(resp.Children, ike.ChildConfig{Name: "pfs", ESPProposals: []string{esp},
		LocalTS: []ike.TrafficSelector{ike.MustTS("10.2.1.0/24")}, RemoteTS: []ike.TrafficSelector{ike.MustTS("10.1.1.0/24")}})
	return ini, resp
}

func runFor(t testing.TB, p *harness.Pair, d time.Duration, done func() bool) {
	t.Helper()
	if err := p.Run(p.Now.Add(d), done); err != nil && err != harness.ErrStalled && done != nil {
		t.Fatal(err)
	}
}

func TestCreateRekeyDelete(t *testing.T) {
	for _, esp := range []string{"aes256gcm16", "aes256gcm16-x25519", "aes256gcm16-x25519-ke1_mlkem768", "aes128-sha256-ecp256-ke1_mlkem512-ke2_mlkem768"} {
		t.Run(esp, func(t *testing.T) {
			ini, resp := pfsPeers(esp)
			a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 21, link: harness.Link{Latency: 5 * time.Millisecond, Loss: 0.05}})
			checkEstablished(t, a, b)

			// New Child SA, with PFS and additional key exchanges.
			if err := a.e.CreateChildSA(p.Now, id, "pfs"); err != nil {
				t.Fatal(err)
			}
			runFor(t, p, time.Minute, func() bool { return len(b.children()) == 2 && len(a.children()) == 2 })
			checkConsistent(t, a, b, 2)

			// Rekey it, from the responder's side this time.
			var pfsSPI uint32
			for _, c := range a.children() {
				if c.Name == "pfs" {
					pfsSPI = c.OutboundSPI
				}
			}
			if err := b.e.RekeyChildSA(p.Now, pfsSPI); err != nil {
				t.Fatal(err)
			}
			runFor(t, p, time.Minute, func() bool {
				_, still := b.children()[pfsSPI]
				return !still && len(a.find(ike.EventChildSARekeyed)) == 1 && len(a.children()) == 2
			})
			checkConsistent(t, a, b, 2)
			rk := a.find(ike.EventChildSARekeyed)[0]
			if rk.Child.RekeyOf == 0 || rk.Child.Name != "pfs" {
				t.Fatalf("rekey event %v", rk)
			}

			// Rekey the IKE SA; the Child SAs move to the new one.
			if err := a.e.RekeyIKESA(p.Now, id); err != nil {
				t.Fatal(err)
			}
			runFor(t, p, time.Minute, func() bool {
				return len(a.find(ike.EventIKESADeleted)) == 1 && len(b.find(ike.EventIKESADeleted)) == 1
			})
			ra, rb := a.find(ike.EventIKESARekeyed), b.find(ike.EventIKESARekeyed)
			if len(ra) != 1 || len(rb) != 1 || ra[0].OldSA != id {
				t.Fatalf("IKE rekey events %v / %v", ra, rb)
			}
			if d := a.find(ike.EventIKESADeleted)[0]; d.SA != id || d.Reason.Cause != ike.CauseRekeyed {
				t.Fatalf("old SA deletion %v", d)
			}
			newID := ra[0].SA
			if info, ok := a.e.SA(newID); !ok || len(info.Children) != 2 || info.SPIi == 0 {
				t.Fatalf("new SA %+v", info)
			}
			checkConsistent(t, a, b, 2)

			// The new IKE SA works: rekey a Child SA over it, then delete it all.
			for spi := range a.children() {
				if err := a.e.RekeyChildSA(p.Now, spi); err != nil {
					t.Fatal(err)
				}
				break
			}
			runFor(t, p, time.Minute, func() bool {
				return len(a.find(ike.EventChildSARekeyed)) == 2 && len(b.children()) == 2 && len(a.children()) == 2
			})
			checkConsistent(t, a, b, 2)
			if err := a.e.Delete(p.Now, newID); err != nil {
				t.Fatal(err)
			}
			// If the response to the Delete is lost, the responder has forgotten
			// the SA and the initiator gives up after its retransmissions.
			if err := p.Run(p.Now.Add(5*time.Minute), func() bool { return len(a.liveSAs()) == 0 && len(b.liveSAs()) == 0 }); err != nil {
				t.Fatalf("%v\n%v\n%v\n%+v\n%+v", err, tail(a.events), tail(b.events), a.e.Stats(), b.e.Stats())
			}
			checkConsistent(t, a, b, 0)
			if f := append(failures(a), failures(b)...); len(f) > 0 {
				t.Fatalf("failures %v", f)
			}
			if a.e.Stats().IKESAs != 0 || b.e.Stats().IKESAs != 0 || a.e.Stats().ChildSAs != 0 || b.e.Stats().ChildSAs != 0 {
				t.Fatalf("state left: %+v / %+v", a.e.Stats(), b.e.Stats())
			}
		})
	}
}

// TestLifetimes runs a day with short lifetimes: Child SAs and the IKE SA
// are rekeyed by their soft lifetimes (with jitter, so by either end) and
// traffic keys always agree.
func TestLifetimes(t *testing.T) {
	for seed := uint64(30); seed < 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testLifetimes(t, seed) })
	}
}

func testLifetimes(t *testing.T, seed uint64) {
	ini, resp := pfsPeers("aes256gcm16-x25519-ke1_mlkem768")
	for _, pc := range []*ike.PeerConfig{&ini, &resp} {
		pc.IKELifetime = ike.Lifetime{Rekey: ike.Duration(45 * time.Minute)}
		for i := range pc.Children {
			pc.Children[i].Lifetime = ike.Lifetime{Rekey: ike.Duration(10 * time.Minute)}
		}
	}
	a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: seed, link: harness.Link{Latency: 20 * time.Millisecond, Loss: 0.05}})
	checkEstablished(t, a, b)
	a.e.CreateChildSA(p.Now, id, "pfs")
	runFor(t, p, 24*time.Hour, nil)
	if f := append(failures(a), failures(b)...); len(f) > 0 {
		t.Fatalf("failures %v", f)
	}
	checkConsistent(t, a, b, 2)
	nChild := len(a.find(ike.EventChildSARekeyed))
	nIKE := len(a.find(ike.EventIKESARekeyed))
	// 24 h / ~9.5 min per child x 2 children; 24 h / ~43 min.
	if nChild < 200 || nIKE < 25 {
		t.Fatalf("%d child rekeys, %d IKE rekeys", nChild, nIKE)
	}
	if len(a.liveSAs()) != 1 || len(b.liveSAs()) != 1 {
		t.Fatalf("live IKE SAs %v / %v", a.liveSAs(), b.liveSAs())
	}
	t.Logf("%d child rekeys, %d IKE rekeys, collisions answered: %d / %d", nChild, nIKE,
		a.e.Stats().Dropped[ike.DropInvalid], b.e.Stats().Dropped[ike.DropInvalid])
}

// TestSimultaneousRekey: both ends rekey the same Child SA and the IKE SA
// at the same instant; exactly one rekey of each survives.
func TestSimultaneousRekey(t *testing.T) {
	for _, esp := range []string{"aes256gcm16-x25519", "aes256gcm16-x25519-ke1_mlkem768"} {
		t.Run(esp, func(t *testing.T) {
			ini, resp := pfsPeers(esp)
			a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 24, link: harness.Link{Latency: 10 * time.Millisecond}})
			checkEstablished(t, a, b)
			var sa, sb uint32
			for spi, c := range a.children() {
				sa, sb = spi, c.OutboundSPI
			}
			a.e.RekeyChildSA(p.Now, sa)
			b.e.RekeyChildSA(p.Now, sb)
			runFor(t, p, 5*time.Minute, nil)
			checkConsistent(t, a, b, 1)
			if f := append(failures(a), failures(b)...); len(f) > 0 {
				t.Fatalf("failures %v", f)
			}
			idB := b.find(ike.EventIKESAEstablished)[0].SA
			a.e.RekeyIKESA(p.Now, id)
			b.e.RekeyIKESA(p.Now, idB)
			runFor(t, p, 5*time.Minute, nil)
			if len(a.liveSAs()) != 1 || len(b.liveSAs()) != 1 {
				t.Fatalf("live IKE SAs %v / %v\n%v\n%v", a.liveSAs(), b.liveSAs(), a.events, b.events)
			}
			checkConsistent(t, a, b, 1)
			if f := append(failures(a), failures(b)...); len(f) > 0 {
				t.Fatalf("failures %v", f)
			}
		})
	}
}

// TestDeadPeerDetection: with DPD on, an initiator whose peer went silent
// deletes the IKE SA after the retransmission schedule.
func TestDeadPeerDetection(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	ini.DPDDelay = ike.Duration(30 * time.Second)
	cfg := ike.Config{Retransmit: ike.RetransmitConfig{InitialTimeout: ike.Duration(time.Second), Base: 2, Tries: 3}}
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 25, iCfg: cfg})
	checkEstablished(t, a, b)
	// A live peer answers liveness checks.
	runFor(t, p, 5*time.Minute, nil)
	if len(a.liveSAs()) != 1 {
		t.Fatal("SA lost with a live peer")
	}
	p.Filter = func(fromA bool, _, _ netip.AddrPort, _ []byte) bool { return !fromA }
	runFor(t, p, 5*time.Minute, func() bool { return len(a.liveSAs()) == 0 })
	d := a.find(ike.EventIKESADeleted)
	if len(d) != 1 || d[0].Reason.Cause != ike.CauseTimeout || len(a.children()) != 0 {
		t.Fatalf("events %v", a.events)
	}
}

// TestInitialContact: a second IKE SA with INITIAL_CONTACT replaces the
// first at the responder.
func TestInitialContact(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	ini.InitialContact = true
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 26})
	checkEstablished(t, a, b)
	if _, err := a.e.Initiate(p.Now, ini); err != nil {
		t.Fatal(err)
	}
	runFor(t, p, time.Minute, func() bool { return len(b.find(ike.EventIKESADeleted)) == 1 })
	d := b.find(ike.EventIKESADeleted)[0]
	if d.Reason.Cause != ike.CauseInitialContact || len(b.liveSAs()) != 1 {
		t.Fatalf("responder events %v", b.events)
	}
}
