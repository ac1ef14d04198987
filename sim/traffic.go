package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// PingOptions configure a pinger.
type PingOptions struct {
	// Count is the number of echo requests (0: until Stop).
	Count int
	// Interval between requests (1 s when zero).
	Interval time.Duration
	// Size is the echo payload size in bytes (56 when zero, at least 16).
	Size int
	// Start delays the first request from now.
	Start time.Duration
}

// PingStats summarise a pinger's results.
type PingStats struct {
	Sent, Received, SendErrors uint64
	MinRTT, MaxRTT, SumRTT     time.Duration
}

// MeanRTT returns the mean round-trip time.
func (s PingStats) MeanRTT() time.Duration {
	if s.Received == 0 {
		return 0
	}
	return s.SumRTT / time.Duration(s.Received)
}

// Pinger sends ICMP echo requests (RFC 792; RFC 4443 for IPv6) from a node
// through a gVisor ICMP endpoint and measures round-trip times in virtual
// time.
type Pinger struct {
	node    *Node
	ep      tcpip.Endpoint
	wq      waiter.Queue
	entry   waiter.Entry
	dst     netip.Addr
	v6      bool
	opts    PingOptions
	seq     uint16
	sentAt  map[uint16]time.Duration
	pending bool
	stopped bool
	ev      *Event
	stats   PingStats
}

const (
	defaultPingSize = 56
	minPingSize     = 16
	// maxPingOutstanding bounds the requests a pinger remembers.
	maxPingOutstanding = 4096
)

// Ping starts pinging dst.
func (n *Node) Ping(dst netip.Addr, opts PingOptions) (*Pinger, error) {
	dst = dst.Unmap()
	if !dst.IsValid() {
		return nil, fmt.Errorf("sim: node %s: ping: invalid address", n.name)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Size == 0 {
		opts.Size = defaultPingSize
	}
	if opts.Size < minPingSize || opts.Size > MaxMTU-100 {
		return nil, fmt.Errorf("sim: node %s: ping size %d outside [%d, %d]", n.name, opts.Size, minPingSize, MaxMTU-100)
	}
	p := &Pinger{node: n, dst: dst, v6: !dst.Is4(), opts: opts, sentAt: make(map[uint16]time.Duration)}
	tp, np := icmp.ProtocolNumber4, ipv4.ProtocolNumber
	if p.v6 {
		tp, np = icmp.ProtocolNumber6, protoOf(dst)
	}
	ep, terr := n.stack.NewEndpoint(tp, np, &p.wq)
	if terr != nil {
		return nil, fmt.Errorf("sim: node %s: ICMP endpoint: %s", n.name, terr)
	}
	if terr := ep.Bind(tcpip.FullAddress{}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("sim: node %s: ICMP bind: %s", n.name, terr)
	}
	p.ep = ep
	p.entry.Init(p, waiter.ReadableEvents)
	p.wq.EventRegister(&p.entry)
	p.ev = n.net.sched.After(opts.Start, p.send)
	return p, nil
}

// Stats returns a copy of the counters.
func (p *Pinger) Stats() PingStats { return p.stats }

// Stop stops sending and closes the endpoint.
func (p *Pinger) Stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	p.node.net.sched.Cancel(p.ev)
	p.wq.EventUnregister(&p.entry)
	p.ep.Close()
}

func (p *Pinger) send() {
	if p.stopped {
		return
	}
	s := p.node.net.sched
	msg := make([]byte, header.ICMPv4MinimumSize+p.opts.Size)
	if p.v6 {
		msg[0] = byte(header.ICMPv6EchoRequest)
	} else {
		msg[0] = byte(header.ICMPv4Echo)
	}
	binary.BigEndian.PutUint16(msg[6:], p.seq)
	binary.BigEndian.PutUint64(msg[8:], uint64(s.Elapsed()))
	to := tcpip.FullAddress{Addr: tcpip.AddrFromSlice(p.dst.AsSlice())}
	if _, terr := p.ep.Write(bytes.NewReader(msg), tcpip.WriteOptions{To: &to}); terr != nil {
		p.stats.SendErrors++
	} else {
		p.stats.Sent++
		if len(p.sentAt) >= maxPingOutstanding {
			clear(p.sentAt)
		}
		p.sentAt[p.seq] = s.Elapsed()
	}
	p.seq++
	if p.opts.Count == 0 || int(p.stats.Sent+p.stats.SendErrors) < p.opts.Count {
		p.ev = s.After(p.opts.Interval, p.send)
	}
}

// NotifyEvent implements waiter.EventListener; it defers reading to an event.
func (p *Pinger) NotifyEvent(waiter.EventMask) {
	if p.pending || p.stopped {
		return
	}
	p.pending = true
	p.node.net.sched.After(0, p.drain)
}

func (p *Pinger) drain() {
	p.pending = false
	now := p.node.net.sched.Elapsed()
	for !p.stopped {
		var b bytes.Buffer
		if _, terr := p.ep.Read(&b, tcpip.ReadOptions{}); terr != nil {
			return
		}
		if b.Len() < header.ICMPv4MinimumSize {
			continue
		}
		seq := binary.BigEndian.Uint16(b.Bytes()[6:])
		at, ok := p.sentAt[seq]
		if !ok {
			continue // duplicate or forgotten
		}
		delete(p.sentAt, seq)
		rtt := now - at
		if p.stats.Received == 0 || rtt < p.stats.MinRTT {
			p.stats.MinRTT = rtt
		}
		p.stats.MaxRTT = max(p.stats.MaxRTT, rtt)
		p.stats.SumRTT += rtt
		p.stats.Received++
	}
}

