package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// msg builds a message from a header template and raw payload octets.
func rawMessage(np PayloadType, version byte, payloads []byte) []byte {
	h := Header{SPIi: 0x0102030405060708, Exchange: ExchangeIKESAInit, Flags: FlagInitiator, NextPayload: np,
		Length: uint32(HeaderLen + len(payloads))}
	b := h.Append(nil)
	b[17] = version
	return append(b, payloads...)
}

func TestHeaderVersion(t *testing.T) {
	for _, v := range []byte{0x10, 0x30, 0xf0, 0x00} {
		b := rawMessage(PayloadNone, v|0x03, nil)
		_, err := ParseMessage(b)
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Major != v>>4 || ve.Minor != 3 {
			t.Fatalf("version %#x: %v", v, err)
		}
		if ve.Header.SPIi != 0x0102030405060708 || ve.Header.Exchange != ExchangeIKESAInit || ve.Header.MessageID != 0 {
			t.Fatalf("version error header %+v", ve.Header)
		}
		if errors.Is(err, ErrSyntax) {
			t.Fatal("version error must be distinguishable from a syntax error")
		}
	}
	// Minor version is ignored on receipt but kept for exact re-encoding.
	b := rawMessage(PayloadNone, 0x27, nil)
	m, err := ParseMessage(b)
	if err != nil || m.Header.MinorVersion != 7 {
		t.Fatalf("minor version: %v %+v", err, m)
	}
	if out, _ := Marshal(m); !bytes.Equal(out, b) {
		t.Fatal("minor version not re-encoded")
	}
}

