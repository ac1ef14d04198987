package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// seedFor returns a fixed test seed.
func seedFor(b byte) []byte { return bytes.Repeat([]byte{b}, SeedSize) }

func mustKey(t testing.TB, k KeyType, seed byte) *PrivateKey {
	t.Helper()
	key, err := NewPrivateKeyFromSeed(k, seedFor(seed))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestPublishedSizes pins the FIPS 204 / RFC 8032 / SEC 1 sizes.
func TestPublishedSizes(t *testing.T) {
	sizes := map[KeyType][2]int{ // public key, signature (method 14 value)
		KeyEd25519: {32, 64},
		KeyMLDSA44: {1312, 2420},
		KeyMLDSA65: {1952, 3309},
		KeyMLDSA87: {2592, 4627},
	}
	for k, want := range sizes {
		key := mustKey(t, k, 1)
		sig, err := key.SignMessage(k.SignatureAlgorithms()[0], []byte("size"))
		if err != nil {
			t.Fatal(err)
		}
		if len(key.Public().Bytes()) != want[0] || k.PublicKeySize() != want[0] || len(sig) != want[1] {
			t.Errorf("%v: pk %d sig %d, want %v", k, len(key.Public().Bytes()), len(sig), want)
		}
	}
	if P256PublicKeySize != 65 || P384PublicKeySize != 97 || MLDSA65SignatureSize != 3309 || MLDSA65PublicKeySize != 1952 {
		t.Error("size constants changed")
	}
}

// TestMLDSAKeyGenACVP derives ML-DSA keys from NIST ACVP keyGen seeds and
// compares the public key (length, SHA-256, prefix) with the expected result.
func TestMLDSAKeyGenACVP(t *testing.T) {
	var doc struct {
		Tests []struct {
			ParameterSet string `json:"parameterSet"`
			TcID         int    `json:"tcId"`
			Seed         string `json:"seed"`
			PkLen        int    `json:"pkLen"`
			PkSHA256     string `json:"pkSHA256"`
			PkPrefix     string `json:"pkPrefix"`
		} `json:"tests"`
	}
	readJSON(t, "testdata/acvp_mldsa_keygen.json", &doc)
	if len(doc.Tests) != 9 {
		t.Fatalf("%d vectors", len(doc.Tests))
	}
	types := map[string]KeyType{"ML-DSA-44": KeyMLDSA44, "ML-DSA-65": KeyMLDSA65, "ML-DSA-87": KeyMLDSA87}
	for _, v := range doc.Tests {
		key, err := NewPrivateKeyFromSeed(types[v.ParameterSet], unhex(t, v.Seed))
		if err != nil {
			t.Fatal(err)
		}
		pk := key.Public().Bytes()
		sum := sha256.Sum256(pk)
		if len(pk) != v.PkLen || hex.EncodeToString(sum[:]) != v.PkSHA256 || hex.EncodeToString(pk[:16]) != v.PkPrefix {
			t.Errorf("%s tc %d: pk %d octets sha256 %x, want %d %s", v.ParameterSet, v.TcID, len(pk), sum, v.PkLen, v.PkSHA256)
		}
	}
}

// TestOpenSSLVectors checks keys and signatures made by OpenSSL 4.0
// (testdata/opensslcheck.py gen): the same seed gives the same public key
// here, and OpenSSL's hedged ML-DSA and Ed25519 signatures verify with our
// verifier; a flipped bit does not.
func TestOpenSSLVectors(t *testing.T) {
	var doc struct {
		Tests []struct {
			KeyType, Seed, Pk, Message, Signature string
		} `json:"tests"`
	}
	readJSON(t, "testdata/openssl_vectors.json", &doc)
	types := map[string]KeyType{"Ed25519": KeyEd25519, "ML-DSA-44": KeyMLDSA44, "ML-DSA-65": KeyMLDSA65, "ML-DSA-87": KeyMLDSA87}
	for _, v := range doc.Tests {
		k := types[v.KeyType]
		key, err := NewPrivateKeyFromSeed(k, unhex(t, v.Seed))
		if err != nil {
			t.Fatal(err)
		}
		if got := key.Public().Bytes(); !bytes.Equal(got, unhex(t, v.Pk)) {
			t.Errorf("%v: public key from seed differs from OpenSSL's", k)
		}
		msg, sig := unhex(t, v.Message), unhex(t, v.Signature)
		alg := k.SignatureAlgorithms()[0]
		if err := key.Public().VerifyMessage(alg, msg, sig); err != nil {
			t.Errorf("%v: OpenSSL signature rejected: %v", k, err)
		}
		sig[len(sig)/2] ^= 1
		if err := key.Public().VerifyMessage(alg, msg, sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%v: corrupted OpenSSL signature: err = %v", k, err)
		}
	}
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func ecdsaKey(t testing.TB, curve elliptic.Curve, k KeyType, scalar string) *PrivateKey {
	t.Helper()
	priv, err := ecdsa.ParseRawPrivateKey(curve, unhex(t, scalar))
	if err != nil {
		t.Fatal(err)
	}
	key := &PrivateKey{typ: k, ec: priv}
	key.pub = key.derivePublic()
	return key
}

// TestECDSARFC6979 checks deterministic ECDSA against RFC 6979 Appendix
// A.2.5 (P-256) and A.2.6 (P-384), in both encodings: the DER
// Ecdsa-Sig-Value of RFC 7427 and the r|s of RFC 4754.
func TestECDSARFC6979(t *testing.T) {
	const (
		x256 = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"
		x384 = "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5"
	)
	tests := []struct {
		name  string
		key   *PrivateKey
		alg   SignatureAlgorithm
		msg   string
		r, s  string
		pubXY string
	}{
		{"P-256/SHA-256/sample", ecdsaKey(t, elliptic.P256(), KeyECDSAP256, x256), SigECDSAWithSHA256, "sample",
			"EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
			"F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
			"60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB67903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"},
		{"P-256/SHA-256/test", ecdsaKey(t, elliptic.P256(), KeyECDSAP256, x256), SigECDSAWithSHA256, "test",
			"F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
			"019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083", ""},
		{"P-384/SHA-256/sample", ecdsaKey(t, elliptic.P384(), KeyECDSAP384, x384), SigECDSAWithSHA256, "sample",
			"21B13D1E013C7FA1392D03C5F99AF8B30C570C6F98D4EA8E354B63A21D3DAA33BDE1E888E63355D92FA2B3C36D8FB2CD",
			"F3AA443FB107745BF4BD77CB3891674632068A10CA67E3D45DB2266FA7D1FEEBEFDC63ECCD1AC42EC0CB8668A4FA0AB0", ""},
		{"P-384/SHA-256/test", ecdsaKey(t, elliptic.P384(), KeyECDSAP384, x384), SigECDSAWithSHA256, "test",
			"6D6DEFAC9AB64DABAFE36C6BF510352A4CC27001263638E5B16D9BB51D451559F918EEDAF2293BE5B475CC8F0188636B",
			"2D46F3BECBCC523D5F1A1256BF0C9B024D879BA9E838144C8BA6BAEB4B53B47D51AB373F9845C0514EEFB14024787265", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.pubXY != "" && !bytes.Equal(tc.key.Public().Bytes(), append([]byte{4}, unhex(t, tc.pubXY)...)) {
				t.Errorf("public key %x", tc.key.Public().Bytes())
			}
			raw, err := tc.key.signRaw(tc.alg, []byte(tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.r+tc.s); !bytes.Equal(raw, want) {
				t.Errorf("r|s = %X\nwant  %X", raw, want)
			}
			der, err := tc.key.SignMessage(tc.alg, []byte(tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.key.Public().VerifyMessage(tc.alg, []byte(tc.msg), der); err != nil {
				t.Error(err)
			}
			if err := tc.key.Public().verifyRaw(tc.alg, []byte(tc.msg), raw); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestEd25519RFC8032 checks RFC 8032 Section 7.1 TEST 1.
func TestEd25519RFC8032(t *testing.T) {
	key, err := NewPrivateKeyFromSeed(KeyEd25519, unhex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"); !bytes.Equal(key.Public().Bytes(), want) {
		t.Errorf("public key %x", key.Public().Bytes())
	}
	sig, _ := key.SignMessage(SigEd25519, nil)
	if want := unhex(t, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"); !bytes.Equal(sig, want) {
		t.Errorf("signature %x", sig)
	}
}

func TestSignVerifyAllKeyTypes(t *testing.T) {
	msg := []byte("signed octets")
	for _, k := range KeyTypes {
		t.Run(k.String(), func(t *testing.T) {
			key, other := mustKey(t, k, 1), mustKey(t, k, 2)
			if key.Public().Equal(other.Public()) {
				t.Fatal("different seeds, same key")
			}
			again := mustKey(t, k, 1)
			for _, alg := range k.SignatureAlgorithms() {
				sig, err := key.SignMessage(alg, msg)
				if err != nil {
					t.Fatal(err)
				}
				sig2, _ := again.SignMessage(alg, msg)
				if !bytes.Equal(sig, sig2) {
					t.Errorf("%v: signing is not deterministic", alg)
				}
				if err := key.Public().VerifyMessage(alg, msg, sig); err != nil {
					t.Errorf("%v: %v", alg, err)
				}
				if err := other.Public().VerifyMessage(alg, msg, sig); !errors.Is(err, ErrBadSignature) {
					t.Errorf("%v: wrong key: err = %v", alg, err)
				}
				if err := key.Public().VerifyMessage(alg, append([]byte("x"), msg...), sig); !errors.Is(err, ErrBadSignature) {
					t.Errorf("%v: other message: err = %v", alg, err)
				}
				if err := key.Public().VerifyMessage(alg, msg, sig[:len(sig)-1]); !errors.Is(err, ErrBadSignature) {
					t.Errorf("%v: truncated: err = %v", alg, err)
				}
			}
			// Key/algorithm mismatch is caught before any arithmetic.
			wrong := SigMLDSA65
			if k == KeyMLDSA65 {
				wrong = SigEd25519
			}
			if _, err := key.SignMessage(wrong, msg); !errors.Is(err, ErrKeyMismatch) {
				t.Errorf("sign with %v: err = %v", wrong, err)
			}
			// SPKI round trip.
			p, err := ParsePKIXPublicKey(key.Public().MarshalPKIX())
			if err != nil || !p.Equal(key.Public()) || p.Type() != k {
				t.Errorf("SPKI round trip: %v", err)
			}
		})
	}
}

func TestHedgedMLDSA(t *testing.T) {
	key := mustKey(t, KeyMLDSA44, 3)
	key.Hedged = true
	a, _ := key.SignMessage(SigMLDSA44, []byte("m"))
	b, _ := key.SignMessage(SigMLDSA44, []byte("m"))
	if bytes.Equal(a, b) {
		t.Error("hedged signatures are equal")
	}
	for _, s := range [][]byte{a, b} {
		if err := key.Public().VerifyMessage(SigMLDSA44, []byte("m"), s); err != nil {
			t.Error(err)
		}
	}
}

func TestKeyInputErrors(t *testing.T) {
	if _, err := NewPrivateKeyFromSeed(KeyMLDSA65, make([]byte, 31)); !errors.Is(err, ErrMalformed) {
		t.Errorf("short seed: %v", err)
	}
	if _, err := NewPrivateKeyFromSeed(KeyType(0), make([]byte, 32)); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("bad type: %v", err)
	}
	if _, err := NewPublicKey(KeyMLDSA65, make([]byte, 1951)); !errors.Is(err, ErrMalformed) {
		t.Errorf("short ML-DSA key: %v", err)
	}
	off := make([]byte, 65)
	off[0], off[64] = 4, 1 // (0, 1) is not on P-256
	if _, err := NewPublicKey(KeyECDSAP256, off); !errors.Is(err, ErrMalformed) {
		t.Errorf("point off the curve: %v", err)
	}
	if _, err := ParsePKIXPublicKey(unhex(t, "3009300506032b6570030000")); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty Ed25519 key: %v", err)
	}
	if _, err := ParsePKIXPublicKey(unhex(t, "3010300b06092a864886f70d010101030100")); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("RSA key: %v", err)
	}
	if _, err := GeneratePrivateKey(KeyEd25519, bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("short random source accepted")
	}
	k, err := GeneratePrivateKey(KeyMLDSA44, bytes.NewReader(seedFor(7)))
	if err != nil || !k.Public().Equal(mustKey(t, KeyMLDSA44, 7).Public()) {
		t.Errorf("GeneratePrivateKey does not derive from the reader's bytes: %v", err)
	}
}
