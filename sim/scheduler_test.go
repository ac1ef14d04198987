package sim

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSchedulerOrder(t *testing.T) {
	s := NewScheduler(time.Time{})
	var got []int
	// Same-instant events fire in insertion order, earlier instants first.
	for i := 0; i < 100; i++ {
		i := i
		at := time.Duration(i%3) * time.Millisecond
		s.At(at, func() { got = append(got, i) })
	}
	n := s.RunUntilIdle(time.Hour)
	require.Equal(t, 100, n)
	var want []int
	for m := 0; m < 3; m++ {
		for i := 0; i < 100; i++ {
			if i%3 == m {
				want = append(want, i)
			}
		}
	}
	require.Equal(t, want, got)
	require.Equal(t, 2*time.Millisecond, s.Elapsed())
}

func TestSchedulerNestedAndRunUntil(t *testing.T) {
	s := NewScheduler(time.Time{})
	var trace []string
	s.At(10*time.Millisecond, func() {
		trace = append(trace, "a")
		s.After(0, func() { trace = append(trace, "a0") })
		s.After(5*time.Millisecond, func() { trace = append(trace, "a5") })
	})
	s.At(10*time.Millisecond, func() { trace = append(trace, "b") })
	s.At(30*time.Millisecond, func() { trace = append(trace, "late") })
	s.RunUntil(20 * time.Millisecond)
	require.Equal(t, []string{"a", "b", "a0", "a5"}, trace)
	require.Equal(t, 20*time.Millisecond, s.Elapsed())
	require.Equal(t, 1, s.Pending())
	require.Equal(t, DefaultEpoch.Add(20*time.Millisecond), s.Now())
	// An event in the past fires at the current instant.
	s.At(time.Millisecond, func() { trace = append(trace, "past") })
	s.RunUntil(40 * time.Millisecond)
	require.Equal(t, []string{"a", "b", "a0", "a5", "past", "late"}, trace)
}

func TestSchedulerCancel(t *testing.T) {
	s := NewScheduler(time.Time{})
	fired := 0
	evs := make([]*Event, 50)
	for i := range evs {
		evs[i] = s.At(time.Duration(i)*time.Microsecond, func() { fired++ })
	}
	for i := 0; i < 50; i += 2 {
		require.True(t, s.Cancel(evs[i]))
		require.False(t, s.Cancel(evs[i]))
	}
	s.RunUntilIdle(time.Hour)
	require.Equal(t, 25, fired)
	require.False(t, s.Cancel(evs[1]), "fired event cannot be cancelled")
}

func TestClockTimer(t *testing.T) {
	s := NewScheduler(time.Time{})
	c := s.Clock()
	var trace []time.Duration
	tm := c.AfterFunc(5*time.Millisecond, func() { trace = append(trace, s.Elapsed()) })
	require.True(t, tm.Stop())
	require.False(t, tm.Stop())
	tm.Reset(7 * time.Millisecond)
	s.RunUntil(3 * time.Millisecond)
	tm.Reset(10 * time.Millisecond) // pending: moves to 13 ms
	s.RunUntilIdle(time.Hour)
	require.Equal(t, []time.Duration{13 * time.Millisecond}, trace)
	require.False(t, tm.Stop(), "expired timer")
	tm.Reset(0) // an expired timer can be reset
	s.RunUntilIdle(time.Hour)
	require.Equal(t, []time.Duration{13 * time.Millisecond, 13 * time.Millisecond}, trace)

	mono := c.NowMonotonic()
	s.RunUntil(20 * time.Millisecond)
	require.Equal(t, 7*time.Millisecond, c.NowMonotonic().Sub(mono))
	require.Equal(t, DefaultEpoch.Add(20*time.Millisecond), c.Now())
}

func TestClockAfterFuncZeroRunsLater(t *testing.T) {
	// AfterFunc(0) must not run f synchronously: gVisor calls it with locks
	// held that f takes.
	s := NewScheduler(time.Time{})
	var mu sync.Mutex
	ran := false
	s.At(0, func() {
		mu.Lock()
		s.Clock().AfterFunc(0, func() {
			mu.Lock()
			ran = true
			mu.Unlock()
		})
		require.False(t, ran)
		mu.Unlock()
	})
	s.RunUntilIdle(time.Hour)
	require.True(t, ran)
}

func TestSchedulerConcurrentSchedule(t *testing.T) {
	// Timers armed from other goroutines (as gVisor's TCP does) are safe.
	s := NewScheduler(time.Time{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := 0
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				tm := s.Clock().AfterFunc(time.Duration(i)*time.Microsecond, func() { mu.Lock(); count++; mu.Unlock() })
				if i%2 == 0 {
					tm.Stop()
				}
			}
		}()
	}
	wg.Wait()
	s.RunUntilIdle(time.Hour)
	require.Equal(t, 2000, count)
}

func TestRealtimeScheduler(t *testing.T) {
	s := NewRealtimeScheduler(time.Time{})
	fired := time.Duration(-1)
	t0 := time.Now()
	s.After(20*time.Millisecond, func() { fired = time.Since(t0) })
	s.RunUntil(30 * time.Millisecond)
	require.GreaterOrEqual(t, fired, 20*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(t0), 30*time.Millisecond)
}

// TestRealtimeOtherGoroutines: a real-time scheduler that is waiting with
// nothing due fires events that another goroutine schedules (as gVisor's
// TCP does) at once, timed from the present.
func TestRealtimeOtherGoroutines(t *testing.T) {
	s := NewRealtimeScheduler(time.Time{})
	var delays []time.Duration
	go func() {
		for i := 0; i < 5; i++ {
			time.Sleep(10 * time.Millisecond)
			at := time.Now()
			s.After(2*time.Millisecond, func() { delays = append(delays, time.Since(at)) })
		}
	}()
	s.RunUntil(time.Second)
	require.Len(t, delays, 5)
	for _, d := range delays {
		require.GreaterOrEqual(t, d, 2*time.Millisecond)
		require.Less(t, d, 500*time.Millisecond, "woken by the new event, not at the end of the run")
	}
	require.GreaterOrEqual(t, s.Elapsed(), time.Second)
	// RunUntilIdle returns once the queue is empty.
	t0 := time.Now()
	s.After(time.Millisecond, func() {})
	require.Equal(t, 1, s.RunUntilIdle(time.Hour))
	require.Less(t, time.Since(t0), time.Second)
}

func TestHeapRandomized(t *testing.T) {
	s := NewScheduler(time.Time{})
	r := NewRand(1, "heap")
	var evs []*Event
	var got []time.Duration
	for i := 0; i < 2000; i++ {
		at := time.Duration(r.IntN(500))
		evs = append(evs, s.At(at, func() { got = append(got, s.Elapsed()) }))
	}
	for i := 0; i < 500; i++ {
		s.Cancel(evs[r.IntN(len(evs))])
	}
	s.RunUntilIdle(time.Hour)
	for i := 1; i < len(got); i++ {
		require.LessOrEqual(t, got[i-1], got[i])
	}
}

func BenchmarkSchedulerEvent(b *testing.B) {
	s := NewScheduler(time.Time{})
	fn := func() {}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.After(time.Duration(i%1000), fn)
		if i%1000 == 999 {
			s.RunUntilIdle(1 << 62)
		}
	}
	s.RunUntilIdle(1 << 62)
}
