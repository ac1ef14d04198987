package auth

import (
	"bytes"
	"crypto/x509/pkix"
	encasn1 "encoding/asn1"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAlgorithmIdentifiersPublished compares our DER AlgorithmIdentifiers to
// the hex the documents print: RFC 7427 Appendix A.3 (ECDSA), RFC 8420
// Appendix A (Ed25519), draft-ietf-ipsecme-ikev2-pqc-auth Appendix B
// (ML-DSA), and to an independent encoding by encoding/asn1.
func TestAlgorithmIdentifiersPublished(t *testing.T) {
	tests := []struct {
		alg       SignatureAlgorithm
		published string
		oid       encasn1.ObjectIdentifier
		hash      wire.HashAlgorithm
	}{
		{SigEd25519, "3005 0603 2b65 70", encasn1.ObjectIdentifier{1, 3, 101, 112}, wire.HashIdentity},
		{SigECDSAWithSHA256, "300a 0608 2a86 48ce 3d04 0302", encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, wire.HashSHA2256},
		{SigECDSAWithSHA384, "300a 0608 2a86 48ce 3d04 0303", encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, wire.HashSHA2384},
		{SigECDSAWithSHA512, "300a 0608 2a86 48ce 3d04 0304", encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, wire.HashSHA2512},
		{SigMLDSA44, "300b 0609 6086 4801 6503 0403 11", encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 17}, wire.HashIdentity},
		{SigMLDSA65, "300b 0609 6086 4801 6503 0403 12", encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}, wire.HashIdentity},
		{SigMLDSA87, "300b 0609 6086 4801 6503 0403 13", encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 19}, wire.HashIdentity},
	}
	for _, tc := range tests {
		t.Run(tc.alg.String(), func(t *testing.T) {
			want := unhex(t, tc.published)
			if got := tc.alg.AlgorithmIdentifier(); !bytes.Equal(got, want) {
				t.Errorf("AlgorithmIdentifier = %x, published %x", got, want)
			}
			indep, err := encasn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: tc.oid})
			if err != nil || !bytes.Equal(indep, want) {
				t.Errorf("encoding/asn1 gives %x (%v), published %x", indep, err, want)
			}
			got, err := ParseAlgorithmIdentifier(want)
			if err != nil || got != tc.alg {
				t.Errorf("ParseAlgorithmIdentifier = %v, %v", got, err)
			}
			if tc.alg.Hash() != tc.hash {
				t.Errorf("Hash = %v, want %v", tc.alg.Hash(), tc.hash)
			}
		})
	}
}

// TestSPKIAlgorithmIdentifiers checks the SubjectPublicKeyInfo algorithm
// identifiers against encoding/asn1 (RFC 8410, RFC 5480, RFC 9881).
func TestSPKIAlgorithmIdentifiers(t *testing.T) {
	ecPub := encasn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	curve := func(oid encasn1.ObjectIdentifier) encasn1.RawValue {
		b, _ := encasn1.Marshal(oid)
		return encasn1.RawValue{FullBytes: b}
	}
	tests := map[KeyType]pkix.AlgorithmIdentifier{
		KeyEd25519:   {Algorithm: encasn1.ObjectIdentifier{1, 3, 101, 112}},
		KeyECDSAP256: {Algorithm: ecPub, Parameters: curve(encasn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})},
		KeyECDSAP384: {Algorithm: ecPub, Parameters: curve(encasn1.ObjectIdentifier{1, 3, 132, 0, 34})},
		KeyMLDSA44:   {Algorithm: encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 17}},
		KeyMLDSA65:   {Algorithm: encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}},
		KeyMLDSA87:   {Algorithm: encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 19}},
	}
	for k, ai := range tests {
		want, err := encasn1.Marshal(ai)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(spkiAlgIDs[k], want) {
			t.Errorf("%v: SPKI AlgorithmIdentifier %x, encoding/asn1 %x", k, spkiAlgIDs[k], want)
		}
	}
}

