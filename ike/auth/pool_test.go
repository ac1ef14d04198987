package auth_test

import (
	"bytes"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/netip"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/auth/authtest"
)

var signedOctets = bytes.Repeat([]byte("RealMessage1|NonceRData|prf(SK_pi,IDi')|"), 32)

// TestVerifyAuthAllTypes runs the whole certificate authentication for
// every key type: the initiator signs, the responder validates the chain at
// a given time against the CA, matches each of the initiator's identities,
// and verifies the AUTH payload.
func TestVerifyAuthAllTypes(t *testing.T) {
	for _, k := range auth.KeyTypes {
		t.Run(k.String(), func(t *testing.T) {
			f := fixture(t, k)
			method, data, err := f.Initiator.Signer().Sign(nil, signedOctets, auth.SupportedHashes())
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []auth.Identity{f.Initiator.ID, auth.IPIdentity(authtest.InitiatorIPv4),
				auth.IPIdentity(authtest.InitiatorIPv6), auth.DNIdentity(f.Initiator.Cert.RawSubject)} {
				leaf, err := f.CA.Pool().VerifyAuth(method, data, signedOctets, f.Initiator.Signer().Certificates(),
					auth.VerifyOptions{Time: authtest.ValidTime, Identity: &id})
				if err != nil || leaf.SubjectCommonName != "initiator.pqlab.test" {
					t.Errorf("%v: %v", id, err)
				}
			}
			// The responder's AUTH does not verify as the initiator's.
			_, rdata, _ := f.Responder.Signer().Sign(nil, signedOctets, auth.SupportedHashes())
			if _, err := f.CA.Pool().VerifyAuth(method, rdata, signedOctets, f.Initiator.Chain,
				auth.VerifyOptions{Time: authtest.ValidTime}); !errors.Is(err, auth.ErrBadSignature) {
				t.Errorf("responder's signature with initiator's certificate: %v", err)
			}
		})
	}
}

