package ike

import (
	"bytes"
	"testing"
)

func TestReassemblyInOrderAndReverse(t *testing.T) {
	parts := [][]byte{[]byte("aaaa"), []byte("bb"), []byte("c")}
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		var r reassembly
		var got []byte
		var first uint8
		for i, k := range order {
			np := uint8(0)
			if k == 0 {
				np = 34
			}
			msg, f, done, err := r.add(7, uint16(k+1), 3, np, parts[k], 16, 100)
			if err != nil {
				t.Fatal(err)
			}
			if done != (i == len(order)-1) {
				t.Fatalf("order %v step %d: done=%v", order, i, done)
			}
			if done {
				got, first = msg, f
			}
		}
		if !bytes.Equal(got, []byte("aaaabbc")) || first != 34 {
			t.Fatalf("order %v: got %q first %d", order, got, first)
		}
		if r.active {
			t.Fatal("buffer not released")
		}
	}
}

func TestReassemblyBoundsAndErrors(t *testing.T) {
	var r reassembly
	if _, _, _, err := r.add(1, 0, 2, 0, nil, 16, 100); err != errFragNumber {
		t.Fatalf("num 0: %v", err)
	}
	if _, _, _, err := r.add(1, 3, 2, 0, nil, 16, 100); err != errFragNumber {
		t.Fatalf("num > total: %v", err)
	}
	if _, _, _, err := r.add(1, 1, 17, 34, nil, 16, 100); err != errFragTotal {
		t.Fatalf("total > max: %v", err)
	}
	if _, _, _, err := r.add(1, 1, 2, 0, []byte("x"), 16, 100); err != errFragFirstNP {
		t.Fatalf("first without np: %v", err)
	}
	if _, _, _, err := r.add(1, 2, 3, 0, []byte("x"), 16, 100); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.add(1, 2, 3, 0, []byte("x"), 16, 100); err != errFragDup {
		t.Fatalf("dup: %v", err)
	}
	// Fewer total fragments than buffered: stale, dropped.
	if _, _, _, err := r.add(1, 1, 2, 34, []byte("x"), 16, 100); err != errFragStale {
		t.Fatalf("stale: %v", err)
	}
	// More total fragments: restart; the old fragment 2 is gone.
	if _, _, _, err := r.add(1, 2, 4, 0, []byte("y"), 16, 100); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if r.got != 1 || r.total != 4 {
		t.Fatalf("restart kept state: got=%d total=%d", r.got, r.total)
	}
	// Size bound.
	if _, _, _, err := r.add(1, 3, 4, 0, make([]byte, 100), 16, 100); err != errFragTooLarge {
		t.Fatalf("too large: %v", err)
	}
	if r.active {
		t.Fatal("oversize message kept")
	}
	// A fragment of a new message ID replaces the old one.
	r.add(1, 1, 2, 34, []byte("a"), 16, 100)
	if _, _, done, _ := r.add(2, 2, 2, 0, []byte("b"), 16, 100); done || r.mid != 2 || r.got != 1 {
		t.Fatalf("new mid: done=%v mid=%d got=%d", done, r.mid, r.got)
	}
}

// TestReassembliesInterleaved: fragments of several messages (requests in a
// window above one, a response sharing a message ID with a request) arrive
// interleaved and each message is reassembled; a fifth message evicts the
// one started first.
func TestReassembliesInterleaved(t *testing.T) {
	var rs reassemblies
	type frag struct {
		mid  uint32
		resp bool
		num  uint16
	}
	content := func(f frag) []byte {
		return []byte{byte(f.mid), map[bool]byte{false: 'q', true: 'r'}[f.resp], byte(f.num)}
	}
	order := []frag{{5, false, 2}, {6, false, 1}, {5, true, 1}, {5, false, 1}, {6, false, 2}, {5, true, 2}}
	done := map[frag][]byte{}
	for _, f := range order {
		msg, first, ok, err := rs.add(f.mid, f.resp, f.num, 2, map[bool]uint8{true: 41}[f.num == 1], content(f), 16, 100)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if first != 41 {
				t.Fatalf("first payload %d", first)
			}
			done[frag{f.mid, f.resp, 0}] = msg
		}
	}
	for _, k := range []frag{{5, false, 0}, {6, false, 0}, {5, true, 0}} {
		want := append(content(frag{k.mid, k.resp, 1}), content(frag{k.mid, k.resp, 2})...)
		if !bytes.Equal(done[k], want) {
			t.Fatalf("message %v: %q, want %q", k, done[k], want)
		}
	}
	if len(rs.bufs) != 0 {
		t.Fatalf("%d buffers left", len(rs.bufs))
	}
	for mid := uint32(10); mid < 10+maxReassemblies+1; mid++ {
		if _, _, _, err := rs.add(mid, false, 2, 2, 0, []byte("x"), 16, 100); err != nil {
			t.Fatal(err)
		}
	}
	if len(rs.bufs) != maxReassemblies || rs.find(10, false) >= 0 || rs.find(10+maxReassemblies, false) < 0 {
		t.Fatalf("eviction: %d buffers", len(rs.bufs))
	}
	rs.drop(11, false)
	if len(rs.bufs) != maxReassemblies-1 || rs.find(11, false) >= 0 {
		t.Fatal("drop")
	}
}
