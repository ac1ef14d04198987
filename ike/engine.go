// Package ike is the IKEv2 protocol engine (RFC 7296): IKE SAs and their
// Child SAs, with hybrid post-quantum key exchanges through IKE_INTERMEDIATE
// (RFC 9242, RFC 9370) or ML-KEM alone in IKE_SA_INIT, RFC 7383
// fragmentation, NAT traversal, retransmission and rekeying.
//
// The engine performs no I/O and reads no clock (the sans-I/O shape of
// quinn-proto and quic-go). The caller drives it:
//
//  1. Handle(now, local, remote, datagram) for every UDP datagram received
//     on the IKE ports (500 and the NAT-T port; on the NAT-T port with the
//     non-ESP marker still in front, as received).
//  2. HandleTimeout(now) when the deadline from NextTimeout has passed.
//  3. Initiate, CreateChildSA, RekeyIKESA, RekeyChildSA, Delete and
//     ChildSALimit for local decisions and data-plane reports.
//  4. After each of these calls, PollTransmit until it reports false and
//     send each datagram; PollEvent until false and act on each event
//     (install or remove ESP SAs); NextTimeout for the next deadline.
//     PollCryptoOps and PollKeyLog (Config.LogCryptoOps, Config.LogKeys)
//     return the crypto operations and IKE SA keys recorded meanwhile.
//
// One Engine serves any number of IKE SAs, indexed by their local SPI. It is
// not safe for concurrent use; a driver serialises calls.
package ike

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// KEMethodFunc returns the key exchange method with a Transform ID. The
// default is suite.MethodByID; tests inject suite.Fixed methods to replay
// recorded exchanges.
type KEMethodFunc func(id uint16) (suite.Method, error)

// Engine runs IKE SAs. Create it with NewEngine.
type Engine struct {
	cfg   Config
	rand  io.Reader
	ent   entropy
	peers peerIndex

	sas      map[uint64]*ikeSA // by local SPI
	byID     map[SAID]*ikeSA
	halfOpen map[initKey]*ikeSA // responder IKE_SA_INIT retransmission index
	// byIdentity indexes established SAs by the peer's identity.
	byIdentity map[string][]*ikeSA
	children   map[uint32]*childSA
	nextID     SAID
	nHalf      int
	// nChildren counts installed Child SAs (children also holds nil
	// entries reserving SPIs of exchanges in progress).
	nChildren int

	timers saHeap

	out     []Datagram
	outHead int
	events  []Event
	evHead  int
	ops     []CryptoOp
	logOps  bool
	stats   Stats

	cookieSecret [cookieSecretLen]byte
	// idSwap maps key exchange IDs between standard and vendor-private
	// code points on the wire (Compat.PrivateTransformIDs).
	idSwap map[uint16]uint16
	// keyLog holds IKE SA keys for PollKeyLog (Config.LogKeys).
	keyLog []KeyLogEntry
}

// initKey identifies a responder's half-open SA by the initiator's SPI and
// address, so that a retransmitted IKE_SA_INIT request gets the cached
// response (RFC 7296 Section 2.1).
type initKey struct {
	spiI   uint64
	remote netip.AddrPort
}

