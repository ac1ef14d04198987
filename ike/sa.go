package ike

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// saState is the state of an IKE SA.
type saState uint8

const (
	stInitSent     saState = iota // initiator: IKE_SA_INIT request outstanding
	stInitDone                    // responder: IKE_SA_INIT answered, IKE_INTERMEDIATE/IKE_AUTH expected
	stIntermediate                // initiator: an IKE_INTERMEDIATE request outstanding
	stAuthSent                    // initiator: IKE_AUTH request outstanding
	stEstablished                 // IKE_AUTH done
	stDeleting                    // we sent a Delete for the IKE SA (or it was rekeyed and awaits deletion)
	stDead                        // removed
)

// ikeSA is one IKE SA. Fields needed only during the handshake live in hs,
// which is released once IKE_AUTH completes, so that an established SA stays
// small.
type ikeSA struct {
	id        SAID
	initiator bool
	state     saState
	// peerFrag: the peer sent IKEV2_FRAGMENTATION_SUPPORTED (and we support
	// it), so SK messages may be sent and received as SKF fragments.
	peerFrag bool
	// natLocal/natRemote: NAT detected in front of us / the peer; encap
	// says whether ESP is UDP-encapsulated.
	natLocal, natRemote, encap bool

	spiI, spiR    uint64
	peer          *peerEntry
	local, remote netip.AddrPort

	suite suite.Suite
	prf   *suite.PRF
	skd   []byte
	skOut *suite.SK
	skIn  *suite.SK

	nextReqMID uint32 // message ID of our next request
	// recvMID is the lowest message ID of the peer's requests not yet
	// answered; with a window above one, requests up to recvMID plus the
	// window minus one may have been answered out of order.
	recvMID uint32
	// req is our outstanding request (the oldest when several are); more
	// holds the others while the peer's window allows several
	// (SET_WINDOW_SIZE, RFC 7296 Section 2.3).
	req  *request
	more []*request
	// peerWindow is the number of requests the peer announced it keeps
	// state for (0 and 1: one).
	peerWindow uint32
	// queue holds local actions waiting until they may run (gate); each
	// runs with the SA holding the queue then (queues move to the new SA
	// of an IKE SA rekey).
	queue []queued
	// resps holds our responses to the peer's requests, the response to
	// message ID m in slot m modulo the length, which is the receive window
	// (recvWindow) when the response was stored: a retransmission of any
	// request in the window is answered from it (RFC 7296 Sections 2.1 and
	// 2.3), and a slot is reused only for the request one window later,
	// which the peer sends only after it received the response.
	resps []cachedResponse
	reasm reassemblies

	peerID   Identity // authenticated identity of the peer
	hs       *handshake
	children []*childSA
	// xchgs are the peer's multi-round CREATE_CHILD_SA exchanges waiting
	// for IKE_FOLLOWUP_KE (at most Config.Window); ixchgs are our
	// CREATE_CHILD_SA exchanges in progress (several for Child SAs while
	// the peer's window allows, an IKE SA rekey alone).
	xchgs   []*childExchange
	ixchgs  []*childExchange
	rekeyed bool // replaced by a rekey, awaiting deletion
	// collision: the redundant SA of a rekey collision we lost, deleted
	// by us (RFC 7296 Section 2.8.2). successor is the SA that holds the
	// Child SAs now: the peer's SA that won, which may have moved them to
	// this SA while the collision was undecided on its side, or the new SA
	// of a rekey of this one. The peer may still send a Delete of one of
	// them here (its Delete crossed the end of the rekey).
	collision bool
	successor *ikeSA
	// peerRedundant: the peer's redundant SA of a rekey collision we won,
	// for the peer to delete. If it has not when expireAt comes, the peer
	// never created it (its response was lost with the old SA): it is
	// removed without a Delete the peer could not read.
	peerRedundant bool
	// rival is set on an IKE SA that the peer's IKE SA rekey created while
	// our own rekey of the same SA (rivalOld) was open: our exchange, which
	// decides the collision when its response arrives. Until then the
	// Child SAs live here; if the peer deletes this SA first (it lost),
	// they go back to rivalOld and on to the winner (Section 2.8.2).
	rival    *childExchange
	rivalOld *ikeSA
	// earlyDeletes are the peer's SPIs of Child SAs it deleted before our
	// exchange that created them completed here (noteEarlyDelete).
	earlyDeletes []uint32

	lastRecv  time.Time // last authenticated message from the peer
	halfOpen  time.Time // responder: deadline to reach stEstablished
	rekeyAt   time.Time // soft lifetime
	expireAt  time.Time // hard lifetime
	dpdAt     time.Time // next liveness check
	keepalive time.Time // next NAT keepalive
	deadline  time.Time
	heapIdx   int

	metrics Metrics
}