func TestParseAlgorithmIdentifierRejects(t *testing.T) {
	tests := []struct {
		name string
		der  string
		err  error
		msg  string
	}{
		{"sha256WithRSAEncryption", "300d 0609 2a86 4886 f70d 0101 0b05 00", ErrUnsupportedAlgorithm, "1.2.840.113549.1.1.11"},
		{"ML-DSA-65 with NULL parameters", "300d 0609 6086 4801 6503 0403 1205 00", ErrUnsupportedAlgorithm, "with parameters"},
		{"SLH-DSA-SHA2-128s", "300b 0609 6086 4801 6503 0403 14", ErrUnsupportedAlgorithm, "2.16.840.1.101.3.4.3.20"},
		{"truncated", "300b 0609 6086 4801 6503 0403", ErrUnsupportedAlgorithm, "300b"},
		{"empty", "", ErrUnsupportedAlgorithm, "signature algorithm"},
	}
	for _, tc := range tests {
		_, err := ParseAlgorithmIdentifier(unhex(t, tc.der))
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "auth: ") {
			t.Errorf("%s: err = %v, want %v mentioning %q", tc.name, err, tc.err, tc.msg)
		}
	}
}

func TestChooseSignatureAlgorithm(t *testing.T) {
	all := SupportedHashes()
	sha := []wire.HashAlgorithm{wire.HashSHA2256, wire.HashSHA2384, wire.HashSHA2512}
	tests := []struct {
		key  KeyType
		peer []wire.HashAlgorithm
		want SignatureAlgorithm // 0: none
	}{
		{KeyEd25519, all, SigEd25519},
		{KeyEd25519, sha, 0},
		{KeyEd25519, nil, 0},
		{KeyECDSAP256, all, SigECDSAWithSHA256},
		{KeyECDSAP256, []wire.HashAlgorithm{wire.HashSHA2512, wire.HashSHA2384}, SigECDSAWithSHA384},
		{KeyECDSAP256, []wire.HashAlgorithm{wire.HashSHA1, wire.HashIdentity}, 0},
		{KeyECDSAP384, all, SigECDSAWithSHA384},
		{KeyECDSAP384, []wire.HashAlgorithm{wire.HashSHA2256}, SigECDSAWithSHA256},
		{KeyMLDSA44, all, SigMLDSA44},
		{KeyMLDSA65, []wire.HashAlgorithm{wire.HashIdentity}, SigMLDSA65},
		{KeyMLDSA87, []wire.HashAlgorithm{99, wire.HashIdentity}, SigMLDSA87},
		{KeyMLDSA65, sha, 0},
		{KeyMLDSA65, nil, 0},
	}
	for _, tc := range tests {
		got, ok := ChooseSignatureAlgorithm(tc.key, tc.peer)
		if got != tc.want || ok != (tc.want != 0) {
			t.Errorf("ChooseSignatureAlgorithm(%v, %v) = %v, %v; want %v", tc.key, tc.peer, got, ok, tc.want)
		}
		if ok && !got.KeyTypeOK(tc.key) {
			t.Errorf("%v chosen for a %v key", got, tc.key)
		}
	}
}

func TestHashAlgorithmsNotifyData(t *testing.T) {
	data := AppendHashAlgorithms(nil, SupportedHashes())
	if want := unhex(t, "0002 0003 0004 0005"); !bytes.Equal(data, want) {
		t.Fatalf("notify data %x, want %x", data, want)
	}
	got, err := ParseHashAlgorithms(append(data, 0x12, 0x34))
	if err != nil || !slices.Equal(got, append(SupportedHashes(), 0x1234)) {
		t.Fatalf("ParseHashAlgorithms = %v, %v", got, err)
	}
	if _, err := ParseHashAlgorithms(data[:3]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("odd length: err = %v", err)
	}
	if got, err := ParseHashAlgorithms(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v, %v", got, err)
	}
}

func TestKeyTypeTables(t *testing.T) {
	for _, k := range KeyTypes {
		if !k.Valid() || k.PublicKeySize() == 0 || strings.HasPrefix(k.String(), "KeyType(") {
			t.Errorf("%v incomplete", k)
		}
		for _, s := range k.SignatureAlgorithms() {
			if !s.KeyTypeOK(k) || s.Hash() == 0 || s.AlgorithmIdentifier() == nil {
				t.Errorf("%v/%v inconsistent", k, s)
			}
		}
	}
	if KeyType(0).Valid() || KeyType(7).Valid() || SignatureAlgorithm(8).Valid() {
		t.Error("out-of-range values reported valid")
	}
	if KeyType(9).String() != "KeyType(9)" || SignatureAlgorithm(0).AlgorithmIdentifier() != nil {
		t.Error("unknown values not rendered as such")
	}
}
