package wire

import (
	"encoding/binary"
)

// Bounds on repeated structures. They keep the work and memory spent on one
// message proportional to a small constant, whatever the input claims; a
// message that exceeds them is a syntax error. They are far above what real
// implementations send (strongSwan's default IKE proposal has about 40
// transforms).
const (
	// MaxPayloads bounds the payloads of one chain (outer or inner).
	MaxPayloads = 128
	// MaxProposals bounds the proposals of one SA payload.
	MaxProposals = 64
	// MaxTransforms bounds the transforms of one proposal.
	MaxTransforms = 128
	// MaxAttributes bounds the attributes of one transform.
	MaxAttributes = 16
	// MaxTrafficSelectors bounds the selectors of one TS payload.
	MaxTrafficSelectors = 64
	// MaxCPAttributes bounds the attributes of one CP payload.
	MaxCPAttributes = 64
	// MaxDeleteSPIs bounds the SPIs of one Delete payload.
	MaxDeleteSPIs = 1024
)

// criticalBit is the C bit of the generic payload header (RFC 7296 Section 3.2).
const criticalBit = 0x80

// Payload is one IKEv2 payload. Every payload type of RFC 7296 Section 3,
// RFC 7383 (SKF) is implemented by a pointer type of this package; payloads
// of other types are kept as *Unknown.
type Payload interface {
	// Type is the payload type, the value that announces this payload in the
	// Next Payload field of the preceding header.
	Type() PayloadType
	// Append appends the whole payload, generic header included, with next
	// as the Next Payload value of its generic header. SK and SKF ignore next
	// and write the type of their first inner payload (RFC 7296 Section 3.14).
	Append(b []byte, next PayloadType) ([]byte, error)
}

// GenericHeader is the generic payload header (RFC 7296 Section 3.2).
type GenericHeader struct {
	NextPayload PayloadType
	Critical    bool
	// Length is the Payload Length: the whole payload, this 4-octet header
	// included.
	Length uint16
}

// ParseGenericHeader parses the generic payload header at the start of b and
// checks that the payload it announces lies within b.
func ParseGenericHeader(b []byte) (GenericHeader, error) {
	if len(b) < GenericHeaderLen {
		return GenericHeader{}, errSyntaxf(PayloadNone, "generic payload header: %d octets, need %d", len(b), GenericHeaderLen)
	}
	g := GenericHeader{
		NextPayload: PayloadType(b[0]),
		Critical:    b[1]&criticalBit != 0,
		Length:      binary.BigEndian.Uint16(b[2:4]),
	}
	if g.Length < GenericHeaderLen {
		return g, errSyntaxf(PayloadNone, "Payload Length %d shorter than the generic header", g.Length)
	}
	if int(g.Length) > len(b) {
		return g, errSyntaxf(PayloadNone, "Payload Length %d exceeds the %d octets left", g.Length, len(b))
	}
	return g, nil
}

// Append appends g as a 4-octet generic payload header.
func (g GenericHeader) Append(b []byte) []byte {
	return appendGenericHeader(b, g.NextPayload, g.Critical, int(g.Length))
}

func appendGenericHeader(b []byte, next PayloadType, critical bool, length int) []byte {
	var flags byte
	if critical {
		flags = criticalBit
	}
	return append(b, byte(next), flags, byte(length>>8), byte(length))
}

// beginPayload appends a generic header whose length endPayload fills in
// once the body has been appended after it. This is the one place where the
// "Payload Length includes the generic header" rule is applied on encode.
func beginPayload(b []byte, next PayloadType, critical bool) ([]byte, int) {
	return appendGenericHeader(b, next, critical, 0), len(b)
}

