package esp

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// newWindowPair is newPair with an inbound replay window of w packets.
func newWindowPair(t testing.TB, s Suite, seed uint64, w int) (*OutboundSA, *InboundSA) {
	t.Helper()
	oc, ic := pairConfig(t, s, seed)
	ic.ReplayWindow = w
	o, err := NewOutboundSA(oc)
	if err != nil {
		t.Fatal(err)
	}
	i, err := NewInboundSA(ic)
	if err != nil {
		t.Fatal(err)
	}
	return o, i
}

// sealAt seals inner as the packet with sequence number seq.
func sealAt(t testing.TB, o *OutboundSA, seq uint64, inner []byte) []byte {
	t.Helper()
	o.seq.Store(seq - 1)
	p, err := o.SealTunnel(nil, inner)
	if err != nil {
		t.Fatalf("seal %#x: %v", seq, err)
	}
	return p
}

// checkUnlocked asserts the window lock is free and its word holds the top.
func checkUnlocked(t testing.TB, sa *InboundSA) {
	t.Helper()
	if s := sa.state.Load(); s == winLocked || s != sa.replay.top {
		t.Fatalf("window state %#x, replay top %#x", s, sa.replay.top)
	}
}

// TestInboundWindowModel drives an InboundSA (pre-check, ESN inference,
// ICV verification, locked commit) single-threaded through random sequence
// numbers sealed by the real sender and compares every outcome with a
// ReplayWindow used as the reference: the reference infers the high-order
// bits, a packet it rejects must be dropped as a replay, a packet whose
// inferred number differs from the one it was sealed with must fail the
// ICV, every other packet must be accepted. Runs start at 1 and just below
// the 2^32 boundary (ESN rollover), with windows at and off block sizes.
func TestInboundWindowModel(t *testing.T) {
	inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 40)
	r := rand.New(rand.NewPCG(11, 4303))
	for _, esn := range []bool{false, true} {
		for _, W := range []int{64, 100, 1024} {
			starts := []uint64{1}
			if esn {
				starts = append(starts, 1<<32-uint64(3*W), 5<<32-50)
			}
			for _, start := range starts {
				s := suites[0]
				s.ESN = esn
				o, in := newWindowPair(t, s, uint64(W), W)
				ref := NewReplayWindow(W)
				if start > 1 {
					setTop(in, start-1)
					ref.Update(start - 1)
				}
				next := start
				var accepted, replays, auths uint64
				for range 3000 {
					var seq uint64
					switch r.IntN(12) {
					case 0, 1: // duplicate or old, up to three windows back
						seq = next - uint64(r.IntN(3*W))
					case 2: // just around the left edge
						seq = ref.Top() - uint64(W) + uint64(r.IntN(3))
					case 3: // jump ahead
						next += uint64(r.IntN(3 * W))
						seq = next
					case 4: // far behind: a number from the previous 2^32 block
						seq = next - 1<<32 + uint64(r.IntN(2*W))
					default: // in order with a little reordering
						next++
						seq = next - uint64(r.IntN(20))
					}
					if seq == 0 || seq > next+1<<31 || (!esn && seq > MaxSeq32) {
						continue // wrapped below 1: not sealable
					}
					wire := seq
					if !esn {
						wire = seq & MaxSeq32
					}
					want := error(nil)
					inferred := ref.Infer(uint32(wire))
					if !esn {
						inferred = wire
					}
					switch {
					case !ref.Check(inferred):
						want = DropReplay
					case inferred != wire:
						want = DropAuth
					}
					p := sealAt(t, o, wire, inner)
					got, err := in.OpenTunnel(nil, p)
					if !errors.Is(err, want) || (want == nil && err != nil) {
						t.Fatalf("esn=%v W=%d top=%#x seq=%#x: got %v want %v", esn, W, ref.Top(), wire, err, want)
					}
					switch want {
					case nil:
						ref.Update(inferred)
						accepted++
						if string(got) != string(inner) {
							t.Fatal("payload differs")
						}
					case DropReplay:
						replays++
					case DropAuth:
						auths++
					}
					if in.HighestSeq() != ref.Top() {
						t.Fatalf("esn=%v W=%d: top %#x want %#x", esn, W, in.HighestSeq(), ref.Top())
					}
					checkUnlocked(t, in)
				}
				c := in.Counters()
				if c.PacketsIn != accepted || c.Dropped(DropReplay) != replays || c.Dropped(DropAuth) != auths {
					t.Fatalf("esn=%v W=%d: counters %+v, want %d accepted, %d replays, %d auth", esn, W, c, accepted, replays, auths)
				}
				if accepted < 1000 || replays < 100 || (esn && start > 1 && auths == 0) {
					t.Fatalf("esn=%v W=%d start=%#x: walk too tame: %d accepted, %d replays, %d auth",
						esn, W, start, accepted, replays, auths)
				}
			}
		}
	}
}

