package esp

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Mode is the ESP mode of an SA (RFC 4303 Section 3.1).
type Mode uint8

// Modes. The zero value is tunnel mode.
const (
	ModeTunnel    Mode = iota // the payload is a whole IP packet (next header 4 or 41)
	ModeTransport             // ESP sits between the IP header and its payload
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeTunnel:
		return "tunnel"
	case ModeTransport:
		return "transport"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Encap is how ESP packets of an SA travel between the gateways.
type Encap uint8

// Encapsulations.
const (
	EncapUDP Encap = iota // ESP in UDP, port 4500 (RFC 3948); the zero value
	EncapRaw              // ESP directly over IP, protocol 50
)

// String returns the encapsulation's name.
func (e Encap) String() string {
	switch e {
	case EncapUDP:
		return "udp"
	case EncapRaw:
		return "raw"
	}
	return "Encap(" + strconv.Itoa(int(e)) + ")"
}

// Path is the outer addressing of an SA: what the caller's output
// function needs to send a sealed packet. The data plane does not use it.
type Path struct {
	Encap  Encap
	Local  netip.AddrPort // gateway's outer address (port 4500 with UDP)
	Remote netip.AddrPort // peer's outer address
}

// SAConfig is what the IKE engine hands over to install one direction of
// a Child SA.
type SAConfig struct {
	// SPI is the value carried in the ESP header: for an inbound SA the SPI
	// this end chose, for an outbound SA the peer's.
	SPI   uint32
	Suite Suite
	Keys  Keys
	Mode  Mode
	// Local and Remote are the traffic selectors of this end and of the
	// peer (the initiator's TSi/TSr swap for the responder). Outbound
	// packets must go from Local to Remote, inbound packets from Remote to
	// Local (RFC 4301 Section 5.2, step 4). Empty lists match nothing.
	Local, Remote []Selector
	Lifetime      Lifetime
	// ReplayWindow is the inbound anti-replay window (0:
	// DefaultReplayWindow; negative: no replay check, RFC 4303 Section
	// 3.4.3 allows disabling it only for manually keyed SAs).
	ReplayWindow int
	// TFCPadTo pads outbound tunnel-mode payloads to at least this many
	// octets (Traffic Flow Confidentiality padding, RFC 4303 Section 2.7).
	TFCPadTo int
	// Rand supplies the AES-CBC IVs of an outbound SA (RFC 3602 Section 2.1).
	Rand io.Reader
	// IfID ties the SA to a route-based tunnel interface, like a Linux
	// XFRM interface ID.
	IfID uint32
	Path Path
}

func (c *SAConfig) clone() SAConfig {
	d := *c
	d.Keys = Keys{Encr: slices.Clone(c.Keys.Encr), Integ: slices.Clone(c.Keys.Integ)}
	d.Local = slices.Clone(c.Local)
	d.Remote = slices.Clone(c.Remote)
	return d
}

func (c *SAConfig) check() error {
	if c.SPI == 0 {
		return errors.New("esp: SPI 0 is reserved (RFC 4303 Section 2.1)")
	}
	if c.Mode > ModeTransport {
		return fmt.Errorf("esp: unknown mode %d", c.Mode)
	}
	for _, ts := range append(slices.Clip(c.Local), c.Remote...) {
		if !ts.Valid() {
			return fmt.Errorf("esp: invalid traffic selector %v", ts)
		}
	}
	if c.TFCPadTo < 0 || c.TFCPadTo > 0xffff {
		return errors.New("esp: TFC padding target out of range")
	}
	return nil
}

// sliceForAppend extends in by n bytes, reusing its capacity when it can.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total, total+total/4)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}

// inexactOverlap reports whether x and y share memory without starting at
// the same address, which the AEAD and CBC implementations reject.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	px := uintptr(unsafe.Pointer(unsafe.SliceData(x)))
	py := uintptr(unsafe.Pointer(unsafe.SliceData(y)))
	if px == py {
		return false
	}
	return px < py+uintptr(len(y)) && py < px+uintptr(len(x))
}

var errOverlap = errors.New("esp: output buffer overlaps the packet")

