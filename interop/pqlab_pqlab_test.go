package interop

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/interop/driver"
)

// TestPqlabToPqlabRealNetwork runs two drivers against each other over real sockets, in two
// namespaces without NAT: the path strongSwan 5.9.8 cannot take. The IKE SA uses the hybrid
// default (x25519 in IKE_SA_INIT, ML-KEM-768 in IKE_INTERMEDIATE, RFC 9370), the Child SA is
// rekeyed with x25519 plus ML-KEM-768 (IKE_FOLLOWUP_KE), and with no NAT detected ESP travels as
// IP protocol 50 through the drivers' raw sockets (RFC 4303), not in UDP. Ping and TCP cross in
// both directions; tshark decrypts every ESP frame with the initiator's key log.
func TestPqlabToPqlabRealNetwork(t *testing.T) {
	requireStrongSwan(t) // tshark, dumpcap
	p := newTestPair(t)
	a, b := peersOf(p)
	dir := shortTempDir(t)
	capture := startCapture(t, a.NS, VethA, dir, "veth-a")
	ctx := testContext(t)

	mk := func(local, remote peer, initiate bool) *driver.Driver {
		t.Helper()
		pc := ike.PeerConfig{
			Name:         remote.ID,
			Remote:       netip.AddrPortFrom(remote.Outer, 500),
			Auth:         ike.AuthConfig{PSK: psk},
			IKEProposals: []string{ike.DefaultIKEProposal},
			Children: []ike.ChildConfig{{
				Name:         childName,
				ESPProposals: []string{"aes256gcm16-x25519-ke1_mlkem768"},
				LocalTS:      []ike.TrafficSelector{ike.MustTS(local.Inner.String())},
				RemoteTS:     []ike.TrafficSelector{ike.MustTS(remote.Inner.String())},
			}},
		}
		pc.LocalID, _ = ike.ParseIdentity("@" + local.ID)
		pc.RemoteID, _ = ike.ParseIdentity("@" + remote.ID)
		logf, err := os.Create(filepath.Join(dir, local.ID+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { logf.Close() })
		dc := driver.Config{
			IKE:       ike.Config{Peers: []ike.PeerConfig{pc}},
			Local:     local.Outer,
			Netns:     local.NS.Name,
			Inner:     []netip.Prefix{netip.PrefixFrom(local.Inner, 32)},
			KeyLogDir: filepath.Join(dir, local.ID+"-keys"),
			Logger:    slog.New(slog.NewTextHandler(logf, nil)),
		}
		if initiate {
			dc.Initiate = []string{remote.ID}
		}
		d, err := driver.New(dc)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(rctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("driver %s: %v", local.ID, err)
			}
			if t.Failed() {
				t.Logf("%s log:\n%s", local.ID, tail(logf.Name(), 40))
			}
		})
		return d
	}
	db := mk(b, a, false)
	da := mk(a, b, true)

	childOf := func(d *driver.Driver, from int) *ike.ChildSA {
		t.Helper()
		ev, _, err := d.WaitEvent(ctx, from, func(ev ike.Event) bool {
			return ev.Kind == ike.EventChildSAInstalled || ev.Kind == ike.EventChildSARekeyed || ev.Kind == ike.EventFailed
		})
		if err != nil || ev.Kind == ike.EventFailed {
			t.Fatalf("%v %v", ev, err)
		}
		return ev.Child
	}
	ca, cb := childOf(da, 0), childOf(db, 0)
	if ca.Encap || cb.Encap || ca.OutboundSPI != cb.InboundSPI {
		t.Fatalf("Child SAs %+v / %+v: want raw ESP with crossed SPIs", ca, cb)
	}
	ikeEv, _, err := da.WaitEvent(ctx, 0, func(ev ike.Event) bool { return ev.Kind == ike.EventIKESAEstablished })
	if err != nil {
		t.Fatal(err)
	}
	if ikeEv.Suite.AddKE[0] == 0 || ikeEv.Remote.Port() != 500 {
		t.Errorf("IKE SA %v on %v: want an additional key exchange and port 500 (no NAT)", ikeEv.Suite.String(), ikeEv.Remote)
	}
	ping := func() {
		t.Helper()
		if _, err := Ping(ctx, a.NS, a.Inner, b.Inner, 2, 1300); err != nil {
			t.Fatal(err)
		}
		if _, err := Ping(ctx, b.NS, b.Inner, a.Inner, 2, 56); err != nil {
			t.Fatal(err)
		}
	}
	ping()
	if err := TransferTCP(ctx, a.NS, a.Inner, b.NS, b.Inner, 128<<10, 21); err != nil {
		t.Fatal(err)
	}
	if err := TransferTCP(ctx, b.NS, b.Inner, a.NS, a.Inner, 128<<10, 22); err != nil {
		t.Fatal(err)
	}
	fromA, fromB := da.NumEvents(), db.NumEvents()
	if err := db.Do(ctx, func(now time.Time, e *ike.Engine) error { return e.RekeyChildSA(now, cb.InboundSPI) }); err != nil {
		t.Fatal(err)
	}
	na, nb := childOf(da, fromA), childOf(db, fromB)
	if nb.Suite.KE == 0 || nb.Suite.AddKE[0] == 0 || na.OutboundSPI != nb.InboundSPI {
		t.Errorf("rekeyed Child SA %v: want x25519 and an additional ML-KEM exchange", nb.Suite.String())
	}
	ping()
	for _, d := range []*driver.Driver{da, db} {
		if st := d.Stats(); st.ESPIn == 0 || st.InDrops != 0 || st.SendErrors != 0 {
			t.Errorf("data plane %+v", st)
		}
	}

	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	plain := checkCapture(t, capture)
	r, err := Analyze(ctx, capture.Path, AnalyzeOptions{ConfigDir: filepath.Join(dir, a.ID+"-keys"), Args: decryptArgs})
	if err != nil {
		t.Fatal(err)
	}
	raw, dec := 0, 0
	for _, f := range r.Frames {
		if len(f.ESPSPIs) == 0 {
			continue
		}
		if !strings.Contains(f.Protocols, "udp") {
			raw++
		}
		if strings.Contains(f.Protocols, ":esp:ip:") {
			dec++
		}
	}
	if raw == 0 || raw != plain.ESPFrames() || dec != raw {
		t.Errorf("%d ESP frames, %d as raw ESP, %d decrypted", plain.ESPFrames(), raw, dec)
	}
	if !r.HasExchange(int(wire.ExchangeIKEIntermediate)) {
		t.Error("no IKE_INTERMEDIATE exchange in the capture")
	}
	// Wireshark's IKE table holds one key set per SPI pair: the key log gives it the final keys
	// (IKE_AUTH onwards), with which the IKE_INTERMEDIATE exchanges, protected by the keys before
	// the RFC 9370 key update, fail to decrypt and show as malformed. Every other frame must be
	// clean, and every encrypted frame after IKE_INTERMEDIATE must decrypt.
	var problems []string
	for _, f := range r.Frames {
		inter := len(f.Exchanges) > 0 && f.Exchanges[0] == int(wire.ExchangeIKEIntermediate)
		if !inter {
			one := CaptureReport{Frames: []Frame{f}}
			problems = append(problems, one.Problems()...)
		}
		if len(f.Exchanges) > 0 && !inter && f.Exchanges[0] != int(wire.ExchangeIKESAInit) && !f.Decrypted {
			problems = append(problems, fmt.Sprintf("frame %d (exchange %d) not decrypted", f.Number, f.Exchanges[0]))
		}
	}
	if len(problems) > 0 {
		t.Errorf("tshark with keys: %v", problems)
	}
	t.Logf("capture: %d frames, %d IKE, %d raw ESP, %d decrypted", len(r.Frames), r.IKEFrames(), raw, dec)
}
