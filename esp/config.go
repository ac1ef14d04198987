package esp

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"unsafe"
)

// Mode is the ESP mode of an SA (RFC 4303 Section 3.1).
type Mode uint8

// Modes. The zero value is tunnel mode.
const (
	ModeTunnel    Mode = iota // the payload is a whole IP packet (next header 4 or 41)
	ModeTransport             // ESP sits between the IP header and its payload
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeTunnel:
		return "tunnel"
	case ModeTransport:
		return "transport"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Encap is how ESP packets of an SA travel between the gateways.
type Encap uint8

// Encapsulations.
const (
	EncapUDP Encap = iota // ESP in UDP, port 4500 (RFC 3948); the zero value
	EncapRaw              // ESP directly over IP, protocol 50
)

// String returns the encapsulation's name.
func (e Encap) String() string {
	switch e {
	case EncapUDP:
		return "udp"
	case EncapRaw:
		return "raw"
	}
	return "Encap(" + strconv.Itoa(int(e)) + ")"
}

// Path is the outer addressing of an SA: what the caller's output
// function needs to send a sealed packet. The data plane does not use it.
type Path struct {
	Encap  Encap
	Local  netip.AddrPort // gateway's outer address (port 4500 with UDP)
	Remote netip.AddrPort // peer's outer address
}

// SAConfig is what the IKE engine hands over to install one direction of
// a Child SA.
type SAConfig struct {
	// SPI is the value carried in the ESP header: for an inbound SA the SPI
	// this end chose, for an outbound SA the peer's.
	SPI   uint32
	Suite Suite
	Keys  Keys
	Mode  Mode
	// Local and Remote are the traffic selectors of this end and of the
	// peer (the initiator's TSi/TSr swap for the responder). Outbound
	// packets must go from Local to Remote, inbound packets from Remote to
	// Local (RFC 4301 Section 5.2, step 4). Empty lists match nothing.
	Local, Remote []Selector
	Lifetime      Lifetime
	// ReplayWindow is the inbound anti-replay window (0:
	// DefaultReplayWindow; negative: no replay check, RFC 4303 Section
	// 3.4.3 allows disabling it only for manually keyed SAs).
	ReplayWindow int
	// TFCPadTo pads outbound tunnel-mode payloads to at least this many
	// octets (Traffic Flow Confidentiality padding, RFC 4303 Section 2.7).
	TFCPadTo int
	// Rand supplies the AES-CBC IVs of an outbound SA (RFC 3602 Section 2.1).
	Rand io.Reader
	// IfID ties the SA to a route-based tunnel interface, like a Linux
	// XFRM interface ID.
	IfID uint32
	Path Path
	// OrigAddrs, for an inbound transport-mode SA carried in UDP, are the
	// addresses the peer put in the IP header before any NAT rewrote them
	// (the NAT-OA of RFC 3947 Section 5.2; in IKEv2 the original addresses
	// of RFC 7296 Section 2.23.1). OpenTransport then updates the inner
	// TCP or UDP checksum incrementally from them (RFC 3948 Section 3.1.2,
	// item 1); when they are not set it recomputes the checksum (item 2).
	OrigAddrs OrigAddrs
}

// OrigAddrs is a pair of pre-NAT addresses: the peer's source and the
// destination the peer addressed (RFC 3948 Section 3.1.2).
type OrigAddrs struct {
	Src, Dst netip.Addr
}

// valid reports whether both addresses are set and of the same family.
func (o OrigAddrs) valid() bool {
	return o.Src.IsValid() && o.Dst.IsValid() && o.Src.Is4() == o.Dst.Is4()
}

func (c *SAConfig) clone() SAConfig {
	d := *c
	d.Keys = Keys{Encr: slices.Clone(c.Keys.Encr), Integ: slices.Clone(c.Keys.Integ)}
	d.Local = slices.Clone(c.Local)
	d.Remote = slices.Clone(c.Remote)
	return d
}

func (c *SAConfig) check() error {
	if c.SPI == 0 {
		return errors.New("esp: SPI 0 is reserved (RFC 4303 Section 2.1)")
	}
	if c.Mode > ModeTransport {
		return fmt.Errorf("esp: unknown mode %d", c.Mode)
	}
	for _, ts := range append(slices.Clip(c.Local), c.Remote...) {
		if !ts.Valid() {
			return fmt.Errorf("esp: invalid traffic selector %v", ts)
		}
	}
	if c.TFCPadTo < 0 || c.TFCPadTo > 0xffff {
		return errors.New("esp: TFC padding target out of range")
	}
	return nil
}

// sliceForAppend extends in by n bytes, reusing its capacity when it can.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total, total+total/4)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}

// inexactOverlap reports whether x and y share memory without starting at
// the same address, which the AEAD and CBC implementations reject.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	px := uintptr(unsafe.Pointer(unsafe.SliceData(x)))
	py := uintptr(unsafe.Pointer(unsafe.SliceData(y)))
	if px == py {
		return false
	}
	return px < py+uintptr(len(y)) && py < px+uintptr(len(x))
}

var errOverlap = errors.New("esp: output buffer overlaps the packet")