// OutboundSA seals packets for one outbound SA. It is safe for concurrent
// use; the sequence number is taken atomically.
type OutboundSA struct {
	cfg    SAConfig
	t      *transform
	maxSeq uint64
	soft   uint64
	seq    atomic.Uint64 // last sequence number used
	ctr    counters
	life   lifetimeState

	cryptoMu sync.Mutex // AES-CBC state (IV setter, HMAC)
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
	sa := &OutboundSA{cfg: cfg.clone(), t: t, maxSeq: maxSeq32}
	if cfg.Suite.ESN {
		sa.maxSeq = maxSeq64
	}
	sa.soft = seqSoft(sa.maxSeq)
	sa.life = lifetimeState{limits: cfg.Lifetime, dir: Outbound, spi: cfg.SPI, ifID: cfg.IfID}
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
func (sa *OutboundSA) Seq() uint64 { return sa.seq.Load() }

// Expired reports whether the SA passed a hard limit.
func (sa *OutboundSA) Expired() bool { return sa.life.hard() }

// Counters returns a snapshot of the SA's counters.
func (sa *OutboundSA) Counters() Counters {
	c := Counters{PacketsOut: sa.ctr.packets.Load(), BytesOut: sa.ctr.bytes.Load()}
	sa.ctr.snapshotDrops(&c)
	return c
}

// HeaderLen returns the octets in front of the payload: SPI, sequence
// number and IV. A caller that writes its payload at dst[len(dst)+HeaderLen():]
// saves Seal the copy.
func (sa *OutboundSA) HeaderLen() int { return HeaderSize + sa.t.ivLen }

// SealedLen returns the length of the ESP packet Seal produces for a
// payload of n octets (SealTunnel: n plus TFC padding).
func (sa *OutboundSA) SealedLen(n int) int {
	return sa.sealedLen(n, 0)
}

func (sa *OutboundSA) sealedLen(n, tfc int) int {
	pt := n + tfc + TrailerSize
	pt += (sa.t.align - pt%sa.t.align) % sa.t.align
	return HeaderSize + sa.t.ivLen + pt + sa.t.icvLen
}

// Matches reports whether a flow lies within the SA's selectors in the
// outbound direction (source in Local, destination in Remote).
func (sa *OutboundSA) Matches(f *Flow) bool {
	return matchSelectors(f, sa.cfg.Local, sa.cfg.Remote)
}

// refusal is the drop reason of an SA past a hard limit.
func (sa *OutboundSA) refusal() DropReason {
	if sa.seq.Load() >= sa.maxSeq {
		return DropSeqExhausted
	}
	return DropExpired
}

// nextSeq reserves the next sequence number, refusing to cycle
// (RFC 4303 Section 3.3.3, RFC 4304 Section 2).
func (sa *OutboundSA) nextSeq() (uint64, error) {
	for {
		cur := sa.seq.Load()
		if cur >= sa.maxSeq {
			sa.life.fire(EventSoft, LimitSequence)
			sa.life.fire(EventHard, LimitSequence)
			return 0, DropSeqExhausted
		}
		if sa.seq.CompareAndSwap(cur, cur+1) {
			seq := cur + 1
			if seq >= sa.soft {
				sa.life.fire(EventSoft, LimitSequence)
				if seq == sa.maxSeq {
					sa.life.fire(EventHard, LimitSequence)
				}
			}
			return seq, nil
		}
	}
}

// Seal appends to dst an ESP packet (RFC 4303 Section 2) carrying payload
// with the given Next Header value, and returns the extended slice. It takes
// the next sequence number; it fails with DropSeqExhausted once the space is
// used up and with DropExpired after a hard lifetime. If dst has enough
// spare capacity nothing is allocated; payload may already sit at
// dst[len(dst)+HeaderLen():].
func (sa *OutboundSA) Seal(dst []byte, nextHeader uint8, payload []byte) ([]byte, error) {
	if sa.life.hard() {
		return dst, sa.ctr.drop(sa.refusal())
	}
	seq, err := sa.nextSeq()
	if err != nil {
		return dst, sa.ctr.drop(err.(DropReason))
	}
	out, err := sa.seal(dst, seq, nil, nextHeader, payload, 0, -1)
	if err != nil {
		return dst, err
	}
	sa.count(len(payload))
	return out, nil
}

func (sa *OutboundSA) count(n int) {
	p := sa.ctr.packets.Add(1)
	b := sa.ctr.bytes.Add(uint64(n))
	sa.life.account(p, b)
}

// SealTunnel appends to dst the tunnel-mode ESP packet for an inner IPv4
// or IPv6 packet, after checking the inner packet against the SA's
// selectors (RFC 4301 Section 5.1). TFC padding is added if configured.
func (sa *OutboundSA) SealTunnel(dst, inner []byte) ([]byte, error) {
	f, err := ParseFlow(inner)
	if err != nil {
		return dst, sa.ctr.drop(DropMalformed)
	}
	return sa.sealTunnelFlow(dst, inner, &f)
}

func (sa *OutboundSA) sealTunnelFlow(dst, inner []byte, f *Flow) ([]byte, error) {
	if !sa.Matches(f) {
		return dst, sa.ctr.drop(DropSelector)
	}
	inner = inner[:f.Len]
	nh := ProtoIPIP
	if f.Src.Is6() {
		nh = ProtoIPv6
	}
	if sa.life.hard() {
		return dst, sa.ctr.drop(sa.refusal())
	}
	seq, err := sa.nextSeq()
	if err != nil {
		return dst, sa.ctr.drop(err.(DropReason))
	}
	tfc := 0
	if sa.cfg.TFCPadTo > len(inner) {
		tfc = sa.cfg.TFCPadTo - len(inner)
	}
	out, err := sa.seal(dst, seq, nil, nh, inner, tfc, -1)
	if err != nil {
		return dst, err
	}
	sa.count(len(inner))
	return out, nil
}

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
	if padLen > MaxPadding || (padLen-minPad)%t.align != 0 {
		return dst, sa.ctr.drop(DropTooBig)
	}
	ctLen := ptLen + padLen + TrailerSize
	ret, out := sliceForAppend(dst, hdr+ctLen+t.icvLen)

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
	pt := out[hdr : hdr+ctLen]
	if len(payload) > 0 && unsafe.SliceData(payload) != unsafe.SliceData(pt) {
		copy(pt, payload)
	}
	clear(pt[len(payload):ptLen])
	for i := 0; i < padLen; i++ {
		pt[ptLen+i] = byte(i + 1) // RFC 4303 Section 2.4 default padding
	}
	pt[ctLen-2] = byte(padLen)
	pt[ctLen-1] = nh

	if t.aead != nil {
		sc := t.getScratch()
		nonce, aad := sc.nonceAAD(&t.salt, ivb, sa.cfg.SPI, seq, sa.cfg.Suite.ESN)
		t.aead.Seal(pt[:0], nonce, pt, aad)
		t.putScratch(sc)
		return ret, nil
	}
	sa.cryptoMu.Lock()
	t.setIV(ivb, true)
	t.cbc.CryptBlocks(pt, pt)
	icv := t.icv(out[:hdr+ctLen], seq, sa.cfg.Suite.ESN)
	copy(out[hdr+ctLen:], icv)
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

// InboundSA opens packets for one inbound SA. It is safe for concurrent
// use: the replay window is checked before and updated after the
// (unlocked) ICV verification.
type InboundSA struct {
	cfg  SAConfig
	t    *transform
	ctr  counters
	life lifetimeState

	mu       sync.Mutex // replay window
	replay   ReplayWindow
	noReplay bool

	cryptoMu sync.Mutex // AES-CBC state
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
	sa := &InboundSA{cfg: cfg.clone(), t: t, noReplay: cfg.ReplayWindow < 0}
	sa.replay.SetSize(cfg.ReplayWindow)
	sa.life = lifetimeState{limits: cfg.Lifetime, dir: Inbound, spi: cfg.SPI, ifID: cfg.IfID}
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
	c := Counters{PacketsIn: sa.ctr.packets.Load(), BytesIn: sa.ctr.bytes.Load()}
	sa.ctr.snapshotDrops(&c)
	return c
}

// HighestSeq returns the highest sequence number accepted so far.
func (sa *InboundSA) HighestSeq() uint64 {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	return sa.replay.Top()
}

// Matches reports whether a flow lies within the SA's selectors in the
// inbound direction (source in Remote, destination in Local).
func (sa *InboundSA) Matches(f *Flow) bool {
	return matchSelectors(f, sa.cfg.Remote, sa.cfg.Local)
}

func (sa *InboundSA) count(n int) {
	p := sa.ctr.packets.Add(1)
	b := sa.ctr.bytes.Add(uint64(n))
	sa.life.account(p, b)
}

// Open verifies and decrypts the ESP packet pkt (SPI through ICV), appends
// the payload (padding and trailer removed) to dst and returns it with the
// Next Header value. Processing follows RFC 4303 Section 3.4: sequence
// number inference and replay check, ICV verification, decryption, padding
// check, window update. Failures return a DropReason and are counted.
// The region of dst that receives the payload must not overlap pkt (use
// OpenInPlace for that).
func (sa *InboundSA) Open(dst, pkt []byte) ([]byte, uint8, error) {
	out, nh, err := sa.open(dst, pkt, false)
	if err != nil {
		return dst, 0, err
	}
	sa.count(len(out) - len(dst))
	return out, nh, nil
}

// OpenInPlace is Open decrypting inside pkt; the returned payload aliases
// pkt.
func (sa *InboundSA) OpenInPlace(pkt []byte) ([]byte, uint8, error) {
	out, nh, err := sa.open(nil, pkt, true)
	if err != nil {
		return nil, 0, err
	}
	sa.count(len(out))
	return out, nh, nil
}

// OpenTunnel opens a tunnel-mode packet: the payload must be an IPv4 or
// IPv6 packet (next header 4 or 41) whose addresses and ports lie within
// the SA's selectors (RFC 4301 Section 5.2, step 4). TFC padding beyond the
// inner packet's length is removed. The inner packet is appended to dst.
func (sa *InboundSA) OpenTunnel(dst, pkt []byte) ([]byte, error) {
	out, nh, err := sa.open(dst, pkt, false)
	if err != nil {
		return dst, err
	}
	n, err := sa.checkInner(out[len(dst):], nh)
	if err != nil {
		return dst, err
	}
	sa.count(n)
	return out[:len(dst)+n], nil
}

// OpenTunnelInPlace is OpenTunnel decrypting inside pkt.
func (sa *InboundSA) OpenTunnelInPlace(pkt []byte) ([]byte, error) {
	out, nh, err := sa.open(nil, pkt, true)
	if err != nil {
		return nil, err
	}
	n, err := sa.checkInner(out, nh)
	if err != nil {
		return nil, err
	}
	sa.count(n)
	return out[:n], nil
}

func (sa *InboundSA) checkInner(inner []byte, nh uint8) (int, error) {
	if sa.cfg.Mode != ModeTunnel || (nh != ProtoIPIP && nh != ProtoIPv6) {
		return 0, sa.ctr.drop(DropNextHeader)
	}
	f, err := ParseFlow(inner)
	if err != nil || f.Src.Is4() != (nh == ProtoIPIP) {
		return 0, sa.ctr.drop(DropMalformed)
	}
	if !sa.Matches(&f) {
		return 0, sa.ctr.drop(DropSelector)
	}
	return f.Len, nil
}

func (sa *InboundSA) open(dst, pkt []byte, inPlace bool) ([]byte, uint8, error) {
	t := sa.t
	hdr := HeaderSize + t.ivLen
	if len(pkt) < hdr+TrailerSize+t.icvLen {
		return dst, 0, sa.ctr.drop(DropMalformed)
	}
	if binary.BigEndian.Uint32(pkt) != sa.cfg.SPI {
		return dst, 0, sa.ctr.drop(DropBadSPI)
	}
	if sa.life.hard() {
		return dst, 0, sa.ctr.drop(DropExpired)
	}
	ctLen := len(pkt) - hdr - t.icvLen
	if ctLen%t.align != 0 && t.aead == nil {
		return dst, 0, sa.ctr.drop(DropMalformed)
	}

	// Sequence number: recover the high-order bits and check the window.
	seqLo := binary.BigEndian.Uint32(pkt[4:8])
	seq := uint64(seqLo)
	if !sa.noReplay || sa.cfg.Suite.ESN {
		sa.mu.Lock()
		if sa.cfg.Suite.ESN {
			seq = sa.replay.Infer(seqLo)
		}
		ok := sa.noReplay || sa.replay.Check(seq)
		sa.mu.Unlock()
		if !ok {
			return dst, 0, sa.ctr.drop(DropReplay)
		}
	}

	var ret, pt []byte
	if inPlace {
		ret = pkt[hdr : hdr+ctLen]
		pt = ret
	} else {
		ret, pt = sliceForAppend(dst, ctLen)
		if inexactOverlap(pt, pkt[hdr:]) {
			return dst, 0, errOverlap
		}
	}
	iv := pkt[HeaderSize:hdr]
	if t.aead != nil {
		sc := t.getScratch()
		nonce, aad := sc.nonceAAD(&t.salt, iv, sa.cfg.SPI, seq, sa.cfg.Suite.ESN)
		_, err := t.aead.Open(pt[:0], nonce, pkt[hdr:], aad)
		t.putScratch(sc)
		if err != nil {
			return dst, 0, sa.ctr.drop(DropAuth)
		}
	} else {
		sa.cryptoMu.Lock()
		icv := t.icv(pkt[:hdr+ctLen], seq, sa.cfg.Suite.ESN)
		if subtle.ConstantTimeCompare(icv, pkt[hdr+ctLen:]) != 1 {
			sa.cryptoMu.Unlock()
			return dst, 0, sa.ctr.drop(DropAuth)
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
		return dst, 0, sa.ctr.drop(DropBadPadding)
	}
	n := ctLen - TrailerSize - padLen
	for i, b := range pt[n : n+padLen] {
		if b != byte(i+1) {
			return dst, 0, sa.ctr.drop(DropBadPadding)
		}
	}

	if !sa.noReplay {
		sa.mu.Lock()
		ok := sa.replay.Update(seq)
		sa.mu.Unlock()
		if !ok {
			return dst, 0, sa.ctr.drop(DropReplay)
		}
	} else if sa.cfg.Suite.ESN {
		sa.mu.Lock()
		sa.replay.Update(seq) // keeps the ESN inference current
		sa.mu.Unlock()
	}
	if nh == ProtoNoNext {
		return dst, 0, sa.ctr.drop(DropDummy)
	}
	if inPlace {
		return ret[:n], nh, nil
	}
	return ret[:len(dst)+n], nh, nil
}