func TestMessageErrors(t *testing.T) {
	nonce := append(mustHex("00 00 0014"), make([]byte, 16)...)
	vid := mustHex("00 00 0006 abcd")
	sk := mustHex("21 00 0008 01020304") // SK, first inner payload SA
	crit := mustHex("00 80 0005 ff")     // critical bit set
	noncrit := mustHex("00 00 0005 ff")
	chain := func(parts ...[]byte) []byte {
		// Link the parts: each part's Next Payload is patched by the caller
		// through the types list.
		return bytes.Join(parts, nil)
	}
	withNext := func(p []byte, next PayloadType) []byte {
		p = append([]byte(nil), p...)
		p[0] = byte(next)
		return p
	}
	tests := []struct {
		name string
		b    []byte
		want func(error) bool
	}{
		{"short header", rawMessage(PayloadNone, 0x20, nil)[:27], isSyntax},
		{"Length too small", func() []byte { b := rawMessage(PayloadNone, 0x20, nil); b[27] = 27; return b }(), isSyntax},
		{"Length larger than datagram", func() []byte { b := rawMessage(PayloadNone, 0x20, nil); b[27] = 29; return b }(), isSyntax},
		{"Length smaller than datagram", append(rawMessage(PayloadNone, 0x20, nil), 0), isSyntax},
		{"trailing octets after chain", func() []byte {
			b := rawMessage(PayloadVendorID, 0x20, append(vid, 0))
			return b
		}(), isSyntax},
		{"chain announces missing payload", rawMessage(PayloadVendorID, 0x20, withNext(vid, PayloadNonce)), isSyntax},
		{"payload length below 4", rawMessage(PayloadVendorID, 0x20, mustHex("00 00 0003 00")), isSyntax},
		{"SK not last", rawMessage(PayloadSK, 0x20, chain(sk, vid)), isSyntax},
		{"unknown critical", rawMessage(PayloadVendorID, 0x20, chain(withNext(vid, 49), crit)), isCritical(49)},
		{"unknown critical first", rawMessage(PayloadType(200), 0x20, crit), isCritical(200)},
		{"nonce too short", rawMessage(PayloadNonce, 0x20, mustHex("00 00 0013 000102030405060708090a0b0c0d0e")), isSyntax},
		{"skf number zero", rawMessage(PayloadSKF, 0x20, mustHex("00 00 0008 0000 0001")), isSyntax},
		{"skf number above total", rawMessage(PayloadSKF, 0x20, mustHex("00 00 0008 0003 0002")), isSyntax},
		{"skf short", rawMessage(PayloadSKF, 0x20, mustHex("00 00 0006 0001")), isSyntax},
		{"delete SPIs of size 0", rawMessage(PayloadDelete, 0x20, mustHex("00 00 0008 01 00 0005")), isSyntax},
		{"delete SPI count mismatch", rawMessage(PayloadDelete, 0x20, mustHex("00 00 000c 03 04 0002 01020304")), isSyntax},
		{"delete too many SPIs", rawMessage(PayloadDelete, 0x20, mustHex("00 00 0008 03 01 0401")), isSyntax},
		{"notify SPI size too big", rawMessage(PayloadNotify, 0x20, mustHex("00 00 0009 03 04 4000 01")), isSyntax},
		{"KE short", rawMessage(PayloadKE, 0x20, mustHex("00 00 0007 001f00")), isSyntax},
		{"ID short", rawMessage(PayloadIDi, 0x20, mustHex("00 00 0005 01")), isSyntax},
		{"AUTH short", rawMessage(PayloadAUTH, 0x20, mustHex("00 00 0006 0200")), isSyntax},
		{"CERT empty", rawMessage(PayloadCERT, 0x20, mustHex("00 00 0004")), isSyntax},
		{"CP attribute overrun", rawMessage(PayloadCP, 0x20, mustHex("00 00 000c 01000000 0001 0004")), isSyntax},
		{"TS count mismatch", rawMessage(PayloadTSi, 0x20, mustHex("00 00 0008 02000000")), isSyntax},
		{"TS IPv4 wrong length", rawMessage(PayloadTSi, 0x20, mustHex("00 00 001c 01000000 07000014 0000ffff 0a000000 0a0000ff 00000000")), isSyntax},
		{"TS trailing", rawMessage(PayloadTSi, 0x20, mustHex("00 00 0019 01000000 07000010 0000ffff 0a000000 0a0000ff 00")), isSyntax},
		{"SA empty", rawMessage(PayloadSA, 0x20, mustHex("00 00 0004")), isSyntax},
		// proposal: last=0, len 8+8, num 1, IKE, spi 0, 1 transform; transform last=3 (wrong: it is the last)
		{"SA transform Last Substruc", rawMessage(PayloadSA, 0x20, mustHex("00 00 0014 00000010 01010001 03000008 01000014")), isSyntax},
		{"SA proposal Last Substruc", rawMessage(PayloadSA, 0x20, mustHex("00 00 0014 02000010 01010001 00000008 01000014")), isSyntax},
		{"SA transform count", rawMessage(PayloadSA, 0x20, mustHex("00 00 0014 00000010 01010002 00000008 01000014")), isSyntax},
		{"SA proposal length", rawMessage(PayloadSA, 0x20, mustHex("00 00 0014 00000011 01010001 00000008 01000014")), isSyntax},
		{"SA attribute overrun", rawMessage(PayloadSA, 0x20, mustHex("00 00 0018 00000014 01010001 0000000c 01000014 000e0002")), isSyntax},
		{"SA proposal SPI overrun", rawMessage(PayloadSA, 0x20, mustHex("00 00 000c 00000008 01010800")), isSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMessage(tt.b)
			if err == nil {
				t.Fatalf("parsed: %+v %v", m.Header, payloadTypes(m.Payloads))
			}
			if !tt.want(err) {
				t.Fatalf("wrong error %T: %v", err, err)
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}

	// The valid counterparts parse: a non-critical unknown payload is kept
	// (and re-encoded), the Critical bit of a known payload is ignored.
	b := rawMessage(PayloadVendorID, 0x20, chain(withNext(vid, 49), noncrit))
	m, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := m.Payloads[1].(*Unknown); !ok || u.PayloadType != 49 || !bytes.Equal(u.Body, []byte{0xff}) {
		t.Fatalf("unknown payload: %#v", m.Payloads[1])
	}
	if out, _ := Marshal(m); !bytes.Equal(out, b) {
		t.Fatal("unknown payload not re-encoded exactly")
	}
	critVID := withNext(vid, PayloadNone)
	critVID[1] = 0x80
	if m, err := ParseMessage(rawMessage(PayloadVendorID, 0x20, critVID)); err != nil || len(m.Payloads) != 1 {
		t.Fatalf("critical known payload: %v", err)
	}
	if m, err := ParseMessage(rawMessage(PayloadNonce, 0x20, nonce)); err != nil || len(First[*Nonce](m.Payloads).Data) != 16 {
		t.Fatalf("nonce: %v", err)
	}
}

func isSyntax(err error) bool { return errors.Is(err, ErrSyntax) }

func isCritical(typ PayloadType) func(error) bool {
	return func(err error) bool {
		var ce *UnsupportedCriticalPayloadError
		return errors.As(err, &ce) && ce.Type == typ && !errors.Is(err, ErrSyntax)
	}
}

func TestInnerChainErrors(t *testing.T) {
	sk := mustHex("00 00 0008 01020304")
	if _, err := ParsePayloads(PayloadSK, sk); !isSyntax(err) {
		t.Fatalf("SK inside SK: %v", err)
	}
	if _, err := ParsePayloads(PayloadSKF, mustHex("00 00 0008 0001 0001")); !isSyntax(err) {
		t.Fatalf("SKF inside SK: %v", err)
	}
	if _, err := ParsePayloads(PayloadType(60), mustHex("00 80 0004")); !isCritical(60)(err) {
		t.Fatalf("critical unknown inner payload: %v", err)
	}
	if _, err := ParsePayloads(PayloadNone, []byte{0}); !isSyntax(err) {
		t.Fatalf("data with empty chain: %v", err)
	}
	if ps, err := ParsePayloads(PayloadNone, nil); err != nil || ps != nil {
		t.Fatalf("empty chain: %v %v", ps, err)
	}
	// MaxPayloads bounds a chain of minimal payloads.
	var many []byte
	for range MaxPayloads + 1 {
		many = append(many, byte(PayloadVendorID), 0, 0, 4)
	}
	many[len(many)-4] = 0
	if _, err := ParsePayloads(PayloadVendorID, many); !isSyntax(err) {
		t.Fatalf("%d payloads: %v", MaxPayloads+1, err)
	}
	if ps, err := ParsePayloads(PayloadVendorID, many[4:]); err != nil || len(ps) != MaxPayloads {
		t.Fatalf("%d payloads: %v", MaxPayloads, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	bad := []Payload{
		&SA{},
		&SA{Proposals: make([]Proposal, MaxProposals+1)},
		&SA{Proposals: []Proposal{{SPI: make([]byte, 256)}}},
		&SA{Proposals: []Proposal{{Transforms: make([]Transform, MaxTransforms+1)}}},
		&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{Type: 0x8000, TV: true}}}}}}},
		&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: make([]Attribute, MaxAttributes+1)}}}}},
		&Nonce{Data: make([]byte, 15)},
		&Nonce{Data: make([]byte, 257)},
		&Notify{SPI: make([]byte, 256)},
		&Delete{Protocol: ProtocolESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3}}},
		&Delete{Protocol: ProtocolIKE, SPIs: [][]byte{{}}},
		&TS{Selectors: []TrafficSelector{{Type: TSIPv4AddrRange, Start: v6, End: v6}}},
		&TS{Selectors: []TrafficSelector{{Type: TSIPv6AddrRange, Start: v4, End: v4}}},
		&TS{Selectors: []TrafficSelector{{Type: TSIPv4AddrRange}}},
		&TS{Selectors: make([]TrafficSelector, MaxTrafficSelectors+1)},
		&CP{Attributes: []CPAttribute{{Type: 0x8000}}},
		&EncryptedFragment{Number: 0, Total: 1},
		&EncryptedFragment{Number: 2, Total: 1},
		&VendorID{Data: make([]byte, MaxPayloadLen-GenericHeaderLen+1)},
		&KE{Data: make([]byte, MaxPayloadLen)},
	}
	for _, p := range bad {
		b, err := p.Append([]byte{7}, PayloadNone)
		if !isSyntax(err) || !bytes.Equal(b, []byte{7}) {
			t.Errorf("%T: err %v, output %d octets (must be left as it was)", p, err, len(b))
		}
	}
	if b, err := (&VendorID{Data: make([]byte, MaxPayloadLen-GenericHeaderLen)}).Append(nil, 0); err != nil || len(b) != MaxPayloadLen {
		t.Errorf("largest payload: %v", err)
	}

	nonce := &Nonce{Data: make([]byte, 32)}
	sk := &Encrypted{FirstPayload: PayloadIDi, Body: []byte{1}}
	badMsgs := [][]Payload{
		{sk, nonce},
		{nonce, nil},
		{&Unknown{PayloadType: PayloadNone}},
		{nonce, &Nonce{}},
	}
	for i, ps := range badMsgs {
		if b, err := AppendMessage([]byte{7}, &Message{Payloads: ps}); !isSyntax(err) || len(b) != 1 {
			t.Errorf("message %d: %v", i, err)
		}
	}
	if _, err := AppendPayloads(nil, []Payload{nonce, sk}); !isSyntax(err) {
		t.Errorf("SK among inner payloads: %v", err)
	}
	if _, err := AppendPayloads(nil, make([]Payload, MaxPayloads+1)); !isSyntax(err) {
		t.Errorf("too many payloads: %v", err)
	}
	if _, err := AppendSKHeaders(nil, Header{}, PayloadIDi, MaxPayloadLen); !isSyntax(err) {
		t.Errorf("AppendSKHeaders overflow: %v", err)
	}
	if _, err := AppendSKFHeaders(nil, Header{}, PayloadIDi, 3, 2, 10); !isSyntax(err) {
		t.Errorf("AppendSKFHeaders numbers: %v", err)
	}
}

