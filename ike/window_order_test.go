package ike

import (
	"bytes"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/harness"
	"github.com/pqlab/pqlab/ike/wire"
)

// Message-ID window with reordering (RFC 7296 Sections 2.1 and 2.3): the
// responder processes a request inside its window even when an earlier one
// is missing, answers each retransmission from the stored response, never
// processes a message ID twice and drops requests beyond the window; the
// initiator matches responses arriving in any order to their requests.

// newWinPair establishes an IKE SA between two engines that both offer
// window w (announced with SET_WINDOW_SIZE in IKE_AUTH).
func newWinPair(t *testing.T, w int) (*wbPair, SAID) {
	t.Helper()
	ini, resp := wbPeers()
	p := newWBPairConfig(t, Config{Window: w}, Config{Window: w}, ini, resp, 11, 12)
	est := p.kinds(true, EventIKESAEstablished)
	if sa := p.a.byID[est[0].SA]; sa.peerWindow != uint32(w) {
		t.Fatalf("peer window %d, want %d", sa.peerWindow, w)
	}
	return p, est[0].SA
}

// onlySA returns the single IKE SA of e.
func onlySA(t *testing.T, e *Engine) *ikeSA {
	t.Helper()
	if len(e.byID) != 1 {
		t.Fatalf("%d IKE SAs", len(e.byID))
	}
	for _, sa := range e.byID {
		return sa
	}
	return nil
}

