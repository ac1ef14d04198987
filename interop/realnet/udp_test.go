package realnet

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ikeMsg returns a minimal IKE message (header only) whose first SPI byte is b.
func ikeMsg(b byte) []byte {
	m := make([]byte, IKEHeaderLen)
	for i := 0; i < 8; i++ {
		m[i] = b
	}
	m[17] = 0x20
	m[18] = 34
	m[27] = IKEHeaderLen
	return m
}

func TestClassify(t *testing.T) {
	ike := ikeMsg(0x11)
	marked := append([]byte{0, 0, 0, 0}, ike...)
	esp := []byte{0, 0, 0x10, 0x01, 0, 0, 0, 1, 0xde, 0xad}
	cases := []struct {
		name    string
		natt    bool
		in      []byte
		kind    Kind
		payload []byte
		err     bool
	}{
		{"IKE on 500", false, ike, KindIKE, ike, false},
		{"IKE with marker on 500 is still IKE bytes", false, marked, KindIKE, marked, false},
		{"short on 500", false, ike[:27], 0, nil, true},
		{"IKE on 4500", true, marked, KindIKE, ike, false},
		{"short IKE on 4500", true, marked[:31], 0, nil, true},
		{"marker only", true, []byte{0, 0, 0, 0}, 0, nil, true},
		{"ESP", true, esp, KindESP, esp, false},
		{"ESP header only", true, esp[:8], KindESP, esp[:8], false},
		{"short ESP", true, esp[:7], 0, nil, true},
		{"keepalive", true, []byte{0xff}, KindKeepalive, []byte{0xff}, false},
		{"one other byte", true, []byte{0xfe}, 0, nil, true},
		{"empty", true, nil, 0, nil, true},
		{"empty on 500", false, nil, 0, nil, true},
	}
	for _, tc := range cases {
		k, p, err := Classify(tc.natt, tc.in)
		if (err != nil) != tc.err || k != tc.kind || !bytes.Equal(p, tc.payload) {
			t.Errorf("%s: Classify = %v, % x, %v", tc.name, k, p, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "realnet: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindIKE: "IKE", KindESP: "ESP", KindKeepalive: "keepalive", 9: "Kind(9)"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
}

// TestEndpointLoopback exercises an Endpoint on 127.0.0.1 with free ports against a plain UDP
// socket standing in for the peer: what goes on the wire and what Receive reports.
func TestEndpointLoopback(t *testing.T) {
	before := runtime.NumGoroutine()
	lo := netip.MustParseAddr("127.0.0.1")
	e, err := Listen(lo, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	recvPeer := func() []byte {
		t.Helper()
		buf := make([]byte, 2048)
		peer.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		_ = from
		return buf[:n]
	}

	// Outbound: the marker appears only on the NAT-T port.
	ike := ikeMsg(0x22)
	if err := e.SendIKE(false, peerAddr, ike); err != nil {
		t.Fatal(err)
	}
	if got := recvPeer(); !bytes.Equal(got, ike) {
		t.Errorf("IKE on port 500 sent as % x", got)
	}
	if err := e.SendIKE(true, peerAddr, ike); err != nil {
		t.Fatal(err)
	}
	if got := recvPeer(); !bytes.Equal(got, append([]byte{0, 0, 0, 0}, ike...)) {
		t.Errorf("IKE on port 4500 sent as % x", got)
	}
	esp := []byte{0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 7, 1, 2, 3}
	if err := e.SendESP(peerAddr, esp); err != nil {
		t.Fatal(err)
	}
	if got := recvPeer(); !bytes.Equal(got, esp) {
		t.Errorf("ESP sent as % x", got)
	}
	if err := e.SendKeepalive(peerAddr); err != nil {
		t.Fatal(err)
	}
	if got := recvPeer(); !bytes.Equal(got, []byte{0xff}) {
		t.Errorf("keepalive sent as % x", got)
	}
	// Verbatim sends by local port, as an engine that adds the marker itself uses them.
	for _, port := range []uint16{e.LocalIKE().Port(), e.LocalNATT().Port()} {
		raw := append([]byte{0, 0, 0, 0}, ike...)
		if err := e.Send(port, peerAddr, raw); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		peer.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], raw) || from.Port() != port {
			t.Errorf("Send from %d: % x from %v", port, buf[:n], from)
		}
	}
	if err := e.Send(1, peerAddr, ike); err == nil {
		t.Error("Send from a port without a socket")
	}
	if err := e.Send(e.LocalIKE().Port(), peerAddr, nil); err == nil {
		t.Error("empty datagram sent")
	}
	if err := e.SendESP(peerAddr, []byte{0, 0, 0, 0, 0, 0, 0, 1}); err == nil {
		t.Error("ESP with SPI 0 sent")
	}
	if err := e.SendESP(peerAddr, esp[:7]); err == nil {
		t.Error("7-byte ESP sent")
	}
	if err := e.SendIKE(true, peerAddr, ike[:20]); err == nil {
		t.Error("20-byte IKE sent")
	}

	// Inbound: classification, marker stripped, malformed counted and dropped.
	send := func(to netip.AddrPort, b []byte) {
		t.Helper()
		if _, err := peer.WriteToUDPAddrPort(b, to); err != nil {
			t.Fatal(err)
		}
	}
	send(e.LocalNATT(), []byte{1, 2, 3})                    // malformed: dropped
	send(e.LocalNATT(), append([]byte{0, 0, 0, 0}, ike...)) // IKE
	send(e.LocalNATT(), esp)                                // ESP
	send(e.LocalNATT(), []byte{0xff})                       // keepalive
	want := []struct {
		kind    Kind
		payload []byte
	}{{KindIKE, ike}, {KindESP, esp}, {KindKeepalive, []byte{0xff}}}
	for i, w := range want {
		d, err := e.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != w.kind || !bytes.Equal(d.Payload, w.payload) || !d.NATT || d.Remote != peerAddr || d.Local != e.LocalNATT() {
			t.Errorf("datagram %d = %+v, want %v % x from %v", i, d, w.kind, w.payload, peerAddr)
		}
		if !bytes.HasSuffix(d.Raw, d.Payload) || (w.kind == KindIKE) != (len(d.Raw) == len(d.Payload)+NonESPMarkerLen) {
			t.Errorf("datagram %d: Raw % x does not hold Payload behind the marker", i, d.Raw)
		}
	}
	send(e.LocalIKE(), ike)
	d, err := e.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != KindIKE || d.NATT || !bytes.Equal(d.Payload, ike) || d.Local != e.LocalIKE() {
		t.Errorf("port 500 datagram = %+v", d)
	}
	if e.Malformed() != 1 {
		t.Errorf("Malformed() = %d, want 1", e.Malformed())
	}

	// Receive honours its context, and Close ends everything.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if _, err := e.Receive(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive on idle endpoint: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close: %v", err)
	}
	if err := e.SendKeepalive(peerAddr); !errors.Is(err, ErrClosed) {
		t.Errorf("send after Close: %v", err)
	}
	// The reader goroutines are gone.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

func TestListenRejectsInvalidAddress(t *testing.T) {
	if _, err := Listen(netip.Addr{}, 0, 0); err == nil {
		t.Error("Listen accepted the zero address")
	}
}
