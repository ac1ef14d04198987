package auth

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

func TestIdentityBodies(t *testing.T) {
	tests := []struct {
		id   Identity
		body string
		str  string
	}{
		{IPIdentity(netip.MustParseAddr("192.0.2.1")), "01000000 c0000201", "ipv4:192.0.2.1"},
		{IPIdentity(netip.MustParseAddr("::ffff:192.0.2.1")), "01000000 c0000201", "ipv4:192.0.2.1"},
		{IPIdentity(netip.MustParseAddr("2001:db8::1")), "05000000 20010db8000000000000000000000001", "ipv6:2001:db8::1"},
		{FQDNIdentity("vpn.example.com"), "02000000 76706e2e6578616d706c652e636f6d", "fqdn:vpn.example.com"},
		{RFC822Identity("left@ss6"), "03000000 6c65667440737336", "rfc822:left@ss6"},
		{KeyIDIdentity([]byte{0x0a, 0x0b}), "0b000000 0a0b", "keyid:0a0b"},
		{DNIdentity(unhex(t, "300c310a300806035504031301 78")), "09000000 300c310a30080603550403130178", "dn:300c310a30080603550403130178"},
	}
	for _, tc := range tests {
		body := tc.id.Body()
		if !bytes.Equal(body, unhex(t, tc.body)) {
			t.Errorf("%v: body %x, want %s", tc.id, body, tc.body)
		}
		if tc.id.String() != tc.str {
			t.Errorf("String = %q, want %q", tc.id.String(), tc.str)
		}
		got, err := ParseIdentityBody(body)
		if err != nil || !got.Equal(tc.id) {
			t.Errorf("%v: parsed %v, %v", tc.id, got, err)
		}
	}
	// RESERVED octets are ignored on receipt.
	if got, err := ParseIdentityBody(unhex(t, "02ffffff 61")); err != nil || !got.Equal(FQDNIdentity("a")) {
		t.Errorf("reserved octets: %v %v", got, err)
	}
}

func TestIdentityRejects(t *testing.T) {
	for _, body := range []string{
		"", "020000", "02000000", // too short, no data
		"01000000 c00002", "05000000 c0000201", // wrong address lengths
		"02000000 612062", "02000000 61ff", // space, non-ASCII in FQDN
		"03000000 406578",              // no local part
		"09000000 0102",                // DN not a SEQUENCE
		"0a000000 3000", "ee000000 00", // ID_DER_ASN1_GN and unknown type
	} {
		if _, err := ParseIdentityBody(unhex(t, body)); err == nil {
			t.Errorf("%s parsed", body)
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("%s: unclassified error %v", body, err)
		}
	}
	if err := (Identity{Type: wire.IDKeyID, Data: make([]byte, MaxIdentitySize+1)}).Validate(); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized: %v", err)
	}
}

func TestIdentityEqual(t *testing.T) {
	eq := []struct{ a, b Identity }{
		{FQDNIdentity("VPN.Example.com"), FQDNIdentity("vpn.example.COM")},
		{RFC822Identity("gw@Example.COM"), RFC822Identity("gw@example.com")},
		{IPIdentity(netip.MustParseAddr("::ffff:10.0.0.1")), IPIdentity(netip.MustParseAddr("10.0.0.1"))},
	}
	ne := []struct{ a, b Identity }{
		{RFC822Identity("GW@example.com"), RFC822Identity("gw@example.com")},
		{FQDNIdentity("a.example"), FQDNIdentity("b.example")},
		{FQDNIdentity("10.0.0.1"), IPIdentity(netip.MustParseAddr("10.0.0.1"))},
		{KeyIDIdentity([]byte("A")), KeyIDIdentity([]byte("a"))},
	}
	for _, p := range eq {
		if !p.a.Equal(p.b) || !p.b.Equal(p.a) {
			t.Errorf("%v != %v", p.a, p.b)
		}
	}
	for _, p := range ne {
		if p.a.Equal(p.b) {
			t.Errorf("%v == %v", p.a, p.b)
		}
	}
}

// FuzzParseIdentityBody: no panic; what parses re-encodes to a body that
// parses to an equal identity.
func FuzzParseIdentityBody(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 'a'})
	f.Add([]byte{1, 0, 0, 0, 10, 0, 0, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := ParseIdentityBody(body)
		if err != nil {
			return
		}
		again, err := ParseIdentityBody(id.Body())
		if err != nil || !again.Equal(id) || !bytes.Equal(again.Data, body[4:]) {
			t.Fatalf("%x: %v %v", body, again, err)
		}
	})
}
