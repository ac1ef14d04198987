package sim

import (
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// DefaultEpoch is the wall-clock instant that virtual time zero maps to when a
// scheduler is created with a zero epoch. A fixed epoch keeps timestamps in
// captures and logs identical between runs.
var DefaultEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// Event is a scheduled callback. The zero value is not useful; events are
// created by Scheduler.At and Scheduler.After.
type Event struct {
	at    time.Duration
	seq   uint64
	index int // position in the heap, -1 when not queued
	fn    func()
}

// Scheduler is a discrete-event scheduler that owns virtual time.
//
// Events are ordered by (time, sequence number): events due at the same
// instant fire in the order they were scheduled, which makes runs
// reproducible (unlike gVisor's faketime.ManualClock, which fires same-instant
// timers in map order and immediate timers in new goroutines).
//
// Callbacks run on the goroutine that calls Run, RunUntil or Step, one at a
// time. Scheduling and cancelling are safe from any goroutine (gVisor's TCP
// processors arm timers from their own goroutines).
type Scheduler struct {
	epoch time.Time
	now   atomic.Int64 // virtual nanoseconds since epoch

	mu    sync.Mutex
	seq   uint64
	queue eventHeap
	fired uint64

	// Real-time mode: virtual time follows the wall clock.
	realtime  bool
	wallStart time.Time
	wake      chan struct{}
	timer     *time.Timer // used by the goroutine that runs events
}

// NewScheduler returns a virtual-time scheduler whose time zero is epoch
// (DefaultEpoch if epoch is zero).
func NewScheduler(epoch time.Time) *Scheduler {
	if epoch.IsZero() {
		epoch = DefaultEpoch
	}
	return &Scheduler{epoch: epoch, wake: make(chan struct{}, 1)}
}

// NewRealtimeScheduler returns a scheduler whose virtual time advances with
// the wall clock: Run waits until an event's due time before firing it. It is
// meant for data-plane throughput runs; it is not deterministic.
func NewRealtimeScheduler(epoch time.Time) *Scheduler {
	s := NewScheduler(epoch)
	s.realtime = true
	s.wallStart = time.Now()
	return s
}

// Realtime reports whether the scheduler follows the wall clock.
func (s *Scheduler) Realtime() bool { return s.realtime }

// Epoch returns the wall-clock instant of virtual time zero.
func (s *Scheduler) Epoch() time.Time { return s.epoch }

// Elapsed returns the current virtual time as an offset from the epoch. In
// real-time mode it is the wall-clock time since the scheduler started, but
// never earlier than the event being fired, so that work scheduled from
// other goroutines (gVisor's TCP) between events is timed from the present.
func (s *Scheduler) Elapsed() time.Duration {
	now := time.Duration(s.now.Load())
	if s.realtime {
		now = max(now, time.Since(s.wallStart))
	}
	return now
}

// Now returns the current virtual time as a wall-clock instant.
func (s *Scheduler) Now() time.Time { return s.epoch.Add(s.Elapsed()) }

// Fired returns the number of events fired so far.
func (s *Scheduler) Fired() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fired
}

// Pending returns the number of queued events.
func (s *Scheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// At schedules fn at virtual time t (an offset from the epoch). A time in the
// past is treated as now: the event fires after every event already queued
// for the current instant.
func (s *Scheduler) At(t time.Duration, fn func()) *Event {
	e := &Event{fn: fn, index: -1}
	s.mu.Lock()
	s.pushLocked(e, t)
	s.mu.Unlock()
	return e
}

// After schedules fn d after the current virtual time.
func (s *Scheduler) After(d time.Duration, fn func()) *Event {
	if d < 0 {
		d = 0
	}
	return s.At(s.Elapsed()+d, fn)
}

// Cancel removes e from the queue. It reports whether e was still pending.
func (s *Scheduler) Cancel(e *Event) bool {
	if e == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.index < 0 {
		return false
	}
	s.queue.remove(e.index)
	return true
}

// pushLocked queues e at time t with the next sequence number.
func (s *Scheduler) pushLocked(e *Event, t time.Duration) {
	if now := s.Elapsed(); t < now {
		t = now
	}
	e.at = t
	e.seq = s.seq
	s.seq++
	s.queue.push(e)
	if s.realtime && e.index == 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// NextAt returns the due time of the earliest queued event and whether there
// is one.
func (s *Scheduler) NextAt() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return 0, false
	}
	return s.queue[0].at, true
}

// Step fires the earliest event if it is due at or before limit and reports
// whether it fired one. In real-time mode Step waits for the event's time,
// and while nothing is due it waits for events that other goroutines
// schedule, until the wall clock reaches limit.
func (s *Scheduler) Step(limit time.Duration) bool { return s.step(limit, false) }

