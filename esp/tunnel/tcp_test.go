package tunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/pqlab/pqlab/esp"
	"github.com/pqlab/pqlab/ike/wire"
)

func init() { extraTransports = append(extraTransports, tcp.NewProtocol) }

func tuneTCP(t testing.TB, ss ...*stack.Stack) {
	for _, s := range ss {
		sack := tcpip.TCPSACKEnabled(true)
		for _, opt := range []tcpip.SettableTransportProtocolOption{
			&sack,
			&tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20},
			&tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20},
		} {
			if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
				t.Fatalf("TCP option %T: %v", opt, err)
			}
		}
	}
}

// connect opens a TCP connection from hostA to hostB:5001.
func connect(t testing.TB, tp *topo) (client, server *gonet.TCPConn) {
	t.Helper()
	tuneTCP(t, tp.hostA, tp.hostB)
	l, err := gonet.ListenTCP(tp.hostB, tcpip.FullAddress{Addr: addr("10.2.0.2"), Port: 5001}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan *gonet.TCPConn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			acc <- nil
			return
		}
		acc <- c.(*gonet.TCPConn)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err = gonet.DialContextTCP(ctx, tp.hostA, tcpip.FullAddress{Addr: addr("10.2.0.2"), Port: 5001}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	return client, server
}

func TestTCPThroughTunnel(t *testing.T) {
	tp := newTopo(t, topoOpts{suite: esp.Suite{Encr: wire.EncrAESGCM16, KeyBits: 256}})
	defer tp.close()
	client, server := connect(t, tp)
	data := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{9}).Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := client.Write(data)
		if err == nil {
			err = client.Close()
		}
		errc <- err
	}()
	server.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatalf("read after %d octets: %v", len(got), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	server.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d octets, sha256 %x; sent %d, sha256 %x", len(got), sha256.Sum256(got), len(data), sha256.Sum256(data))
	}
	out := tp.gwA.db.Outbound(ifID).SAs()[0].Counters()
	if out.BytesOut < uint64(len(data)) || tp.gwB.tun.Stats().RxDrops != 0 {
		t.Fatalf("gwA outbound %+v, gwB %+v", out, tp.gwB.tun.Stats())
	}
}

// BenchmarkTunnelTCP is an end-to-end, real-time TCP bulk transfer from
// hostA to hostB through both gateways: over the ESP tunnel with each
// suite, and with plain forwarding through the same kind of gateways as
// the baseline. The custom metric Gbit/s is the goodput.
func BenchmarkTunnelTCP(b *testing.B) {
	cases := []struct {
		name string
		o    topoOpts
	}{
		{"plain", topoOpts{plain: true}},
		{"esp-aes128gcm16", topoOpts{suite: esp.Suite{Encr: wire.EncrAESGCM16, KeyBits: 128}}},
		{"esp-aes256gcm16", topoOpts{suite: esp.Suite{Encr: wire.EncrAESGCM16, KeyBits: 256}}},
		{"esp-chacha20poly1305", topoOpts{suite: esp.Suite{Encr: wire.EncrChaCha20Poly1305}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			c.o.parallelLinks = true // real-time throughput: links run concurrently
			tp := newTopo(b, c.o)
			defer tp.close()
			client, server := connect(b, tp)
			const chunk = 64 << 10
			buf := make([]byte, chunk)
			done := make(chan int64, 1)
			go func() {
				n, _ := io.Copy(io.Discard, server)
				done <- n
			}()
			b.SetBytes(chunk)
			b.ResetTimer()
			start := time.Now()
			var sent int64
			for b.Loop() {
				n, err := client.Write(buf)
				if err != nil {
					b.Fatal(err)
				}
				sent += int64(n)
			}
			client.Close()
			got := <-done
			el := time.Since(start)
			b.StopTimer()
			server.Close()
			if got != sent {
				b.Fatalf("received %d of %d octets", got, sent)
			}
			b.ReportMetric(float64(got)*8/el.Seconds()/1e9, "Gbit/s")
		})
	}
}
