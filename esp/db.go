package esp

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DB is an SA database (RFC 4301 Section 4.4.2): inbound SAs keyed by SPI,
// outbound SAs grouped by tunnel interface (IfID) in preference order, the
// time-based lifetimes of all of them, and a queue of lifetime events for
// the IKE engine. The zero value is an empty database; a DB is safe for
// concurrent use, and lookups on the data path take no lock and write no
// shared memory, so they scale with cores.
type DB struct {
	in sync.Map // inbound SPI (uint32) -> *InboundSA

	outMu sync.Mutex // writers of out
	out   atomic.Pointer[map[uint32]*OutboundSet]

	ctr counters // drops no SA can be blamed for

	evMu   sync.Mutex
	events []Event
	notify func()

	tmMu      sync.Mutex
	timers    timerHeap
	compactAt int // heap size at which removed SAs' timers are swept out
}

// SetNotify registers fn to be called (outside any DB lock, possibly from
// a data-path goroutine) whenever an event is queued. Call it before
// adding SAs.
func (db *DB) SetNotify(fn func()) {
	db.evMu.Lock()
	db.notify = fn
	db.evMu.Unlock()
}

func (db *DB) emit(e Event) {
	db.evMu.Lock()
	db.events = append(db.events, e)
	fn := db.notify
	db.evMu.Unlock()
	if fn != nil {
		fn()
	}
}

// PollEvent returns the oldest queued lifetime event.
func (db *DB) PollEvent() (Event, bool) {
	db.evMu.Lock()
	defer db.evMu.Unlock()
	if len(db.events) == 0 {
		return Event{}, false
	}
	e := db.events[0]
	db.events = db.events[1:]
	if len(db.events) == 0 {
		db.events = nil
	}
	return e, true
}

// AddInbound keys and installs an inbound SA at time now (the start of its
// time lifetimes). The SPI must not be in use.
func (db *DB) AddInbound(now time.Time, cfg SAConfig) (*InboundSA, error) {
	sa, err := NewInboundSA(cfg)
	if err != nil {
		return nil, err
	}
	sa.life.emit = db.emit
	if _, dup := db.in.LoadOrStore(cfg.SPI, sa); dup {
		return nil, fmt.Errorf("esp: inbound SPI %08x already installed", cfg.SPI)
	}
	db.addTimers(now, &sa.life)
	return sa, nil
}

// Lookup returns the inbound SA with the given SPI, or nil.
func (db *DB) Lookup(spi uint32) *InboundSA {
	if v, ok := db.in.Load(spi); ok {
		return v.(*InboundSA)
	}
	return nil
}

// RemoveInbound deletes the inbound SA with the given SPI (after an IKE
// Delete or a rekey) and reports whether it was installed.
func (db *DB) RemoveInbound(spi uint32) bool {
	v, ok := db.in.LoadAndDelete(spi)
	if ok {
		v.(*InboundSA).life.gone.Store(true)
	}
	return ok
}

// AddOutbound keys and installs an outbound SA at time now. Within its
// interface (cfg.IfID) it becomes the preferred SA for the traffic its
// selectors cover, so a rekeyed SA takes over from the old one at once
// (make-before-break, RFC 7296 Section 2.8).
func (db *DB) AddOutbound(now time.Time, cfg SAConfig) (*OutboundSA, error) {
	sa, err := NewOutboundSA(cfg)
	if err != nil {
		return nil, err
	}
	sa.life.emit = db.emit
	set := db.Outbound(cfg.IfID)
	set.mu.Lock()
	set.pref++
	sa.pref = set.pref
	sa.installed = true
	set.idx.Store(set.index().with(sa))
	set.mu.Unlock()
	db.addTimers(now, &sa.life)
	return sa, nil
}

// RemoveOutbound deletes an outbound SA and reports whether it was
// installed.
func (db *DB) RemoveOutbound(sa *OutboundSA) bool {
	set := db.Outbound(sa.cfg.IfID)
	set.mu.Lock()
	ok := sa.installed
	if ok {
		sa.installed = false
		set.idx.Store(set.index().without(sa))
	}
	set.mu.Unlock()
	if ok {
		sa.life.gone.Store(true)
	}
	return ok
}

// Outbound returns the outbound SA set of a tunnel interface, creating it
// if needed. The set stays valid for the DB's lifetime, so an interface
// may keep it.
func (db *DB) Outbound(ifID uint32) *OutboundSet {
	if m := db.out.Load(); m != nil {
		if s := (*m)[ifID]; s != nil {
			return s
		}
	}
	db.outMu.Lock()
	defer db.outMu.Unlock()
	old := db.out.Load()
	if old != nil {
		if s := (*old)[ifID]; s != nil {
			return s
		}
	}
	// Interfaces are few and made once: copy the map, readers never lock.
	m := make(map[uint32]*OutboundSet)
	if old != nil {
		maps.Copy(m, *old)
	}
	s := &OutboundSet{db: db}
	m[ifID] = s
	db.out.Store(&m)
	return s
}

// Counters returns the drops that no SA could be blamed for: DropBadSPI,
// DropMalformed (too short to carry an SPI) and DropNoSA.
func (db *DB) Counters() Counters {
	var c Counters
	db.ctr.snapshotDrops(&c)
	return c
}