// request is our outstanding request and what is needed to resend it.
type request struct {
	mid    uint32
	exch   wire.ExchangeType
	kind   reqKind
	dgrams [][]byte
	frag   bool // dgrams are fragments
	// plain and hdr rebuild the message as fragments when the policy is to
	// fragment on retransmission.
	hdr      wire.Header
	first    wire.PayloadType
	plain    []byte
	sent     int // transmissions so far
	tries    int // retransmissions allowed (0: Config.Retransmit.Tries)
	deadline time.Time
	// ctx is the state of a CREATE_CHILD_SA / IKE_FOLLOWUP_KE exchange.
	ctx *childExchange
}

type reqKind uint8

const (
	reqInit reqKind = iota
	reqIntermediate
	reqAuth
	reqCreateChild
	reqFollowupKE
	reqDelete
	reqDeleteChild
	reqInformational // liveness check or other INFORMATIONAL
	reqAuthFailedNotify
)

// cachedResponse is the last response sent, resent when the request is
// retransmitted (RFC 7296 Section 2.1).
type cachedResponse struct {
	valid  bool
	mid    uint32
	dgrams [][]byte
	frag   bool
	local  netip.AddrPort
	remote netip.AddrPort
	// refrag allows re-fragmenting with FragmentOnRetransmit.
	refrag *refragment
}

// refragment is what rebuilds a message as fragments on retransmission.
type refragment struct {
	hdr   wire.Header
	first wire.PayloadType
	plain []byte
	sk    *suite.SK
}

// handshake holds what IKE_SA_INIT, IKE_INTERMEDIATE and IKE_AUTH need.
type handshake struct {
	ni, nr []byte
	// initRemote is the address the IKE_SA_INIT request came from (the
	// responder's retransmission index key).
	initRemote netip.AddrPort
	// initReq and initResp are the IKE_SA_INIT messages as sent (AUTH
	// signs them, RFC 7296 Section 2.15). For an initiator initReq is the
	// last one sent (with cookie or corrected KE).
	initReq, initResp []byte
	cookie            []byte
	retries           int // IKE_SA_INIT retries after COOKIE / INVALID_KE_PAYLOAD

	// kes lists the key exchange methods in order: KE, then ADDKEs.
	kes   []uint16
	round int // index in kes of the key exchange in progress
	// keState is the initiator's pending key exchange.
	keState  suite.InitiatorState
	keMethod uint16
	keData   []byte // our KE data of the exchange in progress
	keys     *suite.IKEKeys

	intAuthI, intAuthR []byte
	intermediates      int

	peerIntermediate bool
	peerHashes       []wire.HashAlgorithm
	peerVIDs         [][]byte // Vendor IDs of the peer's IKE_SA_INIT message
	peerNATSrc       [][]byte
	peerNATDst       []byte

	// The first Child SA (IKE_AUTH).
	child    *childEntry
	childSPI uint32
	tsi, tsr []TrafficSelector // what the initiator proposed
}

