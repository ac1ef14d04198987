package ike

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pqlab/pqlab/ike/wire"
)

// Identity is an IKE identity: the ID Type and Identification Data of an
// IDi or IDr payload (RFC 7296 Section 3.5).
//
// In TOML an identity is a string, read like strongSwan's identities:
//
//	"192.0.2.1", "2001:db8::1"  ID_IPV4_ADDR, ID_IPV6_ADDR
//	"user@example.org"          ID_RFC822_ADDR
//	"gw.example.org", "@gw"     ID_FQDN (a leading @ is dropped)
//	"@#0a0b0c"                  ID_KEY_ID with hex data
//	"fqdn:x", "email:x", "rfc822:x", "keyid:hex", "ipv4:a", "ipv6:a"
//	                            the type named explicitly
type Identity struct {
	Type wire.IDType
	Data []byte
}

// ParseIdentity parses an identity string (see Identity).
func ParseIdentity(s string) (Identity, error) {
	if s == "" {
		return Identity{}, fmt.Errorf("ike: empty identity")
	}
	if i := strings.IndexByte(s, ':'); i > 0 {
		kind, v := strings.ToLower(s[:i]), s[i+1:]
		switch kind {
		case "fqdn":
			return Identity{Type: wire.IDFQDN, Data: []byte(v)}, nil
		case "email", "rfc822":
			return Identity{Type: wire.IDRFC822Addr, Data: []byte(v)}, nil
		case "keyid":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) == 0 {
				return Identity{}, fmt.Errorf("ike: bad key id %q", v)
			}
			return Identity{Type: wire.IDKeyID, Data: b}, nil
		case "ipv4", "ipv6":
			a, err := netip.ParseAddr(v)
			if err != nil || a.Is4() != (kind == "ipv4") {
				return Identity{}, fmt.Errorf("ike: bad %s identity %q", kind, v)
			}
			return AddrIdentity(a), nil
		}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return AddrIdentity(a), nil
	}
	if strings.HasPrefix(s, "@#") {
		b, err := hex.DecodeString(s[2:])
		if err != nil || len(b) == 0 {
			return Identity{}, fmt.Errorf("ike: bad key id %q", s)
		}
		return Identity{Type: wire.IDKeyID, Data: b}, nil
	}
	if strings.HasPrefix(s, "@") {
		return Identity{Type: wire.IDFQDN, Data: []byte(s[1:])}, nil
	}
	if strings.Contains(s, "@") {
		return Identity{Type: wire.IDRFC822Addr, Data: []byte(s)}, nil
	}
	return Identity{Type: wire.IDFQDN, Data: []byte(s)}, nil
}

// AddrIdentity returns the ID_IPV4_ADDR or ID_IPV6_ADDR identity of a.
func AddrIdentity(a netip.Addr) Identity {
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		return Identity{Type: wire.IDIPv4Addr, Data: b[:]}
	}
	b := a.As16()
	return Identity{Type: wire.IDIPv6Addr, Data: b[:]}
}

// UnmarshalText implements encoding.TextUnmarshaler (TOML strings).
func (id *Identity) UnmarshalText(b []byte) error {
	v, err := ParseIdentity(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (id Identity) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// IsZero reports whether the identity is unset.
func (id Identity) IsZero() bool { return id.Type == 0 && len(id.Data) == 0 }

// Equal reports whether two identities have the same type and data.
func (id Identity) Equal(o Identity) bool {
	return id.Type == o.Type && string(id.Data) == string(o.Data)
}

// String returns the identity in the syntax ParseIdentity reads.
func (id Identity) String() string {
	switch id.Type {
	case wire.IDIPv4Addr, wire.IDIPv6Addr:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	case wire.IDFQDN:
		return "fqdn:" + string(id.Data)
	case wire.IDRFC822Addr:
		return "email:" + string(id.Data)
	case wire.IDKeyID:
		return "keyid:" + hex.EncodeToString(id.Data)
	}
	if id.IsZero() {
		return ""
	}
	return fmt.Sprintf("id%d:%x", id.Type, id.Data)
}

// payload returns the IDi (responder false) or IDr payload carrying the
// identity.
func (id Identity) payload(responder bool) *wire.ID {
	return &wire.ID{Responder: responder, IDType: id.Type, Data: id.Data}
}
