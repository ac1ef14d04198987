package esp

import (
	"math/rand/v2"
	"testing"
)

func TestReplayWindowEdges(t *testing.T) {
	for _, size := range []int{0, 32, 64, 100, 1024, 4000} {
		var w ReplayWindow
		if size != 0 {
			w.SetSize(size)
		}
		W := uint64(w.Size())
		if size == 0 && W != DefaultReplayWindow {
			t.Fatalf("zero value window %d", W)
		}
		if w.Check(0) || w.Update(0) {
			t.Fatal("sequence number 0 accepted")
		}
		if !w.Update(1) || w.Update(1) {
			t.Fatal("first packet / its duplicate")
		}
		top := W + 500
		if !w.Update(top) {
			t.Fatal("jump ahead refused")
		}
		// Exactly at the left edge: top-W+1 is inside, top-W outside.
		if !w.Check(top - W + 1) {
			t.Fatalf("W=%d: left edge top-W+1 refused", W)
		}
		if w.Check(top - W) {
			t.Fatalf("W=%d: top-W accepted", W)
		}
		if !w.Update(top-W+1) || w.Update(top-W+1) {
			t.Fatalf("W=%d: edge packet / its duplicate", W)
		}
		if w.Update(top) {
			t.Fatal("duplicate of top accepted")
		}
		// Everything in between once, in random order, then no duplicates.
		r := rand.New(rand.NewPCG(1, W))
		for _, i := range r.Perm(int(W) - 2) {
			seq := top - W + 2 + uint64(i)
			if !w.Update(seq) {
				t.Fatalf("W=%d: %d refused", W, seq)
			}
		}
		for seq := top - W + 1; seq <= top; seq++ {
			if w.Check(seq) {
				t.Fatalf("W=%d: duplicate %d accepted", W, seq)
			}
		}
		// Slide by exactly one block and by more than the ring.
		if !w.Update(top+64) || w.Check(top+64-W) || !w.Check(top+63) {
			t.Fatalf("W=%d: slide by 64", W)
		}
		if !w.Update(top+10*W) || !w.Check(top+10*W-1) || w.Check(top+64) {
			t.Fatalf("W=%d: long jump", W)
		}
	}
}

// TestReplayWindowModel compares the ring against a plain set model on a
// random walk with reordering and duplicates.
func TestReplayWindowModel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, W := range []int{64, 96, 1024} {
		w := NewReplayWindow(W)
		seen := map[uint64]bool{}
		var top uint64
		next := uint64(1)
		for range 20000 {
			var seq uint64
			switch r.IntN(10) {
			case 0: // duplicate or old
				seq = next - uint64(r.IntN(3*W)) - 1
				if seq > next {
					seq = 1
				}
			case 1: // jump
				next += uint64(r.IntN(5 * W))
				seq = next
			default: // reorder a little
				next++
				seq = next - uint64(r.IntN(20))
			}
			want := seq != 0 && !seen[seq] && (seq > top || top-seq < uint64(W))
			if got := w.Update(seq); got != want {
				t.Fatalf("W=%d top=%d seq=%d: got %v want %v", W, top, seq, got, want)
			}
			if want {
				seen[seq] = true
				top = max(top, seq)
			}
		}
	}
}

func TestESNInference(t *testing.T) {
	const W = 64
	cases := []struct {
		top   uint64
		seqLo uint32
		want  uint64
	}{
		// Case A: window inside one subspace.
		{1000, 1001, 1001},
		{1000, 999, 999},
		{1000, 1000 - W + 1, 1000 - W + 1},        // bottom of the window
		{1000, 1000 - W, 1<<32 + 1000 - W},        // left of the window: next subspace
		{1<<32 + 1000, 5, 2<<32 + 5},              // far behind: next subspace
		{1<<32 - 1, 0, 1 << 32},                   // rollover: 0 follows 2^32-1
		{1<<32 - 1, 3, 1<<32 + 3},                 // rollover with a gap
		{1<<32 - 1, 1<<32 - 2, 1<<32 - 2},         // late packet before rollover
		{1<<32 - 1, 1<<32 - W, 1<<32 - W},         // bottom edge
		{1<<32 - 1, 1<<32 - W - 1, 2<<32 - W - 1}, // just left of the edge
		// Case B: window straddles the boundary.
		{1<<32 + 5, 1<<32 - 3, 1<<32 - 3},         // late packet from the previous subspace
		{1<<32 + 5, 7, 1<<32 + 7},                 // ahead
		{1<<32 + 5, 2, 1<<32 + 2},                 // inside, current subspace
		{1<<32 + 5, 1<<32 - W + 6, 1<<32 - W + 6}, // window bottom in the old subspace
		{0, 1, 1},                 // nothing received yet
		{0, 1<<32 - 1, 1<<32 - 1}, // nothing received yet, no earlier subspace
	}
	for _, c := range cases {
		w := NewReplayWindow(W)
		w.top = c.top
		if got := w.Infer(c.seqLo); got != c.want {
			t.Errorf("top %#x seqLo %#x: got %#x want %#x", c.top, c.seqLo, got, c.want)
		}
	}
}

// TestESNRolloverThroughSAs carries traffic across the 2^32 boundary with
// ESN, with reordering around it, and checks that replays on either side are
// caught; without ESN the sender stops at 2^32-1.
func TestESNRolloverThroughSAs(t *testing.T) {
	for _, s0 := range []Suite{suites[0], suites[2], suites[3]} {
		s := s0
		s.ESN = true
		out, in := newPair(t, s, 20)
		start := uint64(1<<32 - 40)
		out.seq.Store(start)
		setTop(in, start)
		inner := ipPacket(a1, a2, ProtoUDP, 1, 2, 80)
		var pkts [][]byte
		for range 80 {
			p, err := out.SealTunnel(nil, inner)
			if err != nil {
				t.Fatal(err)
			}
			pkts = append(pkts, p)
		}
		// Deliver pairs swapped: 2,1,4,3,...
		for i := 0; i+1 < len(pkts); i += 2 {
			for _, p := range [][]byte{pkts[i+1], pkts[i]} {
				if _, err := in.OpenTunnel(nil, p); err != nil {
					t.Fatalf("%v: packet near rollover: %v", s, err)
				}
			}
		}
		if got := in.HighestSeq(); got != start+80 {
			t.Fatalf("%v: highest %#x want %#x", s, got, start+80)
		}
		for _, i := range []int{0, 38, 39, 40, 79} {
			if _, err := in.OpenTunnel(nil, pkts[i]); err != DropReplay {
				t.Fatalf("%v: replay of packet %d: %v", s, i, err)
			}
		}
		// A packet sealed with the wrong high-order bits (as if from 2^32
		// earlier) has the same low bits on the wire but fails the ICV.
		o2, _ := newPair(t, s, 20)
		o2.seq.Store(start + 100 - 1<<32)
		p, _ := o2.SealTunnel(nil, inner)
		if _, err := in.OpenTunnel(nil, p); err != DropAuth {
			t.Fatalf("%v: wrong epoch: %v", s, err)
		}
	}
}

func BenchmarkReplayWindow(b *testing.B) {
	var w ReplayWindow
	for i := range b.N {
		seq := uint64(i) + 1
		if i%8 == 0 {
			seq += 3
		}
		w.Update(seq)
	}
}
