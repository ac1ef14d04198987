package interop

import (
	"context"
	"errors"
	"net/netip"
)

// Addresses of the two-namespace topology. Outer addresses (IKE and ESP in UDP) come from
// TEST-NET-1 (192.0.2.0/24), inner ones (traffic selectors, ping, TCP) from TEST-NET-2
// (198.51.100.0/24), both reserved for documentation by RFC 5737; they exist only inside the
// test namespaces.
var (
	OuterA = netip.MustParseAddr("192.0.2.1")
	OuterB = netip.MustParseAddr("192.0.2.2")
	InnerA = netip.MustParseAddr("198.51.100.1")
	InnerB = netip.MustParseAddr("198.51.100.2")
)

// Interface names of the veth ends and the outer prefix length.
const (
	VethA          = "va"
	VethB          = "vb"
	outerPrefixLen = 24
)

// Pair is two network namespaces, A and B, joined by a veth pair (VethA in A with OuterA, VethB in
// B with OuterB). Inner addresses are added by whoever owns each side: on loopback for a charon
// (Netns.AddAddr(ctx, "lo", netip.PrefixFrom(InnerA, 32))), on a TUN device for pqlab.
type Pair struct {
	A, B *Netns
}

// NewPair creates the two namespaces with unique names and wires them. On error nothing is left
// behind.
func NewPair(ctx context.Context) (p *Pair, err error) {
	p = &Pair{}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close(context.WithoutCancel(ctx)))
			p = nil
		}
	}()
	if p.A, err = CreateNetns(ctx, UniqueNetnsName("a")); err != nil {
		return p, err
	}
	if p.B, err = CreateNetns(ctx, UniqueNetnsName("b")); err != nil {
		return p, err
	}
	if _, err = p.A.IP(ctx, "link", "add", VethA, "type", "veth", "peer", "name", VethB, "netns", p.B.Name); err != nil {
		return p, err
	}
	if err = p.A.AddAddr(ctx, VethA, netip.PrefixFrom(OuterA, outerPrefixLen)); err != nil {
		return p, err
	}
	err = p.B.AddAddr(ctx, VethB, netip.PrefixFrom(OuterB, outerPrefixLen))
	return p, err
}

// Close deletes both namespaces (and with them the veth pair). Safe on a partly built Pair.
func (p *Pair) Close(ctx context.Context) error {
	var errs []error
	for _, n := range []*Netns{p.A, p.B} {
		if n != nil {
			errs = append(errs, n.Delete(ctx))
		}
	}
	return errors.Join(errs...)
}