// NewEngine checks cfg, fills in defaults and returns an engine that draws
// all randomness (SPIs, nonces, key exchange secrets, IVs, jitter, cookie
// secret) from rand. With a deterministic rand the engine is deterministic.
func NewEngine(cfg Config, rand io.Reader) (*Engine, error) {
	if rand == nil {
		return nil, errors.New("ike: NewEngine needs a random reader")
	}
	cfg.Retransmit = cfg.Retransmit.withDefaults()
	if err := cfg.Retransmit.validate(); err != nil {
		return nil, err
	}
	f := &cfg.Fragmentation
	if f.Size == 0 {
		f.Size = DefaultFragmentSize
	}
	if f.Size < MinFragmentSize || f.Size > MaxFragmentSize || f.SizeIPv6 != 0 && (f.SizeIPv6 < MinFragmentSize || f.SizeIPv6 > MaxFragmentSize) {
		return nil, fmt.Errorf("ike: fragment size %d out of range %d..%d", f.Size, MinFragmentSize, MaxFragmentSize)
	}
	if f.Policy > FragmentNever || f.Counts > CountUDP {
		return nil, fmt.Errorf("ike: invalid fragmentation policy")
	}
	if f.MaxFragments == 0 {
		f.MaxFragments = DefaultMaxFragments
	}
	if f.MaxReassembledSize == 0 {
		f.MaxReassembledSize = DefaultMaxReassembledSize
	}
	if cfg.NATT.Port == 0 {
		cfg.NATT.Port = DefaultNATTPort
	}
	if cfg.CookieThreshold == 0 {
		cfg.CookieThreshold = DefaultCookieThreshold
	}
	if cfg.HalfOpenTimeout == 0 {
		cfg.HalfOpenTimeout = Duration(DefaultHalfOpenTimeout)
	}
	if cfg.NonceSize == 0 {
		cfg.NonceSize = DefaultNonceSize
	}
	if cfg.NonceSize < wire.MinNonceLen || cfg.NonceSize > wire.MaxNonceLen {
		return nil, fmt.Errorf("ike: nonce size %d out of range", cfg.NonceSize)
	}
	if cfg.Window == 0 {
		cfg.Window = 1
	}
	if cfg.Window < 1 || cfg.Window > MaxWindow {
		return nil, fmt.Errorf("ike: window %d out of range 1..%d", cfg.Window, MaxWindow)
	}
	if cfg.KEMethod == nil {
		cfg.KEMethod = suite.MethodByID
	}
	e := &Engine{
		cfg:        cfg,
		rand:       rand,
		sas:        make(map[uint64]*ikeSA),
		byID:       make(map[SAID]*ikeSA),
		halfOpen:   make(map[initKey]*ikeSA),
		byIdentity: make(map[string][]*ikeSA),
		children:   make(map[uint32]*childSA),
		logOps:     cfg.LogCryptoOps,
	}
	e.ent = readerEntropy{rand}
	var err error
	if e.idSwap, err = buildIDSwap(cfg.Compat.PrivateTransformIDs); err != nil {
		return nil, err
	}
	for i := range cfg.Peers {
		p, err := newPeerEntry(&cfg.Peers[i])
		if err != nil {
			return nil, err
		}
		e.peers.add(p)
	}
	if _, err := io.ReadFull(rand, e.cookieSecret[:]); err != nil {
		return nil, fmt.Errorf("ike: reading cookie secret: %w", err)
	}
	return e, nil
}

// AddPeer adds a connection that incoming IKE SAs may use (as
// Config.Peers does at creation). Lookups are indexed by the peer's Remote
// address and RemoteID, so a hub can hold one connection per branch.
func (e *Engine) AddPeer(p PeerConfig) error {
	pe, err := newPeerEntry(&p)
	if err != nil {
		return err
	}
	e.peers.add(pe)
	e.cfg.Peers = append(e.cfg.Peers, p)
	return nil
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// entropy draws the protocol's random values. The default reads the
// engine's reader; replay tests substitute recorded values.
type entropy interface {
	ikeSPI() (uint64, error)
	childSPI() (uint32, error)
	nonce(n int) ([]byte, error)
	// link returns the data of an ADDITIONAL_KEY_EXCHANGE notify
	// (RFC 9370 Section 2.2.4), opaque to the peer.
	link() ([]byte, error)
}

type readerEntropy struct{ r io.Reader }

func (r readerEntropy) ikeSPI() (uint64, error) {
	var b [8]byte
	_, err := io.ReadFull(r.r, b[:])
	return binary.BigEndian.Uint64(b[:]), err
}

func (r readerEntropy) childSPI() (uint32, error) {
	var b [4]byte
	_, err := io.ReadFull(r.r, b[:])
	return binary.BigEndian.Uint32(b[:]), err
}

func (r readerEntropy) link() ([]byte, error) { return r.nonce(addKELinkLen) }

// addKELinkLen is the length of the ADDITIONAL_KEY_EXCHANGE data we send.
const addKELinkLen = 4

func (r readerEntropy) nonce(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r.r, b)
	return b, err
}

// maxSPITries bounds the search for an unused SPI.
const maxSPITries = 16

