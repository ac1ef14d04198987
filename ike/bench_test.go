package ike

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// Handshake benchmarks: a full hybrid IKE_SA_INIT + IKE_INTERMEDIATE +
// IKE_AUTH (x25519 + ML-KEM-768, AES-GCM-256, PRF-HMAC-SHA384, PSK, one
// Child SA) timed per side, next to the same side's cryptographic primitives
// executed directly with the suite in the same iteration (interleaved, so
// that drift of a shared machine affects both alike).

const benchProposal = "aes256gcm16-prfsha384-x25519-ke1_mlkem768"

// benchPair returns two engines and the initiator's connection.
func benchPair(b *testing.B) (*Engine, *Engine, PeerConfig) {
	ini, resp := wbPeers()
	ini.Children, resp.Children = ini.Children[:1], resp.Children[:1]
	ini.IKEProposals, resp.IKEProposals = []string{benchProposal}, []string{benchProposal}
	a, err := NewEngine(Config{}, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewEngine(Config{Peers: []PeerConfig{resp}, CookieThreshold: -1}, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return a, r, ini
}

// runHandshake runs one handshake and returns the time spent in each engine.
func runHandshake(b *testing.B, a, r *Engine, ini PeerConfig, now time.Time) (ti, tr time.Duration) {
	start := time.Now()
	id, err := a.Initiate(now, ini)
	ti += time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	for {
		moved := false
		for {
			d, ok := a.PollTransmit()
			if !ok {
				break
			}
			moved = true
			start := time.Now()
			r.Handle(now, d.Remote, d.Local, d.Data)
			tr += time.Since(start)
		}
		for {
			d, ok := r.PollTransmit()
			if !ok {
				break
			}
			moved = true
			start := time.Now()
			a.Handle(now, d.Remote, d.Local, d.Data)
			ti += time.Since(start)
		}
		if !moved {
			break
		}
	}
	sa := a.byID[id]
	if sa == nil || sa.state != stEstablished || len(sa.children) != 1 {
		b.Fatal("handshake did not complete")
	}
	// Forget both SAs so the engines do not grow.
	drainEvents(a)
	drainEvents(r)
	a.removeSA(now, sa, Reason{}, false)
	for _, s := range r.sas {
		if s != nil {
			r.removeSA(now, s, Reason{}, false)
		}
	}
	drainEvents(a)
	drainEvents(r)
	return ti, tr
}

// primitives performs one side's cryptographic work of the handshake
// directly with the suite: key exchanges, SKEYSEED and key expansion twice,
// SK state for both stages, sealing and opening of the two protected
// requests and responses, IntAuth, the AUTH computation and check, and the
// Child SA KEYMAT.
type primitives struct {
	s             suite.Suite
	prf           *suite.PRF
	x25519, mlkem suite.Method
	ni, nr        []byte
	spiI, spiR    []byte
	psk           []byte
	ke1, ke2      []byte // the initiator's KE data, for the responder
	big, small    []byte // plaintexts of IKE_INTERMEDIATE (KE) and IKE_AUTH
	initMsg       []byte
}

func newPrimitives(b *testing.B) *primitives {
	p := &primitives{ni: make([]byte, 32), nr: make([]byte, 32), spiI: make([]byte, 8), spiR: make([]byte, 8),
		psk: []byte("wb-psk-0123456789"), big: make([]byte, 1192), small: make([]byte, 200), initMsg: make([]byte, 248)}
	rand.Read(p.ni)
	rand.Read(p.nr)
	pr, err := suite.ParseProposal(wire.ProtocolIKE, benchProposal)
	if err != nil {
		b.Fatal(err)
	}
	p.s, _ = pr.Select(pr)
	p.prf, _ = p.s.PRFAlg()
	p.x25519, _ = suite.MethodByID(wire.KECurve25519)
	p.mlkem, _ = suite.MethodByID(wire.KEMLKEM768)
	_, p.ke1, _ = p.x25519.Initiate(rand.Reader)
	_, p.ke2, _ = p.mlkem.Initiate(rand.Reader)
	return p
}

// run performs the side's primitives and returns the time they took
// (work of the other side, needed to produce inputs, is not counted).
func (p *primitives) run(b *testing.B, initiator bool) time.Duration {
	var d time.Duration
	timed := func(f func()) {
		start := time.Now()
		f()
		d += time.Since(start)
	}
	var g1, g2 []byte
	if initiator {
		var st1, st2 suite.InitiatorState
		var ke1, ke2 []byte
		timed(func() {
			st1, ke1, _ = p.x25519.Initiate(rand.Reader)
			st2, ke2, _ = p.mlkem.Initiate(rand.Reader)
		})
		r1, _, _ := p.x25519.Respond(rand.Reader, ke1)
		r2, _, _ := p.mlkem.Respond(rand.Reader, ke2)
		timed(func() {
			g1, _ = st1.Complete(r1)
			g2, _ = st2.Complete(r2)
		})
	} else {
		timed(func() {
			_, g1, _ = p.x25519.Respond(rand.Reader, p.ke1)
			_, g2, _ = p.mlkem.Respond(rand.Reader, p.ke2)
		})
	}
	timed(func() {
		k0, err := p.s.InitialKeys(g1, p.ni, p.nr, p.spiI, p.spiR)
		if err != nil {
			b.Fatal(err)
		}
		out0, in0, _ := p.s.SKPair(k0, initiator, rand.Reader)
		k1, _ := p.s.IntermediateKeys(k0, g2, p.ni, p.nr, p.spiI, p.spiR)
		out1, in1, _ := p.s.SKPair(k1, initiator, rand.Reader)
		hdr := make([]byte, 32)
		// IKE_INTERMEDIATE request and response, IKE_AUTH request and
		// response: each side seals two messages and opens two.
		big := p.big
		if !initiator {
			big = big[:1092] // the ML-KEM-768 ciphertext is shorter
		}
		sealed0, _ := out0.Seal(hdr[:32:32], big)
		_, _ = in0.Open(hdr, sealed0[32:]) // stand-in: same cost as opening the peer's
		sealed1, _ := out1.Seal(hdr[:32:32], p.small)
		_, _ = in1.Open(hdr, sealed1[32:])
		ia := suite.IntAuth(p.prf, k0.Pi, nil, p.big)
		ir := suite.IntAuth(p.prf, k0.Pr, nil, p.big[:1092])
		io := suite.IntAuthOctets(ia, ir, 2)
		mine := suite.SignedOctets(p.prf, p.initMsg, p.nr, k1.Pi, p.small[:12], io)
		_ = suite.PSKAuth(p.prf, p.psk, mine)
		theirs := suite.SignedOctets(p.prf, p.initMsg, p.ni, k1.Pr, p.small[:12], io)
		_ = suite.PSKAuth(p.prf, p.psk, theirs)
		esp := suite.Suite{Protocol: wire.ProtocolESP, Encr: wire.EncrAESGCM16, EncrKeyBits: 256}
		_, _ = esp.ChildKeys(p.prf, k1.D, nil, p.ni, p.nr)
	})
	return d
}

// BenchmarkHandshake times a full hybrid handshake per side and the same
// side's primitives in the same iteration, and reports the medians over the
// iterations (robust against preemption on a shared machine): ns per
// handshake for each, the engine's overhead over the primitives in percent,
// and responder handshakes per second per core.
func BenchmarkHandshake(b *testing.B) {
	a, r, ini := benchPair(b)
	p := newPrimitives(b)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ti := make([]time.Duration, 0, b.N)
	tr := make([]time.Duration, 0, b.N)
	pi := make([]time.Duration, 0, b.N)
	pr := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x, y := runHandshake(b, a, r, ini, now)
		ti, tr = append(ti, x), append(tr, y)
		pi = append(pi, p.run(b, true))
		pr = append(pr, p.run(b, false))
	}
	b.StopTimer()
	mi, mr, mpi, mpr := median(ti), median(tr), median(pi), median(pr)
	b.ReportMetric(float64(mi.Nanoseconds()), "init-ns/hs")
	b.ReportMetric(float64(mpi.Nanoseconds()), "init-prim-ns/hs")
	b.ReportMetric(100*(float64(mi)/float64(mpi)-1), "init-overhead-%")
	b.ReportMetric(float64(mr.Nanoseconds()), "resp-ns/hs")
	b.ReportMetric(float64(mpr.Nanoseconds()), "resp-prim-ns/hs")
	b.ReportMetric(100*(float64(mr)/float64(mpr)-1), "resp-overhead-%")
	b.ReportMetric(1e9/float64(mr.Nanoseconds()), "resp-hs/s/core")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
