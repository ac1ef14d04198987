package esp

import (
	"crypto/subtle"
	"encoding/binary"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// InboundSA opens packets for one inbound SA. It is safe for concurrent
// use. RFC 4303 Section 3.4.3 order: a lock-free pre-check against the
// highest sequence number seen (the common in-order case) or a locked
// bitmap check, then the ICV verification without locks, then one locked
// step that advances the window and the counters.
//
// The window lock and the highest sequence number share one atomic word
// (state), so the locked step costs two atomic read-modify-writes (the
// acquiring compare-and-swap and the releasing store of the new top)
// instead of three with a separate mutex and top.
type InboundSA struct {
	// The fields every packet touches come first, so that a hub cycling
	// through many SAs loads few cache lines per packet.

	// state is replay.Top() while the window is unlocked and winLocked
	// while a goroutine holds it (lockWindow/unlockWindow); the lock
	// guards replay, packets and bytes.
	state          atomic.Uint64
	spi            uint32 // cfg.SPI
	window         uint32
	esn, noReplay  bool // cfg.Suite.ESN, cfg.ReplayWindow < 0
	tunnel         bool // cfg.Mode == ModeTunnel
	t              *transform
	fast4          fast4
	replay         ReplayWindow
	packets, bytes uint64
	life           lifetimeState

	cfg           SAConfig
	local, remote []csel
	drops         counters
	cryptoMu      sync.Mutex // AES-CBC state
}

// NewInboundSA keys an inbound SA. The SA is not part of any DB, so its
// lifetime events are not reported (Expired still reflects them).
func NewInboundSA(cfg SAConfig) (*InboundSA, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	t, err := newTransform(cfg.Suite, cfg.Keys, false)
	if err != nil {
		return nil, err
	}
	sa := &InboundSA{cfg: cfg.clone(), t: t, noReplay: cfg.ReplayWindow < 0,
		spi: cfg.SPI, esn: cfg.Suite.ESN, tunnel: cfg.Mode == ModeTunnel,
		local: compile(cfg.Local), remote: compile(cfg.Remote)}
	sa.fast4 = newFast4(sa.remote, sa.local)
	sa.replay.SetSize(cfg.ReplayWindow)
	sa.window = uint32(sa.replay.Size())
	sa.life = newLifetimeState(cfg.Lifetime, Inbound, cfg.SPI, cfg.IfID)
	return sa, nil
}

// SPI returns the SA's SPI.
func (sa *InboundSA) SPI() uint32 { return sa.cfg.SPI }

// IfID returns the tunnel interface the SA belongs to.
func (sa *InboundSA) IfID() uint32 { return sa.cfg.IfID }

// Path returns the SA's outer addressing.
func (sa *InboundSA) Path() Path { return sa.cfg.Path }

// Suite returns the SA's transforms.
func (sa *InboundSA) Suite() Suite { return sa.cfg.Suite }

// Mode returns the SA's mode.
func (sa *InboundSA) Mode() Mode { return sa.cfg.Mode }

// Selectors returns copies of the SA's local and remote traffic selectors.
func (sa *InboundSA) Selectors() (local, remote []Selector) {
	return slices.Clone(sa.cfg.Local), slices.Clone(sa.cfg.Remote)
}

// Expired reports whether the SA passed a hard limit.
func (sa *InboundSA) Expired() bool { return sa.life.hard() }

// Counters returns a snapshot of the SA's counters.
func (sa *InboundSA) Counters() Counters {
	top := sa.lockWindow()
	c := Counters{PacketsIn: sa.packets, BytesIn: sa.bytes}
	sa.unlockWindow(top)
	sa.drops.snapshotDrops(&c)
	return c
}

// HighestSeq returns the highest sequence number accepted so far.
func (sa *InboundSA) HighestSeq() uint64 { return sa.loadTop() }

// winLocked in state marks the window lock as held. It is the one 64-bit
// sequence number the SA never accepts (open drops it as
// DropSeqExhausted), so it can never be a window top: a sender reaches it
// only after 2^64-1 packets, and RFC 4303 Section 3.3.3 forbids cycling.
const winLocked = ^uint64(0)

// lockWindow acquires the window lock and returns the top it replaced.
// The critical sections are a few dozen instructions; a waiter yields its
// thread after a few attempts so that a preempted holder can finish.
func (sa *InboundSA) lockWindow() uint64 {
	if s := sa.state.Load(); s != winLocked && sa.state.CompareAndSwap(s, winLocked) {
		return s
	}
	return sa.lockWindowSlow()
}

func (sa *InboundSA) lockWindowSlow() uint64 {
	for spins := 0; ; spins++ {
		s := sa.state.Load()
		if s != winLocked && sa.state.CompareAndSwap(s, winLocked) {
			return s
		}
		if spins >= lockSpins {
			runtime.Gosched()
		}
	}
}

// lockSpins is how often lockWindow and loadTop retry before yielding.
const lockSpins = 8

// unlockWindow releases the window lock, publishing top (which must be
// replay.Top()).
func (sa *InboundSA) unlockWindow(top uint64) { sa.state.Store(top) }

// loadTop returns the window top, waiting while the window is locked.
func (sa *InboundSA) loadTop() uint64 {
	for spins := 0; ; spins++ {
		if s := sa.state.Load(); s != winLocked {
			return s
		}
		if spins >= lockSpins {
			runtime.Gosched()
		}
	}
}

// Matches reports whether a flow lies within the SA's selectors in the
// inbound direction (source in Remote, destination in Local).
func (sa *InboundSA) Matches(f *Flow) bool {
	ff := flowOf(f)
	return matchFlow(&ff, sa.remote, sa.local)
}

// Open verifies and decrypts the ESP packet pkt (SPI through ICV), appends
// the payload (padding and trailer removed) to dst and returns it with the
// Next Header value. Processing follows RFC 4303 Section 3.4: sequence
// number inference and replay check, ICV verification, decryption, padding
// check, window update. Failures return a DropReason and are counted. The
// region of dst that receives the payload must not overlap pkt (use
// OpenInPlace for that); spare capacity beyond it may be used as scratch.
func (sa *InboundSA) Open(dst, pkt []byte) ([]byte, uint8, error) {
	out, nh, seq, err := sa.open(dst, pkt, false)
	if err == nil {
		err = sa.commit(seq, len(out)-len(dst), true)
	}
	if err != nil {
		return dst, 0, err
	}
	return out, nh, nil
}

// OpenInPlace is Open decrypting inside pkt; the returned payload aliases
// pkt.
func (sa *InboundSA) OpenInPlace(pkt []byte) ([]byte, uint8, error) {
	out, nh, seq, err := sa.open(nil, pkt, true)
	if err == nil {
		err = sa.commit(seq, len(out), true)
	}
	if err != nil {
		return nil, 0, err
	}
	return out, nh, nil
}

// OpenTunnel opens a tunnel-mode packet: the payload must be an IPv4 or
// IPv6 packet (next header 4 or 41) whose addresses and ports lie within
// the SA's selectors (RFC 4301 Section 5.2, step 4). TFC padding beyond the
// inner packet's length is removed. The inner packet is appended to dst.
func (sa *InboundSA) OpenTunnel(dst, pkt []byte) ([]byte, error) {
	out, nh, seq, err := sa.open(dst, pkt, false)
	if err != nil {
		return dst, err
	}
	n, err := sa.checkInner(out[len(dst):], nh)
	if err == nil {
		err = sa.commit(seq, n, true)
	}
	if err != nil {
		return dst, err
	}
	return out[:len(dst)+n], nil
}

// OpenTunnelInPlace is OpenTunnel decrypting inside pkt.
func (sa *InboundSA) OpenTunnelInPlace(pkt []byte) ([]byte, error) {
	out, nh, seq, err := sa.open(nil, pkt, true)
	if err != nil {
		return nil, err
	}
	n, err := sa.checkInner(out, nh)
	if err == nil {
		err = sa.commit(seq, n, true)
	}
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

func (sa *InboundSA) checkInner(inner []byte, nh uint8) (int, error) {
	if !sa.tunnel || (nh != ProtoIPIP && nh != ProtoIPv6) {
		return 0, sa.drops.drop(DropNextHeader)
	}
	if n, ok := sa.fast4.check(inner, nh); ok {
		return n, nil
	}
	var f flow
	if err := parseFlow(inner, &f); err != nil || f.v6 != (nh == ProtoIPv6) {
		return 0, sa.drops.drop(DropMalformed)
	}
	if !matchFlow(&f, sa.remote, sa.local) {
		return 0, sa.drops.drop(DropSelector)
	}
	return f.length, nil
}

// commit advances the replay window past an authenticated packet and
// counts it (n payload octets).
func (sa *InboundSA) commit(seq uint64, n int, count bool) error {
	sa.lockWindow()
	if !sa.replay.Update(seq) && !sa.noReplay {
		sa.unlockWindow(sa.replay.top)
		return sa.drops.drop(DropReplay)
	}
	var p, b uint64
	if count {
		sa.packets++
		sa.bytes += uint64(n)
		p, b = sa.packets, sa.bytes
	}
	sa.unlockWindow(sa.replay.top)
	if count {
		sa.life.account(p, b)
	}
	return nil
}

func overlaps(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	px := uintptr(unsafe.Pointer(unsafe.SliceData(x)))
	py := uintptr(unsafe.Pointer(unsafe.SliceData(y)))
	return px < py+uintptr(len(y)) && py < px+uintptr(len(x))
}

// open checks, verifies and decrypts; the caller commits the sequence
// number once its own checks pass.
func (sa *InboundSA) open(dst, pkt []byte, inPlace bool) ([]byte, uint8, uint64, error) {
	t := sa.t
	hdr := HeaderSize + t.ivLen
	if len(pkt) < hdr+TrailerSize+t.icvLen {
		return dst, 0, 0, sa.drops.drop(DropMalformed)
	}
	if binary.BigEndian.Uint32(pkt) != sa.spi {
		return dst, 0, 0, sa.drops.drop(DropBadSPI)
	}
	if sa.life.hard() {
		return dst, 0, 0, sa.drops.drop(DropExpired)
	}
	ctLen := len(pkt) - hdr - t.icvLen
	if t.aead == nil && ctLen%t.align != 0 {
		return dst, 0, 0, sa.drops.drop(DropMalformed)
	}

	// Sequence number: recover the high-order bits (RFC 4303 Appendix A2)
	// and check the window. Most packets arrive in order, above the top.
	seqLo := binary.BigEndian.Uint32(pkt[4:8])
	seq := uint64(seqLo)
	top := sa.state.Load()
	if top == winLocked {
		top = sa.loadTop()
	}
	if sa.esn {
		seq = inferSeq(top, sa.window, seqLo)
		if seq == winLocked {
			return dst, 0, 0, sa.drops.drop(DropSeqExhausted)
		}
	}
	if !sa.noReplay && (seq == 0 || seq <= top) {
		sa.lockWindow()
		ok := sa.replay.Check(seq)
		sa.unlockWindow(sa.replay.top)
		if !ok {
			return dst, 0, 0, sa.drops.drop(DropReplay)
		}
	}

	var ret, pt []byte
	if inPlace {
		ret = pkt[hdr : hdr+ctLen]
		pt = ret
	} else {
		ret, pt = sliceForAppend(dst, ctLen)
		if inexactOverlap(pt, pkt[hdr:]) || overlaps(pt, pkt[:hdr]) {
			return dst, 0, 0, errOverlap
		}
	}
	iv := pkt[HeaderSize:hdr]
	if t.aead != nil {
		// Nonce and additional data go to the spare capacity of the
		// output when it has room and does not reach into pkt.
		var spare []byte
		if s := ret[len(ret):cap(ret)]; !inPlace && len(s) >= scratchSize && !overlaps(s[:scratchSize], pkt) {
			spare = s
		}
		sc := t.scratch(spare)
		nonce, aad := sc.nonceAAD(&t.salt, iv, pkt[:HeaderSize], seq, sa.esn)
		_, err := t.aead.Open(pt[:0], nonce, pkt[hdr:], aad)
		t.release(sc)
		if err != nil {
			return dst, 0, 0, sa.drops.drop(DropAuth)
		}
	} else {
		sa.cryptoMu.Lock()
		icv := t.icv(pkt[:hdr+ctLen], seq, sa.esn)
		if subtle.ConstantTimeCompare(icv, pkt[hdr+ctLen:]) != 1 {
			sa.cryptoMu.Unlock()
			return dst, 0, 0, sa.drops.drop(DropAuth)
		}
		t.setIV(iv, false)
		t.cbc.CryptBlocks(pt, pkt[hdr:hdr+ctLen])
		sa.cryptoMu.Unlock()
	}

	// Trailer (RFC 4303 Section 2.4): pad length, next header, and the
	// default monotonic padding 1, 2, 3, ...
	padLen := int(pt[ctLen-2])
	nh := pt[ctLen-1]
	if padLen+TrailerSize > ctLen {
		return dst, 0, 0, sa.drops.drop(DropBadPadding)
	}
	n := ctLen - TrailerSize - padLen
	for i, b := range pt[n : n+padLen] {
		if b != byte(i+1) {
			return dst, 0, 0, sa.drops.drop(DropBadPadding)
		}
	}
	if nh == ProtoNoNext {
		// A dummy packet is authentic: it advances the window but
		// carries nothing (RFC 4303 Section 2.6).
		if err := sa.commit(seq, 0, false); err != nil {
			return dst, 0, 0, err
		}
		return dst, 0, 0, sa.drops.drop(DropDummy)
	}
	if inPlace {
		return ret[:n], nh, seq, nil
	}
	return ret[:len(dst)+n], nh, seq, nil
}
