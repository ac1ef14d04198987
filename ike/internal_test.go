package ike

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/wire"
)

// A minimal lossless pair for white-box tests (the harness tests are in
// package ike_test).
type wbPair struct {
	a, b   *Engine
	now    time.Time
	evA    []Event
	evB    []Event
	filter func(fromA bool, d Datagram) (Datagram, bool)
}

func seededReader(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = 0xee
	return rand.NewChaCha8(s)
}

func wbPeers() (PeerConfig, PeerConfig) {
	mk := func(name, local, remote string, lts, rts string) PeerConfig {
		return PeerConfig{Name: name, LocalID: mustParseID(local), RemoteID: mustParseID(remote), Auth: AuthConfig{PSK: "wb-psk-0123456789"},
			IKEProposals: []string{"aes256gcm16-prfsha384-x25519-ke1_mlkem768"},
			Children: []ChildConfig{
				{Name: "net", LocalTS: []TrafficSelector{MustTS(lts)}, RemoteTS: []TrafficSelector{MustTS(rts)}},
				{Name: "pfs", ESPProposals: []string{"aes256gcm16-x25519-ke1_mlkem768"},
					LocalTS: []TrafficSelector{MustTS(lts + "[udp]")}, RemoteTS: []TrafficSelector{MustTS(rts + "[udp]")}},
			}}
	}
	ini := mk("a", "a@wb", "b@wb", "10.1.0.0/16", "10.2.0.0/16")
	ini.Local, ini.Remote = netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("192.0.2.2:500")
	return ini, mk("b", "b@wb", "a@wb", "10.2.0.0/16", "10.1.0.0/16")
}

func mustParseID(s string) Identity {
	id, err := ParseIdentity(s)
	if err != nil {
		panic(err)
	}
	return id
}

// newWBPair establishes an IKE SA between two engines.
func newWBPair(t testing.TB) (*wbPair, SAID) {
	t.Helper()
	ini, resp := wbPeers()
	p := newWBPairWith(t, ini, resp)
	return p, p.kinds(true, EventIKESAEstablished)[0].SA
}

// newWBPairWith establishes an IKE SA between two engines with the given
// connections.
func newWBPairWith(t testing.TB, ini, resp PeerConfig) *wbPair {
	t.Helper()
	return newWBPairConfig(t, Config{}, Config{}, ini, resp, 1, 2)
}

// newWBPairConfig is newWBPairWith with the engines' configurations
// (resp is added to b's peers) and the seeds of their randomness.
func newWBPairConfig(t testing.TB, ca, cb Config, ini, resp PeerConfig, seedA, seedB uint64) *wbPair {
	t.Helper()
	a, err := NewEngine(ca, seededReader(seedA))
	if err != nil {
		t.Fatal(err)
	}
	cb.Peers = append(cb.Peers, resp)
	b, err := NewEngine(cb, seededReader(seedB))
	if err != nil {
		t.Fatal(err)
	}
	p := &wbPair{a: a, b: b, now: t0r}
	if _, err := a.Initiate(p.now, ini); err != nil {
		t.Fatal(err)
	}
	p.settle()
	if len(p.kinds(true, EventIKESAEstablished)) != 1 || len(p.kinds(false, EventIKESAEstablished)) != 1 {
		t.Fatalf("not established: %v / %v", p.evA, p.evB)
	}
	return p
}

// settle shuttles datagrams (and due timers) until both are quiet.
func (p *wbPair) settle() {
	for i := 0; i < 1000; i++ {
		moved := false
		for _, fromA := range []bool{true, false} {
			src, dst := p.a, p.b
			if !fromA {
				src, dst = p.b, p.a
			}
			for {
				d, ok := src.PollTransmit()
				if !ok {
					break
				}
				if p.filter != nil {
					if d, ok = p.filter(fromA, d); !ok {
						continue
					}
				}
				moved = true
				p.now = p.now.Add(time.Millisecond)
				dst.Handle(p.now, d.Remote, d.Local, d.Data)
			}
		}
		p.drain()
		if !moved {
			return
		}
	}
}

func (p *wbPair) drain() {
	p.evA = append(p.evA, drainEvents(p.a)...)
	p.evB = append(p.evB, drainEvents(p.b)...)
}

