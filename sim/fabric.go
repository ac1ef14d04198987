package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"sync"
)

// Fabric is a scalable stand-in for "the Internet": a router of the
// simulator (not a gVisor stack) with any number of ports, forwarding by
// longest-prefix match in constant time per prefix length. Each port is one
// end of a link, so every attached site has its own access link with its own
// delay, loss and MTU. The fabric decrements TTL / hop limit, fragments IPv4
// packets without DF at the egress MTU, and drops (and counts) what it cannot
// forward; it sends no ICMP. Where ICMP and gVisor's own fragmentation
// matter, put a router node (NodeConfig.Forwarding) on the path instead.
type Fabric struct {
	name string
	net  *Network

	mu     sync.Mutex
	ports  []*FabricPort
	byName map[string]*FabricPort
	tables map[int]map[netip.Prefix]*FabricPort // by prefix length
	lens4  []int                                // IPv4 prefix lengths in use, longest first
	lens6  []int
	stats  FabricStats
}

// FabricStats are a fabric's counters.
type FabricStats struct {
	Forwarded  uint64
	Fragmented uint64 // packets the fabric split
	NoRoute    uint64
	TTL        uint64
	TooBig     uint64 // larger than the egress MTU with DF set, or IPv6
	Malformed  uint64
	NoLink     uint64
}

// FabricPort is a port of a fabric.
type FabricPort struct {
	f    *Fabric
	name string

	mu   sync.Mutex
	link *Link
	end  int
}

// AddFabric creates an empty fabric.
func (n *Network) AddFabric(name string) (*Fabric, error) {
	if err := n.checkName(name); err != nil {
		return nil, err
	}
	f := &Fabric{name: name, net: n, byName: make(map[string]*FabricPort), tables: make(map[int]map[netip.Prefix]*FabricPort)}
	n.boxes[name] = f
	return f, nil
}

// Name returns the fabric's name.
func (f *Fabric) Name() string { return f.name }

// Stats returns a copy of the counters.
func (f *Fabric) Stats() FabricStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// AddPort creates a port named name.
func (f *Fabric) AddPort(name string) (*FabricPort, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byName[name]; ok {
		return nil, fmt.Errorf("sim: fabric %s: duplicate port %q", f.name, name)
	}
	p := &FabricPort{f: f, name: name}
	f.ports = append(f.ports, p)
	f.byName[name] = p
	return p, nil
}

// Port returns the port named name, or nil.
func (f *Fabric) Port(name string) *FabricPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byName[name]
}

// AddRoute sends packets for prefix out of port p. A later route for the same
// prefix replaces the earlier one.
func (f *Fabric) AddRoute(prefix netip.Prefix, p *FabricPort) error {
	if !prefix.IsValid() || p == nil || p.f != f {
		return fmt.Errorf("sim: fabric %s: bad route %v", f.name, prefix)
	}
	prefix = prefix.Masked()
	f.mu.Lock()
	defer f.mu.Unlock()
	l := prefix.Bits()
	if prefix.Addr().Is6() {
		l += 1000 // keep the families apart
	}
	t := f.tables[l]
	if t == nil {
		t = make(map[netip.Prefix]*FabricPort)
		f.tables[l] = t
		if prefix.Addr().Is4() {
			f.lens4 = insertDesc(f.lens4, prefix.Bits())
		} else {
			f.lens6 = insertDesc(f.lens6, prefix.Bits())
		}
	}
	t[prefix] = p
	return nil
}

func insertDesc(s []int, v int) []int {
	s = append(s, v)
	sort.Sort(sort.Reverse(sort.IntSlice(s)))
	return s
}

// Lookup returns the port for dst, or nil.
func (f *Fabric) Lookup(dst netip.Addr) *FabricPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookupLocked(dst)
}

func (f *Fabric) lookupLocked(dst netip.Addr) *FabricPort {
	lens, off := f.lens4, 0
	if dst.Is6() {
		lens, off = f.lens6, 1000
	}
	for _, l := range lens {
		p, _ := dst.Prefix(l)
		if port := f.tables[l+off][p]; port != nil {
			return port
		}
	}
	return nil
}

// PortName implements Port.
func (p *FabricPort) PortName() string { return p.f.name + "/" + p.name }

// Link returns the attached link, or nil.
func (p *FabricPort) Link() *Link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.link
}

func (p *FabricPort) attach(l *Link, side int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != nil {
		return fmt.Errorf("sim: %s is already attached to link %s", p.PortName(), p.link.name)
	}
	p.link, p.end = l, side
	return nil
}

func (p *FabricPort) detach() {
	p.mu.Lock()
	p.link = nil
	p.mu.Unlock()
}

func (p *FabricPort) deliver(pkt []byte) { p.f.forward(pkt) }

func (f *Fabric) forward(pkt []byte) {
	pi, ok := ParsePacket(pkt)
	f.mu.Lock()
	if !ok {
		f.stats.Malformed++
		f.mu.Unlock()
		return
	}
	out := f.lookupLocked(pi.Dst)
	if out == nil {
		f.stats.NoRoute++
		f.mu.Unlock()
		return
	}
	if !decrementTTL(pkt, pi.Version == 6) {
		f.stats.TTL++
		f.mu.Unlock()
		return
	}
	out.mu.Lock()
	l, end := out.link, out.end
	out.mu.Unlock()
	if l == nil {
		f.stats.NoLink++
		f.mu.Unlock()
		return
	}
	frags := [][]byte{pkt}
	if mtu := int(l.MTU()); len(pkt) > mtu {
		if pi.Version == 6 || binary.BigEndian.Uint16(pkt[6:8])&0x4000 != 0 {
			f.stats.TooBig++
			f.mu.Unlock()
			return
		}
		frags = ipv4Fragment(pkt, mtu)
		f.stats.Fragmented++
	}
	f.stats.Forwarded++
	f.mu.Unlock()
	for _, fr := range frags {
		l.transmit(end, fr)
	}
}
