package sim

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
)

// CPUConfig describes a node's processor.
type CPUConfig struct {
	// Cores is the number of operations that run in parallel (1 when zero).
	Cores int
	// Speed scales every cost: an operation costing c on the reference host
	// takes c/Speed on this node (1 when zero).
	Speed float64
	// Table gives operation costs by name; nil means every Charge of a
	// named operation fails (ChargeDuration still works).
	Table *CostTable
}

// Validate checks the configuration.
func (c CPUConfig) Validate() error {
	if c.Cores < 0 {
		return fmt.Errorf("sim: negative core count %d", c.Cores)
	}
	if c.Speed < 0 || math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0) {
		return fmt.Errorf("sim: invalid CPU speed %v", c.Speed)
	}
	return nil
}

// CPUStats summarise a CPU's work.
type CPUStats struct {
	// Ops counts operations by name.
	Ops map[string]uint64
	// Busy is the total core time charged.
	Busy time.Duration
	// BusyWall is the virtual time during which at least one core was
	// busy (or work was queued), up to the end of the work charged so far.
	BusyWall time.Duration
	// Wait is the total time operations waited for a free core; MaxWait the
	// longest single wait.
	Wait, MaxWait time.Duration
	// Queued counts operations that had to wait.
	Queued uint64
}

// CPU models a node's processor in virtual time: each charged operation
// occupies one core for its cost; when all cores are busy, operations queue
// in FIFO order. Completion callbacks run on the scheduler's goroutine. On a
// real-time scheduler the model only counts: the work is real and done
// runs at once.
type CPU struct {
	sched *Scheduler
	speed float64
	table *CostTable

	mu    sync.Mutex
	free  []time.Duration // virtual time each core becomes free
	stats CPUStats
	// busyUntil is the latest completion charged: from each charge's
	// instant to its end every moment is busy (a core runs it or all cores
	// are busy while it waits), so the busy wall time grows by the part of
	// [now, end) after busyUntil.
	busyUntil time.Duration
}

// NewCPU returns a CPU model on scheduler s.
func NewCPU(s *Scheduler, cfg CPUConfig) *CPU {
	cores := max(cfg.Cores, 1)
	speed := cfg.Speed
	if speed == 0 {
		speed = 1
	}
	return &CPU{sched: s, speed: speed, table: cfg.Table, free: make([]time.Duration, cores)}
}

// Cores returns the number of cores.
func (c *CPU) Cores() int { return len(c.free) }

// Speed returns the speed factor.
func (c *CPU) Speed() float64 { return c.speed }

// Table returns the cost table (possibly nil).
func (c *CPU) Table() *CostTable { return c.table }

// Cost returns the cost on this CPU of units units of operation op.
func (c *CPU) Cost(op string, units int) (time.Duration, error) {
	if c.table == nil {
		return 0, fmt.Errorf("sim: no CPU cost table for operation %q", op)
	}
	d, ok := c.table.Cost(op, units)
	if !ok {
		return 0, fmt.Errorf("sim: operation %q not in cost table %q", op, c.table.Name)
	}
	return time.Duration(float64(d) / c.speed), nil
}

// Charge charges units units of operation op (one call, or bytes for a
// per-byte operation) at the cost-table price and schedules done (if not nil)
// at its completion. It returns the completion time.
func (c *CPU) Charge(op string, units int, done func()) (time.Duration, error) {
	d, err := c.Cost(op, units)
	if err != nil {
		return 0, err
	}
	return c.charge(op, d, done), nil
}

// ChargeDuration charges an operation of known cost on the reference host
// (scaled by the CPU's speed), e.g. a cost measured live. It returns the
// completion time.
func (c *CPU) ChargeDuration(op string, cost time.Duration, done func()) time.Duration {
	return c.charge(op, time.Duration(float64(cost)/c.speed), done)
}

// ChargeMeasured runs work now, measures its wall-clock duration on the host
// and charges that (scaled by speed). It is not deterministic and is meant
// for runs that prefer live costs to a table.
func (c *CPU) ChargeMeasured(op string, work func(), done func()) time.Duration {
	t0 := time.Now()
	work()
	return c.ChargeDuration(op, time.Since(t0), done)
}

func (c *CPU) charge(op string, cost time.Duration, done func()) time.Duration {
	now := c.sched.Elapsed()
	if c.sched.realtime {
		return c.chargeRealtime(op, now, cost, done)
	}
	c.mu.Lock()
	best := 0
	for i, f := range c.free {
		if f < c.free[best] {
			best = i
		}
	}
	start := max(now, c.free[best])
	end := start + cost
	c.free[best] = end
	if c.stats.Ops == nil {
		c.stats.Ops = make(map[string]uint64)
	}
	c.stats.Ops[op]++
	c.stats.Busy += cost
	if end > c.busyUntil {
		c.stats.BusyWall += end - max(now, c.busyUntil)
		c.busyUntil = end
	}
	if w := start - now; w > 0 {
		c.stats.Wait += w
		c.stats.MaxWait = max(c.stats.MaxWait, w)
		c.stats.Queued++
	}
	c.mu.Unlock()
	if done != nil {
		c.sched.At(end, done)
	}
	return end
}

// chargeRealtime counts an operation on a real-time scheduler, where the
// host's own processor does the work and takes the time it takes: the model
// adds no delay and done runs at once, before chargeRealtime returns (no
// scheduler round trip on the data path). Charges are made from events,
// never from inside a stack's receive or send path, so done may send.
func (c *CPU) chargeRealtime(op string, now, cost time.Duration, done func()) time.Duration {
	c.mu.Lock()
	if c.stats.Ops == nil {
		c.stats.Ops = make(map[string]uint64)
	}
	c.stats.Ops[op]++
	c.stats.Busy += cost
	c.mu.Unlock()
	if done != nil {
		done()
	}
	return now
}

// Backlog returns how long from now until a core is free.
func (c *CPU) Backlog() time.Duration {
	now := c.sched.Elapsed()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.free[0]
	for _, f := range c.free {
		m = min(m, f)
	}
	return max(m-now, 0)
}

// Stats returns a copy of the CPU's counters.
func (c *CPU) Stats() CPUStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Ops = make(map[string]uint64, len(c.stats.Ops))
	for k, v := range c.stats.Ops {
		s.Ops[k] = v
	}
	return s
}

// OpNames returns the operation names in s, sorted.
func (s CPUStats) OpNames() []string {
	out := make([]string, 0, len(s.Ops))
	for k := range s.Ops {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