// Open processes a tunnel-mode ESP packet (RFC 4303 Section 3.4): it
// finds the SA by SPI (counting DropBadSPI on the DB when there is none)
// and runs InboundSA.OpenTunnel, appending the inner packet to dst.
func (db *DB) Open(dst, pkt []byte) ([]byte, *InboundSA, error) {
	sa, err := db.lookupPkt(pkt)
	if err != nil {
		return dst, nil, err
	}
	out, err := sa.OpenTunnel(dst, pkt)
	return out, sa, err
}

// OpenIf is Open for a route-based interface: an SA that belongs to
// another interface is treated like an unknown SPI (DropBadSPI on the DB),
// before any decryption.
func (db *DB) OpenIf(dst, pkt []byte, ifID uint32) ([]byte, *InboundSA, error) {
	sa, err := db.lookupPkt(pkt)
	if err != nil {
		return dst, nil, err
	}
	if sa.cfg.IfID != ifID {
		return dst, nil, db.ctr.drop(DropBadSPI)
	}
	out, err := sa.OpenTunnel(dst, pkt)
	return out, sa, err
}

// OpenInPlace is Open decrypting inside pkt.
func (db *DB) OpenInPlace(pkt []byte) ([]byte, *InboundSA, error) {
	sa, err := db.lookupPkt(pkt)
	if err != nil {
		return nil, nil, err
	}
	out, err := sa.OpenTunnelInPlace(pkt)
	return out, sa, err
}

func (db *DB) lookupPkt(pkt []byte) (*InboundSA, error) {
	spi, ok := PeekSPI(pkt)
	if !ok {
		return nil, db.ctr.drop(DropMalformed)
	}
	sa := db.Lookup(spi)
	if sa == nil {
		return nil, db.ctr.drop(DropBadSPI)
	}
	return sa, nil
}

// OutboundSet is the outbound SAs of one tunnel interface in preference
// order (the most recently added first), indexed by destination prefix
// (see outindex.go): selecting the SA for a packet costs about one trie
// step per enclosing prefix, not one selector check per SA. Readers never
// lock; writers publish a new index that shares all but one path with the
// old.
type OutboundSet struct {
	db   *DB
	mu   sync.Mutex // writers
	pref uint64     // preference counter, under mu
	idx  atomic.Pointer[outIndex]
}

var emptyIndex = &outIndex{}

func (s *OutboundSet) index() *outIndex {
	if x := s.idx.Load(); x != nil {
		return x
	}
	return emptyIndex
}

// SAs returns the set's SAs, preferred first.
func (s *OutboundSet) SAs() []*OutboundSA { return s.index().all() }

// Select returns the preferred live SA whose selectors cover the flow, or
// nil (RFC 4301 Section 5.1: the SPD-S cache lookup).
func (s *OutboundSet) Select(f *Flow) *OutboundSA {
	ff := flowOf(f)
	return s.selectFlow(&ff)
}

func (s *OutboundSet) selectFlow(f *flow) *OutboundSA { return s.index().lookup(f) }

// SealTunnel parses the inner packet, selects the SA for it and seals it
// in tunnel mode, appending the ESP packet to dst. Packets no SA covers
// are counted as DropNoSA on the DB.
func (s *OutboundSet) SealTunnel(dst, inner []byte) ([]byte, *OutboundSA, error) {
	var f flow
	if err := parseFlow(inner, &f); err != nil {
		return dst, nil, s.db.ctr.drop(DropMalformed)
	}
	sa := s.selectFlow(&f)
	if sa == nil {
		return dst, nil, s.db.ctr.drop(DropNoSA)
	}
	out, err := sa.sealTunnelFlow(dst, inner, &f, true) // lookup matched f
	return out, sa, err
}

// Time-based lifetimes.

type timer struct {
	at   time.Time
	kind EventKind
	life *lifetimeState
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func (db *DB) addTimers(now time.Time, l *lifetimeState) {
	db.tmMu.Lock()
	defer db.tmMu.Unlock()
	if d := l.limits.SoftTime; d > 0 {
		heap.Push(&db.timers, timer{at: now.Add(d), kind: EventSoft, life: l})
	}
	if d := l.limits.HardTime; d > 0 {
		heap.Push(&db.timers, timer{at: now.Add(d), kind: EventHard, life: l})
	}
	// Timers of removed SAs would otherwise keep them in memory until
	// they are due; sweep them when the heap has doubled.
	if len(db.timers) >= max(1024, db.compactAt) {
		db.timers = slices.DeleteFunc(db.timers, func(t timer) bool { return t.life.gone.Load() })
		heap.Init(&db.timers)
		db.compactAt = 2 * len(db.timers)
	}
}

// NextTimeout returns when HandleTimeout next has work to do.
func (db *DB) NextTimeout() (time.Time, bool) {
	db.tmMu.Lock()
	defer db.tmMu.Unlock()
	for len(db.timers) > 0 && db.timers[0].life.gone.Load() {
		heap.Pop(&db.timers)
	}
	if len(db.timers) == 0 {
		return time.Time{}, false
	}
	return db.timers[0].at, true
}

// HandleTimeout fires the time-based lifetime events due at now.
func (db *DB) HandleTimeout(now time.Time) {
	var due []timer
	db.tmMu.Lock()
	for len(db.timers) > 0 && !db.timers[0].at.After(now) {
		t := heap.Pop(&db.timers).(timer)
		if !t.life.gone.Load() {
			due = append(due, t)
		}
	}
	db.tmMu.Unlock()
	for _, t := range due {
		if t.kind == EventHard {
			t.life.fire(EventSoft, LimitTime)
		}
		t.life.fire(t.kind, LimitTime)
	}
}
