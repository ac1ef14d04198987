package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// NATBehavior is a NAT's mapping or filtering behaviour (RFC 4787,
// Sections 4.1 and 5).
type NATBehavior int

// NAT behaviours. A "full cone" NAT is EndpointIndependent mapping and
// filtering; a "port-restricted cone" NAT is EndpointIndependent mapping with
// AddressAndPortDependent filtering; a "symmetric" NAT is
// AddressAndPortDependent mapping and filtering.
const (
	EndpointIndependent NATBehavior = iota
	AddressDependent
	AddressAndPortDependent
)

// String returns the behaviour's name as used in topology files.
func (b NATBehavior) String() string {
	switch b {
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressAndPortDependent:
		return "address-and-port-dependent"
	}
	return fmt.Sprintf("NATBehavior(%d)", int(b))
}

// ParseNATBehavior parses a behaviour name.
func ParseNATBehavior(s string) (NATBehavior, error) {
	for b := EndpointIndependent; b <= AddressAndPortDependent; b++ {
		if b.String() == s {
			return b, nil
		}
	}
	return 0, fmt.Errorf("sim: unknown NAT behaviour %q (want endpoint-independent, address-dependent or address-and-port-dependent)", s)
}

// NATFragments selects what a NAT does with IPv4 fragments.
type NATFragments int

// NAT fragment handling.
const (
	// NATReassemble reassembles fragmented datagrams, translates them and
	// fragments them again at the egress MTU, as Linux connection tracking
	// does.
	NATReassemble NATFragments = iota
	// NATDropFragments drops every fragment.
	NATDropFragments
)

// String returns "reassemble" or "drop".
func (f NATFragments) String() string {
	switch f {
	case NATReassemble:
		return "reassemble"
	case NATDropFragments:
		return "drop"
	}
	return fmt.Sprintf("NATFragments(%d)", int(f))
}

// DefaultNATTimeout is the UDP mapping timeout when none is configured: the
// minimum RFC 4787 (REQ-5) allows.
const DefaultNATTimeout = 2 * time.Minute

// NATConfig configures a NAT box.
type NATConfig struct {
	Name string
	// External is the public IPv4 address of the outside interface.
	External netip.Addr
	// Mapping and Filtering behaviours (RFC 4787).
	Mapping, Filtering NATBehavior
	// Timeout is the UDP mapping lifetime since the last outbound packet
	// (DefaultNATTimeout when zero). Inbound packets refresh it only with
	// InboundRefresh (RFC 4787, REQ-6).
	Timeout        time.Duration
	InboundRefresh bool
	// The NAT keeps the inside port when it is free (port preservation, as
	// Linux masquerading does); otherwise it picks a port in
	// [PortMin, PortMax] (1024-65535 when zero).
	PortMin, PortMax uint16
	// Fragments selects fragment handling.
	Fragments NATFragments
}

// NATDrop counts why a NAT dropped packets.
type NATDrop int

// NAT drop reasons.
const (
	NATDropUnsupported NATDrop = iota // not IPv4 UDP or ICMP echo
	NATDropNoMapping                  // inbound packet matches no mapping
	NATDropFiltered                   // inbound packet refused by the filter
	NATDropFragment                   // fragment dropped by policy or reassembly limits
	NATDropTTL                        // TTL expired
	NATDropTooBig                     // larger than the egress MTU with DF set
	NATDropPorts                      // no free external port
	NATDropNoLink                     // egress side not connected
	NATDropICMPError                  // ICMP error about no live mapping, or not translatable
	numNATDrops
)

// String names the drop reason.
func (d NATDrop) String() string {
	names := [...]string{"unsupported", "no-mapping", "filtered", "fragment", "ttl", "too-big", "ports", "no-link", "icmp-error"}
	if d < 0 || int(d) >= len(names) {
		return fmt.Sprintf("NATDrop(%d)", int(d))
	}
	return names[d]
}