func (p *wbPair) kinds(a bool, k EventKind) []Event {
	evs := p.evB
	if a {
		evs = p.evA
	}
	var out []Event
	for _, ev := range evs {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// TestNotifyChildSANotFound: the responder forgot a Child SA (here: removed
// behind the engine's back); a rekey of it is answered CHILD_SA_NOT_FOUND.
func TestNotifyChildSANotFound(t *testing.T) {
	p, _ := newWBPair(t)
	var spi uint32
	for s, c := range p.a.children {
		if c != nil {
			spi = s
		}
	}
	for _, c := range p.b.children {
		p.b.removeChild(p.now, c, Reason{Cause: CauseInternal}, true)
	}
	p.a.RekeyChildSA(p.now, spi)
	p.settle()
	f := p.kinds(true, EventExchangeFailed)
	if len(f) != 1 || f[0].Reason.Notify != wire.NotifyChildSANotFound || f[0].Child == nil || f[0].Child.InboundSPI != spi {
		t.Fatalf("events %v", p.evA)
	}
	if c := p.a.children[spi]; c == nil || c.state != childInstalled {
		t.Fatal("the Child SA is not usable after the failed rekey")
	}
}

// TestNotifyStateNotFound: an IKE_FOLLOWUP_KE whose link the responder does
// not know is answered STATE_NOT_FOUND and the exchange fails.
func TestNotifyStateNotFound(t *testing.T) {
	p, id := newWBPair(t)
	p.a.CreateChildSA(p.now, id, "pfs")
	// Deliver the CREATE_CHILD_SA exchange, then corrupt the responder's link.
	p.filter = func(fromA bool, d Datagram) (Datagram, bool) {
		if !fromA {
			for _, sa := range p.b.sas {
				if sa != nil {
					for _, x := range sa.xchgs {
						x.link = []byte("stale")
					}
				}
			}
		}
		return d, true
	}
	p.settle()
	f := p.kinds(true, EventExchangeFailed)
	if len(f) != 1 || f[0].Reason.Notify != wire.NotifyStateNotFound || f[0].Child.Name != "pfs" {
		t.Fatalf("events %v", p.evA)
	}
	if len(p.kinds(true, EventChildSAInstalled)) != 1 || len(p.kinds(false, EventChildSAInstalled)) != 1 {
		t.Fatal("a Child SA was installed")
	}
}

// TestEstablishedSAUnchanged: garbage, replays, forged and out-of-window
// messages to an established SA are dropped and counted; the SA keeps
// working.
func TestEstablishedSAUnchanged(t *testing.T) {
	p, id := newWBPair(t)
	var saB *ikeSA
	for _, sa := range p.b.sas {
		if sa != nil {
			saB = sa
		}
	}
	before := *saB
	hdr := saB.header(wire.ExchangeInformational, saB.recvMID, false)
	hdr.Flags = wire.FlagInitiator
	sk := func(h wire.Header) []byte {
		b, err := wire.AppendSKHeaders(nil, h, wire.PayloadNotify, 40)
		if err != nil {
			t.Fatal(err)
		}
		return append(b, make([]byte, 40)...)
	}
	old := hdr
	old.MessageID = saB.recvMID + 5
	resp := hdr
	resp.Flags |= wire.FlagResponse
	inputs := []struct {
		name string
		d    []byte
		want DropReason
	}{
		{"forged", sk(hdr), DropIntegrity},
		{"window", sk(old), DropOutOfWindow},
		{"response", sk(resp), DropUnexpectedResponse},
		{"garbage", []byte("not IKE"), DropMalformed},
		{"version", []byte("definitely not IKE, far too short"), DropVersion},
		{"short", sk(hdr)[:20], DropMalformed},
	}
	for _, in := range inputs {
		before := p.b.Stats().Dropped
		p.b.Handle(p.now, netip.MustParseAddrPort("192.0.2.2:500"), netip.MustParseAddrPort("192.0.2.1:500"), in.d)
		if _, ok := p.b.PollTransmit(); ok {
			t.Errorf("%s: answered", in.name)
		}
		if after := p.b.Stats().Dropped; after[in.want] != before[in.want]+1 {
			t.Errorf("%s: not counted as %v: %v", in.name, in.want, after)
		}
	}
	if saB.recvMID != before.recvMID || saB.nextReqMID != before.nextReqMID || saB.state != stEstablished || saB.skIn != before.skIn {
		t.Fatal("SA state changed")
	}
	// The SA still works.
	p.a.CreateChildSA(p.now, id, "pfs")
	p.settle()
	if len(p.kinds(true, EventChildSAInstalled)) != 2 || len(p.kinds(false, EventChildSAInstalled)) != 2 {
		t.Fatalf("events %v / %v", p.evA, p.evB)
	}
}

func TestLifetimeNoJitter(t *testing.T) {
	l := Lifetime{Rekey: Duration(time.Hour)}.withDefaults(DefaultIKERekey)
	if l.Jitter != Duration(6*time.Minute) {
		t.Fatalf("default jitter %v, want 6m (hard limit 1.1 * rekey)", l.Jitter)
	}
	l = Lifetime{Rekey: Duration(time.Hour), NoJitter: true}.withDefaults(DefaultIKERekey)
	if l.Jitter != 0 || l.Life != Duration(66*time.Minute) {
		t.Fatalf("NoJitter: jitter %v life %v", l.Jitter, l.Life)
	}
	if err := (Lifetime{Rekey: Duration(time.Hour), Jitter: Duration(time.Minute), NoJitter: true}).validate("IKE"); err == nil {
		t.Fatal("accepted rand_time with no_rand_time")
	}
}
