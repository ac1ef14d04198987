package ike

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
)

// Datagram is one UDP datagram to send. Data is the UDP payload: on the
// NAT-T port (Config.NATT.Port, 4500) it starts with the 4-octet non-ESP
// marker (RFC 3948 Section 2.2), otherwise it is the IKE message itself. The
// caller owns Data after PollTransmit returns it.
type Datagram struct {
	Local, Remote netip.AddrPort
	Data          []byte
}

// SAID identifies an IKE SA within an Engine for its whole life. A rekeyed
// IKE SA is a new SA with a new SAID (EventIKESARekeyed names both).
type SAID uint64

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventIKESAEstablished: IKE_AUTH completed; the IKE SA is usable.
	EventIKESAEstablished EventKind = iota + 1
	// EventIKESARekeyed: SA replaced OldSA (RFC 7296 Section 2.18).
	EventIKESARekeyed
	// EventIKESADeleted: the IKE SA is gone (deleted by either side, failed
	// liveness check, hard lifetime, or superseded); Reason says why. Its
	// Child SAs are gone too (each with its own EventChildSADeleted).
	EventIKESADeleted
	// EventChildSAInstalled: a Child SA was negotiated; install Child.
	EventChildSAInstalled
	// EventChildSARekeyed: Child replaced the Child SA whose inbound SPI is
	// Child.RekeyOf (RFC 7296 Section 2.8); the old one is deleted with its
	// own EventChildSADeleted once the peer confirmed.
	EventChildSARekeyed
	// EventChildSADeleted: remove the Child SA Child (keys cleared). When
	// this end deletes it, the event comes as the Delete is sent (RFC 7296
	// Section 3.11: the Delete lists SAs the sender has removed), before the
	// peer answers; a driver may keep the inbound half a moment for packets
	// already in flight.
	EventChildSADeleted
	// EventFailed: an IKE SA could not be set up (IKE_SA_INIT,
	// IKE_INTERMEDIATE or IKE_AUTH failed, or timed out); the SA is gone.
	// Reason says why (the notify received or sent, or a local cause).
	EventFailed
	// EventExchangeFailed: an exchange on a live IKE SA did not succeed: the
	// first Child SA was refused in IKE_AUTH, or a CREATE_CHILD_SA (new
	// Child SA, Child SA rekey, IKE SA rekey) failed. The IKE SA and any
	// Child SA being rekeyed stay as they were. Child names the Child SA
	// (its config name, and for a rekey its SPIs); it is nil for an IKE SA
	// rekey.
	EventExchangeFailed
)

var eventKindNames = [...]string{
	EventIKESAEstablished: "IKESAEstablished",
	EventIKESARekeyed:     "IKESARekeyed",
	EventIKESADeleted:     "IKESADeleted",
	EventChildSAInstalled: "ChildSAInstalled",
	EventChildSARekeyed:   "ChildSARekeyed",
	EventChildSADeleted:   "ChildSADeleted",
	EventFailed:           "Failed",
	EventExchangeFailed:   "ExchangeFailed",
}

// String returns the name of the kind.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is something the driver must act on or may record.
type Event struct {
	Kind EventKind
	Time time.Time
	// SA is the IKE SA concerned; for EventIKESARekeyed the new one.
	SA SAID
	// OldSA is the rekeyed IKE SA (EventIKESARekeyed only).
	OldSA SAID
	// Peer is the PeerConfig.Name of the connection ("" while a responder
	// has not yet identified its peer).
	Peer string
	// Initiator tells whether this engine is the original initiator of SA.
	Initiator bool
	// SPIi and SPIr are the IKE SA SPIs.
	SPIi, SPIr uint64
	// Local and Remote are the addresses the IKE SA uses now.
	Local, Remote netip.AddrPort
	// Suite is the IKE SA's negotiated transforms (IKE events).
	Suite suite.Suite
	// Child is the Child SA of Child* events.
	Child *ChildSA
	// Reason explains EventFailed, EventExchangeFailed and the deletions.
	Reason Reason
	// PeerVendorIDs are the data of the Vendor ID payloads in the peer's
	// IKE_SA_INIT message (RFC 7296 Section 3.12), EventIKESAEstablished
	// only: Config.VendorIDs of the other end, such as Cisco's
	// fragmentation Vendor ID.
	PeerVendorIDs [][]byte
	// Metrics are the IKE SA's counters at the time of the event, for
	// EventIKESAEstablished, EventFailed, EventIKESADeleted (final
	// counters) and EventIKESARekeyed (the old SA's).
	Metrics *Metrics
}

// String summarises the event for logs.
func (e Event) String() string {
	s := fmt.Sprintf("%s sa=%d peer=%q", e.Kind, e.SA, e.Peer)
	if e.Child != nil {
		s += fmt.Sprintf(" child=%q in=%08x out=%08x", e.Child.Name, e.Child.InboundSPI, e.Child.OutboundSPI)
	}
	if e.Reason != (Reason{}) {
		s += " reason=" + e.Reason.String()
	}
	return s
}