func TestVerifyChainFailures(t *testing.T) {
	for _, k := range []auth.KeyType{auth.KeyEd25519, auth.KeyECDSAP256, auth.KeyMLDSA65} {
		t.Run(k.String(), func(t *testing.T) {
			f := fixture(t, k)
			at := auth.VerifyOptions{Time: authtest.ValidTime}
			ok := func(opts auth.VerifyOptions, chain [][]byte, pool *auth.Pool) error {
				_, err := pool.Verify(chain, opts)
				return err
			}
			if err := ok(at, f.Initiator.Chain, f.CA.Pool()); err != nil {
				t.Fatal(err)
			}

			// Wrong CA: same name and type, another seed (other key).
			other, err := authtest.NewCA([]byte("another seed"), k)
			if err != nil {
				t.Fatal(err)
			}
			if err := ok(at, f.Initiator.Chain, other.Pool()); !errors.Is(err, auth.ErrBadSignature) {
				t.Errorf("same-named CA with another key: %v", err)
			}
			// Wrong CA: another name.
			foreign, _ := authtest.NewCA(fixtureSeed, auth.KeyECDSAP384)
			if k == auth.KeyECDSAP384 {
				foreign, _ = authtest.NewCA(fixtureSeed, auth.KeyEd25519)
			}
			if err := ok(at, f.Initiator.Chain, foreign.Pool()); !errors.Is(err, auth.ErrUnknownIssuer) {
				t.Errorf("unrelated CA: %v", err)
			}
			if err := ok(at, f.Initiator.Chain, auth.NewPool()); !errors.Is(err, auth.ErrUnknownIssuer) {
				t.Errorf("empty pool: %v", err)
			}

			// Validity, at the time given by the caller.
			for _, tm := range []time.Time{authtest.NotBefore.Add(-time.Second), authtest.NotAfter.Add(time.Second)} {
				if err := ok(auth.VerifyOptions{Time: tm}, f.Initiator.Chain, f.CA.Pool()); !errors.Is(err, auth.ErrValidity) {
					t.Errorf("at %v: %v", tm, err)
				}
			}
			expired, err := f.CA.Issue("expired.pqlab.test", authtest.Options{DNSNames: []string{"expired.pqlab.test"},
				NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatal(err)
			}
			if err := ok(at, expired.Chain, f.CA.Pool()); !errors.Is(err, auth.ErrValidity) {
				t.Errorf("expired end entity: %v", err)
			}
			if err := ok(auth.VerifyOptions{Time: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}, expired.Chain, f.CA.Pool()); err != nil {
				t.Errorf("same certificate while valid: %v", err)
			}
			if err := ok(auth.VerifyOptions{}, f.Initiator.Chain, f.CA.Pool()); !errors.Is(err, auth.ErrValidity) {
				t.Errorf("zero time: %v", err)
			}

			// Identity mismatches.
			for _, id := range []auth.Identity{
				auth.FQDNIdentity("responder.pqlab.test"),
				auth.IPIdentity(authtest.ResponderIPv4),
				auth.IPIdentity(netip.MustParseAddr("2001:db8::99")),
				auth.RFC822Identity("initiator@pqlab.test"),
				auth.DNIdentity(f.Responder.Cert.RawSubject),
				auth.KeyIDIdentity([]byte("initiator")),
			} {
				opts := at
				opts.Identity = &id
				if err := ok(opts, f.Initiator.Chain, f.CA.Pool()); !errors.Is(err, auth.ErrIdentityMismatch) {
					t.Errorf("identity %v: %v", id, err)
				}
			}

			// A certificate whose signature was altered.
			bad := bytes.Clone(f.Initiator.DER)
			bad[len(bad)-3] ^= 0x10
			if err := ok(at, [][]byte{bad}, f.CA.Pool()); !errors.Is(err, auth.ErrBadSignature) {
				t.Errorf("altered certificate signature: %v", err)
			}
			// A changed subjectAltName (inside the signed part).
			i := bytes.Index(bad, []byte("initiator.pqlab.test"))
			bad = bytes.Clone(f.Initiator.DER)
			bad[i] = 'I'
			if err := ok(at, [][]byte{bad}, f.CA.Pool()); !errors.Is(err, auth.ErrBadSignature) {
				t.Errorf("altered tbsCertificate: %v", err)
			}

			// Bounds.
			if err := ok(at, nil, f.CA.Pool()); !errors.Is(err, auth.ErrUnknownIssuer) {
				t.Errorf("no certificate: %v", err)
			}
			many := make([][]byte, auth.MaxChainCertificates+1)
			for i := range many {
				many[i] = f.Initiator.DER
			}
			if err := ok(at, many, f.CA.Pool()); !errors.Is(err, auth.ErrMalformed) {
				t.Errorf("too many certificates: %v", err)
			}
			if err := ok(at, [][]byte{f.Initiator.DER, {0x30}}, f.CA.Pool()); !errors.Is(err, auth.ErrMalformed) {
				t.Errorf("broken intermediate: %v", err)
			}
		})
	}
}

// TestVerifyIntermediates: root -> intermediate (pathLen 0) -> end entity.
func TestVerifyIntermediates(t *testing.T) {
	for _, k := range []auth.KeyType{auth.KeyECDSAP384, auth.KeyMLDSA44} {
		t.Run(k.String(), func(t *testing.T) {
			root, _ := authtest.NewCA(fixtureSeed, k)
			sub, err := root.NewIntermediate("pqlab issuing CA")
			if err != nil {
				t.Fatal(err)
			}
			ee, err := sub.Issue("gw.pqlab.test", authtest.Options{DNSNames: []string{"gw.pqlab.test"}})
			if err != nil {
				t.Fatal(err)
			}
			at := auth.VerifyOptions{Time: authtest.ValidTime, Identity: &ee.ID}
			if len(ee.Chain) != 2 {
				t.Fatalf("chain of %d", len(ee.Chain))
			}
			if _, err := root.Pool().Verify(ee.Chain, at); err != nil {
				t.Errorf("full chain: %v", err)
			}
			if _, err := root.Pool().Verify(ee.Chain[:1], at); !errors.Is(err, auth.ErrUnknownIssuer) {
				t.Errorf("intermediate missing: %v", err)
			}
			if _, err := sub.Pool().Verify(ee.Chain[:1], at); err != nil {
				t.Errorf("intermediate as anchor: %v", err)
			}
			// pathLen 0 forbids a further CA under the intermediate.
			sub2, err := sub.NewIntermediate("pqlab second-level CA")
			if err != nil {
				t.Fatal(err)
			}
			ee2, _ := sub2.Issue("deep.pqlab.test", authtest.Options{DNSNames: []string{"deep.pqlab.test"}})
			if _, err := root.Pool().Verify(ee2.Chain, auth.VerifyOptions{Time: authtest.ValidTime}); !errors.Is(err, auth.ErrNotAuthorized) {
				t.Errorf("path length exceeded: %v", err)
			}
			// An end entity cannot issue.
			tmpl := &auth.CertTemplate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "victim"},
				NotBefore: authtest.NotBefore, NotAfter: authtest.NotAfter, MaxPathLen: -1, DNSNames: []string{"victim"}}
			victim, _ := auth.NewPrivateKeyFromSeed(k, authtest.Derive(fixtureSeed, "victim"))
			der, err := auth.CreateCertificate(tmpl, victim.Public(), ee.Cert, ee.Key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := root.Pool().Verify([][]byte{der, ee.DER, sub.DER}, auth.VerifyOptions{Time: authtest.ValidTime}); !errors.Is(err, auth.ErrNotAuthorized) {
				t.Errorf("end entity as issuer: %v", err)
			}
		})
	}
}

func TestCreateCertificateErrors(t *testing.T) {
	f := fixture(t, auth.KeyEd25519)
	good := auth.CertTemplate{SerialNumber: big.NewInt(1), NotBefore: authtest.NotBefore, NotAfter: authtest.NotAfter}
	k := f.Initiator.Key
	cases := map[string]func() error{
		"nil template": func() error { _, err := auth.CreateCertificate(nil, k.Public(), nil, k); return err },
		"zero serial": func() error {
			tm := good
			tm.SerialNumber = big.NewInt(0)
			_, err := auth.CreateCertificate(&tm, k.Public(), nil, k)
			return err
		},
		"inverted validity": func() error {
			tm := good
			tm.NotAfter = tm.NotBefore
			_, err := auth.CreateCertificate(&tm, k.Public(), nil, k)
			return err
		},
		"self-signed with a foreign key": func() error {
			_, err := auth.CreateCertificate(&good, k.Public(), nil, f.Responder.Key)
			return err
		},
		"issuer key not the issuer's": func() error {
			_, err := auth.CreateCertificate(&good, k.Public(), f.CA.Cert, f.Responder.Key)
			return err
		},
	}
	for name, fn := range cases {
		if err := fn(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// A signer whose chain does not hold its key is refused.
	if _, err := auth.NewCertSigner(f.Initiator.Key, f.Responder.DER); !errors.Is(err, auth.ErrKeyMismatch) {
		t.Errorf("NewCertSigner with the wrong certificate: %v", err)
	}
	if s, err := auth.NewCertSigner(f.Initiator.Key, f.Initiator.Chain...); err != nil || len(s.Certificates()) != 1 {
		t.Errorf("NewCertSigner: %v", err)
	}
}
