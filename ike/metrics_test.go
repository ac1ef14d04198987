package ike_test

import (
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/harness"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// TestMetrics checks the per-SA counters against the harness trace and the
// crypto operation log against the hybrid handshake's known work.
func TestMetrics(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	cfg := ike.Config{LogCryptoOps: true, Fragmentation: ike.FragmentConfig{Size: 1200}}
	a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 71, iCfg: cfg, rCfg: cfg, link: harness.Link{Latency: 10 * time.Millisecond}})
	checkEstablished(t, a, b)
	m, _ := a.e.Metrics(id)
	var sent, recv, bs, br int
	for _, r := range p.Trace {
		if r.FromA {
			sent++
			bs += len(r.Data)
		} else {
			recv++
			br += len(r.Data)
		}
	}
	if int(m.DatagramsSent) != sent || int(m.DatagramsReceived) != recv || int(m.BytesSent) != bs || int(m.BytesReceived) != br {
		t.Fatalf("metrics %+v, trace %d/%d datagrams %d/%d octets", m, sent, recv, bs, br)
	}
	if m.Exchanges != 3 || m.RoundTrips != 3 || m.FragmentsSent != 2 || m.SetupTime() != 60*time.Millisecond {
		t.Fatalf("metrics %+v setup %v", m, m.SetupTime())
	}
	if em := a.find(ike.EventIKESAEstablished)[0].Metrics; em == nil || em.SetupTime() != 60*time.Millisecond {
		t.Fatalf("established event metrics %+v", em)
	}
	want := map[suite.Op]uint32{suite.OpKEKeygen: 2, suite.OpDH: 1, suite.OpKEDecaps: 1, suite.OpKEEncaps: 0}
	for op, n := range want {
		if m.Ops[op] != n {
			t.Errorf("initiator %v: %d, want %d", op, m.Ops[op], n)
		}
	}
	// Responder: X25519 keygen + DH, ML-KEM encapsulation.
	rid := b.find(ike.EventIKESAEstablished)[0].SA
	mr, _ := b.e.Metrics(rid)
	for op, n := range map[suite.Op]uint32{suite.OpKEKeygen: 1, suite.OpDH: 1, suite.OpKEEncaps: 1, suite.OpKEDecaps: 0, suite.OpSKOpen: 3, suite.OpSKSeal: 2} {
		if mr.Ops[op] != n {
			t.Errorf("responder %v: %d, want %d", op, mr.Ops[op], n)
		}
	}
	log := a.e.PollCryptoOps(nil)
	var kem int
	for _, o := range log {
		if o.SA != id {
			t.Fatalf("op for SA %d", o.SA)
		}
		if o.Alg == wire.KEMLKEM768 {
			kem++
		}
	}
	if kem != 2 || len(a.e.PollCryptoOps(nil)) != 0 {
		t.Fatalf("ML-KEM ops %d in %v", kem, log)
	}
}
