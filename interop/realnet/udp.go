package realnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Well-known ports and sizes of IKE over UDP.
const (
	// IKEPort is the IKE port. See RFC 7296, Section 2.
	IKEPort = 500
	// NATTPort is the UDP port of NAT traversal, shared by IKE and ESP in UDP. See RFC 7296,
	// Section 2.23 and RFC 3948, Section 2.
	NATTPort = 4500
	// NonESPMarkerLen is the length of the four zero bytes that precede an IKE message on the
	// NAT-T port. See RFC 3948, Section 2.2.
	NonESPMarkerLen = 4
	// IKEHeaderLen is the length of the fixed IKE header. See RFC 7296, Section 3.1.
	IKEHeaderLen = 28
	// ESPHeaderLen is the length of the ESP SPI and sequence number fields, the least an ESP packet
	// carries. See RFC 4303, Section 2.
	ESPHeaderLen = 8
	// KeepaliveByte is the only octet of a NAT-keepalive packet. See RFC 3948, Section 2.3.
	KeepaliveByte = 0xFF
	// MaxDatagram is the largest UDP payload an IPv4 or IPv6 datagram can carry.
	MaxDatagram = 65535
	// receiveQueue is how many classified datagrams wait for Receive before readers block.
	receiveQueue = 64
)

// Kind is what a received UDP datagram carries.
type Kind uint8

// Datagram kinds. See RFC 3948, Section 2.
const (
	KindIKE       Kind = iota + 1 // an IKE message (marker stripped on the NAT-T port)
	KindESP                       // an ESP packet starting with its SPI (RFC 3948, Section 2.1)
	KindKeepalive                 // a NAT-keepalive (RFC 3948, Section 2.3)
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindIKE:
		return "IKE"
	case KindESP:
		return "ESP"
	case KindKeepalive:
		return "keepalive"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Classify sorts one UDP payload received on the IKE port (natt false) or the NAT-T port (natt
// true) and returns the payload without the non-ESP marker. On port 500 every datagram is IKE
// (RFC 7296, Section 2.23); on port 4500 a single 0xFF octet is a NAT-keepalive, four zero octets
// introduce IKE, anything else is ESP, whose SPI is never zero (RFC 3948, Sections 2.1 to 2.3).
// The returned payload aliases b.
func Classify(natt bool, b []byte) (Kind, []byte, error) {
	if !natt {
		if len(b) < IKEHeaderLen {
			return 0, nil, fmt.Errorf("realnet: IKE datagram of %d bytes is shorter than the IKE header", len(b))
		}
		return KindIKE, b, nil
	}
	switch {
	case len(b) == 1 && b[0] == KeepaliveByte:
		return KindKeepalive, b, nil
	case len(b) >= NonESPMarkerLen && b[0]|b[1]|b[2]|b[3] == 0:
		if len(b)-NonESPMarkerLen < IKEHeaderLen {
			return 0, nil, fmt.Errorf("realnet: IKE datagram of %d bytes after the non-ESP marker is shorter than the IKE header", len(b)-NonESPMarkerLen)
		}
		return KindIKE, b[NonESPMarkerLen:], nil
	case len(b) >= ESPHeaderLen:
		return KindESP, b, nil
	}
	return 0, nil, fmt.Errorf("realnet: %d-byte datagram on the NAT-T port is neither IKE, ESP nor a keepalive", len(b))
}

// Datagram is one classified UDP datagram received by an Endpoint.
type Datagram struct {
	Kind Kind
	// Payload is the IKE message (without the non-ESP marker) or the ESP packet (from the SPI on).
	// It is owned by the receiver and aliases Raw.
	Payload []byte
	// Raw is the UDP payload as received, non-ESP marker included: what an engine that strips the
	// marker itself (ike.Engine.Handle) takes.
	Raw []byte
	// NATT is set when the datagram arrived on the NAT-T socket.
	NATT bool
	// Local is the address and port of the socket that received it, Remote its sender.
	Local, Remote netip.AddrPort
}

// Endpoint is a pair of UDP sockets, one on the IKE port and one on the NAT-T port, bound to one
// local address. Two reader goroutines classify incoming datagrams (see Classify) and queue them for
// Receive; malformed ones are counted and dropped. The Send methods are safe for concurrent use.
type Endpoint struct {
	ike, nattConn *net.UDPConn
	ikeAddr, natt netip.AddrPort

	in        chan Datagram
	done      chan struct{}
	failed    chan struct{}
	failErr   error
	failOnce  sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup
	malformed atomic.Uint64
}

// Listen opens an Endpoint on addr with the given IKE and NAT-T ports (IKEPort and NATTPort for a
// real peer; 0 picks free ports, which tests use). Call it inside InNetns to bind in a namespace.
func Listen(addr netip.Addr, ikePort, nattPort uint16) (*Endpoint, error) {
	if !addr.IsValid() {
		return nil, errors.New("realnet: invalid local address")
	}
	ike, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, ikePort)))
	if err != nil {
		return nil, fmt.Errorf("realnet: listen IKE port: %w", err)
	}
	natt, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, nattPort)))
	if err != nil {
		ike.Close()
		return nil, fmt.Errorf("realnet: listen NAT-T port: %w", err)
	}
	e := &Endpoint{
		ike:      ike,
		nattConn: natt,
		ikeAddr:  ike.LocalAddr().(*net.UDPAddr).AddrPort(),
		natt:     natt.LocalAddr().(*net.UDPAddr).AddrPort(),
		in:       make(chan Datagram, receiveQueue),
		done:     make(chan struct{}),
		failed:   make(chan struct{}),
	}
	e.wg.Add(2)
	go e.read(ike, false)
	go e.read(natt, true)
	return e, nil
}

