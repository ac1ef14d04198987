package sim

import (
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// TCP bulk transfers are for real-time runs (NewRealtimeScheduler): gVisor
// hands TCP segments to its own goroutines (FACTS.md), so TCP is neither
// deterministic nor driven by virtual time. A node has TCP when its
// NodeConfig.TCP is set.

// TCP buffer sizes of simulated hosts: large enough for a few Gbit/s at the
// sub-millisecond round trips of a real-time run.
const (
	tcpBufferDefault = 1 << 20
	tcpBufferMax     = 8 << 20
)

// tuneTCP enables SACK and sizes the buffers of a stack with TCP.
func (n *Node) tuneTCP() error {
	sack := tcpip.TCPSACKEnabled(true)
	for _, opt := range []tcpip.SettableTransportProtocolOption{
		&sack,
		&tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: tcpBufferDefault, Max: tcpBufferMax},
		&tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: tcpBufferDefault, Max: tcpBufferMax},
	} {
		if err := n.stack.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return fmt.Errorf("sim: node %s: TCP option %T: %s", n.name, opt, err)
		}
	}
	return nil
}

// TCPSink accepts TCP connections on a node and discards what they carry,
// counting the octets (the receiving end of a bulk transfer).
type TCPSink struct {
	node  *Node
	l     *gonet.TCPListener
	bytes atomic.Uint64
	conns atomic.Uint64
	wg    sync.WaitGroup

	mu     sync.Mutex
	open   []*gonet.TCPConn
	closed bool
}

// ListenTCPSink listens on addr (an address of the node) and discards
// everything its connections receive, in goroutines of its own. A non-zero
// mss is the MSS the sink advertises (RFC 9293 Section 3.7.1), which caps
// the segments senders send it: below a tunnel's inner MTU minus 40, no
// gateway has to fragment.
func (n *Node) ListenTCPSink(addr netip.AddrPort, mss int) (*TCPSink, error) {
	if !n.tcp {
		return nil, fmt.Errorf("sim: node %s has no TCP (NodeConfig.TCP)", n.name)
	}
	a := addr.Addr().Unmap()
	var wq waiter.Queue
	ep, terr := n.stack.NewEndpoint(tcp.ProtocolNumber, protoOf(a), &wq)
	if terr != nil {
		return nil, fmt.Errorf("sim: node %s: TCP endpoint: %s", n.name, terr)
	}
	fail := func(what string, terr tcpip.Error) (*TCPSink, error) {
		ep.Close()
		return nil, fmt.Errorf("sim: node %s: TCP sink %v: %s: %s", n.name, addr, what, terr)
	}
	if err := checkMSS(mss); err != nil {
		ep.Close()
		return nil, fmt.Errorf("sim: node %s: %w", n.name, err)
	}
	if mss > 0 {
		if terr := ep.SetSockOptInt(tcpip.MaxSegOption, mss); terr != nil {
			return fail("MSS", terr)
		}
	}
	if terr := ep.Bind(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: addr.Port()}); terr != nil {
		return fail("bind", terr)
	}
	if terr := ep.Listen(16); terr != nil {
		return fail("listen", terr)
	}
	k := &TCPSink{node: n, l: gonet.NewTCPListener(n.stack, &wq, ep)}
	k.wg.Add(1)
	go k.accept()
	return k, nil
}

func (k *TCPSink) accept() {
	defer k.wg.Done()
	for {
		c, err := k.l.Accept()
		if err != nil {
			return
		}
		conn := c.(*gonet.TCPConn)
		k.mu.Lock()
		if k.closed {
			k.mu.Unlock()
			conn.Close()
			return
		}
		k.open = append(k.open, conn)
		k.mu.Unlock()
		k.conns.Add(1)
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				m, err := conn.Read(buf)
				k.bytes.Add(uint64(m))
				if err != nil {
					conn.Close()
					return
				}
			}
		}()
	}
}

// Bytes returns the octets received so far on every connection.
func (k *TCPSink) Bytes() uint64 { return k.bytes.Load() }

// Conns returns the connections accepted so far.
func (k *TCPSink) Conns() uint64 { return k.conns.Load() }

// Close stops listening and closes the connections.
func (k *TCPSink) Close() {
	k.mu.Lock()
	k.closed = true
	open := k.open
	k.open = nil
	k.mu.Unlock()
	k.l.Close()
	for _, c := range open {
		c.Close()
	}
	k.wg.Wait()
}