// newIKESPI returns a fresh non-zero local IKE SPI not in use.
func (e *Engine) newIKESPI() (uint64, error) {
	for range maxSPITries {
		spi, err := e.ent.ikeSPI()
		if err != nil {
			return 0, fmt.Errorf("ike: reading SPI: %w", err)
		}
		if _, used := e.sas[spi]; spi != 0 && !used {
			return spi, nil
		}
	}
	return 0, errors.New("ike: no free IKE SPI")
}

// newChildSPI returns a fresh inbound Child SA SPI (not 0..255, reserved by
// RFC 4303 Section 2.1, and not in use).
func (e *Engine) newChildSPI() (uint32, error) {
	for range maxSPITries {
		spi, err := e.ent.childSPI()
		if err != nil {
			return 0, fmt.Errorf("ike: reading SPI: %w", err)
		}
		if _, used := e.children[spi]; spi > 255 && !used {
			return spi, nil
		}
	}
	return 0, errors.New("ike: no free Child SA SPI")
}

func (e *Engine) newNonce() ([]byte, error) {
	n, err := e.ent.nonce(e.cfg.NonceSize)
	if err != nil {
		return nil, fmt.Errorf("ike: reading nonce: %w", err)
	}
	return n, nil
}

// PollTransmit returns the next datagram to send.
func (e *Engine) PollTransmit() (Datagram, bool) { return pop(&e.out, &e.outHead) }

// PollEvent returns the next event.
func (e *Engine) PollEvent() (Event, bool) { return pop(&e.events, &e.evHead) }

// pop takes the element at *head off queue q (a slice consumed from the
// front), clearing its slot; when all are taken it empties q for reuse.
func pop[T any](q *[]T, head *int) (T, bool) {
	var zero T
	if *head == len(*q) {
		*q, *head = (*q)[:0], 0
		return zero, false
	}
	v := (*q)[*head]
	(*q)[*head] = zero
	*head++
	return v, true
}

// PollCryptoOps appends to dst the cryptographic operations performed since
// the last call and returns it. Operations are recorded only with
// Config.LogCryptoOps; the per-SA counts in Metrics are always kept.
func (e *Engine) PollCryptoOps(dst []CryptoOp) []CryptoOp {
	dst = append(dst, e.ops...)
	e.ops = e.ops[:0]
	return dst
}

// Stats returns the engine-wide counters.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.IKESAs = len(e.sas)
	s.HalfOpen = e.nHalf
	s.ChildSAs = e.nChildren
	return s
}

// Metrics returns the counters of an IKE SA.
func (e *Engine) Metrics(id SAID) (Metrics, bool) {
	sa := e.byID[id]
	if sa == nil {
		return Metrics{}, false
	}
	return sa.metrics, true
}

// SAInfo describes an IKE SA for inspection.
type SAInfo struct {
	ID            SAID
	Peer          string
	Initiator     bool
	Established   bool
	SPIi, SPIr    uint64
	Local, Remote netip.AddrPort
	Suite         suite.Suite
	// Children lists the inbound SPIs of the installed Child SAs.
	Children []uint32
}

// SA returns information about an IKE SA.
func (e *Engine) SA(id SAID) (SAInfo, bool) {
	sa := e.byID[id]
	if sa == nil {
		return SAInfo{}, false
	}
	info := SAInfo{ID: sa.id, Initiator: sa.initiator, Established: sa.state >= stEstablished,
		SPIi: sa.spiI, SPIr: sa.spiR, Local: sa.local, Remote: sa.remote, Suite: sa.suite}
	if sa.peer != nil {
		info.Peer = sa.peer.cfg.Name
	}
	for _, c := range sa.children {
		info.Children = append(info.Children, c.inSPI)
	}
	return info, true
}

// SAs returns the IDs of all IKE SAs.
func (e *Engine) SAs() []SAID {
	out := make([]SAID, 0, len(e.byID))
	for id := range e.byID {
		out = append(out, id)
	}
	return out
}

// NextTimeout returns the earliest deadline of any SA.
func (e *Engine) NextTimeout() (time.Time, bool) {
	if len(e.timers) == 0 {
		return time.Time{}, false
	}
	return e.timers[0].deadline, true
}

