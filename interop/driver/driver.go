package driver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pqlab/pqlab/esp"
	"github.com/pqlab/pqlab/ike"
	"github.com/pqlab/pqlab/interop/realnet"
)

// Defaults of Config.
const (
	DefaultTUN = "pq0"
	// DefaultMTU is the TUN device's MTU: ESP in UDP adds up to 73 octets (IPv4 20, UDP 8, ESP
	// header 8, IV up to 16, padding up to 3 with AES-GCM, trailer 2, ICV 16), so 1400-octet
	// inner packets still fit a 1500-octet path. charon's kernel-libipsec uses the same.
	DefaultMTU = 1400
	// DefaultShutdownGrace bounds how long Run waits, after its context ended, for the peer to
	// answer the Delete of each IKE SA.
	DefaultShutdownGrace = 3 * time.Second
	// ipTimeout bounds the ip commands the driver runs for routes.
	ipTimeout = 10 * time.Second
	// maxPacket is the largest IP packet or UDP payload handled.
	maxPacket = 65535
	// ikeQueue is how many received IKE datagrams wait for the engine goroutine.
	ikeQueue = 64
)

// Config configures a Driver.
type Config struct {
	// IKE is the engine's configuration: peers, proposals, identities, authentication, Child SAs
	// and their traffic selectors. IKE.NATT.Port is the NAT-T port (default 4500).
	IKE ike.Config
	// Local is the outer address the IKE, NAT-T and raw ESP sockets bind to (required; a specific
	// address, not the unspecified one: the engine's NAT detection hashes it, RFC 7296 Section
	// 2.23).
	Local netip.Addr
	// IKEPort is the IKE port (default 500).
	IKEPort uint16
	// TUN is the TUN device's name (default DefaultTUN).
	TUN string
	// Inner are the addresses given to the TUN device. A route to a Child SA's remote traffic
	// selector takes as source the first of them that lies in the Child SA's local selectors.
	Inner []netip.Prefix
	// MTU is the TUN device's MTU (default DefaultMTU).
	MTU int
	// Netns names the network namespace ("ip netns" name) in which the sockets and the TUN device
	// are created and the routes installed; empty means the caller's.
	Netns string
	// Initiate lists the names of peers (IKE.Peers) to initiate when Run starts.
	Initiate []string
	// Reconnect, when positive, initiates a peer of Initiate again this long after its IKE SA
	// failed or went away for any other reason than a local delete or a rekey: the peer deleted
	// it or restarted, a liveness check or the hard lifetime ended it (strongSwan's
	// close_action and dpd_action "start").
	Reconnect time.Duration
	// NoRawESP skips the raw ESP socket (IP protocol 50, which needs CAP_NET_RAW); a Child SA
	// without UDP encapsulation then cannot be installed and is deleted again.
	NoRawESP bool
	// KeyLogDir, when set, is a directory where the driver keeps Wireshark's decryption tables
	// (esp_sa for every Child SA, ikev2_decryption_table for every IKE SA, from the engine's key
	// log: ike.Config.LogKeys is set); point WIRESHARK_CONFIG_DIR at it. The tables hold the
	// keys: lab and debugging use only.
	KeyLogDir string
	// NoDeleteOnExit leaves the IKE SAs to the peer's liveness checks when Run ends, instead of
	// deleting them (RFC 7296 Section 1.4.1).
	NoDeleteOnExit bool
	// ShutdownGrace replaces DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Rand is the randomness of the engine and of AES-CBC IVs (default crypto/rand).
	Rand io.Reader
	// Logger receives the driver's log (default: none).
	Logger *slog.Logger
	// OnEvent, if set, is called on the engine goroutine with every engine event after the driver
	// acted on it (Child keys included). It must not block or call the Driver.
	OnEvent func(ike.Event)
}

// Stats are the data-plane counters of a Driver.
type Stats struct {
	// TUNIn counts packets read from the TUN device, ESPOut the ESP packets sent for them.
	TUNIn, ESPOut uint64
	// ESPIn counts ESP packets received, TUNOut the inner packets written to the TUN device.
	ESPIn, TUNOut uint64
	// NoSA counts TUN packets no outbound SA covers; InDrops ESP packets that did not open (unknown
	// SPI, replay, ICV, selectors); SendErrors failed socket or TUN writes.
	NoSA, InDrops, SendErrors uint64
}

type stats struct {
	tunIn, espOut, espIn, tunOut, noSA, inDrops, sendErrs atomic.Uint64
}

