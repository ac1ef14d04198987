package ike

import (
	"fmt"
	"time"

	"github.com/pqlab/pqlab/ike/suite"
)

// DropReason classifies a received datagram the engine discarded (or
// answered only with an error notify) without changing any SA.
type DropReason uint8

// Drop reasons.
const (
	// DropNotIKE: on the NAT-T port, a datagram without the non-ESP marker
	// (ESP, which the data plane handles) or a NAT keepalive.
	DropNotIKE DropReason = iota
	// DropMalformed: the header or the payload chain did not parse.
	DropMalformed
	// DropVersion: major version other than 2 (answered with
	// INVALID_MAJOR_VERSION when it was an IKE_SA_INIT request).
	DropVersion
	// DropUnknownSPI: no IKE SA with that SPI (INVALID_IKE_SPI is not
	// sent, RFC 7296 Section 2.21.4 makes it optional).
	DropUnknownSPI
	// DropWrongRole: flags that do not fit the SA (Initiator bit from the
	// wrong side).
	DropWrongRole
	// DropUnexpectedResponse: a response with no request outstanding under
	// that message ID.
	DropUnexpectedResponse
	// DropOutOfWindow: a request outside the message-ID window (RFC 7296
	// Section 2.3): below it and its response no longer stored, or
	// Config.Window or more IDs beyond the lowest unanswered request.
	DropOutOfWindow
	// DropRetransmit: a retransmitted request answered from the cache, or
	// a later fragment of one.
	DropRetransmit
	// DropIntegrity: SK/SKF did not authenticate or decrypt.
	DropIntegrity
	// DropFragment: a fragment that was not acceptable (fragmentation not
	// negotiated, numbers out of range, over the reassembly bounds,
	// duplicate, stale).
	DropFragment
	// DropUnexpectedExchange: an exchange type not valid in the SA's state.
	DropUnexpectedExchange
	// DropInvalid: an authenticated message whose content was invalid
	// (answered with the notify the RFC names, or dropped if a response).
	DropInvalid
	// DropHalfOpenLimit: a new IKE_SA_INIT refused by MaxHalfOpen.
	DropHalfOpenLimit
	// DropCookieRequired: an IKE_SA_INIT without a valid cookie while
	// cookies were demanded (answered with COOKIE).
	DropCookieRequired
	// DropUnsupportedCritical: an unknown payload with the critical bit
	// (answered with UNSUPPORTED_CRITICAL_PAYLOAD for requests).
	DropUnsupportedCritical
	// DropNoConfig: an IKE_SA_INIT request for which no PeerConfig fits.
	DropNoConfig
	numDropReasons
)

var dropReasonNames = [...]string{
	DropNotIKE:              "not-ike",
	DropMalformed:           "malformed",
	DropVersion:             "version",
	DropUnknownSPI:          "unknown-spi",
	DropWrongRole:           "wrong-role",
	DropUnexpectedResponse:  "unexpected-response",
	DropOutOfWindow:         "out-of-window",
	DropRetransmit:          "retransmit",
	DropIntegrity:           "integrity",
	DropFragment:            "fragment",
	DropUnexpectedExchange:  "unexpected-exchange",
	DropInvalid:             "invalid",
	DropHalfOpenLimit:       "half-open-limit",
	DropCookieRequired:      "cookie-required",
	DropUnsupportedCritical: "unsupported-critical",
	DropNoConfig:            "no-config",
}

// String returns the name of the reason.
func (r DropReason) String() string {
	if int(r) < len(dropReasonNames) {
		return dropReasonNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// DropReasons lists every drop reason, for tables indexed by DropReason.
func DropReasons() []DropReason {
	out := make([]DropReason, numDropReasons)
	for i := range out {
		out[i] = DropReason(i)
	}
	return out
}

// Stats are engine-wide counters.
type Stats struct {
	// Dropped counts discarded input by reason.
	Dropped [numDropReasons]uint64
	// DatagramsIn and DatagramsOut count every datagram handled and sent.
	DatagramsIn, DatagramsOut uint64
	// IKESAs is the number of IKE SAs currently held (any state) and
	// HalfOpen those of them a responder has not yet authenticated.
	IKESAs, HalfOpen int
	// ChildSAs is the number of installed Child SAs.
	ChildSAs int
	// CookiesSent counts COOKIE challenges sent.
	CookiesSent uint64
}

// numOps is one more than the largest suite.Op value.
const numOps = int(suite.OpESPOpen) + 1

// Metrics are the per-IKE-SA counters (one set per SA, kept compact).
type Metrics struct {
	// Exchanges counts completed exchanges, as requester and responder.
	Exchanges uint32
	// DatagramsSent/Received and BytesSent/Received count IKE datagrams
	// (UDP payloads, non-ESP marker included) of this SA.
	DatagramsSent, DatagramsReceived uint32
	BytesSent, BytesReceived         uint64
	// FragmentsSent/Received count RFC 7383 fragments (included above).
	FragmentsSent, FragmentsReceived uint32
	// Retransmissions counts requests resent on timeout, and
	// ResponsesResent responses resent for retransmitted requests.
	Retransmissions, ResponsesResent uint32
	// RoundTrips counts requests this end sent that were answered
	// (IKE_SA_INIT retries after COOKIE or INVALID_KE_PAYLOAD included).
	RoundTrips uint32
	// Start is when the SA's first datagram was sent or received, and
	// Established when IKE_AUTH completed (zero until then), both in the
	// caller's clock.
	Start, Established time.Time
	// Ops counts the cryptographic operations performed for this SA,
	// indexed by suite.Op.
	Ops [numOps]uint32
}

// SetupTime is the time from the first datagram to establishment, or 0.
func (m *Metrics) SetupTime() time.Duration {
	if m.Established.IsZero() {
		return 0
	}
	return m.Established.Sub(m.Start)
}
