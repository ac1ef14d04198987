package ike_test

import (
	"encoding/binary"
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