// childSA is an installed Child SA, without its keys (the event carried
// them to the data plane).
type childSA struct {
	ike       *ikeSA
	cfg       *ChildConfig
	name      string
	inSPI     uint32
	outSPI    uint32
	suite     suite.Suite
	localTS   []TrafficSelector
	remoteTS  []TrafficSelector
	initiator bool
	state     childState
	why       Cause // why we delete it
	// reported: EventChildSADeleted was emitted when we sent our Delete.
	reported bool
	rekeyAt  time.Time
	expireAt time.Time
	// Lifetime as handed to the data plane.
	life ChildLifetime
}

type childState uint8

const (
	childInstalled childState = iota
	childRekeying             // a rekey is in progress
	childRekeyed              // replaced; awaiting delete
	childDeleting             // we sent a Delete
)

// outstanding returns the number of our requests awaiting a response.
func (sa *ikeSA) outstanding() int {
	n := len(sa.more)
	if sa.req != nil {
		n++
	}
	return n
}

// windowRoom reports whether another request may be sent now: request X
// waits for the responses to every request up to X minus the peer's window
// (RFC 7296 Section 2.3).
func (sa *ikeSA) windowRoom() bool {
	if sa.outstanding() == 0 {
		return true
	}
	oldest := sa.nextReqMID
	if sa.req != nil {
		oldest = sa.req.mid
	}
	for _, r := range sa.more {
		oldest = min(oldest, r.mid)
	}
	return sa.nextReqMID-oldest < max(sa.peerWindow, 1)
}

// takeRequest removes and returns our outstanding request with message ID
// mid and exchange type exch, or nil.
func (sa *ikeSA) takeRequest(mid uint32, exch wire.ExchangeType) *request {
	if r := sa.req; r != nil && r.mid == mid && r.exch == exch {
		sa.req = nil
		if len(sa.more) > 0 {
			sa.req, sa.more[0] = sa.more[0], nil
			sa.more = sa.more[1:]
		}
		return r
	}
	for i, r := range sa.more {
		if r.mid == mid && r.exch == exch {
			sa.more = append(sa.more[:i], sa.more[i+1:]...)
			return r
		}
	}
	return nil
}

// putRequest makes r outstanding again (its response did not authenticate).
func (sa *ikeSA) putRequest(r *request) {
	if sa.req == nil {
		sa.req = r
	} else {
		sa.more = append(sa.more, r)
	}
}

// cachedFor returns the stored response to the peer's request mid, or nil.
func (sa *ikeSA) cachedFor(mid uint32) *cachedResponse {
	if len(sa.resps) == 0 {
		return nil
	}
	if c := &sa.resps[mid%uint32(len(sa.resps))]; c.valid && c.mid == mid {
		return c
	}
	return nil
}

// answeredAbove reports whether a request of the peer with a message ID
// above mid was answered.
func (sa *ikeSA) answeredAbove(mid uint32) bool {
	for i := range sa.resps {
		if c := &sa.resps[i]; c.valid && c.mid > mid {
			return true
		}
	}
	return false
}

// storeResponse keeps c, the response to the peer's request c.mid, in a
// ring of w slots (w is the receive window, which only grows: one until
// the IKE SA is established, Config.Window then), and advances recvMID
// past every request answered in a row. The slot's previous response, to
// request c.mid - w, is no longer needed: the peer sends c.mid only after
// it received that one (RFC 7296 Sections 2.1 and 2.3).
func (sa *ikeSA) storeResponse(c cachedResponse, w uint32) {
	if uint32(len(sa.resps)) < w {
		grown := make([]cachedResponse, w)
		for _, old := range sa.resps {
			if old.valid {
				grown[old.mid%w] = old
			}
		}
		sa.resps = grown
	}
	n := uint32(len(sa.resps))
	sa.resps[c.mid%n] = c
	for range n {
		if r := &sa.resps[sa.recvMID%n]; !r.valid || r.mid != sa.recvMID {
			break
		}
		sa.recvMID++
	}
}

