package ike_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/harness"
)

var (
	classicalKEs = []string{"x25519", "ecp256", "ecp384", "modp2048"}
	addKEs       = []string{"", "mlkem512", "mlkem768", "mlkem1024"}
)

func proposalFor(ke, addke string) string {
	p := "aes256gcm16-prfsha384-" + ke
	if addke != "" {
		p += "-ke1_" + addke
	}
	return p
}

// TestMatrixPSK runs every pairing of classical and additional key
// exchange, without loss and with 10 % loss in both directions.
func TestMatrixPSK(t *testing.T) {
	for _, loss := range []float64{0, 0.1} {
		for _, ke := range classicalKEs {
			for _, add := range addKEs {
				name := fmt.Sprintf("%s+%s/loss%.0f%%", ke, add, loss*100)
				t.Run(name, func(t *testing.T) {
					ini, resp := peerConfigs(proposalFor(ke, add), "aes256gcm16-esn")
					link := harness.Link{Latency: 5 * time.Millisecond, Loss: loss}
					for seed := uint64(1); seed <= 3; seed++ {
						a, b, _, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: seed, link: link})
						x, _ := checkEstablished(t, a, b)
						if !x.Suite.ESN {
							t.Fatal("ESN not negotiated")
						}
						m, _ := a.e.Metrics(id)
						wantRT := uint32(2)
						if add != "" {
							wantRT = 3
						}
						if m.RoundTrips != wantRT {
							t.Fatalf("round trips %d, want %d", m.RoundTrips, wantRT)
						}
						if loss == 0 && m.Retransmissions != 0 {
							t.Fatalf("retransmissions without loss: %d", m.Retransmissions)
						}
						if loss == 0 {
							break
						}
					}
				})
			}
		}
	}
}

// TestMLKEMInInit runs ML-KEM as the only key exchange of IKE_SA_INIT.
func TestMLKEMInInit(t *testing.T) {
	for _, kem := range []string{"mlkem512", "mlkem768", "mlkem1024"} {
		t.Run(kem, func(t *testing.T) {
			ini, resp := peerConfigs("aes256gcm16-prfsha384-"+kem, "aes128gcm16")
			a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 7, link: harness.Link{Latency: time.Millisecond}})
			checkEstablished(t, a, b)
			if m, _ := a.e.Metrics(id); m.RoundTrips != 2 {
				t.Fatalf("round trips %d", m.RoundTrips)
			}
			if n := len(p.Trace[0].Data); kem == "mlkem1024" && n < 1568 {
				t.Fatalf("IKE_SA_INIT request of %d octets cannot carry an ML-KEM-1024 key", n)
			}
		})
	}
}

// TestLossRetransmissionCounts checks that loss causes retransmissions and
// that the responder answers retransmitted requests from its cache.
func TestLossRetransmission(t *testing.T) {
	ini, resp := peerConfigs("aes256gcm16-prfsha384-x25519-ke1_mlkem768", "aes256gcm16")
	var retrans, resent uint32
	for seed := uint64(1); seed <= 20; seed++ {
		a, b, _, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: seed,
			iCfg: ike.Config{Retransmit: ike.RetransmitConfig{InitialTimeout: ike.Duration(500 * time.Millisecond), Base: 2, Tries: 8}},
			link: harness.Link{Latency: 5 * time.Millisecond, Loss: 0.3}})
		checkEstablished(t, a, b)
		m, _ := a.e.Metrics(id)
		retrans += m.Retransmissions
		st := b.e.Stats()
		resent += uint32(st.Dropped[ike.DropRetransmit])
	}
	if retrans == 0 || resent == 0 {
		t.Fatalf("30%% loss over 20 runs: %d retransmissions, %d cached answers", retrans, resent)
	}
}

// TestImpairments: loss, duplication, reordering and jitter together, with
// fragmented messages, across seeds.
func TestImpairments(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("ecp384", "mlkem1024"), "aes256gcm16")
	cfg := ike.Config{Fragmentation: ike.FragmentConfig{Size: 576},
		Retransmit: ike.RetransmitConfig{InitialTimeout: ike.Duration(time.Second), Base: 1.5, Tries: 8}}
	link := harness.Link{Latency: 20 * time.Millisecond, Jitter: 30 * time.Millisecond, Loss: 0.1,
		Duplicate: 0.2, Reorder: 0.2, ReorderDelay: 200 * time.Millisecond}
	for seed := uint64(1); seed <= 15; seed++ {
		a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: seed, iCfg: cfg, rCfg: cfg, link: link})
		checkEstablished(t, a, b)
	}
}

// TestIPv6 runs the handshake over IPv6 with a 1280-octet path, the IPv6
// minimum MTU: fragments count the 40-octet IPv6 header.
func TestIPv6(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem1024"), "aes256gcm16")
	ini.Local, ini.Remote = netip.MustParseAddrPort("[2001:db8::1]:500"), netip.MustParseAddrPort("[2001:db8::2]:500")
	for _, c := range []*ike.PeerConfig{&ini, &resp} {
		c.Children[0].LocalTS, c.Children[0].RemoteTS = c.Children[0].RemoteTS, c.Children[0].LocalTS
	}
	ini.Children[0].LocalTS = []ike.TrafficSelector{ike.MustTS("2001:db8:1::/48")}
	ini.Children[0].RemoteTS = []ike.TrafficSelector{ike.MustTS("2001:db8:2::/48")}
	resp.Children[0].LocalTS = []ike.TrafficSelector{ike.MustTS("2001:db8:2::/48")}
	resp.Children[0].RemoteTS = []ike.TrafficSelector{ike.MustTS("2001:db8:1::/48")}
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 81, link: harness.Link{MTU: 1280}})
	checkEstablished(t, a, b)
	for i, r := range p.Trace[2:] {
		if r.Fate != "sent" || 40+8+len(r.Data) > 1280 {
			t.Fatalf("datagram %d: %d octets, %s", i+2, len(r.Data), r.Fate)
		}
	}
}
