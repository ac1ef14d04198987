package sim

import (
	"fmt"
	"net/netip"
	"time"
)

// Datagram is a UDP datagram between a gateway's local address and a peer.
type Datagram struct {
	Local, Remote netip.AddrPort
	Payload       []byte
}

// Engine is the sans-I/O shape of a protocol engine that a node can host
// (DESIGN.md, principle 1): the IKE engine, through a thin adapter in the
// gateway driver, satisfies it. The engine never reads a clock or a socket:
// the host hands it received datagrams and the time, and polls it for
// datagrams to send and for its next deadline.
type Engine interface {
	// Handle processes a received datagram.
	Handle(now time.Time, d Datagram)
	// HandleTimeout runs the engine's timers due at or before now.
	HandleTimeout(now time.Time)
	// NextTimeout returns the engine's next deadline, if any.
	NextTimeout() (time.Time, bool)
	// PollTransmit returns the next datagram to send, if any.
	PollTransmit() (Datagram, bool)
}

// CostReporter is implemented by engines that account for the CPU their
// work takes: after each Handle or HandleTimeout, the host drains the
// operations performed (by cost-table name and units) and delays the
// resulting transmissions until the node's CPU model has completed them.
type CostReporter interface {
	PollCost() (op string, units int, ok bool)
}

// Completer is implemented by engines whose results other than datagrams
// (an SA becoming usable, keys to install) take effect when the CPU work
// that produced them completes. After each Handle or HandleTimeout (and on
// Kick) the host takes the pending completion, if any, and runs it at the
// completion time of that work, just before sending the datagrams it
// produced. Completions run in the order the work was charged.
type Completer interface {
	TakeCompletion() func(now time.Time)
}

// EngineHost runs an Engine on a node: it owns the engine's UDP sockets and
// its timer, and charges its work to the node's CPU. Everything happens on
// the scheduler's goroutine.
type EngineHost struct {
	node   *Node
	engine Engine
	conns  map[netip.AddrPort]*UDPConn
	timer  *Event
	at     time.Time

	// Stats. TimerStalls counts deadlines the engine left in the past after
	// HandleTimeout; the host then retries MinEngineTimerStep later instead
	// of spinning at one instant.
	Received, Sent, SendErrors, CostErrors, TimerStalls uint64
	fired                                               time.Time
}

// MinEngineTimerStep is how far the host pushes a deadline that an engine
// left in the past after handling its timeout.
const MinEngineTimerStep = time.Millisecond

// HostEngine binds the engine to UDP sockets on each of binds (for IKE:
// the gateway's address on ports 500 and 4500) and starts serving it.
func (n *Node) HostEngine(e Engine, binds ...netip.AddrPort) (*EngineHost, error) {
	if len(binds) == 0 {
		return nil, fmt.Errorf("sim: node %s: engine needs at least one UDP address", n.name)
	}
	h := &EngineHost{node: n, engine: e, conns: make(map[netip.AddrPort]*UDPConn)}
	for _, b := range binds {
		c, err := n.ListenUDP(b, h.receive)
		if err != nil {
			h.Close()
			return nil, err
		}
		h.conns[c.LocalAddr()] = c
	}
	h.Kick()
	return h, nil
}

// Engine returns the hosted engine.
func (h *EngineHost) Engine() Engine { return h.engine }

func (h *EngineHost) receive(src, dst netip.AddrPort, p []byte) {
	h.Received++
	h.engine.Handle(h.node.net.sched.Now(), Datagram{Local: dst, Remote: src, Payload: p})
	h.Kick()
}

// Kick flushes the engine's transmissions (after the CPU time it reports)
// and re-arms its timer. Call it after giving the engine input from outside,
// such as a request to initiate.
func (h *EngineHost) Kick() {
	s := h.node.net.sched
	var out []Datagram
	for {
		d, ok := h.engine.PollTransmit()
		if !ok {
			break
		}
		out = append(out, d)
	}
	var cost time.Duration
	if cr, ok := h.engine.(CostReporter); ok {
		for {
			op, units, ok := cr.PollCost()
			if !ok {
				break
			}
			c, err := h.node.cpu.Cost(op, units)
			if err != nil {
				h.CostErrors++
				continue
			}
			cost += c
		}
	}
	var done func(time.Time)
	if c, ok := h.engine.(Completer); ok {
		done = c.TakeCompletion()
	}
	send := func() {
		if done != nil {
			done(s.Now())
		}
		for _, d := range out {
			if err := h.send(d); err != nil {
				h.SendErrors++
			} else {
				h.Sent++
			}
		}
	}
	if cost > 0 {
		// Charged as one job at the reference speed already applied by
		// Cost; ChargeDuration would scale it twice.
		h.node.cpu.charge("engine", cost, send)
	} else if len(out) > 0 || done != nil {
		send()
	}
	h.arm(s)
}

func (h *EngineHost) send(d Datagram) error {
	c := h.conns[d.Local]
	if c == nil {
		for la, cc := range h.conns {
			if la.Port() == d.Local.Port() && la.Addr().IsUnspecified() {
				c = cc
			}
		}
	}
	if c == nil {
		return fmt.Errorf("sim: node %s: engine sends from %v, which it is not bound to", h.node.name, d.Local)
	}
	return c.SendTo(d.Remote, d.Payload)
}

func (h *EngineHost) arm(s *Scheduler) {
	next, ok := h.engine.NextTimeout()
	if !ok {
		s.Cancel(h.timer)
		h.timer = nil
		return
	}
	if h.timer != nil && next.Equal(h.at) {
		return
	}
	if !h.fired.IsZero() && !next.After(h.fired) {
		h.TimerStalls++
		next = h.fired.Add(MinEngineTimerStep)
	}
	s.Cancel(h.timer)
	h.at = next
	h.timer = s.At(next.Sub(s.Epoch()), func() {
		h.timer = nil
		h.fired = s.Now()
		h.engine.HandleTimeout(h.fired)
		h.Kick()
		h.fired = time.Time{}
	})
}

// Close stops the timer and closes the sockets.
func (h *EngineHost) Close() {
	h.node.net.sched.Cancel(h.timer)
	for _, c := range h.conns {
		c.Close()
	}
}