// NATStats are a NAT's counters.
type NATStats struct {
	Outbound, Inbound uint64
	MappingsCreated   uint64
	MappingsExpired   uint64
	Reassembled       uint64
	// ICMPErrors counts translated ICMP errors (RFC 5508, Section 4.2),
	// in both directions.
	ICMPErrors uint64
	// Hairpinned counts inside-to-inside datagrams sent to an external
	// mapping (RFC 4787, Section 6, REQ-9).
	Hairpinned uint64
	// FragNeededSent counts ICMP "fragmentation needed" errors the NAT
	// sent for datagrams with DF set too big for its egress link.
	FragNeededSent uint64
	Drops          [numNATDrops]uint64
}

// NAT is an IPv4 network address and port translator between an inside and
// an outside port (RFC 4787 behaviours for UDP; ICMP echo identifiers are
// mapped like ports, RFC 5508). ICMP errors about translated UDP and echo
// flows are translated too, embedded datagram included (RFC 5508,
// Section 4.2), so path MTU discovery works through the NAT. UDP from an
// inside host to the external address is hairpinned to the inside host
// owning that mapping (RFC 4787, Section 6, REQ-9). A datagram with DF
// set that is too big for the egress link is answered with "fragmentation
// needed" from the external address (RFC 1191), as a NAT router does. It is a
// middlebox of the simulator, not a gVisor stack: it rewrites addresses,
// ports and checksums (RFC 1624 incremental updates) and decrements the TTL.
type NAT struct {
	cfg     NATConfig
	net     *Network
	inside  *natPort
	outside *natPort

	mu       sync.Mutex
	byInside map[natKey]*natMapping
	byPort   map[natPortKey]*natMapping
	reasm    [2]reassembler
	stats    NATStats
}

type natPort struct {
	nat  *NAT
	side int // 0 inside, 1 outside
	name string

	mu   sync.Mutex
	link *Link
	lend int
}

type natKey struct {
	proto  uint8
	inside netip.AddrPort
	remote netip.AddrPort // zeroed parts per mapping behaviour
}

type natPortKey struct {
	proto uint8
	port  uint16
}

type natMapping struct {
	key      natKey
	external uint16
	last     time.Duration
	// Remote endpoints the inside host has sent to, for filtering.
	addrs map[netip.Addr]struct{}
	eps   map[netip.AddrPort]struct{}
}

// AddNAT creates a NAT box; connect its Inside and Outside ports with links.
func (n *Network) AddNAT(cfg NATConfig) (*NAT, error) {
	if err := n.checkName(cfg.Name); err != nil {
		return nil, err
	}
	if !cfg.External.Is4() {
		return nil, fmt.Errorf("sim: NAT %s: external address %v is not IPv4", cfg.Name, cfg.External)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("sim: NAT %s: negative timeout", cfg.Name)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultNATTimeout
	}
	if cfg.PortMin == 0 {
		cfg.PortMin = 1024
	}
	if cfg.PortMax == 0 {
		cfg.PortMax = 65535
	}
	if cfg.PortMin > cfg.PortMax {
		return nil, fmt.Errorf("sim: NAT %s: port range %d-%d is empty", cfg.Name, cfg.PortMin, cfg.PortMax)
	}
	for _, b := range []NATBehavior{cfg.Mapping, cfg.Filtering} {
		if b < EndpointIndependent || b > AddressAndPortDependent {
			return nil, fmt.Errorf("sim: NAT %s: invalid behaviour %d", cfg.Name, b)
		}
	}
	nat := &NAT{
		cfg:      cfg,
		net:      n,
		byInside: make(map[natKey]*natMapping),
		byPort:   make(map[natPortKey]*natMapping),
	}
	nat.inside = &natPort{nat: nat, side: 0, name: cfg.Name + "/inside"}
	nat.outside = &natPort{nat: nat, side: 1, name: cfg.Name + "/outside"}
	n.boxes[cfg.Name] = nat
	return nat, nil
}

// Name returns the NAT's name.
func (nat *NAT) Name() string { return nat.cfg.Name }

// Config returns the NAT's configuration (with defaults filled in).
func (nat *NAT) Config() NATConfig { return nat.cfg }

// Inside returns the port facing the private network.
func (nat *NAT) Inside() Port { return nat.inside }

// Outside returns the port facing the public network.
func (nat *NAT) Outside() Port { return nat.outside }

// Stats returns a copy of the counters.
func (nat *NAT) Stats() NATStats {
	nat.mu.Lock()
	defer nat.mu.Unlock()
	return nat.stats
}

