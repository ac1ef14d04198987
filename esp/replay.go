package esp

import "math/bits"

// DefaultReplayWindow is the anti-replay window size used when none is
// configured. RFC 4303 Section 3.4.3 asks for at least 32 (64 by default);
// high-rate links need far more, so pqlab defaults to 1024 like Linux's
// replay-window setting of strongSwan.
const DefaultReplayWindow = 1024

// MaxReplayWindow bounds the configurable window (Linux XFRM's limit).
const MaxReplayWindow = 1 << 15

const (
	blockBits    = 64
	blockBitsLog = 6
)

// ReplayWindow is an RFC 4303 Section 3.4.3 anti-replay window kept as a
// ring of 64-bit blocks, as RFC 6479 describes: advancing the window clears
// whole blocks instead of shifting a bitmap. It works on full 64-bit
// sequence numbers; Infer recovers the high-order half of an extended
// sequence number (RFC 4303 Appendix A2).
//
// The zero value is a window of DefaultReplayWindow packets; the bitmap is
// allocated on the first accepted packet. A ReplayWindow is not safe for
// concurrent use.
type ReplayWindow struct {
	size uint64   // W: accepted if top-W < seq <= top, or seq > top
	top  uint64   // highest sequence number accepted so far (0: none)
	ring []uint64 // power-of-two number of blocks, at least W/64+1
}

// NewReplayWindow returns a window of size packets (0 means
// DefaultReplayWindow; sizes are capped at MaxReplayWindow).
func NewReplayWindow(size int) ReplayWindow {
	var w ReplayWindow
	w.SetSize(size)
	return w
}

// SetSize sets the window size and resets the window. Sizes <= 0 mean
// DefaultReplayWindow; sizes above MaxReplayWindow are capped.
func (w *ReplayWindow) SetSize(size int) {
	switch {
	case size <= 0:
		size = DefaultReplayWindow
	case size > MaxReplayWindow:
		size = MaxReplayWindow
	}
	*w = ReplayWindow{size: uint64(size)}
}

// Size returns the window size W.
func (w *ReplayWindow) Size() int {
	if w.size == 0 {
		return DefaultReplayWindow
	}
	return int(w.size)
}

// Top returns the highest sequence number accepted so far (0 if none).
func (w *ReplayWindow) Top() uint64 { return w.top }

// Infer returns the full 64-bit sequence number of a packet that carried
// the low-order 32 bits seqLo, following RFC 4303 Appendix A2.2: if the
// window lies within one 2^32 subspace the packet belongs to that subspace
// or, when it is left of the window's bottom, to the next one; if the
// window straddles two subspaces, values at or above the bottom belong to
// the earlier subspace.
func (w *ReplayWindow) Infer(seqLo uint32) uint64 {
	return inferSeq(w.top, uint32(w.Size()), seqLo)
}

func inferSeq(top uint64, W uint32, seqLo uint32) uint64 {
	tl := uint32(top)
	th := uint32(top >> 32)
	bl := tl - W + 1 // bottom of the window, mod 2^32
	if tl >= W-1 {   // Case A: window within one subspace
		if seqLo >= bl {
			return uint64(th)<<32 | uint64(seqLo)
		}
		return uint64(th+1)<<32 | uint64(seqLo)
	}
	// Case B: window spans two subspaces (or nothing received yet).
	if seqLo >= bl && th > 0 {
		return uint64(th-1)<<32 | uint64(seqLo)
	}
	return uint64(th)<<32 | uint64(seqLo)
}

// Check reports whether seq would be accepted: not zero, not left of the
// window, not already seen. It does not change the window; call Update once
// the packet's ICV has been verified (RFC 4303 Section 3.4.3).
func (w *ReplayWindow) Check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > w.top {
		return true
	}
	if w.top-seq >= uint64(w.Size()) {
		return false
	}
	if w.ring == nil {
		return true
	}
	b := w.ring[(seq>>blockBitsLog)&uint64(len(w.ring)-1)]
	return b&(1<<(seq&(blockBits-1))) == 0
}

// Update marks seq as received, sliding the window when seq is new
// highest. It reports false (and changes nothing) if seq is not
// acceptable, so a Check/Update pair around an unlocked ICV verification
// still catches a duplicate that raced in between.
func (w *ReplayWindow) Update(seq uint64) bool {
	if !w.Check(seq) {
		return false
	}
	if w.ring == nil {
		if w.size == 0 {
			w.size = DefaultReplayWindow
		}
		// A window of W consecutive numbers touches at most
		// ceil((W-1)/64)+1 blocks; round up to a power of two.
		n := int((w.size-1+blockBits-1)>>blockBitsLog) + 1
		n = 1 << bits.Len(uint(n-1))
		w.ring = make([]uint64, n)
	}
	mask := uint64(len(w.ring) - 1)
	if seq > w.top {
		cur := w.top >> blockBitsLog
		next := seq >> blockBitsLog
		diff := next - cur
		if diff > uint64(len(w.ring)) {
			diff = uint64(len(w.ring))
		}
		for i := uint64(1); i <= diff; i++ {
			w.ring[(cur+i)&mask] = 0
		}
		w.top = seq
	}
	w.ring[(seq>>blockBitsLog)&mask] |= 1 << (seq & (blockBits - 1))
	return true
}
