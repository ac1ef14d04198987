package interop

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/pqlab/pqlab/interop/realnet"
)

// ICMP echo constants (RFC 792).
const (
	icmpEchoReply     = 0
	icmpEchoRequest   = 8
	icmpv6EchoRequest = 128 // RFC 4443 Section 4.1
	icmpv6EchoReply   = 129
	icmpHeaderLen     = 8
	defaultEchoWait   = 2 * time.Second
)

// PingResult is the outcome of Ping.
type PingResult struct {
	Sent, Received int
	RTTs           []time.Duration
}

// Ping sends count ICMP (IPv4) or ICMPv6 echo requests with size bytes of payload from src to dst
// inside namespace ns, one at a time, each waiting up to two seconds (less if ctx ends sooner), and
// returns an error unless every request was answered with the same payload. The raw socket is
// created in ns with realnet.InNetns; no ping binary is needed. For ICMPv6 the kernel computes
// the checksum (RFC 3542 Section 3.1).
func Ping(ctx context.Context, ns *Netns, src, dst netip.Addr, count, size int) (PingResult, error) {
	var res PingResult
	if !src.IsValid() || src.Is4() != dst.Is4() || count < 1 || size < 0 || size > 65000 {
		return res, errors.New("interop: Ping needs two addresses of one family, count >= 1 and a sane size")
	}
	network, request, reply := "ip4:icmp", byte(icmpEchoRequest), byte(icmpEchoReply)
	if !src.Is4() {
		network, request, reply = "ip6:ipv6-icmp", icmpv6EchoRequest, icmpv6EchoReply
	}
	var conn *net.IPConn
	err := realnet.InNetns(ns.Path(), func() error {
		c, err := net.ListenIP(network, &net.IPAddr{IP: src.AsSlice()})
		conn = c
		return err
	})
	if err != nil {
		return res, fmt.Errorf("interop: ICMP socket in %s: %w", ns.Name, err)
	}
	defer conn.Close()
	id := uint16(rand.Uint32())
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	buf := make([]byte, 65536)
	for seq := 1; seq <= count; seq++ {
		msg := make([]byte, icmpHeaderLen, icmpHeaderLen+size)
		msg[0] = request
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], uint16(seq))
		msg = append(msg, payload...)
		if src.Is4() {
			binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
		}
		start := time.Now()
		if _, err := conn.WriteToIP(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return res, fmt.Errorf("interop: send echo request: %w", err)
		}
		res.Sent++
		deadline := start.Add(defaultEchoWait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		conn.SetReadDeadline(deadline)
		for {
			n, from, err := conn.ReadFromIP(buf)
			if err != nil {
				break // timed out: counted as lost
			}
			r := buf[:n]
			if len(r) < icmpHeaderLen || r[0] != reply || !from.IP.Equal(dst.AsSlice()) ||
				binary.BigEndian.Uint16(r[4:]) != id || binary.BigEndian.Uint16(r[6:]) != uint16(seq) {
				continue
			}
			if !bytes.Equal(r[icmpHeaderLen:], payload) {
				return res, fmt.Errorf("interop: echo reply %d from %v with a different payload", seq, dst)
			}
			res.Received++
			res.RTTs = append(res.RTTs, time.Since(start))
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	if res.Received != count {
		return res, fmt.Errorf("interop: %d of %d echo replies from %v to %v in %s", res.Received, count, dst, src, ns.Name)
	}
	return res, nil
}

// inetChecksum is the Internet checksum of RFC 1071.
func inetChecksum(b []byte) uint16 {
	var s uint32
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// TransferTCP opens a TCP connection from client (namespace cns, address caddr) to server
// (namespace sns, address saddr), sends n pseudo-random bytes each way at the same time and
// returns an error unless both sides received exactly the other's bytes. seed makes the data
// reproducible.
func TransferTCP(ctx context.Context, cns *Netns, caddr netip.Addr, sns *Netns, saddr netip.Addr, n int, seed uint64) error {
	up, down := testData(n, seed), testData(n, seed+1)
	var ln *net.TCPListener
	err := realnet.InNetns(sns.Path(), func() error {
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(saddr, 0)))
		ln = l
		return err
	})
	if err != nil {
		return fmt.Errorf("interop: listen in %s: %w", sns.Name, err)
	}
	defer ln.Close()
	if d, ok := ctx.Deadline(); ok {
		ln.SetDeadline(d)
	}
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			srvErr <- fmt.Errorf("interop: accept: %w", err)
			return
		}
		defer c.Close()
		srvErr <- exchange(ctx, c, down, up, "server")
	}()
	var cc *net.TCPConn
	err = realnet.InNetns(cns.Path(), func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(caddr, 0))}
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err == nil {
			cc = c.(*net.TCPConn)
		}
		return err
	})
	if err != nil {
		ln.Close()
		<-srvErr
		return fmt.Errorf("interop: dial from %s: %w", cns.Name, err)
	}
	defer cc.Close()
	cliErr := exchange(ctx, cc, up, down, "client")
	if cliErr != nil {
		cc.Close()
	}
	return errors.Join(cliErr, <-srvErr)
}

// exchange writes send and, concurrently, reads until EOF, comparing with want.
func exchange(ctx context.Context, c *net.TCPConn, send, want []byte, who string) error {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(send)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	got, rerr := io.ReadAll(io.LimitReader(c, int64(len(want))+1))
	if err := <-werr; err != nil {
		return fmt.Errorf("interop: %s write: %w", who, err)
	}
	if rerr != nil {
		return fmt.Errorf("interop: %s read after %d of %d bytes: %w", who, len(got), len(want), rerr)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("interop: %s received %d bytes, not the %d sent", who, len(got), len(want))
	}
	return nil
}

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}