// Mappings returns the number of live mappings.
func (nat *NAT) Mappings() int {
	nat.mu.Lock()
	defer nat.mu.Unlock()
	nat.expireLocked(nat.net.sched.Elapsed())
	return len(nat.byInside)
}

// Mapping returns the external address of a live mapping for an inside UDP
// endpoint talking to remote, if any.
func (nat *NAT) Mapping(inside, remote netip.AddrPort) (netip.AddrPort, bool) {
	nat.mu.Lock()
	defer nat.mu.Unlock()
	m := nat.byInside[nat.key(ipProtoUDP, inside, remote)]
	if m == nil || nat.net.sched.Elapsed()-m.last > nat.cfg.Timeout {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(nat.cfg.External, m.external), true
}

func (p *natPort) PortName() string { return p.name }

func (p *natPort) attach(l *Link, side int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != nil {
		return fmt.Errorf("sim: %s is already attached to link %s", p.name, p.link.name)
	}
	p.link, p.lend = l, side
	return nil
}

func (p *natPort) detach() {
	p.mu.Lock()
	p.link = nil
	p.mu.Unlock()
}

func (p *natPort) deliver(pkt []byte) { p.nat.handle(p.side, pkt) }

func (p *natPort) send(pkt []byte) bool {
	p.mu.Lock()
	l, end := p.link, p.lend
	p.mu.Unlock()
	if l == nil {
		return false
	}
	l.transmit(end, pkt)
	return true
}

func (nat *NAT) key(proto uint8, inside, remote netip.AddrPort) natKey {
	k := natKey{proto: proto, inside: inside}
	switch nat.cfg.Mapping {
	case AddressDependent:
		k.remote = netip.AddrPortFrom(remote.Addr(), 0)
	case AddressAndPortDependent:
		k.remote = remote
	}
	return k
}

func (nat *NAT) drop(d NATDrop) { nat.stats.Drops[d]++ }

// handle processes a packet arriving on side (0 inside, 1 outside).
func (nat *NAT) handle(side int, pkt []byte) {
	now := nat.net.sched.Elapsed()
	nat.mu.Lock()
	pi, ok := ParsePacket(pkt)
	if !ok || pi.Version != 4 {
		nat.drop(NATDropUnsupported)
		nat.mu.Unlock()
		return
	}
	if pi.Fragment {
		if nat.cfg.Fragments == NATDropFragments {
			nat.drop(NATDropFragment)
			nat.mu.Unlock()
			return
		}
		whole, done := nat.reasm[side].add(now, pi, pkt)
		if !done {
			nat.mu.Unlock()
			return
		}
		nat.stats.Reassembled++
		pkt = whole
		pi, _ = ParsePacket(pkt)
	}
	if !decrementTTL(pkt, false) {
		nat.drop(NATDropTTL)
		nat.mu.Unlock()
		return
	}
	icmpErr := isICMPError(pi, pkt)
	hairpin := side == 0 && pi.Dst == nat.cfg.External && pi.Protocol == ipProtoUDP
	in, out := nat.inside, nat.outside
	if side == 1 || hairpin {
		out = nat.inside
	}
	if side == 1 {
		in = nat.outside
	}
	// A datagram too big for the egress link with DF set is answered
	// before translation, so that the error quotes it as its sender sent
	// it (RFC 1191, Section 4; RFC 792). ICMP errors are never answered
	// with ICMP errors (RFC 1122, Section 3.2.2).
	if mtu := out.mtu(); mtu > 0 && len(pkt) > mtu && pi.DontFragment {
		nat.drop(NATDropTooBig)
		var reply []byte
		if !icmpErr {
			reply = fragNeeded(nat.cfg.External, pi.Src, pkt, mtu)
			nat.stats.FragNeededSent++
		}
		nat.mu.Unlock()
		if reply != nil {
			in.send(reply)
		}
		return
	}
	switch {
	case icmpErr:
		ok = nat.translateICMPError(now, side, pi, pkt)
	case hairpin:
		ok = nat.hairpin(now, pi, pkt)
	case side == 0:
		ok = nat.translateOut(now, pi, pkt)
	default:
		ok = nat.translateIn(now, pi, pkt)
	}
	nat.mu.Unlock()
	if !ok {
		return
	}
	nat.emit(out, pkt)
}

// mtu returns the MTU of the link attached to p (0 when none).
func (p *natPort) mtu() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link == nil {
		return 0
	}
	return int(p.link.MTU())
}

