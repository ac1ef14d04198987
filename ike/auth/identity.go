package auth

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pqlab/pqlab/ike/wire"
)

// idHeaderSize is ID Type (1) plus RESERVED (3) (RFC 7296 Section 3.5).
const idHeaderSize = 4

// MaxIdentitySize bounds Identification Data (an ID payload's length field
// allows 65535 minus headers; real identities are far shorter).
const MaxIdentitySize = 1024

// Identity is the content of an IDi or IDr payload (RFC 7296 Section 3.5).
type Identity struct {
	Type wire.IDType
	Data []byte
}

// IPIdentity returns an ID_IPV4_ADDR or ID_IPV6_ADDR identity (4 or 16
// octets). An IPv4-mapped IPv6 address is taken as IPv4.
func IPIdentity(a netip.Addr) Identity {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return Identity{Type: wire.IDIPv4Addr, Data: b[:]}
	}
	b := a.As16()
	return Identity{Type: wire.IDIPv6Addr, Data: b[:]}
}

// FQDNIdentity returns an ID_FQDN identity ("vpn.example.com", no
// terminator, RFC 7296 Section 3.5).
func FQDNIdentity(name string) Identity {
	return Identity{Type: wire.IDFQDN, Data: []byte(name)}
}

// RFC822Identity returns an ID_RFC822_ADDR identity ("gw@example.com").
func RFC822Identity(addr string) Identity {
	return Identity{Type: wire.IDRFC822Addr, Data: []byte(addr)}
}

// KeyIDIdentity returns an ID_KEY_ID identity (opaque octets). It can be
// used with shared keys only: nothing in a certificate matches it.
func KeyIDIdentity(id []byte) Identity {
	return Identity{Type: wire.IDKeyID, Data: bytes.Clone(id)}
}

// DNIdentity returns an ID_DER_ASN1_DN identity from a DER Name, e.g. a
// certificate's RawSubject.
func DNIdentity(derName []byte) Identity {
	return Identity{Type: wire.IDDERASN1DN, Data: bytes.Clone(derName)}
}

// Validate checks that the data fits the type: 4 or 16 octets for
// addresses, non-empty printable ASCII for FQDN and RFC822 (RFC 7296
// Section 3.5), a DER SEQUENCE for a DN, non-empty for KEY_ID.
func (id Identity) Validate() error {
	if len(id.Data) == 0 || len(id.Data) > MaxIdentitySize {
		return fmt.Errorf("auth: identity type %d with %d octets of data: %w", id.Type, len(id.Data), ErrMalformed)
	}
	switch id.Type {
	case wire.IDIPv4Addr:
		if len(id.Data) != 4 {
			return fmt.Errorf("auth: ID_IPV4_ADDR of %d octets: %w", len(id.Data), ErrMalformed)
		}
	case wire.IDIPv6Addr:
		if len(id.Data) != 16 {
			return fmt.Errorf("auth: ID_IPV6_ADDR of %d octets: %w", len(id.Data), ErrMalformed)
		}
	case wire.IDFQDN, wire.IDRFC822Addr:
		for _, c := range id.Data {
			if c <= 0x20 || c >= 0x7f {
				return fmt.Errorf("auth: identity %q has a character outside printable ASCII: %w", id.Data, ErrMalformed)
			}
		}
		if id.Type == wire.IDRFC822Addr && bytes.IndexByte(id.Data, '@') <= 0 {
			return fmt.Errorf("auth: ID_RFC822_ADDR %q has no local part: %w", id.Data, ErrMalformed)
		}
	case wire.IDDERASN1DN:
		if id.Data[0] != 0x30 {
			return fmt.Errorf("auth: ID_DER_ASN1_DN is not a DER SEQUENCE: %w", ErrMalformed)
		}
	case wire.IDKeyID:
	default:
		return fmt.Errorf("auth: ID type %d: %w", id.Type, ErrUnsupportedAlgorithm)
	}
	return nil
}

// AppendBody appends the ID payload body without its generic header: ID
// Type, three RESERVED octets (zero), Identification Data. This is IDx' of
// RFC 7296 Section 2.15, the input to prf(SK_px, IDx').
func (id Identity) AppendBody(b []byte) []byte {
	b = append(b, byte(id.Type), 0, 0, 0)
	return append(b, id.Data...)
}

// Body returns AppendBody(nil).
func (id Identity) Body() []byte { return id.AppendBody(nil) }

// ParseIdentityBody parses an ID payload body (IDx'). RESERVED octets are
// ignored on receipt (RFC 7296 Section 3.5); the data is copied and checked
// with Validate.
func ParseIdentityBody(body []byte) (Identity, error) {
	if len(body) < idHeaderSize {
		return Identity{}, fmt.Errorf("auth: ID payload body of %d octets: %w", len(body), ErrMalformed)
	}
	id := Identity{Type: wire.IDType(body[0]), Data: bytes.Clone(body[idHeaderSize:])}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// Equal compares two identities as configured-versus-received: same type
// and data, where FQDNs and the domain part of RFC822 addresses compare
// without regard to ASCII case.
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	switch id.Type {
	case wire.IDFQDN:
		return strings.EqualFold(string(id.Data), string(o.Data))
	case wire.IDRFC822Addr:
		return rfc822Equal(string(id.Data), string(o.Data))
	}
	return bytes.Equal(id.Data, o.Data)
}

// rfc822Equal compares mail addresses: exact local part, case-insensitive
// domain (RFC 5280 Section 7.5).
func rfc822Equal(a, b string) bool {
	ia, ib := strings.LastIndexByte(a, '@'), strings.LastIndexByte(b, '@')
	if ia < 0 || ib < 0 {
		return a == b
	}
	return a[:ia] == b[:ib] && strings.EqualFold(a[ia:], b[ib:])
}

// String renders the identity for logs: "fqdn:vpn.example.com",
// "ipv4:192.0.2.1", "keyid:0a0b", ...
func (id Identity) String() string {
	switch id.Type {
	case wire.IDIPv4Addr, wire.IDIPv6Addr:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			if id.Type == wire.IDIPv4Addr {
				return "ipv4:" + a.String()
			}
			return "ipv6:" + a.String()
		}
	case wire.IDFQDN:
		return "fqdn:" + string(id.Data)
	case wire.IDRFC822Addr:
		return "rfc822:" + string(id.Data)
	case wire.IDKeyID:
		return "keyid:" + hex.EncodeToString(id.Data)
	case wire.IDDERASN1DN:
		return "dn:" + hex.EncodeToString(id.Data)
	}
	return fmt.Sprintf("id%d:%x", id.Type, id.Data)
}
