package realnet

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// TUN sizes.
const (
	// MaxIfaceName is the longest interface name Linux accepts (IFNAMSIZ minus the NUL).
	MaxIfaceName = unix.IFNAMSIZ - 1
	// minIPv4Header is the least an IPv4 header takes (RFC 791, Section 3.1).
	minIPv4Header = 20
	// ipv6Header is the fixed IPv6 header length (RFC 8200, Section 3).
	ipv6Header = 40
	// tunDevice is the clone device of the Linux TUN/TAP driver.
	tunDevice = "/dev/net/tun"
)

// TUN is a Linux layer-3 TUN device opened without the packet-information prefix (IFF_NO_PI):
// every read returns one IP packet and every write injects one, as if it had arrived on the
// interface. The descriptor is non-blocking and served by the Go runtime poller, so read deadlines
// work. Configuring the interface (addresses, MTU, up, routes) is left to the caller.
type TUN struct {
	f    *os.File
	name string
}

// OpenTUN creates (or attaches to) the TUN interface called name in the calling thread's network
// namespace; call it inside InNetns to create it in another namespace. An empty name lets the
// kernel pick one ("tun0", ...); Name reports the result.
func OpenTUN(name string) (*TUN, error) {
	if len(name) > MaxIfaceName {
		return nil, fmt.Errorf("realnet: interface name %q longer than %d bytes", name, MaxIfaceName)
	}
	fd, err := unix.Open(tunDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("realnet: open %s: %w", tunDevice, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("realnet: interface name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("realnet: TUNSETIFF %q: %w", name, err)
	}
	// os.NewFile sees O_NONBLOCK and registers the descriptor with the runtime poller.
	f := os.NewFile(uintptr(fd), tunDevice)
	if f == nil {
		unix.Close(fd)
		return nil, errors.New("realnet: TUN descriptor rejected")
	}
	return &TUN{f: f, name: ifr.Name()}, nil
}

// Name returns the interface name.
func (t *TUN) Name() string { return t.name }

// ReadPacket reads one IP packet into buf and returns its length. A packet longer than buf is
// truncated by the kernel; size buf for the interface MTU.
func (t *TUN) ReadPacket(buf []byte) (int, error) {
	n, err := t.f.Read(buf)
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("realnet: read %s: %w", t.name, err)
	}
	return n, nil
}

// WritePacket injects one IPv4 or IPv6 packet into the kernel as if received on the interface.
// The kernel infers the protocol from the version nibble, so anything else is refused here.
func (t *TUN) WritePacket(pkt []byte) error {
	if len(pkt) == 0 {
		return errors.New("realnet: empty packet")
	}
	switch v := pkt[0] >> 4; {
	case v == 4 && len(pkt) >= minIPv4Header:
	case v == 6 && len(pkt) >= ipv6Header:
	default:
		return fmt.Errorf("realnet: %d-byte packet with IP version %d is not an IP packet", len(pkt), v)
	}
	if _, err := t.f.Write(pkt); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("realnet: write %s: %w", t.name, err)
	}
	return nil
}

// SetReadDeadline bounds pending and future ReadPacket calls; the zero time removes the bound.
func (t *TUN) SetReadDeadline(d time.Time) error { return t.f.SetReadDeadline(d) }

// Close closes the descriptor; the kernel removes the interface (a non-persistent TUN device) and
// any pending ReadPacket returns ErrClosed.
func (t *TUN) Close() error { return t.f.Close() }
