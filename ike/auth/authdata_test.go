package auth

import (
	"bytes"
	"errors"
	"testing"
)

func TestSignatureAuthDataLayout(t *testing.T) {
	sig := bytes.Repeat([]byte{0xab}, 64)
	data, err := AppendSignatureAuthData([]byte{0xee}, SigEd25519, sig)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 7427 Section 3: length 7, id-Ed25519, signature.
	want := append(unhex(t, "ee 07 3005 0603 2b65 70"), sig...)
	if !bytes.Equal(data, want) {
		t.Fatalf("auth data %x\nwant      %x", data, want)
	}
	alg, got, err := ParseSignatureAuthData(data[1:])
	if err != nil || alg != SigEd25519 || !bytes.Equal(got, sig) {
		t.Fatalf("parse: %v %x %v", alg, got, err)
	}
	if _, err := AppendSignatureAuthData(nil, 0, sig); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("unknown algorithm: %v", err)
	}
}

// TestParseSignatureAuthDataTruncated requires every proper prefix of valid
// Authentication Data to fail cleanly (a prefix that keeps the whole
// identifier still parses, with a shorter signature, which verification
// then rejects).
func TestParseSignatureAuthDataTruncated(t *testing.T) {
	for _, alg := range []SignatureAlgorithm{SigEd25519, SigECDSAWithSHA384, SigMLDSA87} {
		data, _ := AppendSignatureAuthData(nil, alg, []byte{1, 2, 3})
		idEnd := 1 + len(sigAlgIDs[alg])
		for n := 0; n < len(data); n++ {
			_, sig, err := ParseSignatureAuthData(data[:n])
			if n <= idEnd && err == nil {
				t.Errorf("%v: prefix of %d octets parsed", alg, n)
			}
			if n > idEnd && (err != nil || len(sig) != n-idEnd) {
				t.Errorf("%v: prefix of %d octets: %v", alg, n, err)
			}
		}
	}
}

func TestParseSignatureAuthDataRejects(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		err  error
	}{
		{"empty", nil, ErrMalformed},
		{"zero length", unhex(t, "00 01"), ErrMalformed},
		{"length past end", unhex(t, "0d 300b 0609 6086 4801 6503 0403 12"), ErrMalformed},
		{"length too short", append(unhex(t, "06 3005 0603 2b65 70"), 1), ErrUnsupportedAlgorithm},
		{"RSA", append(unhex(t, "0f 300d 0609 2a86 4886 f70d 0101 0b05 00"), 1), ErrUnsupportedAlgorithm},
		{"no signature", unhex(t, "07 3005 0603 2b65 70"), ErrMalformed},
		{"oversized", make([]byte, MaxAuthDataSize+1), ErrMalformed},
	}
	for _, tc := range tests {
		if _, _, err := ParseSignatureAuthData(tc.data); !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
	}
}

// FuzzParseSignatureAuthData: no panic; whatever parses re-encodes to the
// same octets.
func FuzzParseSignatureAuthData(f *testing.F) {
	for _, alg := range []SignatureAlgorithm{SigEd25519, SigECDSAWithSHA256, SigECDSAWithSHA512, SigMLDSA44, SigMLDSA65, SigMLDSA87} {
		d, _ := AppendSignatureAuthData(nil, alg, []byte("signature"))
		f.Add(d)
	}
	f.Add([]byte{0xff})
	keys := map[KeyType]*PublicKey{}
	for _, k := range KeyTypes {
		keys[k] = mustKey(f, k, 9).Public()
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		alg, sig, err := ParseSignatureAuthData(data)
		if err != nil {
			return
		}
		again, err := AppendSignatureAuthData(nil, alg, sig)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encoding %x gives %x (%v)", data, again, err)
		}
		// Verification of arbitrary input must fail without panicking.
		for _, k := range KeyTypes {
			if alg.KeyTypeOK(k) {
				if keys[k].VerifyMessage(alg, []byte("octets"), sig) == nil {
					t.Fatalf("random signature verified")
				}
			}
		}
	})
}
