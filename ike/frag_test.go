package ike_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/harness"
)

// ipSize is the IP datagram size of a UDP payload to dst.
func ipSize(dst netip.AddrPort, payload int) int {
	if dst.Addr().Is4() {
		return 20 + 8 + payload
	}
	return 40 + 8 + payload
}

// TestFragmentSizes: with each fragment size, every datagram after
// IKE_SA_INIT fits, over a path whose MTU is that size.
func TestFragmentSizes(t *testing.T) {
	for _, size := range []int{1280, 1200, 576} {
		for _, kem := range []string{"mlkem768", "mlkem1024"} {
			t.Run(fmt.Sprintf("%d/%s", size, kem), func(t *testing.T) {
				ini, resp := peerConfigs(proposalFor("x25519", kem), "aes256gcm16")
				cfg := ike.Config{Fragmentation: ike.FragmentConfig{Size: size}}
				a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 3, iCfg: cfg, rCfg: cfg,
					link: harness.Link{Latency: 2 * time.Millisecond, MTU: size}})
				checkEstablished(t, a, b)
				frags := 0
				for i, r := range p.Trace {
					if r.Fate != "sent" {
						t.Fatalf("datagram %d of %d octets: %s", i, len(r.Data), r.Fate)
					}
					if i >= 2 && ipSize(r.Dst, len(r.Data)) > size {
						t.Fatalf("datagram %d is %d octets as IP datagram, limit %d", i, ipSize(r.Dst, len(r.Data)), size)
					}
				}
				m, _ := a.e.Metrics(id)
				frags = int(m.FragmentsSent)
				// 1280 without NAT: the 1249-octet ML-KEM-768 request fits.
				if want := !(size == 1280 && kem == "mlkem768"); (frags >= 2) != want {
					t.Fatalf("%d fragments sent", frags)
				}
				if m.Retransmissions != 0 {
					t.Fatalf("%d retransmissions", m.Retransmissions)
				}
			})
		}
	}
}

// TestFragmentOnRetransmit: the first transmission is whole and lost to the
// path MTU; the retransmission is fragmented and gets through.
func TestFragmentOnRetransmit(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem1024"), "aes256gcm16")
	cfg := ike.Config{Fragmentation: ike.FragmentConfig{Size: 1280, Policy: ike.FragmentOnRetransmit},
		Retransmit: ike.RetransmitConfig{InitialTimeout: ike.Duration(500 * time.Millisecond), Base: 2, Tries: 3}}
	a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 4, iCfg: cfg, rCfg: cfg,
		link: harness.Link{Latency: 2 * time.Millisecond, MTU: 1280}})
	checkEstablished(t, a, b)
	m, _ := a.e.Metrics(id)
	// The whole IKE_INTERMEDIATE request is lost; its fragmented
	// retransmission arrives, but the whole response is lost too; the second
	// retransmission makes the responder resend its response fragmented.
	if m.Retransmissions != 2 || m.FragmentsSent < 4 {
		t.Fatalf("retransmissions %d, fragments %d", m.Retransmissions, m.FragmentsSent)
	}
	var mtuDrops int
	for _, r := range p.Trace {
		if r.Fate == "mtu" {
			mtuDrops++
		}
	}
	if mtuDrops != 2 {
		t.Fatalf("%d datagrams lost to the MTU, want 2", mtuDrops)
	}
	if d := p.Now.Sub(t0); d < 500*time.Millisecond {
		t.Fatalf("completed after %v, before the first retransmission", d)
	}
}

// TestFragmentationNotNegotiated: a peer that does not announce
// IKEV2_FRAGMENTATION_SUPPORTED gets whole messages.
func TestFragmentationNotNegotiated(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem1024"), "aes256gcm16")
	a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 5,
		rCfg: ike.Config{Fragmentation: ike.FragmentConfig{Policy: ike.FragmentNever}}})
	checkEstablished(t, a, b)
	if m, _ := a.e.Metrics(id); m.FragmentsSent != 0 {
		t.Fatalf("%d fragments sent to a peer without fragmentation", m.FragmentsSent)
	}
	if n := len(p.Trace[2].Data); n < 1568 {
		t.Fatalf("IKE_INTERMEDIATE request of %d octets", n)
	}
}

// TestReassemblyBound: a responder that accepts at most 2 fragments drops
// a request cut into more, and the handshake fails by timeout.
func TestReassemblyBound(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem1024"), "aes256gcm16")
	iCfg := ike.Config{Fragmentation: ike.FragmentConfig{Size: 576},
		Retransmit: ike.RetransmitConfig{InitialTimeout: ike.Duration(time.Second), Base: 1, Tries: 2}}
	rCfg := ike.Config{Fragmentation: ike.FragmentConfig{MaxFragments: 2}}
	a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 6, iCfg: iCfg, rCfg: rCfg})
	f := a.find(ike.EventFailed)
	if len(f) != 1 || f[0].Reason.Cause != ike.CauseTimeout {
		t.Fatalf("initiator events %v", a.events)
	}
	if st := b.e.Stats(); st.Dropped[ike.DropFragment] == 0 {
		t.Fatalf("no fragment dropped: %v", st.Dropped)
	}
}

// TestNATTraversal: the initiator behind a NAT moves to port 4500 and both
// sides UDP-encapsulate ESP.
func TestNATTraversal(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 8,
		nat: &harness.NAT{Public: netip.MustParseAddrPort("198.51.100.9:40500")}})
	x, y := checkEstablished(t, a, b)
	if !x.Encap || !y.Encap {
		t.Fatal("ESP not encapsulated behind a NAT")
	}
	if x.Local.Port() != 4500 || y.Remote != netip.MustParseAddrPort("198.51.100.9:40500") {
		t.Fatalf("ports: initiator %v->%v, responder %v->%v", x.Local, x.Remote, y.Local, y.Remote)
	}
	// IKE_INTERMEDIATE already on 4500 (RFC 9242 Section 3).
	if p.Trace[2].Src.Port() != 4500 {
		t.Fatalf("IKE_INTERMEDIATE sent from %v", p.Trace[2].Src)
	}
}

// TestNoNAT: without a NAT the SA stays on port 500 and ESP is not
// encapsulated; PortSwitch auth keeps IKE_INTERMEDIATE on 500 under a NAT.
func TestNoNATAndPortSwitchAtAuth(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 9})
	x, y := checkEstablished(t, a, b)
	if x.Encap || x.Local.Port() != 500 {
		t.Fatalf("initiator: encap %v on %v without NAT", x.Encap, x.Local)
	}
	// The responder checks the request's hashes, computed with SPIr = 0.
	if y.Encap || y.Local.Port() != 500 {
		t.Fatalf("responder: encap %v on %v without NAT", y.Encap, y.Local)
	}
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 9,
		iCfg: ike.Config{NATT: ike.NATTConfig{PortSwitch: ike.SwitchAtAuth}},
		nat:  &harness.NAT{Public: netip.MustParseAddrPort("198.51.100.9:40500")}})
	checkEstablished(t, a, b)
	if p.Trace[2].Src.Port() != 500 || p.Trace[4].Src.Port() != 4500 {
		t.Fatalf("ports %v %v", p.Trace[2].Src, p.Trace[4].Src)
	}
}
