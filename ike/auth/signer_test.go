package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

func hmacPRF(h func() hash.Hash) PRF {
	return func(key, data []byte) []byte {
		m := hmac.New(h, key)
		m.Write(data)
		return m.Sum(nil)
	}
}

// TestPSKStrongSwan recomputes the AUTH values of real strongSwan 6.0.6
// handshakes (shared key, PRF_HMAC_SHA2_256 and _384) from their signed
// octets, and checks the ID payload bodies of the same records.
func TestPSKStrongSwan(t *testing.T) {
	var doc struct {
		IDs map[string]struct {
			Type     int    `json:"type"`
			Ascii    string `json:"ascii"`
			IDxPrime string `json:"IDx_prime"`
		} `json:"ids"`
		Tests []struct {
			File, Side, PRF, PSK string
			IDxPrime             string `json:"IDx_prime"`
			Octets               string `json:"octets"`
			KeyPad               string `json:"prf_psk_keypad"`
			AUTH                 string `json:"AUTH"`
		} `json:"tests"`
	}
	readJSON(t, "testdata/strongswan_psk.json", &doc)
	if len(doc.Tests) != 6 {
		t.Fatalf("%d vectors", len(doc.Tests))
	}
	for _, v := range doc.Tests {
		prf := hmacPRF(sha256.New)
		if v.PRF == "HMAC-SHA2-384" {
			prf = hmacPRF(sha512.New384)
		}
		psk := &PSK{Secret: unhex(t, v.PSK), PRF: prf}
		if got := prf(psk.Secret, []byte(keyPad)); !bytes.Equal(got, unhex(t, v.KeyPad)) {
			t.Errorf("%s %s: prf(PSK, key pad) = %x", v.File, v.Side, got)
		}
		octets := unhex(t, v.Octets)
		method, data, err := psk.Sign(nil, octets, nil)
		if err != nil || method != wire.AuthSharedKey || !bytes.Equal(data, unhex(t, v.AUTH)) {
			t.Errorf("%s %s: AUTH = %d %x %v, want %s", v.File, v.Side, method, data, err, v.AUTH)
		}
		if err := psk.Verify(wire.AuthSharedKey, unhex(t, v.AUTH), octets); err != nil {
			t.Errorf("%s %s: Verify: %v", v.File, v.Side, err)
		}
		octets[len(octets)-1] ^= 1
		if err := psk.Verify(wire.AuthSharedKey, unhex(t, v.AUTH), octets); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s %s: tampered octets: %v", v.File, v.Side, err)
		}
	}
	for name, id := range doc.IDs {
		got := RFC822Identity(id.Ascii).Body()
		if !bytes.Equal(got, unhex(t, id.IDxPrime)) {
			t.Errorf("%s: IDx' = %x, strongSwan %s", name, got, id.IDxPrime)
		}
		parsed, err := ParseIdentityBody(unhex(t, id.IDxPrime))
		if err != nil || int(parsed.Type) != id.Type || string(parsed.Data) != id.Ascii {
			t.Errorf("%s: parsed %v, %v", name, parsed, err)
		}
	}
}

func TestPSKErrors(t *testing.T) {
	psk := &PSK{Secret: []byte("secret"), PRF: hmacPRF(sha256.New)}
	_, data, _ := psk.Sign(nil, []byte("octets"), nil)
	if err := psk.Verify(wire.AuthDigitalSignature, data, []byte("octets")); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("wrong method: %v", err)
	}
	if err := (&PSK{Secret: []byte("other"), PRF: psk.PRF}).Verify(wire.AuthSharedKey, data, []byte("octets")); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	if err := psk.Verify(wire.AuthSharedKey, data[:31], []byte("octets")); !errors.Is(err, ErrBadSignature) {
		t.Errorf("truncated: %v", err)
	}
	if _, _, err := (&PSK{PRF: psk.PRF}).Sign(nil, nil, nil); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("empty secret: %v", err)
	}
	if psk.Certificates() != nil {
		t.Error("PSK has certificates")
	}
}

// octets stands in for the signed octets of RFC 7296 Section 2.15 (an
// IKE_SA_INIT message, a nonce, a MACed ID, IntAuth).
var testOctets = bytes.Repeat([]byte("IKE_SA_INIT|Nr|prf(SK_pi,IDi')|"), 40)

