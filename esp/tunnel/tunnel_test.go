package tunnel

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/pqlab/pqlab/esp"
	"github.com/pqlab/pqlab/ike/wire"
)

// ping sends one ICMP echo request with n payload octets from s to dst and
// reports whether the matching reply came back within timeout.
func ping(t *testing.T, s *stack.Stack, dst string, n int, timeout time.Duration) bool {
	t.Helper()
	a := addr(dst)
	var wq waiter.Queue
	tp, np := icmp.ProtocolNumber4, ipv4.ProtocolNumber
	if a.Len() == 16 {
		tp, np = icmp.ProtocolNumber6, ipv6.ProtocolNumber
	}
	ep, terr := s.NewEndpoint(tp, np, &wq)
	if terr != nil {
		t.Fatalf("ping endpoint: %v", terr)
	}
	defer ep.Close()
	we, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)

	req := make([]byte, header.ICMPv4MinimumSize+n)
	if np == ipv4.ProtocolNumber {
		header.ICMPv4(req).SetType(header.ICMPv4Echo)
	} else {
		header.ICMPv6(req).SetType(header.ICMPv6EchoRequest)
	}
	for i := header.ICMPv4MinimumSize; i < len(req); i++ {
		req[i] = byte(i * 7)
	}
	if _, terr := ep.Write(bytes.NewReader(req), tcpip.WriteOptions{To: &tcpip.FullAddress{Addr: a}}); terr != nil {
		t.Fatalf("ping write: %v", terr)
	}
	deadline := time.After(timeout)
	for {
		var out bytes.Buffer
		_, terr := ep.Read(&out, tcpip.ReadOptions{})
		if _, wouldBlock := terr.(*tcpip.ErrWouldBlock); wouldBlock {
			select {
			case <-ch:
				continue
			case <-deadline:
				return false
			}
		}
		if terr != nil {
			t.Fatalf("ping read: %v", terr)
		}
		rep := out.Bytes()
		wantType := byte(header.ICMPv4EchoReply)
		if np == ipv6.ProtocolNumber {
			wantType = byte(header.ICMPv6EchoReply)
		}
		return len(rep) == len(req) && rep[0] == wantType && bytes.Equal(rep[8:], req[8:])
	}
}

func TestPingThroughTunnel(t *testing.T) {
	for _, c := range []struct {
		name   string
		suite  esp.Suite
		outer6 bool
	}{
		{"aes128gcm-outer4", testSuite, false},
		{"chacha-outer6", esp.Suite{Encr: wire.EncrChaCha20Poly1305}, true},
		{"aescbc-outer4", esp.Suite{Encr: wire.EncrAESCBC, KeyBits: 128, Integ: wire.IntegHMACSHA2256128}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			tp := newTopo(t, topoOpts{suite: c.suite, outer6: c.outer6})
			defer noLeak(t, before)
			defer tp.close()
			for _, dst := range []string{"10.2.0.2", "fd00:2::2"} {
				for _, n := range []int{56, 1200} {
					if !ping(t, tp.hostA, dst, n, 5*time.Second) {
						t.Fatalf("no echo reply from %s (%d octets)", dst, n)
					}
				}
			}
			// Four echo requests and four replies crossed each gateway.
			for _, g := range []*gateway{tp.gwA, tp.gwB} {
				st := g.tun.Stats()
				if st.TxPackets != 4 || st.RxPackets != 4 || st.TxDrops+st.RxDrops != 0 {
					t.Errorf("tunnel stats %+v", st)
				}
				for _, sa := range g.db.Outbound(ifID).SAs() {
					if c := sa.Counters(); c.PacketsOut != 4 || c.TotalDrops() != 0 {
						t.Errorf("outbound SA counters %+v", c)
					}
				}
			}
			if in := tp.gwB.db.Lookup(0xb000_0001).Counters(); in.PacketsIn != 4 || in.BytesIn == 0 {
				t.Errorf("gwB inbound SA counters %+v", in)
			}
		})
	}
}

func TestTunnelSelectors(t *testing.T) {
	// gwA's outbound SA also covers 10.3.0.0/16, gwB's inbound SA does not:
	// gwB must drop what gwA sends there. 10.4.0.0/16 is routed nowhere
	// into an SA on gwA: dropped before sealing.
	tp := newTopo(t, topoOpts{suite: testSuite, wideA2B: true})
	defer tp.close()
	tp.gwA.s.AddRoute(tcpip.Route{Destination: p2s(mustPrefix("10.4.0.0/16")), NIC: nicTun})
	if ping(t, tp.hostA, "10.3.0.9", 56, 300*time.Millisecond) {
		t.Fatal("reply from outside the selectors")
	}
	if ping(t, tp.hostA, "10.4.0.9", 56, 300*time.Millisecond) {
		t.Fatal("reply from an unrouted prefix")
	}
	in := tp.gwB.db.Lookup(0xb000_0001).Counters()
	if in.Dropped(esp.DropSelector) != 1 || in.PacketsIn != 0 {
		t.Fatalf("gwB inbound SA: %+v", in)
	}
	if d := tp.gwA.db.Counters().Dropped(esp.DropNoSA); d != 1 {
		t.Fatalf("gwA DropNoSA %d", d)
	}
	if st := tp.gwA.tun.Stats(); st.TxDrops != 1 || st.TxPackets != 1 {
		t.Fatalf("gwA stats %+v", st)
	}
	// The tunnel still works for covered traffic.
	if !ping(t, tp.hostA, "10.2.0.2", 56, 5*time.Second) {
		t.Fatal("no reply through the tunnel")
	}
}

func TestDeliverBadPackets(t *testing.T) {
	tp := newTopo(t, topoOpts{suite: testSuite})
	defer tp.close()
	g := tp.gwB
	for _, p := range [][]byte{nil, {1, 2, 3}, {0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, 9, 9, 9}} {
		if err := g.demux.Deliver(p); err == nil {
			t.Fatalf("Deliver(%x) accepted", p)
		}
	}
	// A valid SPI with garbage fails authentication.
	bad := append([]byte{0xb0, 0, 0, 1, 0, 0, 0, 7}, make([]byte, 60)...)
	if err := g.demux.Deliver(bad); !errors.Is(err, esp.DropAuth) {
		t.Fatalf("garbage: %v", err)
	}
	if c := g.db.Counters(); c.Dropped(esp.DropBadSPI) != 1 || c.Dropped(esp.DropMalformed) != 2 {
		t.Fatalf("DB counters %+v", c)
	}
	if st := g.tun.Stats(); st.RxDrops != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// noLeak waits briefly for the goroutines started since before to end.
func noLeak(t *testing.T, before int) {
	t.Helper()
	for range 100 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
}
