package driver

// The data plane: ESP SAs installed from engine events, routes through the TUN device, and the
// goroutines that move packets between the TUN device and the sockets.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/pqlab/pqlab/esp"
	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/interop/realnet"
)

// handleEvent acts on one engine event (engine goroutine).
func (d *Driver) handleEvent(ev ike.Event) {
	now := time.Now()
	attrs := []any{"sa", ev.SA, "peer", ev.Peer}
	switch ev.Kind {
	case ike.EventIKESAEstablished, ike.EventIKESARekeyed:
		attrs = append(attrs, "spi_i", fmt.Sprintf("%016x", ev.SPIi), "spi_r", fmt.Sprintf("%016x", ev.SPIr),
			"local", ev.Local, "remote", ev.Remote, "suite", ev.Suite.String())
	case ike.EventChildSAInstalled, ike.EventChildSARekeyed:
		c := ev.Child
		attrs = append(attrs, "child", c.Name, "in", fmt.Sprintf("%08x", c.InboundSPI), "out", fmt.Sprintf("%08x", c.OutboundSPI),
			"suite", c.Suite.String(), "encap", c.Encap, "local_ts", fmtTS(c.LocalTS), "remote_ts", fmtTS(c.RemoteTS))
		if err := d.install(now, ev); err != nil {
			d.log.Error("installing Child SA", append(attrs, "err", err)...)
			if err := d.eng.DeleteChildSA(now, c.InboundSPI); err != nil {
				d.log.Warn("deleting Child SA", "err", err)
			}
		}
	case ike.EventChildSADeleted:
		attrs = append(attrs, "child", ev.Child.Name, "in", fmt.Sprintf("%08x", ev.Child.InboundSPI))
		d.remove(ev.Child.InboundSPI, ev.Reason.Cause == ike.CauseRekeyed)
	case ike.EventIKESADeleted, ike.EventFailed:
		defer d.scheduleReconnect(now, ev)
	}
	if ev.Reason != (ike.Reason{}) {
		attrs = append(attrs, "reason", ev.Reason.String())
	}
	d.log.Info(ev.Kind.String(), attrs...)
	if d.cfg.OnEvent != nil {
		d.cfg.OnEvent(ev)
	}
	d.recordEvent(ev)
}

func fmtTS(ts []ike.TrafficSelector) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = selector(t).String()
	}
	return strings.Join(s, ",")
}

// ESPSuite converts a Child SA's negotiated transforms to the data plane's.
func ESPSuite(c *ike.ChildSA) esp.Suite {
	return esp.Suite{Encr: c.Suite.Encr, KeyBits: c.Suite.EncrKeyBits, Integ: c.Suite.Integ, ESN: c.Suite.ESN}
}

func selector(t ike.TrafficSelector) esp.Selector {
	return esp.Selector{Proto: t.Protocol, StartPort: t.StartPort, EndPort: t.EndPort, Start: t.Start, End: t.End}
}

func selectors(ts []ike.TrafficSelector) []esp.Selector {
	out := make([]esp.Selector, len(ts))
	for i, t := range ts {
		out[i] = selector(t)
	}
	return out
}

