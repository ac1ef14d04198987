package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

const propertyRounds = 300

// TestPayloadRoundTrip encodes random valid payloads of every type, parses
// them back, and requires equality, exact consumption, the right Next
// Payload octet, and identical re-encoding.
func TestPayloadRoundTrip(t *testing.T) {
	r := newRand(1)
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			for i := range propertyRounds {
				p := genPayload(r, typ)
				next := innerTypes[r.IntN(len(innerTypes))]
				b, err := p.Append([]byte{0xee}, next) // append after existing content
				if err != nil {
					t.Fatalf("round %d: Append(%+v): %v", i, p, err)
				}
				if b[0] != 0xee {
					t.Fatal("Append overwrote the prefix")
				}
				b = b[1:]
				wantNext := next
				switch p := p.(type) {
				case *Encrypted:
					wantNext = p.FirstPayload
				case *EncryptedFragment:
					wantNext = p.FirstPayload
				}
				if PayloadType(b[0]) != wantNext {
					t.Fatalf("round %d: Next Payload %d, want %d", i, b[0], wantNext)
				}
				q, n, err := ParsePayload(typ, b)
				if err != nil {
					t.Fatalf("round %d: parse %x: %v", i, b, err)
				}
				if n != len(b) {
					t.Fatalf("round %d: consumed %d of %d", i, n, len(b))
				}
				if !reflect.DeepEqual(p, q) {
					t.Fatalf("round %d: parsed\n%#v\nwant\n%#v", i, q, p)
				}
				b2, err := q.Append(nil, next)
				if err != nil || !bytes.Equal(b, b2) {
					t.Fatalf("round %d: re-encoding differs (%v)", i, err)
				}
				// Trailing octets after the payload are not consumed.
				if _, n, err := ParsePayload(typ, append(b2, 1, 2, 3)); err != nil || n != len(b) {
					t.Fatalf("round %d: with trailing data: n=%d err=%v", i, n, err)
				}
			}
		})
	}
}

// TestTypedParsers checks that each exported ParseX agrees with ParsePayload.
func TestTypedParsers(t *testing.T) {
	r := newRand(2)
	parsers := map[PayloadType]func([]byte) (Payload, int, error){
		PayloadSA:       func(b []byte) (Payload, int, error) { return ret(ParseSA(b)) },
		PayloadKE:       func(b []byte) (Payload, int, error) { return ret(ParseKE(b)) },
		PayloadIDi:      func(b []byte) (Payload, int, error) { return ret(ParseIDi(b)) },
		PayloadIDr:      func(b []byte) (Payload, int, error) { return ret(ParseIDr(b)) },
		PayloadCERT:     func(b []byte) (Payload, int, error) { return ret(ParseCert(b)) },
		PayloadCERTREQ:  func(b []byte) (Payload, int, error) { return ret(ParseCertReq(b)) },
		PayloadAUTH:     func(b []byte) (Payload, int, error) { return ret(ParseAuth(b)) },
		PayloadNonce:    func(b []byte) (Payload, int, error) { return ret(ParseNonce(b)) },
		PayloadNotify:   func(b []byte) (Payload, int, error) { return ret(ParseNotify(b)) },
		PayloadDelete:   func(b []byte) (Payload, int, error) { return ret(ParseDelete(b)) },
		PayloadVendorID: func(b []byte) (Payload, int, error) { return ret(ParseVendorID(b)) },
		PayloadTSi:      func(b []byte) (Payload, int, error) { return ret(ParseTSi(b)) },
		PayloadTSr:      func(b []byte) (Payload, int, error) { return ret(ParseTSr(b)) },
		PayloadSK:       func(b []byte) (Payload, int, error) { return ret(ParseEncrypted(b)) },
		PayloadCP:       func(b []byte) (Payload, int, error) { return ret(ParseCP(b)) },
		PayloadEAP:      func(b []byte) (Payload, int, error) { return ret(ParseEAP(b)) },
		PayloadSKF:      func(b []byte) (Payload, int, error) { return ret(ParseEncryptedFragment(b)) },
	}
	for typ, parse := range parsers {
		for range 20 {
			p := genPayload(r, typ)
			b, err := p.Append(nil, PayloadNone)
			if err != nil {
				t.Fatal(err)
			}
			q, n, err := parse(b)
			if err != nil || n != len(b) || !reflect.DeepEqual(p, q) {
				t.Fatalf("%v: %v n=%d", typ, err, n)
			}
		}
	}
}

