package interop

import (
	"context"
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/interop/realnet"
)

// TestRealSideAgainstCharon is the phase-2 plumbing against a real peer, without any IKE engine.
// Namespace B is set up as pqlab will run there (newRealSide). Its realnet.Endpoint on UDP 500
// and 4500 receives charon's IKE_SA_INIT request on port 500 (no marker) and, for a connection
// configured for port 4500, on port 4500 (non-ESP marker stripped); it answers each with a
// hand-built IKE_SA_INIT response carrying NO_PROPOSAL_CHOSEN, which charon must receive, parse
// and act on. Inner traffic from B to A's address is routed into B's TUN device, where the
// engine will pick it up, and nothing of it leaks unencrypted onto the veth.
func TestRealSideAgainstCharon(t *testing.T) {
	requireStrongSwan(t)
	p := newTestPair(t)
	a, b := peersOf(p)
	ctx := testContext(t)
	if err := a.NS.AddAddr(ctx, "lo", netip.PrefixFrom(a.Inner, 32)); err != nil {
		t.Fatal(err)
	}
	spec := tunnelSpec{Proposals: "aes256gcm16-prfsha256-x25519", ESPProposals: "aes256gcm16"}
	swan := swanctlFor(t, a, b, spec, nil)
	c4500 := swan.Conns[0]
	// Both ports: with only remote_port = 4500, charon 5.9.8 sends from port 500 to 4500 without
	// the non-ESP marker, which a receiver on 4500 must read as ESP (RFC 3948, Section 2.2).
	c4500.Name, c4500.LocalPort, c4500.RemotePort = "t4500", realnet.NATTPort, realnet.NATTPort
	c4500.Children = []Child{{Name: "c4500", LocalTS: c4500.Children[0].LocalTS, RemoteTS: c4500.Children[0].RemoteTS,
		ESPProposals: c4500.Children[0].ESPProposals}}
	swan.Conns = append(swan.Conns, c4500)
	dir := shortTempDir(t)
	capture := startCapture(t, b.NS, VethB, dir, "veth-b")
	ca := startCharon(t, a.NS, filepath.Join(dir, "a"), swan, nil)

	side := newRealSide(t, b, a)
	ep := side.EP

	for _, tc := range []struct {
		child string
		natt  bool
	}{{childName, false}, {"c4500", true}} {
		initErr := make(chan error, 1)
		go func() { initErr <- ca.Initiate(ctx, "", tc.child) }()

		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		d, err := ep.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: no datagram from charon: %v", tc.child, err)
		}
		wantPort := uint16(realnet.IKEPort)
		if tc.natt {
			wantPort = realnet.NATTPort
		}
		if d.Kind != realnet.KindIKE || d.NATT != tc.natt || d.Remote != netip.AddrPortFrom(a.Outer, wantPort) {
			t.Fatalf("%s: got %v natt=%v from %v", tc.child, d.Kind, d.NATT, d.Remote)
		}
		h, err := wire.ParseHeader(d.Payload)
		if err != nil {
			t.Fatalf("%s: %v", tc.child, err)
		}
		if h.Exchange != wire.ExchangeIKESAInit || !h.IsInitiator() || h.IsResponse() || h.MessageID != 0 ||
			h.SPIr != 0 || int(h.Length) != len(d.Payload) || h.NextPayload != wire.PayloadSA {
			t.Fatalf("%s: unexpected IKE_SA_INIT request header %+v (%d bytes)", tc.child, h, len(d.Payload))
		}

		// IKE_SA_INIT response: header + N(NO_PROPOSAL_CHOSEN) (RFC 7296, Sections 3.1, 3.10).
		resp := wire.Header{
			SPIi: h.SPIi, NextPayload: wire.PayloadNotify, Exchange: wire.ExchangeIKESAInit,
			Flags: wire.FlagResponse, Length: wire.HeaderLen + 8,
		}.Append(nil)
		resp = append(resp, 0, 0, 0, 8, 0, 0) // generic header; Protocol ID 0, SPI Size 0
		resp = binary.BigEndian.AppendUint16(resp, uint16(wire.NotifyNoProposalChosen))
		if tc.natt {
			// The raw path an engine that adds the marker itself uses (ike.Datagram).
			if d.Raw[0]|d.Raw[1]|d.Raw[2]|d.Raw[3] != 0 || len(d.Raw) != len(d.Payload)+realnet.NonESPMarkerLen {
				t.Errorf("Raw of the NAT-T datagram does not start with the non-ESP marker: % x", d.Raw[:8])
			}
			err = ep.Send(d.Local.Port(), d.Remote, append(make([]byte, realnet.NonESPMarkerLen), resp...))
		} else {
			err = ep.SendIKE(false, d.Remote, resp)
		}
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-initErr:
			if err == nil || !strings.Contains(err.Error(), "NO_PROPOSAL_CHOSEN") {
				t.Errorf("%s: charon's initiate ended with %v, want NO_PROPOSAL_CHOSEN", tc.child, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: charon did not act on the response", tc.child)
		}
	}
	// Inner path: a ping from B's inner address to A's enters the TUN device.
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer pcancel()
	if _, err := Ping(pctx, b.NS, b.Inner, a.Inner, 1, 56); err == nil {
		t.Fatal("ping answered although no engine runs")
	}
	buf := make([]byte, realSideMTU)
	side.TUN.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := side.TUN.ReadPacket(buf)
	if err != nil {
		t.Fatalf("TUN: %v", err)
	}
	if pkt := buf[:n]; n < 28 || pkt[9] != 1 || netip.AddrFrom4([4]byte(pkt[12:16])) != b.Inner || netip.AddrFrom4([4]byte(pkt[16:20])) != a.Inner {
		t.Errorf("TUN read % x, want ICMP %v -> %v", pkt, b.Inner, a.Inner)
	}

	if ep.Malformed() != 0 {
		t.Errorf("%d malformed datagrams", ep.Malformed())
	}
	r := checkCapture(t, capture)
	if r.IKEFrames() < 4 {
		t.Errorf("%d IKE frames captured, want at least 4", r.IKEFrames())
	}
	for _, f := range r.Frames {
		if strings.Contains(f.Protocols, "icmp") {
			t.Errorf("frame %d (%s): inner traffic on the veth", f.Number, f.Protocols)
		}
	}
}