func checkMSS(mss int) error {
	if mss < 0 || (mss > 0 && (mss < header.TCPMinimumMSS || mss > header.TCPMaximumMSS)) {
		return fmt.Errorf("bad MSS %d", mss)
	}
	return nil
}

// TCPBulkOptions tune a bulk sender.
type TCPBulkOptions struct {
	// MSS is the MSS the sender advertises (0: gVisor's choice from the
	// NIC MTU); it caps the segments of the reverse direction. The sink's
	// MSS caps the bulk data.
	MSS int
	// ConnectTimeout bounds the handshake (default 5 s of wall time).
	ConnectTimeout time.Duration
	// Abort ends the transfer with a reset (RFC 9293 Section 3.10.4,
	// ABORT), discarding what the send buffer still holds, so that a
	// stopped flow leaves no tail behind to compete with the next one.
	// Otherwise the connection closes gracefully and everything written
	// arrives.
	Abort bool
}

// TCPBulk sends as fast as TCP allows to one destination until stopped.
type TCPBulk struct {
	node  *Node
	bytes atomic.Uint64
	stop  atomic.Bool
	done  chan struct{}
	err   error // set before done closes
}

// StartTCPBulk connects from the node to dst and sends zeros in 64 KiB
// writes from a goroutine of its own until Stop. It does not block: the
// connection is made while the scheduler runs.
func (n *Node) StartTCPBulk(dst netip.AddrPort, opts TCPBulkOptions) (*TCPBulk, error) {
	if !n.tcp {
		return nil, fmt.Errorf("sim: node %s has no TCP (NodeConfig.TCP)", n.name)
	}
	if err := checkMSS(opts.MSS); err != nil {
		return nil, fmt.Errorf("sim: node %s: %w", n.name, err)
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	b := &TCPBulk{node: n, done: make(chan struct{})}
	go b.run(dst, opts)
	return b, nil
}

func (b *TCPBulk) run(dst netip.AddrPort, opts TCPBulkOptions) {
	defer close(b.done)
	conn, ep, err := b.node.dialTCP(dst, opts)
	if err != nil {
		b.err = err
		return
	}
	defer conn.Close()
	if opts.Abort {
		defer ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
	}
	buf := make([]byte, 64<<10)
	for !b.stop.Load() {
		conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		m, err := conn.Write(buf)
		b.bytes.Add(uint64(m))
		if err != nil && !isTimeout(err) {
			b.err = err
			return
		}
	}
}

func isTimeout(err error) bool {
	t, ok := err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}

// dialTCP connects with the MSS set before the handshake (gonet's dialers
// offer no way to set options first).
func (n *Node) dialTCP(dst netip.AddrPort, opts TCPBulkOptions) (*gonet.TCPConn, tcpip.Endpoint, error) {
	a := dst.Addr().Unmap()
	var wq waiter.Queue
	ep, terr := n.stack.NewEndpoint(tcp.ProtocolNumber, protoOf(a), &wq)
	if terr != nil {
		return nil, nil, fmt.Errorf("sim: node %s: TCP endpoint: %s", n.name, terr)
	}
	if opts.MSS > 0 {
		if terr := ep.SetSockOptInt(tcpip.MaxSegOption, opts.MSS); terr != nil {
			ep.Close()
			return nil, nil, fmt.Errorf("sim: node %s: TCP MSS %d: %s", n.name, opts.MSS, terr)
		}
	}
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: dst.Port()})
	if _, started := terr.(*tcpip.ErrConnectStarted); started {
		select {
		case <-ch:
			terr = ep.LastError()
		case <-time.After(opts.ConnectTimeout):
			ep.Close()
			return nil, nil, fmt.Errorf("sim: node %s: TCP connect to %v timed out", n.name, dst)
		}
	}
	if terr != nil {
		ep.Close()
		return nil, nil, fmt.Errorf("sim: node %s: TCP connect to %v: %s", n.name, dst, terr)
	}
	return gonet.NewTCPConn(&wq, ep), ep, nil
}

// Bytes returns the octets written so far (accepted by the local stack).
func (b *TCPBulk) Bytes() uint64 { return b.bytes.Load() }

// Halt asks the sender to stop after its current write and returns at
// once (for scheduler events, which must not block).
func (b *TCPBulk) Halt() { b.stop.Store(true) }

// Stop ends the transfer, waits for the sender and returns its error (nil
// after a clean run).
func (b *TCPBulk) Stop() error {
	b.stop.Store(true)
	<-b.done
	if b.err == io.EOF {
		return nil
	}
	return b.err
}