// step is Step; with idle set, a real-time scheduler returns false as soon
// as its queue is empty instead of waiting until limit.
func (s *Scheduler) step(limit time.Duration, idle bool) bool {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 && s.queue[0].at <= limit {
			at := s.queue[0].at
			if s.realtime {
				if wait := at - time.Since(s.wallStart); wait > 0 {
					s.mu.Unlock()
					s.sleep(wait)
					continue
				}
			}
			e := s.queue.pop()
			s.now.Store(int64(at))
			s.fired++
			s.mu.Unlock()
			e.fn()
			return true
		}
		empty := len(s.queue) == 0
		s.mu.Unlock()
		if !s.realtime || (idle && empty) {
			return false
		}
		wait := limit - time.Since(s.wallStart)
		if wait <= 0 {
			return false
		}
		s.sleep(wait)
	}
}

// sleep waits for d of wall-clock time or until an event is queued at the
// head of the queue (real-time mode).
func (s *Scheduler) sleep(d time.Duration) {
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-s.timer.C:
	case <-s.wake:
		s.timer.Stop()
	}
}

// RunUntil fires every event due at or before virtual time t, then sets the
// clock to t. Events scheduled by callbacks are included if they fall at or
// before t. It returns the number of events fired. In real-time mode it
// returns when the wall clock reaches t.
func (s *Scheduler) RunUntil(t time.Duration) int {
	n := 0
	for s.Step(t) {
		n++
	}
	if t > time.Duration(s.now.Load()) {
		s.now.Store(int64(t))
	}
	return n
}

// RunFor runs for d of virtual time from now.
func (s *Scheduler) RunFor(d time.Duration) int { return s.RunUntil(s.Elapsed() + d) }

// RunUntilIdle fires events until the queue is empty or limit is reached,
// whichever comes first; the clock stays at the last event's time. It returns
// the number of events fired.
func (s *Scheduler) RunUntilIdle(limit time.Duration) int {
	n := 0
	for s.step(limit, true) {
		n++
	}
	return n
}

// Clock returns the scheduler as a tcpip.Clock for gVisor stacks.
func (s *Scheduler) Clock() tcpip.Clock { return (*Clock)(s) }

// Clock is the scheduler seen as a gVisor tcpip.Clock. AfterFunc callbacks run
// on the scheduler's goroutine, never in new goroutines.
type Clock Scheduler

var _ tcpip.Clock = (*Clock)(nil)

// Now implements tcpip.Clock.Now.
func (c *Clock) Now() time.Time { return (*Scheduler)(c).Now() }

// NowMonotonic implements tcpip.Clock.NowMonotonic. The monotonic reading is
// the virtual time since the epoch.
func (c *Clock) NowMonotonic() tcpip.MonotonicTime {
	var mt tcpip.MonotonicTime
	return mt.Add((*Scheduler)(c).Elapsed())
}

// AfterFunc implements tcpip.Clock.AfterFunc: f runs on the scheduler's
// goroutine d after now (after the current event when d <= 0).
func (c *Clock) AfterFunc(d time.Duration, f func()) tcpip.Timer {
	s := (*Scheduler)(c)
	t := &timer{s: s}
	t.ev = Event{fn: f, index: -1}
	if d < 0 {
		d = 0
	}
	s.mu.Lock()
	s.pushLocked(&t.ev, s.Elapsed()+d)
	s.mu.Unlock()
	return t
}

// timer implements tcpip.Timer on a scheduler event.
type timer struct {
	s  *Scheduler
	ev Event
}

var _ tcpip.Timer = (*timer)(nil)

// Stop implements tcpip.Timer.Stop.
func (t *timer) Stop() bool {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.ev.index < 0 {
		return false
	}
	t.s.queue.remove(t.ev.index)
	return true
}

// Reset implements tcpip.Timer.Reset: the timer fires d after now, whether it
// was pending, stopped or expired.
func (t *timer) Reset(d time.Duration) {
	if d < 0 {
		d = 0
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.ev.index >= 0 {
		t.s.queue.remove(t.ev.index)
	}
	t.s.pushLocked(&t.ev, t.s.Elapsed()+d)
}

// eventHeap is a binary min-heap of events ordered by (at, seq).
type eventHeap []*Event

func (h eventHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h eventHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *eventHeap) push(e *Event) {
	e.index = len(*h)
	*h = append(*h, e)
	h.up(e.index)
}

func (h *eventHeap) pop() *Event {
	old := *h
	n := len(old) - 1
	old.swap(0, n)
	e := old[n]
	old[n] = nil
	*h = old[:n]
	if n > 0 {
		h.down(0)
	}
	e.index = -1
	return e
}

func (h *eventHeap) remove(i int) {
	old := *h
	n := len(old) - 1
	e := old[i]
	if i != n {
		old.swap(i, n)
	}
	old[n] = nil
	*h = old[:n]
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	e.index = -1
}

func (h eventHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h eventHeap) down(i0 int) bool {
	i := i0
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