// TestSKHeaders checks the associated-data helpers against a message built
// with AppendMessage.
func TestSKHeaders(t *testing.T) {
	h := Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1}
	body := bytes.Repeat([]byte{0xaa}, 100)
	for _, m := range []*Message{
		{Header: h, Payloads: []Payload{&Encrypted{FirstPayload: PayloadIDi, Body: body}}},
		{Header: h, Payloads: []Payload{&EncryptedFragment{FirstPayload: PayloadIDi, Number: 1, Total: 3, Body: body}}},
		{Header: h, Payloads: []Payload{&EncryptedFragment{Number: 3, Total: 3, Body: body}}},
	} {
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		if skf := m.Fragment(); skf != nil {
			want, err = AppendSKFHeaders(nil, h, skf.FirstPayload, skf.Number, skf.Total, len(body))
		} else {
			want, err = AppendSKHeaders(nil, h, PayloadIDi, len(body))
		}
		if err != nil || !bytes.Equal(b[:len(b)-len(body)], want) {
			t.Fatalf("headers %x, message %x (%v)", want, b[:len(b)-len(body)], err)
		}
		pm, err := ParseMessage(b)
		if err != nil || !bytes.Equal(pm.AssociatedData(), want) {
			t.Fatalf("AssociatedData: %v", err)
		}
		if m.AssociatedData() != nil {
			t.Fatal("AssociatedData without Raw")
		}
	}
	if (&Message{Raw: []byte{1}}).AssociatedData() != nil {
		t.Fatal("AssociatedData without SK")
	}
}