// ChildSA describes a negotiated Child SA (RFC 7296 Section 2.17): what the
// data plane installs. The keys are split per direction from KEYMAT.
type ChildSA struct {
	// Name is the ChildConfig.Name.
	Name string
	// Protocol is wire.ProtocolESP.
	Protocol wire.ProtocolID
	// InboundSPI is the SPI this end chose (in ESP packets it receives);
	// OutboundSPI the peer's (in ESP packets it sends).
	InboundSPI, OutboundSPI uint32
	// Suite holds the negotiated ESP transforms (Encr, EncrKeyBits, Integ,
	// ESN; KE/AddKE when the Child SA was created with PFS).
	Suite suite.Suite
	// Inbound and Outbound are the keys of each direction. AEAD encryption
	// keys end with the 4-octet salt; integrity keys are empty with AEAD.
	Inbound, Outbound DirectionKeys
	// LocalTS and RemoteTS are the narrowed traffic selectors of this end
	// and of the peer.
	LocalTS, RemoteTS []TrafficSelector
	// Encap says whether ESP is UDP-encapsulated (a NAT was detected or
	// encapsulation forced, RFC 3948); then Local and Remote are the ports
	// to use (4500).
	Encap         bool
	Local, Remote netip.AddrPort
	// Lifetime is the configured lifetime with its jitter applied: time
	// limits relative to installation, byte and packet limits for the data
	// plane to enforce (report with Engine.ChildSALimit).
	Lifetime ChildLifetime
	// RekeyOf is the inbound SPI of the Child SA this one replaces (0 if it
	// replaces none).
	RekeyOf uint32
	// Initiator tells whether this end initiated the exchange that created
	// the Child SA.
	Initiator bool
}

// DirectionKeys are the keys protecting one direction of a Child SA.
type DirectionKeys struct {
	Encr, Integ []byte
}

// ChildLifetime is the lifetime of an installed Child SA.
type ChildLifetime struct {
	SoftTime, HardTime       time.Duration
	SoftBytes, HardBytes     uint64
	SoftPackets, HardPackets uint64
}

// Cause is a local reason for a failure or deletion.
type Cause uint8

// Local causes.
const (
	CauseNone Cause = iota
	// CauseTimeout: the peer did not answer a request within the
	// retransmission schedule (or a liveness check failed).
	CauseTimeout
	// CauseNotifyReceived: the peer answered with the error notify in
	// Reason.Notify.
	CauseNotifyReceived
	// CauseNotifySent: this end rejected the peer's message with
	// Reason.Notify.
	CauseNotifySent
	// CausePeerDeleted: the peer deleted the SA (INFORMATIONAL Delete).
	CausePeerDeleted
	// CauseLocalDelete: Engine.Delete was called.
	CauseLocalDelete
	// CauseRekeyed: the SA was replaced by a rekey.
	CauseRekeyed
	// CauseLifetime: the hard lifetime expired.
	CauseLifetime
	// CauseHalfOpenTimeout: a responder's IKE SA did not complete in time.
	CauseHalfOpenTimeout
	// CauseInitialContact: the peer sent INITIAL_CONTACT for a new SA.
	CauseInitialContact
	// CauseAuthFailed: the peer's AUTH did not verify here.
	CauseAuthFailed
	// CauseProtocol: the peer's message broke the protocol (missing
	// payloads, proposal not offered, bad KE data ...).
	CauseProtocol
	// CauseInternal: a local error (randomness, configuration).
	CauseInternal
	// CauseIKEDeleted: the Child SA went with its IKE SA.
	CauseIKEDeleted
	// CauseRekeyCollision: both ends rekeyed the SA at once and this one,
	// created by the exchange with the lowest nonce, is redundant (RFC 7296
	// Sections 2.8.1 and 2.8.2); its creator deletes it.
	CauseRekeyCollision
)

var causeNames = [...]string{
	CauseNone:            "none",
	CauseTimeout:         "timeout",
	CauseNotifyReceived:  "notify-received",
	CauseNotifySent:      "notify-sent",
	CausePeerDeleted:     "peer-deleted",
	CauseLocalDelete:     "local-delete",
	CauseRekeyed:         "rekeyed",
	CauseLifetime:        "lifetime",
	CauseHalfOpenTimeout: "half-open-timeout",
	CauseInitialContact:  "initial-contact",
	CauseAuthFailed:      "auth-failed",
	CauseProtocol:        "protocol",
	CauseInternal:        "internal",
	CauseIKEDeleted:      "ike-deleted",
	CauseRekeyCollision:  "rekey-collision",
}

// String returns the name of the cause.
func (c Cause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return fmt.Sprintf("Cause(%d)", uint8(c))
}

// Reason explains a failure or a deletion: a local cause and, when a notify
// was involved, its type.
type Reason struct {
	Cause  Cause
	Notify wire.NotifyType
	// Detail is a human-readable elaboration (may be empty).
	Detail string
}

// String formats the reason.
func (r Reason) String() string {
	s := r.Cause.String()
	if r.Notify != 0 {
		s += "(" + r.Notify.String() + ")"
	}
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}

// CryptoOp is one cryptographic operation the engine performed, with the
// transform it used, so a simulator can charge its CPU cost.
type CryptoOp struct {
	SA SAID
	Op suite.Op
	// Alg is the transform ID: the key exchange method for KE ops, the PRF
	// for PRF and PRFPlus, the encryption transform for SKSeal/SKOpen, the
	// auth method for Sign/Verify.
	Alg uint16
	// Bytes is the amount of data processed where the cost grows with it:
	// PRF input, prf+ output, SK plaintext or ciphertext, signed octets.
	Bytes int
}