// TestMessageRoundTrip does the same for whole messages and inner chains.
func TestMessageRoundTrip(t *testing.T) {
	r := newRand(3)
	for i := range propertyRounds {
		m := genMessage(r)
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("round %d: Marshal: %v", i, err)
		}
		q, err := ParseMessage(b)
		if err != nil {
			t.Fatalf("round %d: ParseMessage: %v", i, err)
		}
		want := m.Header
		want.NextPayload = FirstType(m.Payloads)
		want.Length = uint32(len(b))
		if q.Header != want {
			t.Fatalf("round %d: header %+v, want %+v", i, q.Header, want)
		}
		if !reflect.DeepEqual(q.Payloads, m.Payloads) {
			t.Fatalf("round %d: payloads differ: %v vs %v", i, payloadTypes(q.Payloads), payloadTypes(m.Payloads))
		}
		b2, err := Marshal(q)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("round %d: re-encoding differs (%v)", i, err)
		}
		// Appending after existing content leaves it alone.
		b3, err := AppendMessage([]byte("xyz"), m)
		if err != nil || string(b3[:3]) != "xyz" || !bytes.Equal(b3[3:], b) {
			t.Fatalf("round %d: AppendMessage with prefix: %v", i, err)
		}

		inner := genChain(r, 10, false)
		ib, err := AppendPayloads(nil, inner)
		if err != nil {
			t.Fatalf("round %d: AppendPayloads: %v", i, err)
		}
		got, err := ParsePayloads(FirstType(inner), ib)
		if err != nil || !reflect.DeepEqual(got, inner) {
			t.Fatalf("round %d: inner chain: %v", i, err)
		}
	}
}

// validEncodings returns payload encodings (with their types), whole
// messages, and inner chains (with their first type) to truncate and fuzz.
func validEncodings(t testing.TB) (payloads []typedBytes, messages [][]byte, inner []typedBytes) {
	r := newRand(4)
	for _, typ := range allTypes {
		for range 8 {
			b, err := genPayload(r, typ).Append(nil, PayloadNone)
			if err != nil {
				t.Fatal(err)
			}
			payloads = append(payloads, typedBytes{typ, b})
		}
	}
	for range 30 {
		b, err := Marshal(genMessage(r))
		if err != nil {
			t.Fatal(err)
		}
		messages = append(messages, b)
		ps := genChain(r, 8, false)
		ib, err := AppendPayloads(nil, ps)
		if err != nil {
			t.Fatal(err)
		}
		inner = append(inner, typedBytes{FirstType(ps), ib})
	}
	for _, f := range loadVectors(t) {
		for i := range f.Messages {
			vm := &f.Messages[i]
			b := vm.ikeBytes(t)
			messages = append(messages, b)
			m, err := ParseMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Payloads {
				pb, err := p.Append(nil, PayloadNone)
				if err != nil {
					t.Fatal(err)
				}
				payloads = append(payloads, typedBytes{p.Type(), pb})
			}
			if sk := m.Encrypted(); sk != nil && vm.SKPlaintext != nil {
				inner = append(inner, typedBytes{sk.FirstPayload, unhex(t, *vm.SKPlaintext)})
			}
		}
	}
	return payloads, messages, inner
}

type typedBytes struct {
	typ PayloadType
	b   []byte
}

// TestTruncated requires every proper prefix of a valid payload, message
// (also with its Length field patched to the prefix length, so that the
// payload chain itself is cut) and inner chain to fail with an error.
func TestTruncated(t *testing.T) {
	payloads, messages, inner := validEncodings(t)
	for _, p := range payloads {
		for i := range len(p.b) {
			if q, _, err := ParsePayload(p.typ, p.b[:i]); err == nil {
				t.Fatalf("%v: prefix of %d/%d octets parsed as %+v", p.typ, i, len(p.b), q)
			}
		}
	}
	for _, m := range messages {
		for i := range len(m) {
			prefix := append([]byte(nil), m[:i]...)
			if _, err := ParseMessage(prefix); err == nil {
				t.Fatalf("message prefix %d/%d parsed", i, len(m))
			}
			if i >= HeaderLen {
				prefix[24], prefix[25], prefix[26], prefix[27] = 0, 0, byte(i>>8), byte(i)
				if _, err := ParseMessage(prefix); err == nil {
					t.Fatalf("message prefix %d/%d with patched Length parsed", i, len(m))
				} else if !errors.Is(err, ErrSyntax) {
					t.Fatalf("message prefix %d/%d: %v is not a syntax error", i, len(m), err)
				}
			}
		}
	}
	for _, c := range inner {
		for i := range len(c.b) {
			if _, err := ParsePayloads(c.typ, c.b[:i]); err == nil {
				t.Fatalf("inner chain prefix %d/%d parsed", i, len(c.b))
			}
		}
	}
}
