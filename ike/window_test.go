package ike_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/harness"
	"github.com/pqlab/pqlab/ike/wire"
)

// headerOf parses the IKE header of a trace record.
func headerOf(r harness.Record) (wire.Header, bool) {
	d := r.Data
	if r.Src.Port() == ike.DefaultNATTPort || r.Dst.Port() == ike.DefaultNATTPort {
		if len(d) < 4 || binary.BigEndian.Uint32(d) != 0 {
			return wire.Header{}, false
		}
		d = d[4:]
	}
	h, err := wire.ParseHeader(d)
	return h, err == nil
}

// TestWindowSize: with SET_WINDOW_SIZE (RFC 7296 Section 2.3) the
// initiator keeps several requests outstanding (a Child SA delete next to a
// CREATE_CHILD_SA), the responder answers a retransmission of any request in
// its window from its cache; a peer that offers no window gets one request
// at a time.
func TestWindowSize(t *testing.T) {
	ini, resp := pfsPeers("aes256gcm16-x25519")
	link := harness.Link{Latency: 10 * time.Millisecond}
	for _, c := range []struct {
		name          string
		iWin, rWin    int
		maxInFlight   int
		wantDuration  time.Duration
		dropFirstResp bool
	}{
		{"window-4", 4, 4, 2, 20 * time.Millisecond, false},
		{"responder-window-1", 4, 1, 1, 40 * time.Millisecond, false},
		{"window-4-lost-response", 4, 4, 2, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 380, link: link,
				iCfg: ike.Config{Window: c.iWin}, rCfg: ike.Config{Window: c.rWin}})
			checkEstablished(t, a, b)
			var spi uint32
			for s := range a.children() {
				spi = s
			}
			n := len(p.Trace)
			start := p.Now
			if c.dropFirstResp {
				dropped := false
				p.Filter = func(fromA bool, _, _ netip.AddrPort, data []byte) bool {
					h, _ := headerOf(harness.Record{Data: data, Src: netip.AddrPortFrom(netip.Addr{}, 500)})
					if !fromA && !dropped && h.Exchange == wire.ExchangeInformational && h.IsResponse() {
						dropped = true
						return true
					}
					return false
				}
			}
			a.e.DeleteChildSA(p.Now, spi)
			a.e.CreateChildSA(p.Now, id, "pfs")
			resent := func() uint64 {
				m, _ := b.e.Metrics(b.find(ike.EventIKESAEstablished)[0].SA)
				return uint64(m.ResponsesResent)
			}
			runFor(t, p, time.Minute, func() bool {
				// The Child SA is reported deleted when the Delete is sent;
				// with the response lost, wait for its retransmission too.
				return len(a.children()) == 1 && len(b.children()) == 1 && len(a.find(ike.EventChildSAInstalled)) == 2 &&
					(!c.dropFirstResp || resent() > 0)
			})
			checkConsistent(t, a, b, 1)
			if f := append(failures(a), failures(b)...); len(f) > 0 {
				t.Fatalf("failures %v", f)
			}
			// Requests of A in flight at once.
			inFlight, most := map[uint32]bool{}, 0
			for _, r := range p.Trace[n:] {
				h, ok := headerOf(r)
				if !ok {
					continue
				}
				switch {
				case r.FromA && !h.IsResponse():
					inFlight[h.MessageID] = true
				case !r.FromA && h.IsResponse() && r.Fate == "sent":
					delete(inFlight, h.MessageID)
				}
				most = max(most, len(inFlight))
			}
			if most != c.maxInFlight {
				t.Fatalf("%d requests in flight at once, want %d", most, c.maxInFlight)
			}
			if c.wantDuration != 0 {
				if d := p.Now.Sub(start); d != c.wantDuration {
					t.Fatalf("took %v, want %v", d, c.wantDuration)
				}
			}
			if c.dropFirstResp {
				if m, _ := b.e.Metrics(b.find(ike.EventIKESAEstablished)[0].SA); m.ResponsesResent != 1 {
					t.Fatalf("responder resent %d responses, want 1 (the older request answered from its window)", m.ResponsesResent)
				}
			}
		})
	}
	if _, err := ike.NewEngine(ike.Config{Window: ike.MaxWindow + 1}, seeded(1)); err == nil {
		t.Fatal("accepted a window above MaxWindow")
	}
}

// TestWindowReorderLoss: with a window of four on both ends, both ends
// create Child SAs (with an additional ML-KEM key exchange, so
// CREATE_CHILD_SA and IKE_FOLLOWUP_KE exchanges interleave) and rekey them
// over a path that reorders, duplicates and loses datagrams. Requests that
// overtake a missing one are processed, not dropped; every Child SA ends
// up installed once on both ends with matching keys.
func TestWindowReorderLoss(t *testing.T) {
	ini, resp := pfsPeers("aes256gcm16-x25519-ke1_mlkem768")
	link := harness.Link{Latency: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Loss: 0.08,
		Duplicate: 0.1, Reorder: 0.3, ReorderDelay: 40 * time.Millisecond}
	for seed := uint64(0); seed < 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			a, b, p, id := runPair(t, pairSetup{ini: ini, resp: resp, seed: 700 + seed, link: link,
				iCfg: ike.Config{Window: 4}, rCfg: ike.Config{Window: 4}})
			checkEstablished(t, a, b)
			idB := b.find(ike.EventIKESAEstablished)[0].SA
			// Count requests of A that reach B ahead of a lower message ID
			// that has not arrived yet (the old engine dropped them).
			top, gaps := uint32(0), 0
			b.seen = func(data []byte) {
				h, err := wire.ParseHeader(data)
				if err != nil || h.IsResponse() || !h.IsInitiator() {
					return
				}
				if h.MessageID > top+1 {
					gaps++
				}
				top = max(top, h.MessageID)
			}
			for range 5 {
				if err := a.e.CreateChildSA(p.Now, id, "pfs"); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if err := b.e.CreateChildSA(p.Now, idB, "pfs"); err != nil {
					t.Fatal(err)
				}
			}
			a.drain()
			b.drain()
			runFor(t, p, 10*time.Minute, func() bool { return len(a.children()) == 8 && len(b.children()) == 8 })
			checkConsistent(t, a, b, 8)
			// Rekey three of them at once.
			n := 0
			for spi := range a.children() {
				if n < 3 {
					if err := a.e.RekeyChildSA(p.Now, spi); err != nil {
						t.Fatal(err)
					}
				}
				n++
			}
			a.drain()
			rekeyed := func(e *endpoint) int { return len(e.find(ike.EventChildSARekeyed)) }
			runFor(t, p, 10*time.Minute, func() bool {
				return rekeyed(a) == 3 && rekeyed(b) == 3 && len(a.children()) == 8 && len(b.children()) == 8
			})
			checkConsistent(t, a, b, 8)
			if f := append(failures(a), failures(b)...); len(f) > 0 {
				t.Fatalf("failures %v", f)
			}
			if len(a.find(ike.EventIKESADeleted)) != 0 || len(b.find(ike.EventIKESADeleted)) != 0 {
				t.Fatal("IKE SA deleted")
			}
			drops := b.e.Stats().Dropped[ike.DropOutOfWindow]
			t.Logf("requests ahead of a missing one %d, out-of-window drops %d, trace %d datagrams", gaps, drops, len(p.Trace))
			if gaps == 0 || drops != 0 {
				t.Fatalf("%d requests arrived ahead of a missing one, %d dropped as out of window", gaps, drops)
			}
		})
	}
}