// TestCertSignerRoundTrip signs with every key type towards a peer that
// announced all our hashes, and verifies; then checks the rejections.
func TestCertSignerRoundTrip(t *testing.T) {
	for _, k := range KeyTypes {
		t.Run(k.String(), func(t *testing.T) {
			key := mustKey(t, k, 1)
			s := &CertSigner{Key: key}
			method, data, err := s.Sign(nil, testOctets, SupportedHashes())
			if err != nil || method != wire.AuthDigitalSignature {
				t.Fatalf("Sign: %v %v", method, err)
			}
			alg, _, err := ParseSignatureAuthData(data)
			if err != nil || alg != k.SignatureAlgorithms()[0] {
				t.Fatalf("auth data carries %v (%v)", alg, err)
			}
			v := &SignatureVerifier{Key: key.Public()}
			if err := v.Verify(method, data, testOctets); err != nil {
				t.Fatalf("Verify: %v", err)
			}

			tampered := bytes.Clone(testOctets)
			tampered[100] ^= 0x40
			if err := v.Verify(method, data, tampered); !errors.Is(err, ErrBadSignature) {
				t.Errorf("tampered octets: %v", err)
			}
			badSig := bytes.Clone(data)
			badSig[len(badSig)-5] ^= 1
			if err := v.Verify(method, badSig, testOctets); !errors.Is(err, ErrBadSignature) {
				t.Errorf("tampered signature: %v", err)
			}
			wrongKey := &SignatureVerifier{Key: mustKey(t, k, 2).Public()}
			if err := wrongKey.Verify(method, data, testOctets); !errors.Is(err, ErrBadSignature) {
				t.Errorf("wrong key: %v", err)
			}
			for n := 0; n < len(data); n += 1 + n/8 {
				if err := v.Verify(method, data[:n], testOctets); err == nil {
					t.Fatalf("auth data truncated to %d octets verified", n)
				}
			}
			// Another algorithm's identifier in front of the same signature.
			other := SigMLDSA65
			if k == KeyMLDSA65 {
				other = SigMLDSA44
			}
			_, sig, _ := ParseSignatureAuthData(data)
			swapped, _ := AppendSignatureAuthData(nil, other, sig)
			if err := v.Verify(method, swapped, testOctets); !errors.Is(err, ErrKeyMismatch) {
				t.Errorf("wrong OID %v: %v", other, err)
			}
			// A hash we did not announce.
			strict := &SignatureVerifier{Key: key.Public(), Hashes: []wire.HashAlgorithm{wire.HashSHA1}}
			if err := strict.Verify(method, data, testOctets); !errors.Is(err, ErrHashNotAllowed) {
				t.Errorf("unannounced hash: %v", err)
			}
			if err := v.Verify(wire.AuthSharedKey, data, testOctets); !errors.Is(err, ErrKeyMismatch) {
				t.Errorf("shared-key method: %v", err)
			}
			if err := v.Verify(wire.AuthRSASig, data, testOctets); !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Errorf("RSA method: %v", err)
			}
		})
	}
}

// TestCertSignerNegotiation covers the peer's SIGNATURE_HASH_ALGORITHMS:
// ECDSA picks a hash the peer listed, and falls back to RFC 4754 when the
// peer listed nothing usable; Ed25519 and ML-DSA refuse.
func TestCertSignerNegotiation(t *testing.T) {
	sha := []wire.HashAlgorithm{wire.HashSHA2512}
	p256 := &CertSigner{Key: mustKey(t, KeyECDSAP256, 1)}
	_, data, err := p256.Sign(nil, testOctets, sha)
	if alg, _, _ := ParseSignatureAuthData(data); err != nil || alg != SigECDSAWithSHA512 {
		t.Errorf("P-256 towards SHA-512-only peer: %v %v", alg, err)
	}
	if err := (&SignatureVerifier{Key: p256.Key.Public()}).Verify(wire.AuthDigitalSignature, data, testOctets); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		k      KeyType
		method wire.AuthMethod
		size   int
	}{{KeyECDSAP256, wire.AuthECDSA256, P256RawSignatureSize}, {KeyECDSAP384, wire.AuthECDSA384, P384RawSignatureSize}} {
		s := &CertSigner{Key: mustKey(t, tc.k, 1)}
		method, sig, err := s.Sign(nil, testOctets, nil)
		if err != nil || method != tc.method || len(sig) != tc.size {
			t.Errorf("%v legacy: method %v, %d octets, %v", tc.k, method, len(sig), err)
		}
		v := &SignatureVerifier{Key: s.Key.Public()}
		if err := v.Verify(method, sig, testOctets); err != nil {
			t.Errorf("%v legacy verify: %v", tc.k, err)
		}
		if err := v.Verify(method, sig, testOctets[1:]); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%v legacy tampered: %v", tc.k, err)
		}
		if err := v.Verify(method, sig[:tc.size-1], testOctets); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v legacy truncated: %v", tc.k, err)
		}
		wrongMethod := wire.AuthECDSA384 + wire.AuthECDSA256 - tc.method
		if err := v.Verify(wrongMethod, sig, testOctets); !errors.Is(err, ErrKeyMismatch) {
			t.Errorf("%v legacy with method %d: %v", tc.k, wrongMethod, err)
		}
		if err := (&SignatureVerifier{Key: s.Key.Public(), NoLegacy: true}).Verify(method, sig, testOctets); !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("%v legacy refused: %v", tc.k, err)
		}
		s.NoLegacy = true
		if _, _, err := s.Sign(nil, testOctets, nil); !errors.Is(err, ErrHashNotAllowed) {
			t.Errorf("%v NoLegacy signer: %v", tc.k, err)
		}
	}
	for _, k := range []KeyType{KeyEd25519, KeyMLDSA44, KeyMLDSA65, KeyMLDSA87} {
		s := &CertSigner{Key: mustKey(t, k, 1)}
		for _, peer := range [][]wire.HashAlgorithm{nil, {wire.HashSHA2256, wire.HashSHA2384, wire.HashSHA2512}} {
			if _, _, err := s.Sign(nil, testOctets, peer); !errors.Is(err, ErrHashNotAllowed) {
				t.Errorf("%v towards %v: %v", k, peer, err)
			}
		}
	}
}

func TestNewCertSigner(t *testing.T) {
	key := mustKey(t, KeyEd25519, 1)
	if _, err := NewCertSigner(nil); !errors.Is(err, ErrKeyMismatch) {
		t.Error(err)
	}
	if _, err := NewCertSigner(key, []byte{0x30, 0}); !errors.Is(err, ErrMalformed) {
		t.Error(err)
	}
	if s, err := NewCertSigner(key); err != nil || s.Certificates() != nil {
		t.Error(err)
	}
}