func TestIDPrime(t *testing.T) {
	id := &ID{IDType: IDFQDN, Data: []byte("gw.example")}
	if got := id.Prime(); !bytes.Equal(got, append([]byte{2, 0, 0, 0}, "gw.example"...)) {
		t.Fatalf("IDx' %x", got)
	}
	// Reserved octets as received are part of IDx' (RFC 7296 Section 2.15).
	b := mustHex("00 00 000a 02 010203 6777")
	p, n, err := ParseIDr(b)
	if err != nil || n != len(b) || !p.Responder || !bytes.Equal(p.Prime(), b[4:]) {
		t.Fatalf("parsed IDr: %v %+v", err, p)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{ExchangeIKEIntermediate.String(), "IKE_INTERMEDIATE"},
		{ExchangeType(99).String(), "ExchangeType(99)"},
		{PayloadSKF.String(), "SKF"},
		{PayloadType(49).String(), "PayloadType(49)"},
		{ProtocolESP.String(), "ESP"},
		{ProtocolID(9).String(), "ProtocolID(9)"},
		{TransformADDKE1.String(), "ADDKE1"},
		{TransformADDKE7.String(), "ADDKE7"},
		{TransformType(13).String(), "TransformType(13)"},
		{TransformIDString(TransformENCR, EncrAESGCM16), "ENCR_AES_GCM_16"},
		{TransformIDString(TransformADDKE3, KEMLKEM1024), "ML_KEM_1024"},
		{TransformIDString(TransformPRF, 99), "PRF(99)"},
		{TransformIDString(TransformType(13), 1), "TransformType(13)(1)"},
		{IDRFC822Addr.String(), "ID_RFC822_ADDR"},
		{IDType(4).String(), "IDType(4)"},
		{AuthSharedKey.String(), "Shared Key Message Integrity Code"},
		{AuthMethod(99).String(), "AuthMethod(99)"},
		{HashIdentity.String(), "Identity"},
		{HashAlgorithm(9).String(), "HashAlgorithm(9)"},
		{CertX509Signature.String(), "X.509 Certificate - Signature"},
		{CertEncoding(1).String(), "CertEncoding(1)"},
		{TSIPv6AddrRange.String(), "TS_IPV6_ADDR_RANGE"},
		{TSType(10).String(), "TSType(10)"},
		{CFGReply.String(), "CFG_REPLY"},
		{CFGType(0).String(), "CFGType(0)"},
		{NotifyIntermediateExchangeSupported.String(), "INTERMEDIATE_EXCHANGE_SUPPORTED"},
		{NotifyType(12345).String(), "NotifyType(12345)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	// Every registry constant has a name.
	for n := range notifyNames {
		if strings.HasPrefix(n.String(), "NotifyType(") {
			t.Errorf("notify %d unnamed", n)
		}
	}
	if NotifyInvalidSyntax.IsError() == NotifyCookie.IsError() {
		t.Error("IsError")
	}
}
