package ike_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
)

// TestChildDeleteReportedWhenSent: the Delete payload lists SAs the sender
// has removed (RFC 7296 Sections 1.4.1 and 3.11), so the data plane hears of
// the deletion when the request leaves, not when the peer answers.
func TestChildDeleteReportedWhenSent(t *testing.T) {
	ini, resp := peerConfigs(proposalFor("x25519", ""), "aes256gcm16")
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 5})
	checkEstablished(t, a, b)
	var spi uint32
	for s := range a.children() {
		spi = s
	}
	p.Filter = func(fromA bool, _, _ netip.AddrPort, _ []byte) bool { return fromA } // the request never arrives
	n := len(a.find(ike.EventChildSADeleted))
	if err := a.e.DeleteChildSA(p.Now, spi); err != nil {
		t.Fatal(err)
	}
	runFor(t, p, time.Millisecond, nil)
	del := a.find(ike.EventChildSADeleted)
	if len(del) != n+1 || del[n].Child.InboundSPI != spi {
		t.Fatalf("no EventChildSADeleted for %08x after sending the Delete: %v", spi, del)
	}
	// Once the peer answers, the deletion is not reported a second time.
	p.Filter = nil
	runFor(t, p, time.Minute, func() bool { return len(b.children()) == 0 })
	if len(b.children()) != 0 {
		t.Fatal("the peer kept the Child SA")
	}
	if got := len(a.find(ike.EventChildSADeleted)); got != n+1 {
		t.Fatalf("%d deletion events, want %d", got, n+1)
	}
}