// HandleTimeout runs every timer that is due at now: retransmissions,
// half-open expiry, rekeying, lifetimes and liveness checks.
func (e *Engine) HandleTimeout(now time.Time) {
	for len(e.timers) > 0 && !e.timers[0].deadline.After(now) {
		sa := e.timers[0]
		e.onTimer(now, sa)
		if sa.state != stDead && sa.heapIdx >= 0 && !sa.deadline.After(now) {
			// A timer still due would spin; it must not happen.
			e.failSA(now, sa, Reason{Cause: CauseInternal, Detail: "timer did not advance"})
		}
	}
}

// schedule recomputes sa's deadline and its place in the timer heap.
func (e *Engine) schedule(sa *ikeSA) {
	d := sa.nextDeadline()
	if sa.state == stDead {
		d = time.Time{}
	}
	sa.deadline = d
	switch {
	case d.IsZero() && sa.heapIdx >= 0:
		heap.Remove(&e.timers, sa.heapIdx)
	case d.IsZero():
	case sa.heapIdx >= 0:
		heap.Fix(&e.timers, sa.heapIdx)
	default:
		heap.Push(&e.timers, sa)
	}
}

// saHeap orders SAs by deadline (container/heap).
type saHeap []*ikeSA

func (h saHeap) Len() int { return len(h) }
func (h saHeap) Less(i, j int) bool {
	if !h[i].deadline.Equal(h[j].deadline) {
		return h[i].deadline.Before(h[j].deadline)
	}
	return h[i].id < h[j].id
}
func (h saHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *saHeap) Push(x any) {
	sa := x.(*ikeSA)
	sa.heapIdx = len(*h)
	*h = append(*h, sa)
}
func (h *saHeap) Pop() any {
	old := *h
	sa := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	sa.heapIdx = -1
	return sa
}

// op records a cryptographic operation for sa.
func (e *Engine) op(sa *ikeSA, o suite.Op, alg uint16, n int) {
	if sa != nil && int(o) < numOps {
		sa.metrics.Ops[o]++
	}
	if e.logOps {
		var id SAID
		if sa != nil {
			id = sa.id
		}
		e.ops = append(e.ops, CryptoOp{SA: id, Op: o, Alg: alg, Bytes: n})
	}
}

// keOps records the operations of a key exchange step.
func (e *Engine) keOps(sa *ikeSA, id uint16, step suite.KEStep) {
	for _, o := range suite.KEOps(id, step) {
		e.op(sa, o, id, 0)
	}
}

func (e *Engine) emit(ev Event) { e.events = append(e.events, ev) }

func (e *Engine) drop(r DropReason) { e.stats.Dropped[r]++ }

// send queues datagrams of sa to its peer.
func (e *Engine) send(sa *ikeSA, local, remote netip.AddrPort, dgrams [][]byte, fragments bool) {
	for _, d := range dgrams {
		e.out = append(e.out, Datagram{Local: local, Remote: remote, Data: d})
		e.stats.DatagramsOut++
		if sa != nil {
			sa.metrics.DatagramsSent++
			sa.metrics.BytesSent += uint64(len(d))
			if fragments {
				sa.metrics.FragmentsSent++
			}
		}
	}
}

// isNATT reports whether local is the NAT-T port, on which IKE messages
// carry the non-ESP marker.
func (e *Engine) isNATT(local netip.AddrPort) bool { return local.Port() == e.cfg.NATT.Port }

// frame prefixes the non-ESP marker when sending from the NAT-T port.
func (e *Engine) frame(local netip.AddrPort, msg []byte) []byte {
	if !e.isNATT(local) {
		return msg
	}
	d := make([]byte, nonESPMarkerLen+len(msg))
	copy(d[nonESPMarkerLen:], msg)
	return d
}

// nonESPMarkerLen is the four zero octets in front of IKE messages on port
// 4500 (RFC 3948 Section 2.2).
const nonESPMarkerLen = 4

