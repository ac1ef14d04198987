package esp

import (
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// OutboundSA seals packets for one outbound SA. It is safe for concurrent
// use: the sequence number is taken with one atomic add, and the AEAD
// transforms are stateless.
type OutboundSA struct {
	cfg           SAConfig
	t             *transform
	local, remote []csel
	fast4         fast4
	maxSeq, soft  uint64
	life          lifetimeState

	seq    atomic.Uint64 // last sequence number handed out (may pass maxSeq on refusal)
	bytes  atomic.Uint64
	wasted atomic.Uint64 // sequence numbers taken by packets that then failed
	drops  counters

	cryptoMu sync.Mutex // AES-CBC state (IV setter, HMAC)

	// pref orders the SAs of an OutboundSet (higher: preferred);
	// installed says whether the SA is in its set. Both change under the
	// set's lock.
	pref      uint64
	installed bool
}

// NewOutboundSA keys an outbound SA. The SA is not part of any DB, so its
// lifetime events are not reported (Expired still reflects them).
func NewOutboundSA(cfg SAConfig) (*OutboundSA, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if !cfg.Suite.AEAD() && cfg.Rand == nil {
		return nil, errors.New("esp: AES-CBC needs SAConfig.Rand for IVs")
	}
	t, err := newTransform(cfg.Suite, cfg.Keys, true)
	if err != nil {
		return nil, err
	}
	sa := &OutboundSA{cfg: cfg.clone(), t: t, maxSeq: MaxSeq32,
		local: compile(cfg.Local), remote: compile(cfg.Remote)}
	sa.fast4 = newFast4(sa.local, sa.remote)
	if cfg.Suite.ESN {
		sa.maxSeq = MaxSeqESN
	}
	sa.soft = seqSoft(sa.maxSeq)
	sa.life = newLifetimeState(cfg.Lifetime, Outbound, cfg.SPI, cfg.IfID)
	return sa, nil
}

// SPI returns the SPI the SA writes into its packets.
func (sa *OutboundSA) SPI() uint32 { return sa.cfg.SPI }

// IfID returns the tunnel interface the SA belongs to.
func (sa *OutboundSA) IfID() uint32 { return sa.cfg.IfID }

// Path returns the SA's outer addressing.
func (sa *OutboundSA) Path() Path { return sa.cfg.Path }

// Suite returns the SA's transforms.
func (sa *OutboundSA) Suite() Suite { return sa.cfg.Suite }

// Mode returns the SA's mode.
func (sa *OutboundSA) Mode() Mode { return sa.cfg.Mode }

// Selectors returns copies of the SA's local and remote traffic selectors.
func (sa *OutboundSA) Selectors() (local, remote []Selector) {
	return slices.Clone(sa.cfg.Local), slices.Clone(sa.cfg.Remote)
}

// Seq returns the last sequence number used (0 before the first packet).
func (sa *OutboundSA) Seq() uint64 { return min(sa.seq.Load(), sa.maxSeq) }

// Expired reports whether the SA passed a hard limit.
func (sa *OutboundSA) Expired() bool { return sa.life.hard() }

// Counters returns a snapshot of the SA's counters.
func (sa *OutboundSA) Counters() Counters {
	c := Counters{PacketsOut: sa.Seq() - sa.wasted.Load(), BytesOut: sa.bytes.Load()}
	sa.drops.snapshotDrops(&c)
	return c
}

// HeaderLen returns the octets in front of the payload: SPI, sequence
// number and IV. A caller that writes its payload at
// dst[len(dst)+HeaderLen():] saves Seal the copy.
func (sa *OutboundSA) HeaderLen() int { return HeaderSize + sa.t.ivLen }

// SealedLen returns the length of the ESP packet Seal produces for a
// payload of n octets.
func (sa *OutboundSA) SealedLen(n int) int { return sa.sealedLen(n, 0) }

// TunnelLen returns the length of the ESP packet SealTunnel produces for
// an inner packet of n octets (TFC padding included).
func (sa *OutboundSA) TunnelLen(n int) int {
	return sa.sealedLen(n, max(0, sa.cfg.TFCPadTo-n))
}

func (sa *OutboundSA) sealedLen(n, tfc int) int {
	pt := n + tfc + TrailerSize
	pt += (sa.t.align - pt%sa.t.align) % sa.t.align
	return HeaderSize + sa.t.ivLen + pt + sa.t.icvLen
}

// Matches reports whether a flow lies within the SA's selectors in the
// outbound direction (source in Local, destination in Remote).
func (sa *OutboundSA) Matches(f *Flow) bool {
	ff := flowOf(f)
	return matchFlow(&ff, sa.local, sa.remote)
}

// nextSeq reserves the next sequence number, refusing to cycle (RFC 4303
// Section 3.3.3, RFC 4304 Section 2). The counter is a uint64 that stops
// well short of 2^64, so concurrent refused attempts cannot wrap it.
func (sa *OutboundSA) nextSeq() (uint64, error) {
	if sa.life.hard() {
		return 0, sa.refusal()
	}
	seq := sa.seq.Add(1)
	if seq >= sa.soft {
		if seq > sa.maxSeq {
			sa.life.fire(EventSoft, LimitSequence)
			sa.life.fire(EventHard, LimitSequence)
			return 0, DropSeqExhausted
		}
		sa.life.fire(EventSoft, LimitSequence)
		if seq == sa.maxSeq {
			sa.life.fire(EventHard, LimitSequence)
		}
	}
	return seq, nil
}

// refusal is the drop reason of an SA past a hard limit.
func (sa *OutboundSA) refusal() DropReason {
	if sa.seq.Load() >= sa.maxSeq {
		return DropSeqExhausted
	}
	return DropExpired
}

// Seal appends to dst an ESP packet (RFC 4303 Section 2) carrying payload
// with the given Next Header value, and returns the extended slice. It takes
// the next sequence number; it fails with DropSeqExhausted once the space is
// used up and with DropExpired after a hard lifetime. If dst has enough
// spare capacity nothing is allocated; payload may already sit at
// dst[len(dst)+HeaderLen():]. Seal may use spare capacity beyond the
// returned packet as scratch space.
func (sa *OutboundSA) Seal(dst []byte, nextHeader uint8, payload []byte) ([]byte, error) {
	return sa.sealNext(dst, nextHeader, payload, 0)
}

// sealNext seals payload with the next sequence number and counts it. The
// byte count is taken before encryption (and given back on failure): an
// atomic add right after it would wait for the ciphertext stores to drain.
func (sa *OutboundSA) sealNext(dst []byte, nh uint8, payload []byte, tfc int) ([]byte, error) {
	seq, err := sa.nextSeq()
	if err != nil {
		return dst, sa.drops.drop(err.(DropReason))
	}
	n := uint64(len(payload))
	b := sa.bytes.Add(n)
	out, err := sa.seal(dst, seq, nil, nh, payload, tfc, -1)
	if err != nil {
		sa.bytes.Add(-n)
		sa.wasted.Add(1)
		return dst, err
	}
	sa.life.account(seq, b)
	return out, nil
}

// SealTunnel appends to dst the tunnel-mode ESP packet for an inner IPv4
// or IPv6 packet, after checking the inner packet against the SA's
// selectors (RFC 4301 Section 5.1). TFC padding is added if configured
// (RFC 4303 Section 2.7). Buffers behave as in Seal.
func (sa *OutboundSA) SealTunnel(dst, inner []byte) ([]byte, error) {
	if n, ok := sa.fast4.check(inner, ProtoIPIP); ok && sa.cfg.Mode == ModeTunnel {
		return sa.sealTunnel(dst, inner[:n], ProtoIPIP)
	}
	var f flow
	if err := parseFlow(inner, &f); err != nil {
		return dst, sa.drops.drop(DropMalformed)
	}
	return sa.sealTunnelFlow(dst, inner, &f, false)
}

// sealTunnelFlow seals the inner packet whose flow is f; matched says the
// caller already checked f against the SA's selectors.
func (sa *OutboundSA) sealTunnelFlow(dst, inner []byte, f *flow, matched bool) ([]byte, error) {
	if sa.cfg.Mode != ModeTunnel {
		return dst, errNotTunnel
	}
	if !matched && !matchFlow(f, sa.local, sa.remote) {
		return dst, sa.drops.drop(DropSelector)
	}
	nh := ProtoIPIP
	if f.v6 {
		nh = ProtoIPv6
	}
	return sa.sealTunnel(dst, inner[:f.length], nh)
}

func (sa *OutboundSA) sealTunnel(dst, inner []byte, nh uint8) ([]byte, error) {
	tfc := 0
	if sa.cfg.TFCPadTo > len(inner) {
		tfc = sa.cfg.TFCPadTo - len(inner)
	}
	return sa.sealNext(dst, nh, inner, tfc)
}

var (
	errNotTunnel    = errors.New("esp: SA is not in tunnel mode")
	errNotTransport = errors.New("esp: SA is not in transport mode")
)

// seal builds the packet. iv overrides the IV (nil: the sequence number
// for AEAD transforms, Rand for AES-CBC); padLen < 0 means minimal padding.
func (sa *OutboundSA) seal(dst []byte, seq uint64, iv []byte, nh uint8, payload []byte, tfc, padLen int) ([]byte, error) {
	t := sa.t
	hdr := HeaderSize + t.ivLen
	ptLen := len(payload) + tfc
	minPad := (t.align - (ptLen+TrailerSize)%t.align) % t.align
	if padLen < 0 {
		padLen = minPad
	}
	if padLen > MaxPadding || padLen < minPad || (padLen-minPad)%t.align != 0 {
		return dst, sa.drops.drop(DropTooBig)
	}
	ctLen := ptLen + padLen + TrailerSize
	ret, out := sliceForAppend(dst, hdr+ctLen+t.icvLen)

	// The payload first: it may overlap the header position.
	pt := out[hdr : hdr+ctLen]
	if len(payload) > 0 && unsafe.SliceData(payload) != unsafe.SliceData(pt) {
		copy(pt, payload)
	}
	binary.BigEndian.PutUint32(out[0:4], sa.cfg.SPI)
	binary.BigEndian.PutUint32(out[4:8], uint32(seq))
	ivb := out[HeaderSize:hdr]
	switch {
	case iv != nil:
		copy(ivb, iv)
	case t.aead != nil:
		// RFC 4106 Section 3.1 and RFC 7634 Section 2: a counter is a
		// fine IV; the 64-bit sequence number never repeats within an SA.
		binary.BigEndian.PutUint64(ivb, seq)
	default:
		if _, err := io.ReadFull(sa.cfg.Rand, ivb); err != nil {
			return dst, errors.New("esp: reading CBC IV: " + err.Error())
		}
	}
	clear(pt[len(payload):ptLen])
	for i := 0; i < padLen; i++ {
		pt[ptLen+i] = byte(i + 1) // RFC 4303 Section 2.4 default padding
	}
	pt[ctLen-2] = byte(padLen)
	pt[ctLen-1] = nh

	if t.aead != nil {
		sc := t.scratch(ret[len(ret):cap(ret)])
		nonce, aad := sc.nonceAAD(&t.salt, ivb, out[:HeaderSize], seq, sa.cfg.Suite.ESN)
		t.aead.Seal(pt[:0], nonce, pt, aad)
		t.release(sc)
		return ret, nil
	}
	sa.cryptoMu.Lock()
	t.setIV(ivb, true)
	t.cbc.CryptBlocks(pt, pt)
	copy(out[hdr+ctLen:], t.icv(out[:hdr+ctLen], seq, sa.cfg.Suite.ESN))
	sa.cryptoMu.Unlock()
	return ret, nil
}

// icv computes the truncated HMAC over header, IV and ciphertext, with the
// high-order sequence bits appended when ESN is on (RFC 4303 Section
// 3.3.2.1). The result aliases t.sum; the caller holds cryptoMu.
func (t *transform) icv(b []byte, seq uint64, esn bool) []byte {
	t.mac.Reset()
	t.mac.Write(b)
	if esn {
		binary.BigEndian.PutUint32(t.hi[:], uint32(seq>>32))
		t.mac.Write(t.hi[:])
	}
	return t.mac.Sum(t.sum[:0])[:t.icvLen]
}
