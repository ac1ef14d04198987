package ike_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/harness"
)

// endpoint adapts an Engine to harness.Endpoint and collects its events.
type endpoint struct {
	e      *ike.Engine
	events []ike.Event
}

func (p *endpoint) drain() {
	for {
		ev, ok := p.e.PollEvent()
		if !ok {
			return
		}
		p.events = append(p.events, ev)
	}
}

func (p *endpoint) Handle(now time.Time, local, remote netip.AddrPort, data []byte) {
	p.e.Handle(now, local, remote, data)
	p.drain()
}

func (p *endpoint) HandleTimeout(now time.Time) {
	p.e.HandleTimeout(now)
	p.drain()
}

func (p *endpoint) NextTimeout() (time.Time, bool) { return p.e.NextTimeout() }

func (p *endpoint) PollTransmit() (netip.AddrPort, netip.AddrPort, []byte, bool) {
	d, ok := p.e.PollTransmit()
	return d.Local, d.Remote, d.Data, ok
}

func (p *endpoint) find(k ike.EventKind) []ike.Event {
	var out []ike.Event
	for _, ev := range p.events {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

var (
	addrI = netip.MustParseAddrPort("192.0.2.1:500")
	addrR = netip.MustParseAddrPort("192.0.2.2:500")
	t0    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

const testPSK = "pqlab-test-psk-0123456789"

func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return rand.NewChaCha8(s)
}

// peerConfigs returns matching initiator and responder connections.
func peerConfigs(ikeProposal, espProposal string) (ini, resp ike.PeerConfig) {
	ini = ike.PeerConfig{
		Name: "branch", Local: addrI, Remote: addrR,
		LocalID: mustID("left@pqlab"), RemoteID: mustID("right@pqlab"),
		Auth:         ike.AuthConfig{PSK: testPSK},
		IKEProposals: []string{ikeProposal},
		Children: []ike.ChildConfig{{Name: "net", ESPProposals: []string{espProposal},
			LocalTS: []ike.TrafficSelector{ike.MustTS("10.1.0.0/16")}, RemoteTS: []ike.TrafficSelector{ike.MustTS("10.2.0.0/16")}}},
	}
	resp = ike.PeerConfig{
		Name:    "hub",
		LocalID: mustID("right@pqlab"), RemoteID: mustID("left@pqlab"),
		Auth:         ike.AuthConfig{PSK: testPSK},
		IKEProposals: []string{ikeProposal},
		Children: []ike.ChildConfig{{Name: "net", ESPProposals: []string{espProposal},
			LocalTS: []ike.TrafficSelector{ike.MustTS("10.2.0.0/8")}, RemoteTS: []ike.TrafficSelector{ike.MustTS("10.1.0.0/16")}}},
	}
	return ini, resp
}

func mustID(s string) ike.Identity {
	id, err := ike.ParseIdentity(s)
	if err != nil {
		panic(err)
	}
	return id
}

type pairSetup struct {
	ini, resp  ike.PeerConfig
	iCfg, rCfg ike.Config
	seed       uint64
	link       harness.Link
	nat        *harness.NAT
}

// runPair runs one handshake and returns both endpoints and the harness.
func runPair(t testing.TB, s pairSetup) (*endpoint, *endpoint, *harness.Pair, ike.SAID) {
	t.Helper()
	s.rCfg.Peers = append(s.rCfg.Peers, s.resp)
	ei, err := ike.NewEngine(s.iCfg, seeded(s.seed))
	if err != nil {
		t.Fatal(err)
	}
	er, err := ike.NewEngine(s.rCfg, seeded(s.seed+1000))
	if err != nil {
		t.Fatal(err)
	}
	a, b := &endpoint{e: ei}, &endpoint{e: er}
	p := harness.New(a, b, t0, s.seed)
	p.AtoB, p.BtoA = s.link, s.link
	p.NAT = s.nat
	id, err := ei.Initiate(p.Now, s.ini)
	if err != nil {
		t.Fatal(err)
	}
	a.drain()
	done := func() bool {
		return len(a.find(ike.EventChildSAInstalled)) > 0 && len(b.find(ike.EventChildSAInstalled)) > 0 ||
			len(failures(a)) > 0 || len(failures(b)) > 0
	}
	if err := p.Run(t0.Add(10*time.Minute), done); err != nil {
		t.Fatalf("run: %v\ninitiator events %v\nresponder events %v", err, a.events, b.events)
	}
	return a, b, p, id
}

// checkEstablished asserts both sides installed matching Child SAs.
func checkEstablished(t testing.TB, a, b *endpoint) (ike.ChildSA, ike.ChildSA) {
	t.Helper()
	if f := append(failures(a), failures(b)...); len(f) > 0 {
		t.Fatalf("failure: %v", f)
	}
	if len(a.find(ike.EventIKESAEstablished)) != 1 || len(b.find(ike.EventIKESAEstablished)) != 1 {
		t.Fatalf("IKE SA not established: %v / %v", a.events, b.events)
	}
	ci, cr := a.find(ike.EventChildSAInstalled), b.find(ike.EventChildSAInstalled)
	if len(ci) != 1 || len(cr) != 1 {
		t.Fatalf("child events %v / %v", ci, cr)
	}
	x, y := *ci[0].Child, *cr[0].Child
	if x.InboundSPI != y.OutboundSPI || x.OutboundSPI != y.InboundSPI {
		t.Fatalf("SPIs differ: %+v / %+v", x, y)
	}
	if !bytes.Equal(x.Outbound.Encr, y.Inbound.Encr) || !bytes.Equal(x.Inbound.Encr, y.Outbound.Encr) ||
		!bytes.Equal(x.Outbound.Integ, y.Inbound.Integ) || !bytes.Equal(x.Inbound.Integ, y.Outbound.Integ) {
		t.Fatal("Child SA keys differ")
	}
	if bytes.Equal(x.Outbound.Encr, x.Inbound.Encr) || len(x.Outbound.Encr) == 0 {
		t.Fatal("Child SA directions share keys")
	}
	if x.Suite != y.Suite {
		t.Fatalf("suites differ: %v / %v", x.Suite, y.Suite)
	}
	return x, y
}

func TestHandshakeHybridPSK(t *testing.T) {
	ini, resp := peerConfigs("aes256gcm16-prfsha384-x25519-ke1_mlkem768", "aes256gcm16")
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 1, link: harness.Link{Latency: 10 * time.Millisecond}})
	x, y := checkEstablished(t, a, b)
	if got := fmt.Sprint(x.LocalTS, x.RemoteTS, y.LocalTS, y.RemoteTS); got != "[10.1.0.0/16] [10.2.0.0/16] [10.2.0.0/16] [10.1.0.0/16]" {
		t.Errorf("narrowed selectors %s", got)
	}
	// IKE_SA_INIT, IKE_INTERMEDIATE, IKE_AUTH: 3 round trips of 20 ms.
	if d := p.Now.Sub(t0); d != 60*time.Millisecond {
		t.Errorf("handshake took %v, want 60ms", d)
	}
	for _, r := range p.Trace {
		t.Logf("%v A=%v %v->%v %d octets", r.Time.Sub(t0), r.FromA, r.Src, r.Dst, len(r.Data))
	}
}
