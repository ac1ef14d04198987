package realnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func checksum(b []byte) uint16 {
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

// TestTUN opens a TUN device in a namespace, sends an ICMP echo request from a raw socket through
// the kernel into the TUN device, reads it there, and writes the echo reply back through the TUN
// device to the socket: both directions of the inner path pqlab's driver will use.
func TestTUN(t *testing.T) {
	name := testNetns(t)
	if _, err := os.Stat(tunDevice); err != nil {
		t.Fatalf("%s missing: %v", tunDevice, err)
	}
	var tun *TUN
	if err := InNetns(NetnsPath(name), func() (err error) { tun, err = OpenTUN("pqt0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	if tun.Name() != "pqt0" {
		t.Errorf("Name() = %q", tun.Name())
	}
	ipc := IPConfig{Netns: name}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// As a tunnel driver would: local inner address on the device, route to the remote selector.
	if err := ipc.SetupTUN(ctx, "pqt0", []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")}, 1400); err != nil {
		t.Fatal(err)
	}
	remote := netip.MustParsePrefix("198.51.100.2/32")
	if err := ipc.AddRoute(ctx, remote, "pqt0", netip.MustParseAddr("198.51.100.1")); err != nil {
		t.Fatal(err)
	}
	if out, err := ipc.RouteGet(ctx, remote.Addr()); err != nil || !strings.Contains(out, "dev pqt0 src 198.51.100.1") {
		t.Fatalf("route get: %q %v", out, err)
	}

	var icmp *net.IPConn
	err := InNetns(NetnsPath(name), func() (err error) {
		icmp, err = net.ListenIP("ip4:icmp", &net.IPAddr{IP: net.IPv4(198, 51, 100, 1)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer icmp.Close()

	echo := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'q', 'l', 'a', 'b'}
	binary.BigEndian.PutUint16(echo[2:], checksum(echo))
	if _, err := icmp.WriteToIP(echo, &net.IPAddr{IP: net.IPv4(198, 51, 100, 2)}); err != nil {
		t.Fatal(err)
	}

	// Read from the TUN device until the echo request shows up (skipping anything else).
	buf := make([]byte, 1500)
	var req []byte
	tun.SetReadDeadline(time.Now().Add(3 * time.Second))
	for req == nil {
		n, err := tun.ReadPacket(buf)
		if err != nil {
			t.Fatalf("reading TUN: %v", err)
		}
		p := buf[:n]
		if n >= 20+len(echo) && p[0]>>4 == 4 && p[9] == 1 && bytes.Equal(p[20:], echo) {
			req = append([]byte(nil), p...)
		}
	}
	if !bytes.Equal(req[12:16], []byte{198, 51, 100, 1}) || !bytes.Equal(req[16:20], []byte{198, 51, 100, 2}) {
		t.Fatalf("echo request from %v to %v", net.IP(req[12:16]), net.IP(req[16:20]))
	}

	// Answer it through the TUN device.
	reply := append([]byte(nil), req...)
	copy(reply[12:16], req[16:20])
	copy(reply[16:20], req[12:16])
	reply[10], reply[11] = 0, 0
	binary.BigEndian.PutUint16(reply[10:], checksum(reply[:20]))
	reply[20] = 0 // echo reply
	reply[22], reply[23] = 0, 0
	binary.BigEndian.PutUint16(reply[22:], checksum(reply[20:]))
	if err := tun.WritePacket(reply); err != nil {
		t.Fatal(err)
	}
	icmp.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		n, from, err := icmp.ReadFromIP(buf)
		if err != nil {
			t.Fatalf("no echo reply through the TUN device: %v", err)
		}
		if buf[0] == 0 && from.IP.Equal(net.IPv4(198, 51, 100, 2)) {
			if !bytes.Equal(buf[8:n], echo[8:]) {
				t.Errorf("reply payload %q", buf[8:n])
			}
			break
		}
	}

	// Removing the route makes the remote unreachable again.
	if err := ipc.DelRoute(ctx, remote, "pqt0"); err != nil {
		t.Fatal(err)
	}
	if out, err := ipc.RouteGet(ctx, remote.Addr()); err == nil {
		t.Errorf("route to %v after DelRoute: %q", remote, out)
	}
	if err := ipc.AddRoute(ctx, netip.Prefix{}, "pqt0", netip.Addr{}); err == nil {
		t.Error("invalid route accepted")
	}

	// Refusals, deadlines and close.
	for _, bad := range [][]byte{nil, {0x45}, {0x60, 0}, make([]byte, 40)} {
		if err := tun.WritePacket(bad); err == nil {
			t.Errorf("WritePacket(% x) accepted", bad)
		}
	}
	tun.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := tun.ReadPacket(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		// Only the test's own traffic reaches pqt0, so an idle read must time out.
		t.Errorf("idle ReadPacket: %v", err)
	}
	if err := tun.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tun.ReadPacket(buf); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadPacket after Close: %v", err)
	}
	if out, err := exec.Command("ip", "-n", name, "link", "show", "pqt0").CombinedOutput(); err == nil {
		t.Errorf("pqt0 still exists after Close: %s", out)
	}
}

func TestOpenTUNRejectsLongName(t *testing.T) {
	if _, err := OpenTUN(strings.Repeat("x", MaxIfaceName+1)); err == nil {
		t.Error("16-byte interface name accepted")
	}
}
