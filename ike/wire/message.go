package wire

import "encoding/binary"

// Message is one IKE message (RFC 7296 Section 3): the header and the
// payloads of the unencrypted chain, in order. When the message is protected,
// its last payload is *Encrypted (SK) or *EncryptedFragment (SKF) and the
// inner payloads are parsed after decryption with ParsePayloads.
type Message struct {
	Header   Header
	Payloads []Payload
	// Raw is the message exactly as received, set by ParseMessage (nil for
	// a message built locally). AUTH signs the IKE_SA_INIT messages as sent
	// (RFC 7296 Section 2.15), and SK/SKF integrity covers these octets.
	Raw []byte
}

// ParseMessage parses an IKE message (without the non-ESP marker of UDP
// port 4500) occupying all of b: the header, whose Length must equal len(b),
// and the payload chain up to its end or up to SK or SKF, which must be the
// last payload. The message retains b: Raw is b and payload fields alias it,
// so the caller must not modify b while the message is in use.
//
// Errors: *VersionError for a major version other than 2;
// *UnsupportedCriticalPayloadError for an unknown payload with the Critical
// bit set; otherwise *SyntaxError (errors.Is(err, ErrSyntax)).
func ParseMessage(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if int64(h.Length) != int64(len(b)) {
		return nil, errSyntaxf(PayloadNone, "IKE header Length %d, message has %d octets", h.Length, len(b))
	}
	ps, err := parseChain(h.NextPayload, b[HeaderLen:], true)
	if err != nil {
		return nil, err
	}
	return &Message{Header: h, Payloads: ps, Raw: b}, nil
}

// AppendMessage appends the encoding of m: its header, with Next Payload set
// to the first payload's type and Length to the encoded size, then the
// payload chain with each Next Payload set to the following payload's type.
// SK or SKF may only be the last payload. m is not modified (m.Header.Length
// and NextPayload are ignored).
func AppendMessage(b []byte, m *Message) ([]byte, error) {
	start := len(b)
	h := m.Header
	h.NextPayload = FirstType(m.Payloads)
	h.Length = 0
	b = h.Append(b)
	b, err := appendChain(b, m.Payloads, true)
	if err != nil {
		return b[:start], err
	}
	n := len(b) - start
	if int64(n) > int64(^uint32(0)) {
		return b[:start], errSyntaxf(PayloadNone, "message of %d octets", n)
	}
	binary.BigEndian.PutUint32(b[start+24:], uint32(n))
	return b, nil
}

// Marshal returns the encoding of m in a new slice; see AppendMessage.
func Marshal(m *Message) ([]byte, error) {
	return AppendMessage(make([]byte, 0, 512), m)
}

// Encrypted returns the SK payload of m, or nil.
func (m *Message) Encrypted() *Encrypted {
	if sk, ok := lastPayload(m.Payloads).(*Encrypted); ok {
		return sk
	}
	return nil
}

// Fragment returns the SKF payload of m, or nil.
func (m *Message) Fragment() *EncryptedFragment {
	if skf, ok := lastPayload(m.Payloads).(*EncryptedFragment); ok {
		return skf
	}
	return nil
}

func lastPayload(ps []Payload) Payload {
	if len(ps) == 0 {
		return nil
	}
	return ps[len(ps)-1]
}

// AssociatedData returns the octets of Raw before the body (IV onwards) of
// the final SK or SKF payload: the AEAD associated data (RFC 5282 Section
// 5.1, RFC 7383 Section 2.5), and for integrity algorithms the start of what
// the ICV covers (all of Raw except the ICV, RFC 7296 Section 3.14). It
// returns nil when m has no Raw or no SK/SKF payload.
func (m *Message) AssociatedData() []byte {
	var body []byte
	switch p := lastPayload(m.Payloads).(type) {
	case *Encrypted:
		body = p.Body
	case *EncryptedFragment:
		body = p.Body
	default:
		return nil
	}
	if m.Raw == nil || len(body) > len(m.Raw) {
		return nil
	}
	return m.Raw[:len(m.Raw)-len(body)]
}
