package ike_test

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/auth"
	"github.com/pqlab/pqlab/ike/auth/authtest"
	"github.com/pqlab/pqlab/ike/harness"
	"github.com/pqlab/pqlab/ike/wire"
)

type certSet struct {
	ca       *authtest.CA
	ini, res *authtest.Entity
}

func newCertSet(t testing.TB, kt auth.KeyType) *certSet {
	t.Helper()
	ca, err := authtest.NewCA([]byte("pqlab ike tests"), kt)
	if err != nil {
		t.Fatal(err)
	}
	i, err := ca.Issue("branch", authtest.Options{DNSNames: []string{"branch.pqlab.test"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ca.Issue("hub", authtest.Options{DNSNames: []string{"hub.pqlab.test"}})
	if err != nil {
		t.Fatal(err)
	}
	return &certSet{ca: ca, ini: i, res: r}
}

func toID(a auth.Identity) ike.Identity { return ike.Identity{Type: a.Type, Data: a.Data} }

// withCerts switches both connections to certificate authentication.
func (cs *certSet) apply(ini, resp *ike.PeerConfig) {
	ini.LocalID, ini.RemoteID = toID(cs.ini.ID), toID(cs.res.ID)
	resp.LocalID, resp.RemoteID = toID(cs.res.ID), toID(cs.ini.ID)
	cas := []*auth.Certificate{cs.ca.Cert}
	ini.Auth = ike.AuthConfig{Signer: cs.ini.Signer(), Trust: cs.ca.Pool(), CertReqCAs: cas}
	resp.Auth = ike.AuthConfig{Signer: cs.res.Signer(), Trust: cs.ca.Pool(), CertReqCAs: cas}
}

var signatureKeys = []auth.KeyType{auth.KeyEd25519, auth.KeyECDSAP256, auth.KeyMLDSA65}

// TestMatrixSignatures runs every key exchange pairing with each signature
// algorithm and X.509 certificates in CERT payloads.
func TestMatrixSignatures(t *testing.T) {
	for _, kt := range signatureKeys {
		cs := newCertSet(t, kt)
		for _, ke := range classicalKEs {
			for _, add := range addKEs {
				t.Run(fmt.Sprintf("%v/%s+%s", kt, ke, add), func(t *testing.T) {
					ini, resp := peerConfigs(proposalFor(ke, add), "aes256gcm16")
					cs.apply(&ini, &resp)
					a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 11, link: harness.Link{Latency: time.Millisecond}})
					checkEstablished(t, a, b)
					if kt == auth.KeyMLDSA65 {
						// The IKE_AUTH request carries a 3309-octet signature and
						// a certificate with a 1952-octet key: fragmented.
						if m, _ := a.e.Metrics(a.events[0].SA); m.FragmentsSent < 3 {
							t.Fatalf("%d fragments", m.FragmentsSent)
						}
					}
				})
			}
		}
	}
}

// TestSignatureWrongTrust: a responder that does not trust the initiator's
// CA answers AUTHENTICATION_FAILED.
func TestSignatureWrongTrust(t *testing.T) {
	cs := newCertSet(t, auth.KeyEd25519)
	other := newCertSet(t, auth.KeyECDSAP256)
	ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
	cs.apply(&ini, &resp)
	resp.Auth.Trust = other.ca.Pool()
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 12})
	p.Run(p.Now.Add(time.Minute), func() bool { return len(a.find(ike.EventFailed)) > 0 })
	fa, fb := a.find(ike.EventFailed), b.find(ike.EventFailed)
	if len(fa) != 1 || fa[0].Reason.Notify != wire.NotifyAuthenticationFailed || len(fb) != 1 || fb[0].Reason.Cause != ike.CauseAuthFailed {
		t.Fatalf("events %v / %v", a.events, b.events)
	}
}

// TestOtherSignatureKeys covers the remaining key types once each.
func TestOtherSignatureKeys(t *testing.T) {
	for _, kt := range []auth.KeyType{auth.KeyECDSAP384, auth.KeyMLDSA44, auth.KeyMLDSA87} {
		t.Run(kt.String(), func(t *testing.T) {
			cs := newCertSet(t, kt)
			ini, resp := peerConfigs(proposalFor("x25519", "mlkem768"), "aes256gcm16")
			cs.apply(&ini, &resp)
			a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 13})
			checkEstablished(t, a, b)
		})
	}
}

// TestIdentityTypes authenticates with each identity type (PSK).
func TestIdentityTypes(t *testing.T) {
	for _, ids := range [][2]string{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8::1", "ipv6:2001:db8::2"},
		{"@branch.example", "fqdn:hub.example"},
		{"branch@example", "hub@example"},
		{"@#0102030405", "keyid:a0a1a2"},
	} {
		t.Run(ids[0], func(t *testing.T) {
			ini, resp := peerConfigs(proposalFor("x25519", ""), "aes256gcm16")
			ini.LocalID, ini.RemoteID = mustID(ids[0]), mustID(ids[1])
			resp.LocalID, resp.RemoteID = mustID(ids[1]), mustID(ids[0])
			a, b, _, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 14})
			checkEstablished(t, a, b)
		})
	}
}

// TestCertReq: the responder's IKE_SA_INIT response names the CA.
func TestCertReq(t *testing.T) {
	cs := newCertSet(t, auth.KeyEd25519)
	ini, resp := peerConfigs(proposalFor("x25519", ""), "aes256gcm16")
	cs.apply(&ini, &resp)
	a, b, p, _ := runPair(t, pairSetup{ini: ini, resp: resp, seed: 15})
	checkEstablished(t, a, b)
	m, err := wire.ParseMessage(p.Trace[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	want := sha1.Sum(cs.ca.Cert.PublicKey.MarshalPKIX())
	if cr := wire.First[*wire.CertReq](m.Payloads); cr == nil || !bytes.Equal(cr.Data, want[:]) || cr.Encoding != wire.CertX509Signature {
		t.Fatalf("CERTREQ %v", cr)
	}
}