// UDPFlowOptions configure a constant-bit-rate UDP flow.
type UDPFlowOptions struct {
	// Size is the UDP payload size (at least UDPFlowHeaderLen).
	Size int
	// Interval between datagrams (Size*8/Interval is the bit rate).
	Interval time.Duration
	// Count bounds the datagrams (0: until Stop).
	Count int
	// Start delays the first datagram from now.
	Start time.Duration
}

// UDPFlowHeaderLen is the flow header at the start of each datagram: a
// 64-bit sequence number and the 64-bit virtual send time in nanoseconds.
const UDPFlowHeaderLen = 16

// UDPFlow sends constant-bit-rate UDP datagrams from a node socket.
type UDPFlow struct {
	conn    *UDPConn
	dst     netip.AddrPort
	opts    UDPFlowOptions
	seq     uint64
	ev      *Event
	stopped bool
}

// StartUDPFlow sends datagrams from the socket bound to src (port 0: an
// ephemeral socket) to dst.
func (n *Node) StartUDPFlow(src, dst netip.AddrPort, opts UDPFlowOptions) (*UDPFlow, error) {
	if opts.Size < UDPFlowHeaderLen || opts.Size > MaxMTU-100 {
		return nil, fmt.Errorf("sim: node %s: UDP flow size %d outside [%d, %d]", n.name, opts.Size, UDPFlowHeaderLen, MaxMTU-100)
	}
	if opts.Interval <= 0 {
		return nil, fmt.Errorf("sim: node %s: UDP flow needs a positive interval", n.name)
	}
	c, err := n.udpConnFor(src)
	if err != nil {
		return nil, err
	}
	f := &UDPFlow{conn: c, dst: dst, opts: opts}
	f.ev = n.net.sched.After(opts.Start, f.send)
	return f, nil
}

// Sent returns the number of datagrams sent.
func (f *UDPFlow) Sent() uint64 { return f.seq }

// Stop stops the flow.
func (f *UDPFlow) Stop() {
	f.stopped = true
	f.conn.node.net.sched.Cancel(f.ev)
}

func (f *UDPFlow) send() {
	if f.stopped {
		return
	}
	s := f.conn.node.net.sched
	b := make([]byte, f.opts.Size)
	binary.BigEndian.PutUint64(b, f.seq)
	binary.BigEndian.PutUint64(b[8:], uint64(s.Elapsed()))
	_ = f.conn.SendTo(f.dst, b) // failures are counted on the socket
	f.seq++
	if f.opts.Count == 0 || int(f.seq) < f.opts.Count {
		f.ev = s.After(f.opts.Interval, f.send)
	}
}

// UDPSinkStats summarise what a sink received.
type UDPSinkStats struct {
	Received, Bytes              uint64
	Reordered, Duplicates        uint64
	MinDelay, MaxDelay, SumDelay time.Duration
	HighestSeq                   uint64
}

// MeanDelay returns the mean one-way delay.
func (s UDPSinkStats) MeanDelay() time.Duration {
	if s.Received == 0 {
		return 0
	}
	return s.SumDelay / time.Duration(s.Received)
}

// UDPSink receives a UDP flow and measures one-way delay (virtual clocks
// are shared), reordering and duplicates.
type UDPSink struct {
	conn  *UDPConn
	seen  map[uint64]struct{}
	stats UDPSinkStats
}

// maxSinkSeen bounds the sequence numbers a sink remembers for duplicate
// detection.
const maxSinkSeen = 1 << 16

// ListenUDPSink opens a sink on addr.
func (n *Node) ListenUDPSink(addr netip.AddrPort) (*UDPSink, error) {
	k := &UDPSink{seen: make(map[uint64]struct{})}
	c, err := n.ListenUDP(addr, k.handle)
	if err != nil {
		return nil, err
	}
	k.conn = c
	return k, nil
}

// Stats returns a copy of the counters.
func (k *UDPSink) Stats() UDPSinkStats { return k.stats }

// Conn returns the sink's socket.
func (k *UDPSink) Conn() *UDPConn { return k.conn }

func (k *UDPSink) handle(_, _ netip.AddrPort, p []byte) {
	if len(p) < UDPFlowHeaderLen {
		return
	}
	seq := binary.BigEndian.Uint64(p)
	if _, dup := k.seen[seq]; dup {
		k.stats.Duplicates++
		return
	}
	if len(k.seen) >= maxSinkSeen {
		clear(k.seen)
	}
	k.seen[seq] = struct{}{}
	d := k.conn.node.net.sched.Elapsed() - time.Duration(binary.BigEndian.Uint64(p[8:]))
	if k.stats.Received == 0 || d < k.stats.MinDelay {
		k.stats.MinDelay = d
	}
	k.stats.MaxDelay = max(k.stats.MaxDelay, d)
	k.stats.SumDelay += d
	if k.stats.Received > 0 && seq < k.stats.HighestSeq {
		k.stats.Reordered++
	}
	k.stats.HighestSeq = max(k.stats.HighestSeq, seq)
	k.stats.Received++
	k.stats.Bytes += uint64(len(p))
}
