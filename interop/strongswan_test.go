package interop

import (
	"context"
	"fmt"
	"testing"

	"github.com/pqlab/pqlab/ike/wire"
)

// TestStrongSwanToStrongSwan proves the fixture with two real charons: PSK, x25519 with
// AES-256-GCM, ESP in UDP through kernel-libipsec; ping and a byte-exact TCP transfer in both
// directions; CHILD_SA and IKE SA rekeying started by either side; delete; and a capture of it all
// that tshark dissects without a malformed frame or expert error.
func TestStrongSwanToStrongSwan(t *testing.T) {
	s := newStrongSwanPair(t, tunnelSpec{
		Proposals:    "aes256gcm16-prfsha256-x25519",
		ESPProposals: "aes256gcm16-x25519",
	})
	ctx := testContext(t)
	if v, err := s.CA.Version(ctx); err == nil {
		t.Logf("charon: %s", v)
	}

	if err := s.CA.Initiate(ctx, "", childName); err != nil {
		t.Fatal(err)
	}
	saA, saB := s.established(t, ctx)
	for _, sa := range []IKESA{saA, saB} {
		if sa.EncrAlg != "AES_GCM_16" || sa.EncrKeysize != 256 || sa.DHGroup != "CURVE_25519" || sa.PRFAlg != "PRF_HMAC_SHA2_256" {
			t.Errorf("IKE SA algorithms %s-%d %s %s", sa.EncrAlg, sa.EncrKeysize, sa.PRFAlg, sa.DHGroup)
		}
		if sa.LocalPort != 4500 || sa.RemotePort != 4500 {
			t.Errorf("IKE SA on ports %d/%d, want 4500 after the forced NAT-T switch", sa.LocalPort, sa.RemotePort)
		}
		ch := sa.Children[0]
		if !ch.Encap || ch.Mode != "TUNNEL" || ch.Protocol != "ESP" || ch.EncrAlg != "AES_GCM_16" {
			t.Errorf("CHILD_SA %+v, want ESP in UDP, tunnel mode, AES-GCM", ch)
		}
	}
	if !saA.Initiator || saB.Initiator {
		t.Errorf("initiator flags A=%v B=%v", saA.Initiator, saB.Initiator)
	}
	if saA.Children[0].SPIOut != saB.Children[0].SPIIn {
		t.Errorf("A's outbound SPI %s is not B's inbound %s", saA.Children[0].SPIOut, saB.Children[0].SPIIn)
	}

	s.pingBoth(t, ctx, 3, 56)
	s.pingBoth(t, ctx, 2, 1300) // near the 1400-byte MTU of charon's ipsec0
	if err := TransferTCP(ctx, s.A.NS, s.A.Inner, s.B.NS, s.B.Inner, 256<<10, 1); err != nil {
		t.Fatal(err)
	}
	if err := TransferTCP(ctx, s.B.NS, s.B.Inner, s.A.NS, s.A.Inner, 64<<10, 2); err != nil {
		t.Fatal(err)
	}
	sas, err := s.CA.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ch := Established(sas, connName)[0].Children[0]; ch.BytesOut < 256<<10 || ch.PacketsIn == 0 {
		t.Errorf("CHILD_SA counters %d bytes out, %d packets in: traffic did not use the tunnel", ch.BytesOut, ch.PacketsIn)
	}

	// CHILD_SA rekey started by the responder (with PFS: x25519 in CREATE_CHILD_SA), then IKE SA
	// rekey started by the initiator.
	rekeyAndCheck(t, ctx, s, s.CB, "", childName, func(old, cur IKESA) bool {
		return cur.Children[0].SPIIn != old.Children[0].SPIIn
	})
	rekeyAndCheck(t, ctx, s, s.CA, connName, "", func(old, cur IKESA) bool {
		return cur.InitiatorSPI != old.InitiatorSPI
	})
	s.pingBoth(t, ctx, 1, 56)

	// Delete, started by B.
	if err := s.CB.Terminate(ctx, connName); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CA.WaitSAs(ctx, func(sas []IKESA) bool { return len(sas) == 0 }); err != nil {
		t.Fatal(err)
	}

	r := checkCapture(t, s.Capture)
	for _, ex := range []wire.ExchangeType{wire.ExchangeIKESAInit, wire.ExchangeIKEAuth, wire.ExchangeCreateChildSA, wire.ExchangeInformational} {
		if !r.HasExchange(int(ex)) {
			t.Errorf("capture has no %v exchange", ex)
		}
	}
	if r.ESPFrames() == 0 {
		t.Error("capture has no ESP frame")
	}
	t.Logf("capture: %d frames, %d IKE, %d ESP in UDP, no problems", len(r.Frames), r.IKEFrames(), r.ESPFrames())
}