// hairpin translates a UDP datagram from an inside host to the external
// address: its source becomes the sender's own external mapping (created if
// needed), then it is filtered and translated like an inbound datagram from
// that external endpoint and sent back inside (RFC 4787, Section 6, REQ-9).
func (nat *NAT) hairpin(now time.Duration, pi PacketInfo, pkt []byte) bool {
	if !nat.translateOut(now, pi, pkt) {
		return false
	}
	pi, _ = ParsePacket(pkt) // the source changed
	if !nat.translateIn(now, pi, pkt) {
		return false
	}
	nat.stats.Hairpinned++
	return true
}

// emit sends pkt out of port p, fragmenting at the link MTU.
func (nat *NAT) emit(p *natPort, pkt []byte) {
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l == nil {
		nat.mu.Lock()
		nat.drop(NATDropNoLink)
		nat.mu.Unlock()
		return
	}
	mtu := int(l.MTU())
	if len(pkt) > mtu && binary.BigEndian.Uint16(pkt[6:8])&0x4000 != 0 {
		nat.mu.Lock()
		nat.drop(NATDropTooBig)
		nat.mu.Unlock()
		return
	}
	for _, f := range ipv4Fragment(pkt, mtu) {
		p.send(f)
	}
}

// transportPorts returns the offsets of the source and destination "ports"
// (UDP ports or the ICMP echo identifier, used for both) and of the checksum
// in the upper-layer header, and whether the packet is translatable.
func transportPorts(pi PacketInfo, pkt []byte) (src, dst, csum int, ok bool) {
	h := pi.HeaderLen
	switch pi.Protocol {
	case ipProtoUDP:
		if len(pkt) < h+udpHeaderLen {
			return 0, 0, 0, false
		}
		return h, h + 2, h + 6, true
	case ipProtoICMP:
		// Echo request (8) and reply (0): identifier at offset 4
		// (RFC 792).
		if len(pkt) < h+8 || (pkt[h] != 8 && pkt[h] != 0) {
			return 0, 0, 0, false
		}
		return h + 4, h + 4, h + 2, true
	}
	return 0, 0, 0, false
}

// rewrite replaces the 16-bit word at off and fixes the IPv4 header checksum
// (for address words) and the transport checksum.
func rewriteWord(pkt []byte, off, csum int, v uint16, pseudo bool) {
	old := binary.BigEndian.Uint16(pkt[off:])
	if old == v {
		return
	}
	binary.BigEndian.PutUint16(pkt[off:], v)
	if csum > 0 {
		c := binary.BigEndian.Uint16(pkt[csum:])
		// A zero UDP checksum means "none" (RFC 768) and stays zero.
		if !(pseudo && c == 0) {
			c = checksumAdjust(c, old, v)
			if pseudo && c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(pkt[csum:], c)
		}
	}
}

// setAddr rewrites the IPv4 address at off (12 source, 16 destination).
func setAddr(pkt []byte, off, csum int, a netip.Addr, pseudo bool) {
	b := a.As4()
	for i := 0; i < 4; i += 2 {
		v := binary.BigEndian.Uint16(b[i:])
		old := binary.BigEndian.Uint16(pkt[off+i:])
		if old == v {
			continue
		}
		// IPv4 header checksum.
		binary.BigEndian.PutUint16(pkt[10:], checksumAdjust(binary.BigEndian.Uint16(pkt[10:]), old, v))
		// The transport checksum covers the addresses through the
		// pseudo-header (UDP only; ICMPv4 has none).
		if pseudo {
			rewriteWord(pkt, off+i, csum, v, true)
		} else {
			binary.BigEndian.PutUint16(pkt[off+i:], v)
		}
	}
}