// endPayload completes the payload started at start (the offset beginPayload
// returned), checking that it fits the 16-bit Payload Length.
func endPayload(b []byte, start int, t PayloadType) ([]byte, error) {
	n := len(b) - start
	if n > MaxPayloadLen {
		return b[:start], errSyntaxf(t, "%d octets exceed the 16-bit Payload Length", n)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return b, nil
}

// payloadBody checks the generic header at the start of b and returns the
// payload body and the whole payload length. It is used by every ParseX
// function; the Next Payload and Critical fields are the chain's business.
func payloadBody(b []byte, t PayloadType) ([]byte, int, error) {
	g, err := ParseGenericHeader(b)
	if err != nil {
		if se, ok := err.(*SyntaxError); ok {
			se.Payload = t
		}
		return nil, 0, err
	}
	return b[GenericHeaderLen:g.Length], int(g.Length), nil
}

// orNil returns nil for an empty slice so that parsed values compare equal to
// constructed ones whose absent fields are nil.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Known reports whether this codec parses payload type t (RFC 7296
// Section 3.2 payloads 33..48 and RFC 7383 SKF 53); other types are kept as
// *Unknown, or rejected when their Critical bit is set.
func (t PayloadType) Known() bool {
	return t >= PayloadSA && t <= PayloadEAP || t == PayloadSKF
}

// ParsePayload parses one payload of type t, generic header included, from
// the start of b and returns it with the octets it consumed (its Payload
// Length). The Next Payload field of the generic header is not interpreted
// (except by SK and SKF, for which it is the first inner payload type).
//
// A payload of a type the codec does not know is returned as *Unknown when
// its Critical bit is clear; with the bit set ParsePayload fails with
// *UnsupportedCriticalPayloadError (RFC 7296 Section 3.2). The Critical bit
// of known payloads is ignored.
func ParsePayload(t PayloadType, b []byte) (Payload, int, error) {
	switch t {
	case PayloadSA:
		return ret(ParseSA(b))
	case PayloadKE:
		return ret(ParseKE(b))
	case PayloadIDi, PayloadIDr:
		return ret(parseID(b, t))
	case PayloadCERT:
		return ret(ParseCert(b))
	case PayloadCERTREQ:
		return ret(ParseCertReq(b))
	case PayloadAUTH:
		return ret(ParseAuth(b))
	case PayloadNonce:
		return ret(ParseNonce(b))
	case PayloadNotify:
		return ret(ParseNotify(b))
	case PayloadDelete:
		return ret(ParseDelete(b))
	case PayloadVendorID:
		return ret(ParseVendorID(b))
	case PayloadTSi, PayloadTSr:
		return ret(parseTS(b, t))
	case PayloadSK:
		return ret(ParseEncrypted(b))
	case PayloadCP:
		return ret(ParseCP(b))
	case PayloadEAP:
		return ret(ParseEAP(b))
	case PayloadSKF:
		return ret(ParseEncryptedFragment(b))
	}
	return ret(parseUnknown(b, t))
}

// ret turns a typed parser result into a Payload result without storing a
// typed nil pointer in the interface on error.
func ret[P Payload](p P, n int, err error) (Payload, int, error) {
	if err != nil {
		return nil, 0, err
	}
	return p, n, nil
}

// Unknown is a payload of a type this codec does not parse, kept so that a
// parsed message re-encodes to the same octets. Only non-critical unknown
// payloads are ever parsed; the engine ignores them (RFC 7296 Section 3.2).
type Unknown struct {
	PayloadType PayloadType
	Critical    bool
	Body        []byte
}

// Type implements Payload.
func (p *Unknown) Type() PayloadType { return p.PayloadType }

// Append implements Payload.
func (p *Unknown) Append(b []byte, next PayloadType) ([]byte, error) {
	b, start := beginPayload(b, next, p.Critical)
	b = append(b, p.Body...)
	return endPayload(b, start, p.PayloadType)
}

func parseUnknown(b []byte, t PayloadType) (*Unknown, int, error) {
	g, err := ParseGenericHeader(b)
	if err != nil {
		return nil, 0, err
	}
	if g.Critical {
		return nil, 0, &UnsupportedCriticalPayloadError{Type: t}
	}
	return &Unknown{PayloadType: t, Body: orNil(b[GenericHeaderLen:g.Length])}, int(g.Length), nil
}

// ParsePayloads parses a chain of payloads that starts with a payload of type
// first and ends with Next Payload 0 exactly at the end of b. It is the
// parser for the decrypted content of SK (RFC 7296 Section 3.14), the first
// type being the Next Payload field of the SK header, or of the reassembled
// SKF fragments (RFC 7383 Section 2.6), the first type coming from fragment 1.
// An inner SK or SKF payload is a syntax error. The payloads alias b.
func ParsePayloads(first PayloadType, b []byte) ([]Payload, error) {
	return parseChain(first, b, false)
}

// parseChain parses payloads starting with type t. In the outer chain of a
// message (outer), SK or SKF ends the chain and must end b too.
func parseChain(t PayloadType, b []byte, outer bool) ([]Payload, error) {
	var ps []Payload
	for t != PayloadNone {
		if len(ps) == MaxPayloads {
			return nil, errSyntaxf(PayloadNone, "more than %d payloads", MaxPayloads)
		}
		if len(b) < GenericHeaderLen {
			return nil, errSyntaxf(t, "%d octets left, need a %d-octet generic header", len(b), GenericHeaderLen)
		}
		next := PayloadType(b[0])
		p, n, err := ParsePayload(t, b)
		if err != nil {
			return nil, err
		}
		if ps == nil {
			ps = make([]Payload, 0, 8)
		}
		ps = append(ps, p)
		b = b[n:]
		if t == PayloadSK || t == PayloadSKF {
			if !outer {
				return nil, errSyntax(t, "nested inside an encrypted payload")
			}
			if len(b) != 0 {
				return nil, errSyntaxf(t, "not the last payload: %d octets follow", len(b))
			}
			return ps, nil
		}
		t = next
	}
	if len(b) != 0 {
		return nil, errSyntaxf(PayloadNone, "%d octets after the last payload", len(b))
	}
	return ps, nil
}

// AppendPayloads appends the payloads ps as a chain: each generic header's
// Next Payload is the type of the following payload, the last one's is 0.
// It encodes the plaintext inner payloads of SK (whose Next Payload is then
// FirstType(ps)). SK and SKF are not allowed in ps.
func AppendPayloads(b []byte, ps []Payload) ([]byte, error) {
	return appendChain(b, ps, false)
}

// FirstType returns the type of ps[0], or PayloadNone for an empty chain: the
// Next Payload value of whatever header precedes the chain.
func FirstType(ps []Payload) PayloadType {
	if len(ps) == 0 {
		return PayloadNone
	}
	return ps[0].Type()
}

func appendChain(b []byte, ps []Payload, outer bool) ([]byte, error) {
	if len(ps) > MaxPayloads {
		return b, errSyntaxf(PayloadNone, "%d payloads, at most %d", len(ps), MaxPayloads)
	}
	start := len(b)
	for i, p := range ps {
		if p == nil {
			return b[:start], errSyntaxf(PayloadNone, "payload %d is nil", i)
		}
		next := PayloadNone
		if i+1 < len(ps) {
			if ps[i+1] == nil {
				return b[:start], errSyntaxf(PayloadNone, "payload %d is nil", i+1)
			}
			next = ps[i+1].Type()
		}
		if t := p.Type(); t == PayloadSK || t == PayloadSKF {
			if !outer {
				return b[:start], errSyntax(t, "not allowed among inner payloads")
			}
			if i+1 != len(ps) {
				return b[:start], errSyntax(t, "must be the last payload")
			}
		} else if t == PayloadNone {
			return b[:start], errSyntaxf(PayloadNone, "payload %d has type 0", i)
		}
		var err error
		if b, err = p.Append(b, next); err != nil {
			return b[:start], err
		}
	}
	return b, nil
}

// First returns the first payload of type P in ps, or the zero P (nil) if
// there is none. For example First[*SA](msg.Payloads).
func First[P Payload](ps []Payload) P {
	for _, p := range ps {
		if q, ok := p.(P); ok {
			return q
		}
	}
	var zero P
	return zero
}

// FindNotify returns the first Notify payload of type t in ps, or nil.
func FindNotify(ps []Payload, t NotifyType) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}