// install creates the inbound and outbound ESP SAs of a new Child SA (RFC 4301 Section 4.4.2),
// routes its remote selectors into the TUN device and logs its keys.
func (d *Driver) install(now time.Time, ev ike.Event) error {
	c := ev.Child
	if c.Protocol != wire.ProtocolESP {
		return fmt.Errorf("driver: protocol %v not supported", c.Protocol)
	}
	path := esp.Path{Encap: esp.EncapUDP, Local: c.Local, Remote: c.Remote}
	if !c.Encap {
		path.Encap = esp.EncapRaw
		if d.raw == nil {
			return errors.New("driver: Child SA without UDP encapsulation but no raw ESP socket")
		}
	}
	base := esp.SAConfig{
		Suite: ESPSuite(c), Mode: esp.ModeTunnel,
		Local: selectors(c.LocalTS), Remote: selectors(c.RemoteTS),
		// Time limits are the engine's (it rekeys and deletes on time); bytes and packets are
		// counted here and reported back through ChildSALimit.
		Lifetime: esp.Lifetime{SoftBytes: c.Lifetime.SoftBytes, HardBytes: c.Lifetime.HardBytes,
			SoftPackets: c.Lifetime.SoftPackets, HardPackets: c.Lifetime.HardPackets},
		Path: path,
	}
	inCfg, outCfg := base, base
	inCfg.SPI = c.InboundSPI
	inCfg.Keys = esp.Keys{Encr: bytes.Clone(c.Inbound.Encr), Integ: bytes.Clone(c.Inbound.Integ)}
	outCfg.SPI = c.OutboundSPI
	outCfg.Keys = esp.Keys{Encr: bytes.Clone(c.Outbound.Encr), Integ: bytes.Clone(c.Outbound.Integ)}
	outCfg.Rand = d.rand
	if _, err := esp.NewOutboundSA(outCfg); err != nil { // validate before installing anything
		return err
	}
	for i, l := range d.lingering { // the engine may reuse a released SPI
		if l.spi == c.InboundSPI {
			d.db.RemoveInbound(l.spi)
			d.lingering = slices.Delete(d.lingering, i, i+1)
			break
		}
	}
	in, err := d.db.AddInbound(now, inCfg)
	if err != nil {
		return err
	}
	inst := &installed{in: in, rekeyOf: c.RekeyOf, local: c.LocalTS, remote: c.RemoteTS}
	if c.RekeyOf != 0 && !c.Initiator && d.children[c.RekeyOf] != nil {
		// Responder of a rekey: keep sending on the old SA until the initiator, which switches
		// first, deletes it (RFC 7296 Section 2.8). Should our response have been lost, the
		// initiator has no inbound SA for the new one yet.
		inst.pendingOut = &outCfg
	} else if inst.out, err = d.db.AddOutbound(now, outCfg); err != nil {
		d.db.RemoveInbound(c.InboundSPI)
		return err
	}
	d.children[c.InboundSPI] = inst
	if d.keys != nil {
		if err := d.keys.AddChild(c); err != nil {
			d.log.Info("key log", "child", c.Name, "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	src := d.innerSource(c.LocalTS)
	for _, ts := range c.RemoteTS {
		for _, p := range RoutePrefixes(ts.Start, ts.End) {
			if err := d.addRoute(ctx, p, src, c.Remote.Addr()); err != nil {
				return err
			}
			inst.routes = append(inst.routes, p)
		}
	}
	return nil
}

// innerSource returns the first TUN address inside the local selectors.
func (d *Driver) innerSource(local []ike.TrafficSelector) netip.Addr {
	for _, p := range d.cfg.Inner {
		a := p.Addr()
		for _, ts := range local {
			if a.BitLen() == ts.Start.BitLen() && ts.Start.Compare(a) <= 0 && a.Compare(ts.End) <= 0 {
				return a
			}
		}
	}
	return netip.Addr{}
}

// addRoute routes p into the TUN device (reference counted: Child SAs of a rekey share routes).
// When p covers the peer's outer address, a host route to the peer via its current path is
// pinned first, so that IKE and ESP do not enter the tunnel they carry.
func (d *Driver) addRoute(ctx context.Context, p netip.Prefix, src, peer netip.Addr) error {
	d.routes[p]++
	if d.routes[p] > 1 {
		return nil
	}
	if p.Contains(peer) {
		if err := d.pin(ctx, peer); err != nil {
			d.routes[p]--
			return err
		}
	}
	if err := d.ipc.AddRoute(ctx, p, d.tun.Name(), src); err != nil {
		d.routes[p]--
		return err
	}
	d.log.Info("route", "to", p, "dev", d.tun.Name(), "src", src)
	return nil
}

// pin copies the kernel's current route to addr into a host route.
func (d *Driver) pin(ctx context.Context, addr netip.Addr) error {
	if _, ok := d.pinned[addr]; ok {
		return nil
	}
	out, err := d.ipc.RouteGet(ctx, addr)
	if err != nil {
		return err
	}
	via, dev := routeFields(out)
	if dev == "" || dev == d.tun.Name() {
		return fmt.Errorf("driver: no route to the peer %v outside the tunnel (ip route get: %q)", addr, strings.TrimSpace(out))
	}
	if dev == "lo" {
		return nil // a local address: never routed through the TUN device
	}
	if err := d.ipc.AddRouteVia(ctx, netip.PrefixFrom(addr, addr.BitLen()), via, dev); err != nil {
		return err
	}
	d.pinned[addr] = dev
	return nil
}

// routeFields reads the gateway and device from "ip route get" output such as
// "192.0.2.1 via 10.0.0.1 dev eth0 src 10.0.0.2 uid 0".
func routeFields(out string) (via netip.Addr, dev string) {
	line, _, _ := strings.Cut(out, "\n")
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "via":
			via, _ = netip.ParseAddr(f[i+1])
		case "dev":
			dev = f[i+1]
		}
	}
	return via, dev
}

// remove deletes a Child SA's ESP SAs and releases its routes. The inbound SA of a Child SA
// replaced by a rekey (linger) stays for InboundLinger.
func (d *Driver) remove(inSPI uint32, linger bool) {
	inst := d.children[inSPI]
	if inst == nil {
		return
	}
	delete(d.children, inSPI)
	if linger {
		d.lingering = append(d.lingering, lingerSA{spi: inSPI, at: time.Now().Add(InboundLinger)})
	} else {
		d.db.RemoveInbound(inSPI)
	}
	if inst.out != nil {
		d.db.RemoveOutbound(inst.out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	for _, p := range inst.routes {
		if d.routes[p]--; d.routes[p] > 0 {
			continue
		}
		delete(d.routes, p)
		if err := d.ipc.DelRoute(ctx, p, d.tun.Name()); err != nil {
			d.log.Warn("route", "err", err)
		}
	}
	d.activatePending(time.Now())
}

// activatePending installs the waiting outbound SA of every Child SA whose predecessor is gone,
// unless another Child SA with the same selectors already sends: in a rekey collision that this
// end won, the peer's redundant Child SA (which this end answered) must not take over from the
// winner before the peer deletes it (RFC 7296 Section 2.8.1).
func (d *Driver) activatePending(now time.Time) {
	for spi, c := range d.children {
		if c.pendingOut == nil || d.children[c.rekeyOf] != nil {
			continue
		}
		busy := false
		for other, o := range d.children {
			if other != spi && o.out != nil && slices.Equal(o.local, c.local) && slices.Equal(o.remote, c.remote) {
				busy = true
				break
			}
		}
		if busy {
			continue
		}
		out, err := d.db.AddOutbound(now, *c.pendingOut)
		if err != nil {
			d.log.Error("installing outbound SA", "in", fmt.Sprintf("%08x", spi), "err", err)
			continue
		}
		c.out, c.pendingOut = out, nil
		d.log.Debug("outbound SA active", "in", fmt.Sprintf("%08x", spi), "out", fmt.Sprintf("%08x", out.SPI()))
	}
}

// RoutePrefixes returns the prefixes that exactly cover the address range start..end, with the
// whole address space split in two halves (0.0.0.0/1 and 128.0.0.0/1, or ::/1 and 8000::/1), so
// that a route through the tunnel is more specific than a default route and never replaces it.
func RoutePrefixes(start, end netip.Addr) []netip.Prefix {
	if !start.IsValid() || !end.IsValid() || start.BitLen() != end.BitLen() || end.Less(start) {
		return nil
	}
	var out []netip.Prefix
	bits := start.BitLen()
	for {
		// The largest prefix that starts at start and ends at or before end.
		n := bits
		for n > 1 {
			p := netip.PrefixFrom(start, n-1).Masked()
			if p.Addr() != start || lastOf(p).Compare(end) > 0 {
				break
			}
			n--
		}
		p := netip.PrefixFrom(start, n)
		out = append(out, p)
		last := lastOf(p)
		if last.Compare(end) >= 0 {
			return out
		}
		start = last.Next()
	}
}

// lastOf returns the last address of a prefix.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Packet pumps.

// pumpUDP reads the sockets: IKE goes to the engine goroutine, ESP is opened here.
func (d *Driver) pumpUDP(ctx context.Context) {
	defer d.wg.Done()
	for {
		dg, err := d.ep.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, realnet.ErrClosed) {
				d.fail(err)
			}
			return
		}
		switch dg.Kind {
		case realnet.KindIKE:
			select {
			case d.ikeIn <- dg:
			case <-ctx.Done():
				return
			}
		case realnet.KindESP:
			d.inbound(dg.Payload)
		}
	}
}

// pumpRaw reads raw ESP (IP protocol 50; the kernel strips the IPv4 header).
func (d *Driver) pumpRaw() {
	defer d.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, _, err := d.raw.ReadFromIP(buf)
		if err != nil {
			return // closed
		}
		d.inbound(slices.Clone(buf[:n]))
	}
}