func (nat *NAT) translateOut(now time.Duration, pi PacketInfo, pkt []byte) bool {
	so, do, co, ok := transportPorts(pi, pkt)
	if !ok {
		nat.drop(NATDropUnsupported)
		return false
	}
	udp := pi.Protocol == ipProtoUDP
	inside := netip.AddrPortFrom(pi.Src, binary.BigEndian.Uint16(pkt[so:]))
	remote := netip.AddrPortFrom(pi.Dst, binary.BigEndian.Uint16(pkt[do:]))
	if !udp {
		remote = netip.AddrPortFrom(pi.Dst, 0)
	}
	k := nat.key(pi.Protocol, inside, remote)
	m := nat.byInside[k]
	if m != nil && now-m.last > nat.cfg.Timeout {
		nat.removeLocked(m)
		m = nil
	}
	if m == nil {
		port, ok := nat.allocPort(now, pi.Protocol, inside.Port())
		if !ok {
			nat.drop(NATDropPorts)
			return false
		}
		m = &natMapping{key: k, external: port, addrs: map[netip.Addr]struct{}{}, eps: map[netip.AddrPort]struct{}{}}
		nat.byInside[k] = m
		nat.byPort[natPortKey{pi.Protocol, port}] = m
		nat.stats.MappingsCreated++
	}
	m.last = now
	m.addrs[remote.Addr()] = struct{}{}
	m.eps[remote] = struct{}{}
	setAddr(pkt, 12, co, nat.cfg.External, udp)
	rewriteWord(pkt, so, co, m.external, udp)
	nat.stats.Outbound++
	return true
}

func (nat *NAT) translateIn(now time.Duration, pi PacketInfo, pkt []byte) bool {
	so, do, co, ok := transportPorts(pi, pkt)
	if !ok || pi.Dst != nat.cfg.External {
		nat.drop(NATDropUnsupported)
		return false
	}
	udp := pi.Protocol == ipProtoUDP
	m := nat.byPort[natPortKey{pi.Protocol, binary.BigEndian.Uint16(pkt[do:])}]
	if m != nil && now-m.last > nat.cfg.Timeout {
		nat.removeLocked(m)
		m = nil
	}
	if m == nil {
		nat.drop(NATDropNoMapping)
		return false
	}
	remote := netip.AddrPortFrom(pi.Src, binary.BigEndian.Uint16(pkt[so:]))
	if !udp {
		remote = netip.AddrPortFrom(pi.Src, 0)
	}
	switch nat.cfg.Filtering {
	case AddressDependent:
		if _, ok := m.addrs[remote.Addr()]; !ok {
			nat.drop(NATDropFiltered)
			return false
		}
	case AddressAndPortDependent:
		if _, ok := m.eps[remote]; !ok {
			nat.drop(NATDropFiltered)
			return false
		}
	}
	if nat.cfg.InboundRefresh {
		m.last = now
	}
	setAddr(pkt, 16, co, m.key.inside.Addr(), udp)
	rewriteWord(pkt, do, co, m.key.inside.Port(), udp)
	nat.stats.Inbound++
	return true
}

// allocPort picks an external port: the inside port if free (port
// preservation), else the next free one in the range, searching from the
// inside port's position.
func (nat *NAT) allocPort(now time.Duration, proto uint8, want uint16) (uint16, bool) {
	free := func(p uint16) bool {
		m := nat.byPort[natPortKey{proto, p}]
		if m != nil && now-m.last > nat.cfg.Timeout {
			nat.removeLocked(m)
			m = nil
		}
		return m == nil
	}
	lo, hi := nat.cfg.PortMin, nat.cfg.PortMax
	if want != 0 && free(want) {
		return want, true
	}
	span := int(hi) - int(lo) + 1
	start := int(want)
	for i := 0; i < span; i++ {
		p := uint16(int(lo) + (start-int(lo)+i+span)%span)
		if free(p) {
			return p, true
		}
	}
	return 0, false
}

func (nat *NAT) removeLocked(m *natMapping) {
	delete(nat.byInside, m.key)
	delete(nat.byPort, natPortKey{m.key.proto, m.external})
	nat.stats.MappingsExpired++
}

func (nat *NAT) expireLocked(now time.Duration) {
	for _, m := range nat.byInside {
		if now-m.last > nat.cfg.Timeout {
			nat.removeLocked(m)
		}
	}
}