// TestInboundTopSentinel: the one number the window word reserves for its
// lock, 2^64-1, is dropped (as exhausted) before the ICV, and the window
// goes on working around it.
func TestInboundTopSentinel(t *testing.T) {
	s := suites[0]
	s.ESN = true
	o, in := newPair(t, s, 3)
	top := uint64(1<<64 - 10)
	setTop(in, top)
	p := sealPlain(o, 1<<64-1, append(make([]byte, 40), 1, 2, 2, ProtoIPIP))
	if _, _, err := in.Open(nil, p); err != DropSeqExhausted {
		t.Fatalf("sequence number 2^64-1: %v", err)
	}
	p = sealPlain(o, top-1, append(ipPacket(a1, a2, ProtoUDP, 1, 2, 40), 1, 2, 2, ProtoIPIP))
	if _, err := in.OpenTunnel(nil, p); err != nil {
		t.Fatalf("late packet below the top: %v", err)
	}
	if _, err := in.OpenTunnel(nil, p); err != DropReplay {
		t.Fatalf("its duplicate: %v", err)
	}
	if in.HighestSeq() != top {
		t.Fatalf("top %#x", in.HighestSeq())
	}
	checkUnlocked(t, in)
}

// TestInboundDuplicateStorm opens one set of sealed packets from many
// goroutines at once, each in its own shuffled order with extra
// duplicates, while others read the counters and the top. Every sequence
// number must be accepted exactly once (by one goroutine), every other
// attempt must be dropped as a replay, and the counters must agree. With a
// window smaller than the reordering some packets fall out of the window:
// then at most one acceptance per number, and acceptances plus replay drops
// must account for every attempt.
func TestInboundDuplicateStorm(t *testing.T) {
	const (
		n       = 600
		workers = 8
		dups    = 2 // extra copies of each packet per worker
	)
	for _, tc := range []struct {
		s     Suite
		w     int
		exact bool
		dist  int // reordering distance
	}{
		{suites[0], 1024, true, 40},
		{Suite{Encr: suites[0].Encr, KeyBits: suites[0].KeyBits, ESN: true}, 1024, true, 40},
		{suites[2], 1024, true, 40},
		{suites[3], 1024, true, 40},
		{suites[0], 64, false, 400},
	} {
		o, in := newWindowPair(t, tc.s, 9, tc.w)
		inners := make([][]byte, n)
		pkts := make([][]byte, n)
		for i := range pkts {
			inners[i] = ipPacket(a1, a2, ProtoUDP, uint16(i+1), 2, 40+i%50)
			pkts[i] = sealAt(t, o, uint64(i+1), inners[i])
		}
		var accepts [n]atomic.Int32
		var attempts, replays, bytes atomic.Uint64
		var wg, readers sync.WaitGroup
		stop := make(chan struct{})
		readers.Add(1)
		go func() { // concurrent readers of the lock-protected state
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := in.Counters()
				if top := in.HighestSeq(); top > n || c.PacketsIn > n {
					t.Errorf("reader: top %d packets %d", top, c.PacketsIn)
					return
				}
			}
		}()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 77))
				order := make([]int, 0, n*(dups+1))
				for i := range n {
					for range dups + 1 {
						order = append(order, i)
					}
				}
				// Mostly forward with local reordering, so that the
				// workers race on the same numbers.
				for i := range order {
					j := min(len(order)-1, i+r.IntN(tc.dist))
					order[i], order[j] = order[j], order[i]
				}
				dst := make([]byte, 0, 256)
				for _, i := range order {
					attempts.Add(1)
					out, err := in.OpenTunnel(dst, pkts[i])
					switch {
					case err == nil:
						accepts[i].Add(1)
						bytes.Add(uint64(len(out)))
						if string(out) != string(inners[i]) {
							t.Errorf("packet %d: payload differs", i+1)
						}
					case err == DropReplay:
						replays.Add(1)
					default:
						t.Errorf("packet %d: %v", i+1, err)
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		var total, wantBytes uint64
		for i := range accepts {
			a := accepts[i].Load()
			if a > 1 || (tc.exact && a != 1) {
				t.Fatalf("%v W=%d: sequence number %d accepted %d times", tc.s, tc.w, i+1, a)
			}
			total += uint64(a)
			wantBytes += uint64(a) * uint64(len(inners[i]))
		}
		c := in.Counters()
		if c.PacketsIn != total || c.BytesIn != wantBytes || bytes.Load() != wantBytes ||
			c.Dropped(DropReplay) != replays.Load() || total+replays.Load() != attempts.Load() {
			t.Fatalf("%v W=%d: counters %d packets %d bytes %d replays; saw %d accepted, %d bytes, %d replays, %d attempts",
				tc.s, tc.w, c.PacketsIn, c.BytesIn, c.Dropped(DropReplay), total, wantBytes, replays.Load(), attempts.Load())
		}
		if in.HighestSeq() != n {
			t.Fatalf("%v W=%d: top %d", tc.s, tc.w, in.HighestSeq())
		}
		if !tc.exact && total == n {
			t.Fatalf("%v W=%d: no packet fell out of the window", tc.s, tc.w)
		}
		checkUnlocked(t, in)
		// Everything is now a replay.
		for i := range pkts {
			if _, err := in.OpenTunnel(nil, pkts[i]); err != DropReplay {
				t.Fatalf("%v: replay of %d after the storm: %v", tc.s, i+1, err)
			}
		}
	}
}

// BenchmarkInboundCommit measures the locked step alone (window update and
// counters for an in-order packet), the part of Open that the window lock
// costs.
func BenchmarkInboundCommit(b *testing.B) {
	_, in := newPair(b, suites[0], 1)
	seq := uint64(0)
	for b.Loop() {
		seq++
		if err := in.commit(seq, 1400, true); err != nil {
			b.Fatal(err)
		}
	}
}