// inbound opens one ESP packet (which it may overwrite) and writes the inner packet to the TUN
// device.
func (d *Driver) inbound(pkt []byte) {
	d.st.espIn.Add(1)
	inner, _, err := d.db.OpenInPlace(pkt)
	if err != nil {
		d.st.inDrops.Add(1)
		return
	}
	if err := d.tun.WritePacket(inner); err != nil {
		d.st.sendErrs.Add(1)
		return
	}
	d.st.tunOut.Add(1)
}

// pumpTUN seals the packets routed into the TUN device and sends them to the peer.
func (d *Driver) pumpTUN() {
	defer d.wg.Done()
	buf := make([]byte, maxPacket)
	sealed := make([]byte, 0, maxPacket+esp.HeaderSize+256)
	for {
		n, err := d.tun.ReadPacket(buf)
		if err != nil {
			if !errors.Is(err, realnet.ErrClosed) {
				d.fail(err)
			}
			return
		}
		d.st.tunIn.Add(1)
		out, sa, err := d.out.SealTunnel(sealed[:0], buf[:n])
		if err != nil {
			d.st.noSA.Add(1)
			continue
		}
		p := sa.Path()
		if p.Encap == esp.EncapUDP {
			err = d.ep.SendESP(p.Remote, out)
		} else {
			_, err = d.raw.WriteToIP(out, &net.IPAddr{IP: p.Remote.Addr().AsSlice()})
		}
		if err != nil {
			d.st.sendErrs.Add(1)
			continue
		}
		d.st.espOut.Add(1)
	}
}