// Handle processes one received UDP datagram: data is the UDP payload as
// received on local from remote. On the NAT-T port (Config.NATT.Port) data
// must start with the non-ESP marker (four zero octets), which Handle
// removes; a datagram there without it is ESP (or a NAT keepalive) and is
// dropped with DropNotIKE. Handle never keeps a reference to data.
func (e *Engine) Handle(now time.Time, local, remote netip.AddrPort, data []byte) {
	e.stats.DatagramsIn++
	raw := data
	if e.isNATT(local) {
		if len(data) < nonESPMarkerLen || binary.BigEndian.Uint32(data) != 0 {
			e.drop(DropNotIKE)
			return
		}
		data = data[nonESPMarkerLen:]
	}
	// Keep our own copy: parsed payloads alias it and some are retained.
	data = append([]byte(nil), data...)
	msg, err := wire.ParseMessage(data)
	if err != nil {
		e.handleParseError(now, local, remote, data, err)
		return
	}
	h := &msg.Header
	if h.Exchange == wire.ExchangeIKESAInit {
		e.mapWireIDs(msg.Payloads)
		if h.IsResponse() {
			e.handleInitResponse(now, local, remote, msg, len(raw))
		} else {
			e.handleInitRequest(now, local, remote, msg, len(raw))
		}
		return
	}
	spi := h.SPIi
	if h.IsInitiator() {
		spi = h.SPIr // sent by the original initiator: we are the responder
	}
	sa := e.sas[spi]
	if sa == nil || sa.state == stDead {
		e.drop(DropUnknownSPI)
		return
	}
	if sa.initiator == h.IsInitiator() {
		e.drop(DropWrongRole)
		return
	}
	if sa.spiI != h.SPIi || sa.spiR != h.SPIr {
		e.drop(DropUnknownSPI)
		return
	}
	sa.metrics.DatagramsReceived++
	sa.metrics.BytesReceived += uint64(len(raw))
	if h.IsResponse() {
		e.handleResponse(now, sa, local, remote, msg)
	} else {
		e.handleRequest(now, sa, local, remote, msg)
	}
	e.schedule(sa)
}

// handleParseError counts a datagram that did not parse and answers where
// RFC 7296 Section 2.5 asks for it: INVALID_MAJOR_VERSION to an
// IKE_SA_INIT request of another major version.
func (e *Engine) handleParseError(now time.Time, local, remote netip.AddrPort, data []byte, err error) {
	var ve *wire.VersionError
	var uc *wire.UnsupportedCriticalPayloadError
	switch {
	case errors.As(err, &ve):
		e.drop(DropVersion)
		h := ve.Header
		if h.Exchange == wire.ExchangeIKESAInit && !h.IsResponse() && h.SPIr == 0 {
			n := &wire.Notify{NotifyType: wire.NotifyInvalidMajorVersion}
			e.sendUnprotected(local, remote, h.SPIi, 0, h.Exchange, h.MessageID, n)
		}
	case errors.As(err, &uc):
		e.drop(DropUnsupportedCritical)
		h, herr := wire.ParseHeader(data)
		if herr == nil && h.Exchange == wire.ExchangeIKESAInit && !h.IsResponse() && h.SPIr == 0 {
			n := &wire.Notify{NotifyType: wire.NotifyUnsupportedCriticalPayload, Data: []byte{byte(uc.Type)}}
			e.sendUnprotected(local, remote, h.SPIi, 0, h.Exchange, h.MessageID, n)
		}
	default:
		e.drop(DropMalformed)
	}
}

// sendUnprotected answers an IKE_SA_INIT request with a single notify and no
// state (RFC 7296 Section 2.21.1).
func (e *Engine) sendUnprotected(local, remote netip.AddrPort, spiI, spiR uint64, exch wire.ExchangeType, mid uint32, n *wire.Notify) {
	e.mapWireIDs([]wire.Payload{n})
	m := &wire.Message{
		Header:   wire.Header{SPIi: spiI, SPIr: spiR, Exchange: exch, Flags: wire.FlagResponse, MessageID: mid},
		Payloads: []wire.Payload{n},
	}
	b, err := wire.Marshal(m)
	if err != nil {
		return
	}
	e.send(nil, local, remote, [][]byte{e.frame(local, b)}, false)
}
