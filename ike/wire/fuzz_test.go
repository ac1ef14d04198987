package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// Fuzz targets. In `go test` they run their seed corpus (valid encodings of
// every kind, including all recorded strongSwan datagrams); `go test
// -fuzz=FuzzParseMessage` and the others explore further. Each requires that
// parsing never panics and that whatever parses re-encodes to the same
// length, parses back to an equal value and re-encodes identically (the
// codec normalises only reserved bits and the Critical bit of known payloads).

func FuzzParseMessage(f *testing.F) {
	_, messages, _ := validEncodings(f)
	for _, m := range messages {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if m != nil {
				t.Fatal("message returned with an error")
			}
			return
		}
		out, err := Marshal(m)
		if err != nil {
			t.Fatalf("parsed message does not encode: %v", err)
		}
		if len(out) != len(b) {
			t.Fatalf("re-encoded %d octets, parsed %d", len(out), len(b))
		}
		m2, err := ParseMessage(out)
		if err != nil {
			t.Fatalf("re-encoding does not parse: %v", err)
		}
		if m2.Header != m.Header || !reflect.DeepEqual(m2.Payloads, m.Payloads) {
			t.Fatalf("round trip changed the message")
		}
		if out2, err := Marshal(m2); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("second re-encoding differs: %v", err)
		}
		if ad := m.AssociatedData(); ad != nil && !bytes.HasPrefix(b, ad) {
			t.Fatal("associated data is not a prefix of the message")
		}
	})
}

func FuzzParsePayloads(f *testing.F) {
	_, _, inner := validEncodings(f)
	for _, c := range inner {
		f.Add(uint8(c.typ), c.b)
	}
	f.Fuzz(func(t *testing.T, first uint8, b []byte) {
		ps, err := ParsePayloads(PayloadType(first), b)
		if err != nil {
			return
		}
		out, err := AppendPayloads(nil, ps)
		if err != nil {
			t.Fatalf("parsed chain does not encode: %v", err)
		}
		if len(out) != len(b) || FirstType(ps) != PayloadType(first) {
			t.Fatalf("re-encoded %d octets of %d, first %v", len(out), len(b), FirstType(ps))
		}
		ps2, err := ParsePayloads(FirstType(ps), out)
		if err != nil || !reflect.DeepEqual(ps, ps2) {
			t.Fatalf("round trip changed the chain: %v", err)
		}
		if out2, err := AppendPayloads(nil, ps2); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("second re-encoding differs: %v", err)
		}
	})
}

func FuzzParsePayload(f *testing.F) {
	payloads, _, _ := validEncodings(f)
	for _, p := range payloads {
		f.Add(uint8(p.typ), p.b)
	}
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		checkPayloadFuzz(t, b, func(b []byte) (Payload, int, error) { return ParsePayload(PayloadType(typ), b) })
	})
}

// checkPayloadFuzz is the property every payload parser must have.
func checkPayloadFuzz(t *testing.T, b []byte, parse func([]byte) (Payload, int, error)) {
	p, n, err := parse(b)
	if err != nil {
		if p != nil || n != 0 {
			t.Fatal("value returned with an error")
		}
		return
	}
	if n < GenericHeaderLen || n > len(b) {
		t.Fatalf("consumed %d of %d", n, len(b))
	}
	next := PayloadType(b[0])
	out, err := p.Append(nil, next)
	if err != nil {
		t.Fatalf("parsed %T does not encode: %v", p, err)
	}
	if len(out) != n || out[0] != b[0] {
		t.Fatalf("re-encoded %d octets (next %d), parsed %d (next %d)", len(out), out[0], n, b[0])
	}
	p2, n2, err := parse(out)
	if err != nil || n2 != n || !reflect.DeepEqual(p, p2) {
		t.Fatalf("round trip changed the payload: %v", err)
	}
	if out2, err := p2.Append(nil, next); err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("second re-encoding differs: %v", err)
	}
}

// fuzzPayloadType seeds a per-type fuzz target with the valid encodings of
// that type.
func fuzzPayloadType[P Payload](f *testing.F, typ PayloadType, parse func([]byte) (P, int, error)) {
	payloads, _, _ := validEncodings(f)
	for _, p := range payloads {
		if p.typ == typ {
			f.Add(p.b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkPayloadFuzz(t, b, func(b []byte) (Payload, int, error) { return ret(parse(b)) })
	})
}

func FuzzParseSA(f *testing.F)       { fuzzPayloadType(f, PayloadSA, ParseSA) }
func FuzzParseKE(f *testing.F)       { fuzzPayloadType(f, PayloadKE, ParseKE) }
func FuzzParseIDi(f *testing.F)      { fuzzPayloadType(f, PayloadIDi, ParseIDi) }
func FuzzParseIDr(f *testing.F)      { fuzzPayloadType(f, PayloadIDr, ParseIDr) }
func FuzzParseCert(f *testing.F)     { fuzzPayloadType(f, PayloadCERT, ParseCert) }
func FuzzParseCertReq(f *testing.F)  { fuzzPayloadType(f, PayloadCERTREQ, ParseCertReq) }
func FuzzParseAuth(f *testing.F)     { fuzzPayloadType(f, PayloadAUTH, ParseAuth) }
func FuzzParseNonce(f *testing.F)    { fuzzPayloadType(f, PayloadNonce, ParseNonce) }
func FuzzParseNotify(f *testing.F)   { fuzzPayloadType(f, PayloadNotify, ParseNotify) }
func FuzzParseDelete(f *testing.F)   { fuzzPayloadType(f, PayloadDelete, ParseDelete) }
func FuzzParseVendorID(f *testing.F) { fuzzPayloadType(f, PayloadVendorID, ParseVendorID) }
func FuzzParseTSi(f *testing.F)      { fuzzPayloadType(f, PayloadTSi, ParseTSi) }
func FuzzParseTSr(f *testing.F)      { fuzzPayloadType(f, PayloadTSr, ParseTSr) }
func FuzzParseEncrypted(f *testing.F) {
	fuzzPayloadType(f, PayloadSK, ParseEncrypted)
}
func FuzzParseEncryptedFragment(f *testing.F) {
	fuzzPayloadType(f, PayloadSKF, ParseEncryptedFragment)
}
func FuzzParseCP(f *testing.F)  { fuzzPayloadType(f, PayloadCP, ParseCP) }
func FuzzParseEAP(f *testing.F) { fuzzPayloadType(f, PayloadEAP, ParseEAP) }

func FuzzParseHeader(f *testing.F) {
	_, messages, _ := validEncodings(f)
	for _, m := range messages[:5] {
		f.Add(m[:HeaderLen])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if out := h.Append(nil); !bytes.Equal(out, b[:HeaderLen]) {
			t.Fatalf("header re-encoding %x, input %x", out, b[:HeaderLen])
		}
	})
}