// rekeyAndCheck asks c to rekey, waits until changed(old, current) holds on both charons' views of
// the tunnel and pings through the new SAs.
func rekeyAndCheck(t *testing.T, ctx context.Context, s *strongSwanPair, c *Charon, ike, child string, changed func(old, cur IKESA) bool) {
	t.Helper()
	oldA, oldB := s.established(t, ctx)
	if err := c.Rekey(ctx, ike, child); err != nil {
		t.Fatal(err)
	}
	for i, ch := range []*Charon{s.CA, s.CB} {
		old := []IKESA{oldA, oldB}[i]
		if _, err := ch.WaitSAs(ctx, func(sas []IKESA) bool {
			e := Established(sas, connName)
			return len(e) == 1 && len(e[0].Children) == 1 && changed(old, e[0])
		}); err != nil {
			t.Fatalf("rekey ike=%q child=%q: %v", ike, child, err)
		}
	}
}

// TestStrongSwanToStrongSwanProposals runs the fixture with certificate authentication and other
// proposals, one tunnel each: it proves that proposals, key types and charon settings reach charon
// as parameters. The padded-certificate case forces IKE fragmentation (RFC 7383) of IKE_AUTH.
func TestStrongSwanToStrongSwanProposals(t *testing.T) {
	requireStrongSwan(t)
	cases := []struct {
		name string
		spec tunnelSpec
		// wantIKE and wantESP are charon's names of the negotiated algorithms (no key size for
		// ChaCha20-Poly1305, no integrity algorithm with AEADs).
		wantIKE, wantESP string
		// wantFragments expects IKE_AUTH in more than one datagram per direction.
		wantFragments bool
	}{
		{name: "ECDSA-P256/ecp256/aes128-sha256",
			wantIKE: "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", wantESP: "AES_CBC-128/HMAC_SHA2_256_128", spec: tunnelSpec{
				Proposals: "aes128-sha256-ecp256", ESPProposals: "aes128-sha256", Auth: KeyECDSAP256}},
		{name: "Ed25519/modp2048/chacha20poly1305",
			wantIKE: "CHACHA20_POLY1305-0//PRF_HMAC_SHA2_256/MODP_2048", wantESP: "CHACHA20_POLY1305-0/", spec: tunnelSpec{
				Proposals: "chacha20poly1305-prfsha256-modp2048", ESPProposals: "chacha20poly1305-modp2048", Auth: KeyEd25519}},
		{name: "ECDSA-P384/ecp384/fragmented", wantFragments: true,
			wantIKE: "AES_GCM_16-256//PRF_HMAC_SHA2_384/ECP_384", wantESP: "AES_GCM_16-256/", spec: tunnelSpec{
				Proposals: "aes256gcm16-prfsha384-ecp384", ESPProposals: "aes256gcm16", Auth: KeyECDSAP384,
				CertPadding: 40, Settings: map[string]string{"fragment_size": "576"},
				Tweak: func(_ peer, c *Conn) { c.Fragmentation = "yes" }}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStrongSwanPair(t, tc.spec)
			ctx := testContext(t)
			if err := s.CB.Initiate(ctx, "", childName); err != nil { // B initiates this time
				t.Fatal(err)
			}
			saA, saB := s.established(t, ctx)
			if saA.Initiator || !saB.Initiator {
				t.Errorf("initiator flags A=%v B=%v, want B", saA.Initiator, saB.Initiator)
			}
			for _, sa := range []IKESA{saA, saB} {
				ike := fmt.Sprintf("%s-%d/%s/%s/%s", sa.EncrAlg, sa.EncrKeysize, sa.IntegAlg, sa.PRFAlg, sa.DHGroup)
				ch := sa.Children[0]
				esp := fmt.Sprintf("%s-%d/%s", ch.EncrAlg, ch.EncrKeysize, ch.IntegAlg)
				if ike != tc.wantIKE || esp != tc.wantESP {
					t.Errorf("negotiated IKE %s ESP %s, want %s and %s", ike, esp, tc.wantIKE, tc.wantESP)
				}
			}
			s.pingBoth(t, ctx, 2, 56)
			r := checkCapture(t, s.Capture)
			auth := 0
			for _, f := range r.Frames {
				for _, ex := range f.Exchanges {
					if ex == int(wire.ExchangeIKEAuth) {
						auth++
					}
				}
			}
			if frag := auth > 2; frag != tc.wantFragments {
				t.Errorf("%d IKE_AUTH datagrams: fragmented = %v, want %v", auth, frag, tc.wantFragments)
			}
			t.Logf("%d IKE_AUTH datagrams, %d frames", auth, len(r.Frames))
		})
	}
}