// inWindow reports whether the peer's request mid is one this end accepts
// now: not answered yet (the caller checked the stored responses) and
// less than w (the receive window) ahead of the lowest unanswered one.
// Requests further ahead are dropped; the peer sends them only after the
// responses to every request up to mid - w (RFC 7296 Section 2.3).
func (sa *ikeSA) inWindow(mid, w uint32) bool {
	return mid >= sa.recvMID && mid-sa.recvMID < w
}

// removeExchange takes x out of list and reports whether it was there.
func removeExchange(list *[]*childExchange, x *childExchange) bool {
	for i, y := range *list {
		if y == x {
			copy((*list)[i:], (*list)[i+1:])
			(*list)[len(*list)-1] = nil
			*list = (*list)[:len(*list)-1]
			return true
		}
	}
	return false
}

// ourExchange returns our CREATE_CHILD_SA exchange in progress for which
// match holds, or nil.
func (sa *ikeSA) ourExchange(match func(*childExchange) bool) *childExchange {
	for _, x := range sa.ixchgs {
		if match(x) {
			return x
		}
	}
	return nil
}

// isOurs reports whether x is one of our exchanges in progress.
func (sa *ikeSA) isOurs(x *childExchange) bool {
	return sa.ourExchange(func(y *childExchange) bool { return y == x }) != nil
}

// peerRekeysIKE reports whether the peer's rekey of this IKE SA is open
// (waiting for its IKE_FOLLOWUP_KE rounds).
func (sa *ikeSA) peerRekeysIKE() bool {
	for _, x := range sa.xchgs {
		if x.kind == xRekeyIKE {
			return true
		}
	}
	return false
}

// peerExchange returns the peer's multi-round exchange with the
// ADDITIONAL_KEY_EXCHANGE data link (RFC 9370 Section 2.2.4), or nil.
func (sa *ikeSA) peerExchange(link []byte) *childExchange {
	for _, x := range sa.xchgs {
		if bytes.Equal(x.link, link) {
			return x
		}
	}
	return nil
}

// localSPI returns this end's IKE SPI.
func (sa *ikeSA) localSPI() uint64 {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

// header returns the IKE header of a message this end sends.
func (sa *ikeSA) header(exch wire.ExchangeType, mid uint32, response bool) wire.Header {
	h := wire.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: exch, MessageID: mid}
	if sa.initiator {
		h.Flags |= wire.FlagInitiator
	}
	if response {
		h.Flags |= wire.FlagResponse
	}
	return h
}

// nextDeadline returns the earliest timer of the SA, or zero.
func (sa *ikeSA) nextDeadline() time.Time {
	var d time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if sa.req != nil {
		min(sa.req.deadline)
	}
	for _, r := range sa.more {
		min(r.deadline)
	}
	min(sa.halfOpen)
	min(sa.rekeyAt)
	min(sa.expireAt)
	min(sa.dpdAt)
	min(sa.keepalive)
	for _, c := range sa.children {
		min(c.rekeyAt)
		min(c.expireAt)
	}
	for _, x := range sa.xchgs {
		min(x.giveUp)
	}
	return d
}

// event returns an event about sa with its identifying fields filled in.
func (sa *ikeSA) event(kind EventKind, now time.Time) Event {
	ev := Event{Kind: kind, Time: now, SA: sa.id, Initiator: sa.initiator, SPIi: sa.spiI, SPIr: sa.spiR,
		Local: sa.local, Remote: sa.remote, Suite: sa.suite}
	if sa.peer != nil {
		ev.Peer = sa.peer.cfg.Name
	}
	return ev
}

// metricsCopy returns a copy of the SA's counters for an event.
func (sa *ikeSA) metricsCopy() *Metrics {
	m := sa.metrics
	return &m
}