// ErrStopped is returned by Driver methods once Run has returned.
var ErrStopped = errors.New("driver: stopped")

// Driver runs one ike.Engine and its ESP SAs on real sockets and a TUN device. Create it with New,
// run it with Run; its other methods are safe for concurrent use while Run runs.
type Driver struct {
	cfg  Config
	log  *slog.Logger
	rand io.Reader
	eng  *ike.Engine
	ep   *realnet.Endpoint
	tun  *realnet.TUN
	raw  *net.IPConn
	ipc  realnet.IPConfig
	db   esp.DB
	out  *esp.OutboundSet
	keys *KeyLog
	// keyBuf receives the engine's key log entries (engine goroutine).
	keyBuf []ike.KeyLogEntry

	ikeIn chan realnet.Datagram
	ctl   chan func(time.Time)
	espEv chan struct{}
	fatal chan error
	done  chan struct{}

	// Engine goroutine state.
	stopping  bool
	lingering []lingerSA           // inbound SAs of rekeyed Child SAs, removed a little later
	retry     map[string]time.Time // peer name -> when to initiate again
	children  map[uint32]*installed
	routes    map[netip.Prefix]int
	pinned    map[netip.Addr]string

	mu     sync.Mutex
	events []ike.Event
	evCh   chan struct{}

	st        stats
	started   atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// lingerSA is an inbound SA kept for InboundLinger after its Child SA was replaced by a rekey.
type lingerSA struct {
	spi uint32
	at  time.Time
}

// InboundLinger is how long the inbound SA of a rekeyed Child SA keeps accepting packets after
// the SA was deleted: ESP the peer sent on it just before the switch (queued behind the Delete,
// or read by another socket reader than the IKE messages, as raw ESP is) still opens.
const InboundLinger = time.Second

// installed is a Child SA's data-plane state.
type installed struct {
	in  *esp.InboundSA
	out *esp.OutboundSA // nil while pendingOut waits
	// pendingOut is the outbound SA of a Child SA this end created as the responder of a rekey,
	// installed only once the SA it replaces (rekeyOf) is gone and no other Child SA with the same
	// selectors sends (see activatePending).
	pendingOut    *esp.SAConfig
	rekeyOf       uint32
	local, remote []ike.TrafficSelector
	routes        []netip.Prefix
}

// New checks cfg, creates the engine, opens the sockets and the TUN device (in cfg.Netns) and
// configures the device's addresses and MTU. Call Run to start, or Close to give up.
func New(cfg Config) (*Driver, error) {
	if !cfg.Local.IsValid() || cfg.Local.IsUnspecified() {
		return nil, errors.New("driver: a specific local address is required")
	}
	cfg.Local = cfg.Local.Unmap()
	if cfg.IKEPort == 0 {
		cfg.IKEPort = realnet.IKEPort
	}
	if cfg.IKE.NATT.Port == 0 {
		cfg.IKE.NATT.Port = realnet.NATTPort
	}
	if cfg.IKE.NATT.Port == cfg.IKEPort {
		return nil, errors.New("driver: the IKE and NAT-T ports must differ")
	}
	if cfg.TUN == "" {
		cfg.TUN = DefaultTUN
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 576 || cfg.MTU > maxPacket {
		return nil, fmt.Errorf("driver: TUN MTU %d out of range 576..%d", cfg.MTU, maxPacket)
	}
	if cfg.Reconnect < 0 {
		return nil, errors.New("driver: negative reconnect delay")
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	for _, p := range cfg.Inner {
		if !p.IsValid() {
			return nil, errors.New("driver: invalid inner address")
		}
	}
	for _, name := range cfg.Initiate {
		if _, ok := findPeer(cfg.IKE.Peers, name); !ok {
			return nil, fmt.Errorf("driver: no peer %q to initiate", name)
		}
	}
	d := &Driver{
		cfg:      cfg,
		log:      cfg.Logger,
		rand:     cfg.Rand,
		ipc:      realnet.IPConfig{Netns: cfg.Netns},
		ikeIn:    make(chan realnet.Datagram, ikeQueue),
		ctl:      make(chan func(time.Time)),
		espEv:    make(chan struct{}, 1),
		fatal:    make(chan error, 1),
		done:     make(chan struct{}),
		retry:    make(map[string]time.Time),
		children: make(map[uint32]*installed),
		routes:   make(map[netip.Prefix]int),
		pinned:   make(map[netip.Addr]string),
		evCh:     make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.rand == nil {
		d.rand = rand.Reader
	}
	var err error
	cfg.IKE.LogKeys = cfg.KeyLogDir != ""
	if d.eng, err = ike.NewEngine(cfg.IKE, d.rand); err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	if cfg.KeyLogDir != "" {
		if d.keys, err = NewKeyLog(cfg.KeyLogDir); err != nil {
			return nil, err
		}
	}
	d.out = d.db.Outbound(0)
	d.db.SetNotify(func() {
		select {
		case d.espEv <- struct{}{}:
		default:
		}
	})
	if err := d.open(); err != nil {
		d.closeIO()
		return nil, err
	}
	return d, nil
}

// open creates the descriptors (in the namespace, if any) and configures the TUN device.
func (d *Driver) open() error {
	create := func() (err error) {
		if d.tun, err = realnet.OpenTUN(d.cfg.TUN); err != nil {
			return err
		}
		if d.ep, err = realnet.Listen(d.cfg.Local, d.cfg.IKEPort, d.cfg.IKE.NATT.Port); err != nil {
			return err
		}
		if !d.cfg.NoRawESP {
			network := "ip4:50"
			if d.cfg.Local.Is6() {
				network = "ip6:50"
			}
			if d.raw, err = net.ListenIP(network, &net.IPAddr{IP: d.cfg.Local.AsSlice()}); err != nil {
				return fmt.Errorf("driver: raw ESP socket (set NoRawESP to do without): %w", err)
			}
		}
		return nil
	}
	var err error
	if d.cfg.Netns != "" {
		err = realnet.InNetns(realnet.NetnsPath(d.cfg.Netns), create)
	} else {
		err = create()
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	return d.ipc.SetupTUN(ctx, d.tun.Name(), d.cfg.Inner, d.cfg.MTU)
}

// Engine-side view.

// Local returns the bound addresses of the IKE and NAT-T sockets.
func (d *Driver) Local() (ikeAddr, natt netip.AddrPort) { return d.ep.LocalIKE(), d.ep.LocalNATT() }

// TUNName returns the TUN device's name.
func (d *Driver) TUNName() string { return d.tun.Name() }

// Stats returns the data-plane counters.
func (d *Driver) Stats() Stats {
	return Stats{
		TUNIn: d.st.tunIn.Load(), ESPOut: d.st.espOut.Load(), ESPIn: d.st.espIn.Load(), TUNOut: d.st.tunOut.Load(),
		NoSA: d.st.noSA.Load(), InDrops: d.st.inDrops.Load(), SendErrors: d.st.sendErrs.Load(),
	}
}

// Run drives the engine until ctx ends or a socket fails: it starts the data goroutines,
// initiates Config.Initiate, and serves datagrams, timers and control calls. When ctx ends it
// deletes every IKE SA (unless Config.NoDeleteOnExit), waits up to Config.ShutdownGrace for the
// peers' answers, then closes the sockets and the TUN device (which takes its routes with it)
// and removes the other routes it added. It returns nil after a shutdown through ctx.
func (d *Driver) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("driver: Run called twice")
	}
	defer close(d.done)
	defer d.Close()
	pumps, stopPumps := context.WithCancel(context.Background())
	defer stopPumps()
	d.wg.Add(2)
	go d.pumpUDP(pumps)
	go d.pumpTUN()
	if d.raw != nil {
		d.wg.Add(1)
		go d.pumpRaw()
	}
	for _, name := range d.cfg.Initiate {
		if _, err := d.initiate(time.Now(), name); err != nil {
			return err
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var graceEnd time.Time
	ctxDone := ctx.Done()
	for {
		d.flush()
		d.reconnect(time.Now())
		d.flush()
		d.expireLingering(time.Now())
		next, ok := d.eng.NextTimeout()
		for _, at := range d.retry {
			if !ok || at.Before(next) {
				next, ok = at, true
			}
		}
		if len(d.lingering) > 0 && (!ok || d.lingering[0].at.Before(next)) {
			next, ok = d.lingering[0].at, true
		}
		if d.stopping {
			if len(d.eng.SAs()) == 0 || !time.Now().Before(graceEnd) {
				return nil
			}
			if !ok || graceEnd.Before(next) {
				next, ok = graceEnd, true
			}
		}
		if ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
		select {
		case dg := <-d.ikeIn:
			d.eng.Handle(time.Now(), dg.Local, dg.Remote, dg.Raw)
		case <-timer.C:
			d.eng.HandleTimeout(time.Now())
		case fn := <-d.ctl:
			fn(time.Now())
		case <-d.espEv:
			d.espLimits(time.Now())
		case err := <-d.fatal:
			return err
		case <-ctxDone:
			ctxDone, d.stopping = nil, true
			clear(d.retry)
			now := time.Now()
			graceEnd = now.Add(d.cfg.ShutdownGrace)
			if d.cfg.NoDeleteOnExit {
				return nil
			}
			for _, id := range d.eng.SAs() {
				if err := d.eng.Delete(now, id); err != nil {
					d.log.Warn("delete on exit", "sa", id, "err", err)
				}
			}
		}
	}
}

// Close releases the sockets and the TUN device and removes the routes to the peers' outer
// addresses the driver pinned. Run calls it on return; call it only when Run never ran.
func (d *Driver) Close() error {
	var err error
	d.closeOnce.Do(func() {
		err = d.closeIO()
		d.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
		defer cancel()
		for addr, dev := range d.pinned {
			if e := d.ipc.DelRoute(ctx, netip.PrefixFrom(addr, addr.BitLen()), dev); e != nil {
				err = errors.Join(err, e)
			}
		}
		for _, l := range d.lingering {
			d.db.RemoveInbound(l.spi)
		}
		d.lingering = nil
		for spi, c := range d.children {
			d.db.RemoveInbound(spi)
			if c.out != nil {
				d.db.RemoveOutbound(c.out)
			}
		}
		clear(d.children)
	})
	return err
}

func (d *Driver) closeIO() error {
	var errs []error
	if d.ep != nil {
		errs = append(errs, d.ep.Close())
	}
	if d.tun != nil {
		errs = append(errs, d.tun.Close())
	}
	if d.raw != nil {
		errs = append(errs, d.raw.Close())
	}
	return errors.Join(errs...)
}

// flush sends the engine's datagrams and acts on its events until it has nothing more.
func (d *Driver) flush() {
	for {
		busy := false
		for {
			dg, ok := d.eng.PollTransmit()
			if !ok {
				break
			}
			busy = true
			if err := d.ep.Send(dg.Local.Port(), dg.Remote, dg.Data); err != nil {
				d.st.sendErrs.Add(1)
				d.log.Warn("send", "to", dg.Remote, "err", err)
			}
		}
		for {
			ev, ok := d.eng.PollEvent()
			if !ok {
				break
			}
			busy = true
			d.handleEvent(ev)
		}
		if d.keys != nil {
			d.keyBuf = d.eng.PollKeyLog(d.keyBuf[:0])
			for _, e := range d.keyBuf {
				if err := d.keys.AddIKE(e); err != nil {
					d.log.Info("key log", "sa", e.SA, "err", err)
				}
			}
			clear(d.keyBuf)
		}
		if !busy {
			return
		}
	}
}

// espLimits hands the data plane's lifetime events to the engine.
func (d *Driver) espLimits(now time.Time) {
	for {
		ev, ok := d.db.PollEvent()
		if !ok {
			return
		}
		d.log.Info("esp limit", "event", ev.String())
		if err := d.eng.ChildSALimit(now, ev.SPI, ev.Dir == esp.Inbound, ev.Kind == esp.EventHard); err != nil {
			d.log.Debug("esp limit", "err", err)
		}
	}
}

// Control.

// Do runs fn on the engine goroutine with the current time and returns its error; the engine's
// resulting datagrams and events are handled right after. It fails with ErrStopped when Run is
// not running.
func (d *Driver) Do(ctx context.Context, fn func(now time.Time, e *ike.Engine) error) error {
	errc := make(chan error, 1)
	f := func(now time.Time) { errc <- fn(now, d.eng) }
	select {
	case d.ctl <- f:
	case <-d.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-errc
}

func findPeer(peers []ike.PeerConfig, name string) (ike.PeerConfig, bool) {
	for _, p := range peers {
		if p.Name == name {
			return p, true
		}
	}
	return ike.PeerConfig{}, false
}

// initiate starts an IKE SA with the configured peer name; runs on the engine goroutine. An
// unset local address becomes Config.Local on the IKE port.
func (d *Driver) initiate(now time.Time, name string) (ike.SAID, error) {
	p, ok := findPeer(d.cfg.IKE.Peers, name)
	if !ok {
		return 0, fmt.Errorf("driver: no peer %q", name)
	}
	if !p.Local.IsValid() {
		p.Local = netip.AddrPortFrom(d.cfg.Local, d.cfg.IKEPort)
	}
	id, err := d.eng.Initiate(now, p)
	if err != nil {
		return 0, fmt.Errorf("driver: initiate %q: %w", name, err)
	}
	d.log.Info("initiate", "peer", name, "sa", id, "remote", p.Remote)
	return id, nil
}

// expireLingering removes the lingering inbound SAs whose time is up (engine goroutine).
func (d *Driver) expireLingering(now time.Time) {
	for len(d.lingering) > 0 && !now.Before(d.lingering[0].at) {
		d.db.RemoveInbound(d.lingering[0].spi)
		d.lingering = d.lingering[1:]
	}
}

// reconnect initiates the peers whose reconnect time has come (engine goroutine).
func (d *Driver) reconnect(now time.Time) {
	for name, at := range d.retry {
		if now.Before(at) {
			continue
		}
		delete(d.retry, name)
		if _, err := d.initiate(now, name); err != nil {
			d.log.Error("reconnect", "peer", name, "err", err)
		}
	}
}

// scheduleReconnect arranges for the peer of an IKE SA that ended to be initiated again
// (Config.Reconnect), unless the end was local or a rekey, or another IKE SA with that peer
// exists (engine goroutine).
func (d *Driver) scheduleReconnect(now time.Time, ev ike.Event) {
	if d.cfg.Reconnect <= 0 || d.stopping || ev.Child != nil || ev.Peer == "" {
		return
	}
	switch ev.Reason.Cause {
	case ike.CauseLocalDelete, ike.CauseRekeyed, ike.CauseRekeyCollision:
		return
	}
	found := false
	for _, name := range d.cfg.Initiate {
		found = found || name == ev.Peer
	}
	if !found {
		return
	}
	for _, id := range d.eng.SAs() {
		if info, ok := d.eng.SA(id); ok && id != ev.SA && info.Peer == ev.Peer {
			return
		}
	}
	d.retry[ev.Peer] = now.Add(d.cfg.Reconnect)
	d.log.Info("reconnect scheduled", "peer", ev.Peer, "in", d.cfg.Reconnect)
}

// Initiate starts an IKE SA (and its first Child SA) with the peer of that name.
func (d *Driver) Initiate(ctx context.Context, peer string) (ike.SAID, error) {
	var id ike.SAID
	err := d.Do(ctx, func(now time.Time, _ *ike.Engine) (err error) {
		id, err = d.initiate(now, peer)
		return err
	})
	return id, err
}

// SAs returns the engine's IKE SAs.
func (d *Driver) SAs(ctx context.Context) ([]ike.SAInfo, error) {
	var out []ike.SAInfo
	err := d.Do(ctx, func(_ time.Time, e *ike.Engine) error {
		for _, id := range e.SAs() {
			if info, ok := e.SA(id); ok {
				out = append(out, info)
			}
		}
		return nil
	})
	return out, err
}

// Events.

// recordEvent keeps a copy of ev without key material and wakes WaitEvent.
func (d *Driver) recordEvent(ev ike.Event) {
	if ev.Child != nil {
		c := *ev.Child
		c.Inbound, c.Outbound = ike.DirectionKeys{}, ike.DirectionKeys{}
		ev.Child = &c
	}
	d.mu.Lock()
	d.events = append(d.events, ev)
	close(d.evCh)
	d.evCh = make(chan struct{})
	d.mu.Unlock()
}

// Events returns the engine events so far, oldest first, without Child SA keys.
func (d *Driver) Events() []ike.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]ike.Event(nil), d.events...)
}

// WaitEvent waits for the first event at index from or later (in Events order) that match
// accepts, and returns it with the index after it, to pass as from to the next call.
func (d *Driver) WaitEvent(ctx context.Context, from int, match func(ike.Event) bool) (ike.Event, int, error) {
	for {
		d.mu.Lock()
		for i := from; i < len(d.events); i++ {
			if match(d.events[i]) {
				ev := d.events[i]
				d.mu.Unlock()
				return ev, i + 1, nil
			}
		}
		from = len(d.events)
		ch := d.evCh
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ike.Event{}, from, fmt.Errorf("driver: waiting for an event: %w", ctx.Err())
		case <-d.done:
			return ike.Event{}, from, ErrStopped
		}
	}
}

// NumEvents returns how many events have been recorded: an index for WaitEvent that skips them.
func (d *Driver) NumEvents() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.events)
}

// fail reports a fatal data-path error to Run.
func (d *Driver) fail(err error) {
	select {
	case d.fatal <- err:
	default:
	}
}
