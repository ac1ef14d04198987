package ike_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/harness"
)

func TestDeterministic(t *testing.T) {
	for _, prop := range []string{proposalFor("x25519", "mlkem768"), proposalFor("ecp256", ""), proposalFor("modp2048", "mlkem512")} {
		ini, resp := peerConfigs(prop, "aes256gcm16")
		_, _, p1, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 99, link: harness.Link{Latency: time.Millisecond}})
		_, _, p2, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 99, link: harness.Link{Latency: time.Millisecond}})
		for i := range p1.Trace {
			if !bytes.Equal(p1.Trace[i].Data, p2.Trace[i].Data) {
				t.Fatalf("%s: datagram %d differs between two runs with the same seed", prop, i)
			}
		}
	}
}