// midOf returns the message ID of an IKE datagram (port 500, no marker).
func midOf(t *testing.T, d Datagram) uint32 {
	t.Helper()
	h, err := wire.ParseHeader(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	return h.MessageID
}

// deliverTo hands d to dst and returns what dst sends in reply.
func (p *wbPair) deliverTo(dst *Engine, d Datagram) []Datagram {
	p.now = p.now.Add(time.Millisecond)
	dst.Handle(p.now, d.Remote, d.Local, d.Data)
	p.drain()
	return drainOut(dst)
}

// checkChildPairs checks that A and B hold n Child SAs each, paired by
// SPI, and that each was reported installed exactly once.
func checkChildPairs(t *testing.T, p *wbPair, n int) {
	t.Helper()
	sa, sb := onlySA(t, p.a), onlySA(t, p.b)
	if len(sa.children) != n || len(sb.children) != n {
		t.Fatalf("Child SAs: A %d, B %d, want %d", len(sa.children), len(sb.children), n)
	}
	for _, c := range sa.children {
		if d := sb.childByOutSPI(c.inSPI); d == nil || d.inSPI != c.outSPI {
			t.Fatalf("A's Child SA %08x has no partner at B", c.inSPI)
		}
	}
	for _, side := range []bool{true, false} {
		seen := map[uint32]bool{}
		for _, ev := range p.kinds(side, EventChildSAInstalled) {
			if seen[ev.Child.InboundSPI] {
				t.Fatalf("Child SA %08x installed twice", ev.Child.InboundSPI)
			}
			seen[ev.Child.InboundSPI] = true
		}
		if len(seen) != n {
			t.Fatalf("side A=%v: %d installations, want %d", side, len(seen), n)
		}
	}
	if f := append(p.kinds(true, EventExchangeFailed), p.kinds(false, EventExchangeFailed)...); len(f) > 0 {
		t.Fatalf("failed exchanges: %v", f)
	}
}

// TestWindowOutOfOrderRequests: four CREATE_CHILD_SA requests in flight at
// once reach the responder in reverse or shuffled order, or with the first
// one lost and retransmitted; every Child SA is created exactly once, and
// the initiator matches the responses, delivered in another order, to its
// requests.
func TestWindowOutOfOrderRequests(t *testing.T) {
	const w = 4
	for _, c := range []struct {
		name  string
		order []int // delivery order of the requests (indices); missing ones are lost
		back  []int // delivery order of the responses to A
	}{
		{"reverse", []int{3, 2, 1, 0}, []int{0, 1, 2, 3}},
		{"shuffled", []int{2, 0, 3, 1}, []int{3, 1, 0, 2}},
		{"first-lost", []int{3, 1, 2}, []int{2, 3, 1}},
		{"middle-lost", []int{0, 3, 1}, []int{1, 3, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, id := newWinPair(t, w)
			sb := onlySA(t, p.b)
			base := sb.recvMID
			for range w {
				if err := p.a.CreateChildSA(p.now, id, "net"); err != nil {
					t.Fatal(err)
				}
			}
			reqs := drainOut(p.a)
			if len(reqs) != w {
				t.Fatalf("%d requests in flight, want %d", len(reqs), w)
			}
			for i, r := range reqs {
				if midOf(t, r) != base+uint32(i) {
					t.Fatalf("request %d has message ID %d", i, midOf(t, r))
				}
			}
			// More requests wait for room in the window.
			if err := p.a.CreateChildSA(p.now, id, "net"); err != nil {
				t.Fatal(err)
			}
			if d := drainOut(p.a); len(d) != 0 {
				t.Fatal("a fifth request was sent with a window of four")
			}
			resps := map[int]Datagram{}
			for _, i := range c.order {
				out := p.deliverTo(p.b, reqs[i])
				if len(out) != 1 || midOf(t, out[0]) != base+uint32(i) {
					t.Fatalf("request %d: %d datagrams in reply", i, len(out))
				}
				resps[i] = out[0]
			}
			if got := len(p.kinds(false, EventChildSAInstalled)); got != 1+len(c.order) {
				t.Fatalf("responder installed %d Child SAs, want %d", got, 1+len(c.order))
			}
			if drops := p.b.Stats().Dropped[DropOutOfWindow]; drops != 0 {
				t.Fatalf("%d requests dropped as out of window", drops)
			}
			// A retransmission of any answered request gets the stored
			// response, byte for byte, and is not processed again.
			m0 := sb.metrics
			for _, i := range c.order {
				out := p.deliverTo(p.b, reqs[i])
				if len(out) != 1 || !bytes.Equal(out[0].Data, resps[i].Data) {
					t.Fatalf("retransmitted request %d not answered with the stored response", i)
				}
			}
			if sb.metrics.ResponsesResent != m0.ResponsesResent+uint32(len(c.order)) || sb.metrics.Exchanges != m0.Exchanges {
				t.Fatalf("retransmissions processed: resent %d, exchanges %d -> %d", sb.metrics.ResponsesResent-m0.ResponsesResent, m0.Exchanges, sb.metrics.Exchanges)
			}
			if got := len(p.kinds(false, EventChildSAInstalled)); got != 1+len(c.order) {
				t.Fatalf("a retransmission created a Child SA (%d)", got)
			}
			if len(sb.resps) != w {
				t.Fatalf("%d response slots, want %d", len(sb.resps), w)
			}
			// The responses reach A in another order.
			for _, i := range c.back {
				if out := p.deliverTo(p.a, resps[i]); len(out) > 1 {
					t.Fatalf("response %d: A sent %d datagrams", i, len(out))
				}
			}
			if got := len(p.kinds(true, EventChildSAInstalled)); got != 1+len(c.order) {
				t.Fatalf("initiator installed %d Child SAs, want %d", got, 1+len(c.order))
			}
			// A lost request is retransmitted on timeout; everything else
			// (the fifth request) follows.
			p.now = p.now.Add(DefaultRetransmitTimeout)
			p.a.HandleTimeout(p.now)
			p.settle()
			checkChildPairs(t, p, 1+w+1)
			sa := onlySA(t, p.a)
			if sb.recvMID != sa.nextReqMID || sa.outstanding() != 0 {
				t.Fatalf("responder expects message ID %d, initiator is at %d with %d outstanding", sb.recvMID, sa.nextReqMID, sa.outstanding())
			}
		})
	}
}

// TestWindowMultiRoundOutOfOrder: CREATE_CHILD_SA exchanges with an
// additional key exchange (RFC 9370) run side by side; their
// IKE_FOLLOWUP_KE requests, linked to their exchange by the
// ADDITIONAL_KEY_EXCHANGE data, arrive in reverse order like the
// CREATE_CHILD_SA requests, and each completes its own Child SA.
func TestWindowMultiRoundOutOfOrder(t *testing.T) {
	const w, n = 4, 3
	p, id := newWinPair(t, w)
	for range n {
		if err := p.a.CreateChildSA(p.now, id, "pfs"); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		// Group the datagrams (fragments with ML-KEM) by message.
		var mids []uint32
		msgs := map[uint32][]Datagram{}
		for _, d := range drainOut(p.a) {
			m := midOf(t, d)
			if msgs[m] == nil {
				mids = append(mids, m)
			}
			msgs[m] = append(msgs[m], d)
		}
		if len(mids) != n {
			t.Fatalf("round %d: %d requests in flight, want %d", round, len(mids), n)
		}
		var resps [][]Datagram
		for i := n - 1; i >= 0; i-- {
			var out []Datagram
			for _, d := range msgs[mids[i]] {
				out = append(out, p.deliverTo(p.b, d)...)
			}
			if len(out) == 0 {
				t.Fatalf("round %d request %d not answered", round, i)
			}
			resps = append(resps, out)
		}
		if round == 0 && len(onlySA(t, p.b).xchgs) != n {
			t.Fatalf("responder holds %d open exchanges, want %d", len(onlySA(t, p.b).xchgs), n)
		}
		for _, i := range []int{1, 0, 2} {
			for _, d := range resps[i] {
				p.now = p.now.Add(time.Millisecond)
				p.a.Handle(p.now, d.Remote, d.Local, d.Data)
			}
			p.drain()
		}
	}
	if d := drainOut(p.a); len(d) != 0 {
		t.Fatalf("%d more requests", len(d))
	}
	if x := onlySA(t, p.b).xchgs; len(x) != 0 {
		t.Fatalf("%d exchanges still open at the responder", len(x))
	}
	checkChildPairs(t, p, 1+n)
}

// TestWindowBounds: with a window of four, a request four message IDs
// beyond the lowest unanswered one is dropped and counted, one three beyond
// is answered; once the lowest is answered the window moves on, and the
// response it replaced is forgotten (never more than four are stored).
func TestWindowBounds(t *testing.T) {
	const w = 4
	p, _ := newWinPair(t, w)
	sa, sb := onlySA(t, p.a), onlySA(t, p.b)
	r := sb.recvMID
	req := func(mid uint32) Datagram {
		s, err := p.a.protect(sa, sa.skOut, sa.header(wire.ExchangeInformational, mid, false), nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return Datagram{Local: sa.local, Remote: sa.remote, Data: s.dgrams[0]}
	}
	send := func(mid uint32, want DropReason, answered bool) []Datagram {
		t.Helper()
		before := p.b.Stats().Dropped
		out := p.deliverTo(p.b, req(mid))
		if answered != (len(out) == 1) {
			t.Fatalf("request %d: %d datagrams in reply", mid, len(out))
		}
		after := p.b.Stats().Dropped
		for k := range after {
			wantN := before[k]
			if DropReason(k) == want {
				wantN++
			}
			if after[k] != wantN {
				t.Fatalf("request %d: drops %v -> %v, want one %v", mid, before, after, want)
			}
		}
		return out
	}
	const none = numDropReasons
	send(r+w, DropOutOfWindow, false)
	first := send(r+w-1, none, true)
	if sb.recvMID != r {
		t.Fatalf("recvMID moved to %d before %d was answered", sb.recvMID, r)
	}
	ex := sb.metrics.Exchanges
	again := send(r+w-1, DropRetransmit, true)
	if !bytes.Equal(again[0].Data, first[0].Data) || sb.metrics.Exchanges != ex {
		t.Fatal("retransmission not answered from the stored response")
	}
	send(r+w, DropOutOfWindow, false)
	send(r, none, true)
	if sb.recvMID != r+1 {
		t.Fatalf("recvMID %d, want %d", sb.recvMID, r+1)
	}
	send(r+w, none, true) // now inside: r+1 .. r+w
	send(r+w+1, DropOutOfWindow, false)
	send(r, DropOutOfWindow, false) // its response was replaced by r+w's
	send(r+2, none, true)
	send(r+1, none, true)
	if sb.recvMID != r+w+1 {
		t.Fatalf("recvMID %d, want %d", sb.recvMID, r+w+1)
	}
	stored := 0
	for _, c := range sb.resps {
		if c.valid {
			stored++
		}
	}
	if len(sb.resps) != w || stored != w {
		t.Fatalf("%d slots, %d stored responses, want %d", len(sb.resps), stored, w)
	}
	for mid := r + 1; mid <= r+w; mid++ {
		send(mid, DropRetransmit, true)
	}
	if len(p.kinds(false, EventIKESADeleted)) != 0 || sb.state != stEstablished {
		t.Fatal("the SA did not survive")
	}
}

// hEndpoint adapts an Engine to harness.Endpoint for white-box runs;
// before, when set, sees every datagram ahead of Handle and after right
// behind it.
type hEndpoint struct {
	e             *Engine
	events        []Event
	before, after func(data []byte)
}

func (p *hEndpoint) Handle(now time.Time, local, remote netip.AddrPort, data []byte) {
	if p.before != nil {
		p.before(data)
	}
	p.e.Handle(now, local, remote, data)
	if p.after != nil {
		p.after(data)
	}
	p.events = append(p.events, drainEvents(p.e)...)
}

func (p *hEndpoint) HandleTimeout(now time.Time) {
	p.e.HandleTimeout(now)
	p.events = append(p.events, drainEvents(p.e)...)
}

func (p *hEndpoint) NextTimeout() (time.Time, bool) { return p.e.NextTimeout() }

func (p *hEndpoint) PollTransmit() (netip.AddrPort, netip.AddrPort, []byte, bool) {
	d, ok := p.e.PollTransmit()
	return d.Local, d.Remote, d.Data, ok
}

func (p *hEndpoint) count(k EventKind) int {
	n := 0
	for _, ev := range p.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// TestWindowReorderLoss: with a window of four on both ends, both ends
// create Child SAs (with an additional ML-KEM key exchange, so fragmented
// CREATE_CHILD_SA and IKE_FOLLOWUP_KE exchanges interleave) and then rekey
// some, over a path that reorders, duplicates and loses datagrams. Every
// request of A that reaches B inside B's window is processed, also when it
// overtook a lower one (counted; the old engine dropped those), none is
// processed twice, and every Child SA ends up installed on both ends.
func TestWindowReorderLoss(t *testing.T) {
	const w = 4
	link := harness.Link{Latency: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Loss: 0.08,
		Duplicate: 0.1, Reorder: 0.3, ReorderDelay: 40 * time.Millisecond}
	totalAhead := 0
	for seed := uint64(0); seed < 8; seed++ {
		ini, resp := wbPeers()
		ea, err := NewEngine(Config{Window: w}, seededReader(40+seed))
		if err != nil {
			t.Fatal(err)
		}
		eb, err := NewEngine(Config{Window: w, Peers: []PeerConfig{resp}}, seededReader(80+seed))
		if err != nil {
			t.Fatal(err)
		}
		a, b := &hEndpoint{e: ea}, &hEndpoint{e: eb}
		p := harness.New(a, b, t0r, seed)
		p.AtoB, p.BtoA = link, link
		id, err := ea.Initiate(p.Now, ini)
		if err != nil {
			t.Fatal(err)
		}
		run := func(what string, done func() bool) {
			t.Helper()
			if err := p.Run(p.Now.Add(10*time.Minute), done); err != nil {
				t.Fatalf("seed %d, %s: %v\nA %v\nB %v", seed, what, err, a.events, b.events)
			}
		}
		run("handshake", func() bool { return a.count(EventChildSAInstalled) == 1 && b.count(EventChildSAInstalled) == 1 })
		sa, sb := onlySA(t, ea), onlySA(t, eb)
		// Watch A's requests at B: is one inside the window, above the
		// lowest unanswered message ID, new?
		var inside, ahead bool
		processed := map[uint32]int{}
		var drops uint64
		b.before = func(data []byte) {
			h, err := wire.ParseHeader(data)
			inside, ahead = false, false
			if err != nil || h.IsResponse() || h.SPIr != sb.spiR {
				return
			}
			inside = sb.cachedFor(h.MessageID) == nil && sb.inWindow(h.MessageID, w)
			ahead = inside && h.MessageID > sb.recvMID
			drops = eb.Stats().Dropped[DropOutOfWindow]
		}
		b.after = func(data []byte) {
			h, _ := wire.ParseHeader(data)
			if inside && eb.Stats().Dropped[DropOutOfWindow] != drops {
				t.Fatalf("seed %d: request %d inside the window dropped", seed, h.MessageID)
			}
			if inside && sb.cachedFor(h.MessageID) != nil {
				processed[h.MessageID]++
				if ahead {
					totalAhead++
				}
			}
		}
		for range 5 {
			if err := ea.CreateChildSA(p.Now, id, "pfs"); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if err := eb.CreateChildSA(p.Now, sb.id, "pfs"); err != nil {
				t.Fatal(err)
			}
		}
		run("create", func() bool {
			return len(sa.children) == 8 && len(sb.children) == 8 && sa.outstanding() == 0 && sb.outstanding() == 0
		})
		spis := slices.Sorted(maps.Keys(func() map[uint32]bool {
			m := map[uint32]bool{}
			for _, c := range sa.children {
				m[c.inSPI] = true
			}
			return m
		}()))
		for _, spi := range spis[:3] {
			if err := ea.RekeyChildSA(p.Now, spi); err != nil {
				t.Fatal(err)
			}
		}
		run("rekey", func() bool {
			return a.count(EventChildSARekeyed) == 3 && b.count(EventChildSARekeyed) == 3 &&
				len(sa.children) == 8 && len(sb.children) == 8 && sa.outstanding() == 0 && sb.outstanding() == 0
		})
		for _, c := range sa.children {
			if d := sb.childByOutSPI(c.inSPI); d == nil || d.inSPI != c.outSPI {
				t.Fatalf("seed %d: A's Child SA %08x has no partner at B", seed, c.inSPI)
			}
		}
		for mid, n := range processed {
			if n != 1 {
				t.Fatalf("seed %d: request %d processed %d times", seed, mid, n)
			}
		}
		if uint32(len(processed)) != sa.nextReqMID-3 || sb.recvMID != sa.nextReqMID {
			t.Fatalf("seed %d: %d requests processed, A sent %d; B expects %d", seed, len(processed), sa.nextReqMID-3, sb.recvMID)
		}
		for _, ev := range append(a.events, b.events...) {
			if ev.Kind == EventExchangeFailed || ev.Kind == EventFailed || ev.Kind == EventIKESADeleted {
				t.Fatalf("seed %d: %v", seed, ev)
			}
		}
	}
	if totalAhead == 0 {
		t.Fatal("no request overtook a lower one: the test did not exercise the window")
	}
	t.Logf("%d requests processed ahead of a lower one", totalAhead)
}

// TestWindowAddressFollowsNewest: the responder answers each request where
// it came from, but an overtaken request from the peer's old address does
// not take the SA back there (RFC 7296 Sections 2.11 and 2.23).
func TestWindowAddressFollowsNewest(t *testing.T) {
	p, _ := newWinPair(t, 4)
	sa, sb := onlySA(t, p.a), onlySA(t, p.b)
	r := sb.recvMID
	req := func(mid uint32, from netip.AddrPort) Datagram {
		s, err := p.a.protect(sa, sa.skOut, sa.header(wire.ExchangeInformational, mid, false), nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return Datagram{Local: from, Remote: sa.remote, Data: s.dgrams[0]}
	}
	oldAddr, newAddr := sa.local, netip.MustParseAddrPort("198.51.100.7:4321")
	out := p.deliverTo(p.b, req(r+1, newAddr))
	if len(out) != 1 || out[0].Remote != newAddr || sb.remote != newAddr {
		t.Fatalf("newer request: answered to %v, SA at %v", out, sb.remote)
	}
	out = p.deliverTo(p.b, req(r, oldAddr))
	if len(out) != 1 || out[0].Remote != oldAddr {
		t.Fatalf("older request answered to %v, want %v", out, oldAddr)
	}
	if sb.remote != newAddr {
		t.Fatalf("SA moved back to %v", sb.remote)
	}
	// A retransmission of the older request is answered where its response
	// went first.
	if out = p.deliverTo(p.b, req(r, newAddr)); len(out) != 1 || out[0].Remote != oldAddr {
		t.Fatalf("retransmission answered to %v", out)
	}
}