// LocalIKE returns the bound address of the IKE socket.
func (e *Endpoint) LocalIKE() netip.AddrPort { return e.ikeAddr }

// LocalNATT returns the bound address of the NAT-T socket.
func (e *Endpoint) LocalNATT() netip.AddrPort { return e.natt }

// Malformed returns how many received datagrams Classify rejected.
func (e *Endpoint) Malformed() uint64 { return e.malformed.Load() }

func (e *Endpoint) read(c *net.UDPConn, natt bool) {
	defer e.wg.Done()
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, MaxDatagram)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-e.done:
			default:
				e.failOnce.Do(func() {
					e.failErr = fmt.Errorf("realnet: receive on %v: %w", local, err)
					close(e.failed)
				})
			}
			return
		}
		kind, payload, err := Classify(natt, buf[:n])
		if err != nil {
			e.malformed.Add(1)
			continue
		}
		raw := append([]byte(nil), buf[:n]...)
		d := Datagram{
			Kind:    kind,
			Payload: raw[n-len(payload):],
			Raw:     raw,
			NATT:    natt,
			Local:   local,
			Remote:  netip.AddrPortFrom(from.Addr().Unmap(), from.Port()),
		}
		select {
		case e.in <- d:
		case <-e.done:
			return
		}
	}
}

// Receive returns the next classified datagram from either socket, in arrival order per socket.
// It returns ctx's error when ctx ends first, ErrClosed after Close, or the first socket error.
func (e *Endpoint) Receive(ctx context.Context) (Datagram, error) {
	select {
	case d := <-e.in:
		return d, nil
	default:
	}
	select {
	case d := <-e.in:
		return d, nil
	case <-ctx.Done():
		return Datagram{}, ctx.Err()
	case <-e.done:
		return Datagram{}, ErrClosed
	case <-e.failed:
		return Datagram{}, e.failErr
	}
}

// Send sends the UDP payload b verbatim from the local port localPort (the Endpoint's IKE or
// NAT-T port) to the peer: for an engine whose datagrams already carry the non-ESP marker on the
// NAT-T port (ike.Datagram: Send(d.Local.Port(), d.Remote, d.Data)).
func (e *Endpoint) Send(localPort uint16, to netip.AddrPort, b []byte) error {
	if len(b) == 0 {
		return errors.New("realnet: empty datagram")
	}
	switch localPort {
	case e.ikeAddr.Port():
		return e.write(e.ike, to, b)
	case e.natt.Port():
		return e.write(e.nattConn, to, b)
	}
	return fmt.Errorf("realnet: no socket on local port %d (have %d and %d)", localPort, e.ikeAddr.Port(), e.natt.Port())
}

// SendIKE sends one IKE message to the peer. With natt false it leaves from the IKE port as is;
// with natt true it leaves from the NAT-T port behind a non-ESP marker (RFC 7296, Section 2.23).
func (e *Endpoint) SendIKE(natt bool, to netip.AddrPort, msg []byte) error {
	if len(msg) < IKEHeaderLen {
		return fmt.Errorf("realnet: IKE message of %d bytes is shorter than the IKE header", len(msg))
	}
	if !natt {
		return e.write(e.ike, to, msg)
	}
	b := make([]byte, NonESPMarkerLen+len(msg))
	copy(b[NonESPMarkerLen:], msg)
	return e.write(e.nattConn, to, b)
}

// SendESP sends one ESP packet (SPI first) from the NAT-T port. See RFC 3948, Section 2.1.
func (e *Endpoint) SendESP(to netip.AddrPort, pkt []byte) error {
	if len(pkt) < ESPHeaderLen {
		return fmt.Errorf("realnet: ESP packet of %d bytes is shorter than its header", len(pkt))
	}
	if pkt[0]|pkt[1]|pkt[2]|pkt[3] == 0 {
		return errors.New("realnet: ESP packet with SPI 0 would read as a non-ESP marker")
	}
	return e.write(e.nattConn, to, pkt)
}

// SendKeepalive sends a NAT-keepalive from the NAT-T port. See RFC 3948, Section 2.3.
func (e *Endpoint) SendKeepalive(to netip.AddrPort) error {
	return e.write(e.nattConn, to, []byte{KeepaliveByte})
}

func (e *Endpoint) write(c *net.UDPConn, to netip.AddrPort, b []byte) error {
	select {
	case <-e.done:
		return ErrClosed
	default:
	}
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("realnet: send to %v: %w", to, err)
	}
	return nil
}

// Close closes both sockets and waits for the readers to stop. It is safe to call more than once.
func (e *Endpoint) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.done)
		err = errors.Join(e.ike.Close(), e.nattConn.Close())
		e.wg.Wait()
	})
	return err
}
