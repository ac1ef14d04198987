package interop

// Engine behaviour found running against strongSwan, kept as regression tests of package ike
// driven the way the real-network driver drives it.

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
)

// enginePair is two engines joined in memory: every datagram one sends is handed to the other
// at once (no loss, no delay), and their events are collected.
type enginePair struct {
	a, b       *ike.Engine
	aEv, bEv   []ike.Event
	addrA      netip.AddrPort
	addrB      netip.AddrPort
	now        time.Time
	held       []ike.Datagram // datagrams of a held back by shuttle(false)
	deliverA2B bool
}

func newEnginePair(t *testing.T) *enginePair {
	t.Helper()
	p := &enginePair{addrA: netip.MustParseAddrPort("192.0.2.1:500"), addrB: netip.MustParseAddrPort("192.0.2.2:500"),
		now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), deliverA2B: true}
	peer := func(local, remote netip.AddrPort) ike.PeerConfig {
		return ike.PeerConfig{Name: "p", Local: local, Remote: remote, Auth: ike.AuthConfig{PSK: psk},
			IKEProposals: []string{"aes256gcm16-prfsha256-x25519"},
			Children: []ike.ChildConfig{{Name: "c", ESPProposals: []string{"aes256gcm16"},
				LocalTS: []ike.TrafficSelector{ike.MustTS("10.0.0.0/8")}, RemoteTS: []ike.TrafficSelector{ike.MustTS("10.0.0.0/8")}}}}
	}
	var err error
	if p.a, err = ike.NewEngine(ike.Config{Peers: []ike.PeerConfig{peer(p.addrA, p.addrB)}}, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if p.b, err = ike.NewEngine(ike.Config{Peers: []ike.PeerConfig{peer(p.addrB, p.addrA)}}, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, err := p.a.Initiate(p.now, peer(p.addrA, p.addrB)); err != nil {
		t.Fatal(err)
	}
	p.shuttle()
	return p
}

// shuttle delivers datagrams both ways until both engines are quiet; datagrams from a are held
// back while deliverA2B is false.
func (p *enginePair) shuttle() {
	for busy := true; busy; {
		busy = false
		for {
			d, ok := p.a.PollTransmit()
			if !ok {
				break
			}
			if !p.deliverA2B {
				p.held = append(p.held, d)
				continue
			}
			busy = true
			p.b.Handle(p.now, d.Remote, d.Local, d.Data)
		}
		for {
			d, ok := p.b.PollTransmit()
			if !ok {
				break
			}
			busy = true
			p.a.Handle(p.now, d.Remote, d.Local, d.Data)
		}
		for ev, ok := p.a.PollEvent(); ok; ev, ok = p.a.PollEvent() {
			p.aEv = append(p.aEv, ev)
		}
		for ev, ok := p.b.PollEvent(); ok; ev, ok = p.b.PollEvent() {
			p.bEv = append(p.bEv, ev)
		}
	}
}

// TestEngineIssueChildDeleteReportedLate: when the engine deletes a Child SA it sends an
// INFORMATIONAL request with a Delete payload; it used to report EventChildSADeleted only when
// the response arrived. RFC 7296 Section 3.11 says the Delete payload lists SAs "that the sender has
// removed from its Security Association database", and Section 1.4.1 that each endpoint closes
// its incoming SAs, the peer closing the other half on receipt. Until the response, the driver
// keeps sending on the outbound SA, which the peer removes as soon as it reads the Delete: those
// packets are lost. Against charon this lost a ping when pqlab lost a Child SA rekey collision
// and deleted its redundant (newest, hence preferred) SA. The engine now emits
// EventChildSADeleted when it sends the Delete, so the data plane stops sending on that SA at once.
func TestEngineIssueChildDeleteReportedLate(t *testing.T) {
	p := newEnginePair(t)
	var spi uint32
	for _, ev := range p.aEv {
		if ev.Kind == ike.EventChildSAInstalled {
			spi = ev.Child.InboundSPI
		}
	}
	if spi == 0 {
		t.Fatalf("no Child SA: %v", p.aEv)
	}
	p.deliverA2B = false // the Delete request is sent, not yet answered
	n := len(p.aEv)
	if err := p.a.DeleteChildSA(p.now, spi); err != nil {
		t.Fatal(err)
	}
	p.shuttle()
	if len(p.held) != 1 {
		t.Fatalf("%d datagrams sent for the delete, want the INFORMATIONAL request", len(p.held))
	}
	for _, ev := range p.aEv[n:] {
		if ev.Kind == ike.EventChildSADeleted && ev.Child.InboundSPI == spi {
			return
		}
	}
	t.Errorf("the Delete for Child SA %08x is on the wire, but the engine has not told the data plane (events since: %v)", spi, p.aEv[n:])
}
