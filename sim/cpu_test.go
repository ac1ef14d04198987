package sim

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCPUQueueing(t *testing.T) {
	s := NewScheduler(time.Time{})
	table := &CostTable{Name: "t", Ops: map[string]float64{"op": 10e6, "seal.byte": 2}}
	c := NewCPU(s, CPUConfig{Cores: 2, Speed: 1, Table: table})
	var done []time.Duration
	for i := 0; i < 5; i++ {
		end, err := c.Charge("op", 1, func() { done = append(done, s.Elapsed()) })
		require.NoError(t, err)
		require.Equal(t, time.Duration((i/2)+1)*10*time.Millisecond, end)
	}
	require.Equal(t, 20*time.Millisecond, c.Backlog())
	s.RunUntilIdle(time.Hour)
	ms := time.Millisecond
	require.Equal(t, []time.Duration{10 * ms, 10 * ms, 20 * ms, 20 * ms, 30 * ms}, done)
	st := c.Stats()
	require.EqualValues(t, 5, st.Ops["op"])
	require.Equal(t, 50*ms, st.Busy)
	require.EqualValues(t, 3, st.Queued)
	require.Equal(t, 20*ms, st.MaxWait)
	require.Equal(t, (10+10+20)*ms, st.Wait)

	// Per-byte operation and speed factor.
	fast := NewCPU(s, CPUConfig{Cores: 1, Speed: 4, Table: table})
	end, err := fast.Charge("seal.byte", 1000, nil)
	require.NoError(t, err)
	require.Equal(t, s.Elapsed()+500*time.Nanosecond, end)
	_, err = fast.Charge("nope", 1, nil)
	require.ErrorContains(t, err, `sim: operation "nope" not in cost table "t"`)
	_, err = NewCPU(s, CPUConfig{}).Charge("op", 1, nil)
	require.ErrorContains(t, err, "no CPU cost table")
	require.Equal(t, s.Elapsed()+time.Millisecond, NewCPU(s, CPUConfig{}).ChargeDuration("x", time.Millisecond, nil))
}

func TestCPUIdleCoresStartAtNow(t *testing.T) {
	s := NewScheduler(time.Time{})
	c := NewCPU(s, CPUConfig{Cores: 1})
	c.ChargeDuration("a", time.Millisecond, nil)
	s.RunUntil(time.Second)
	require.Equal(t, time.Second+time.Millisecond, c.ChargeDuration("a", time.Millisecond, nil))
	require.Zero(t, c.Stats().Queued)
}

func TestCostTableRoundTrip(t *testing.T) {
	tab := &CostTable{Name: "host", Source: "test", Host: "h", Ops: map[string]float64{
		"ike.mlkem768.keygen": 32000, "esp.aes256gcm.seal.byte": 0.3649, "ike.prf": 812.5,
	}}
	var b bytes.Buffer
	require.NoError(t, tab.WriteTOML(&b))
	got, err := ParseCostTable("host.toml", b.Bytes())
	require.NoError(t, err)
	require.Equal(t, tab, got)
}

func TestCostTableErrors(t *testing.T) {
	_, err := ParseCostTable("models/cpu/x.toml", []byte("name = \"x\"\n\n[ops]\n\"a\" = 1.0\nbogus = 2\n\n[extra]\nfoo = 1\n"))
	require.ErrorContains(t, err, "models/cpu/x.toml:7: extra: unknown key")
	_, err = ParseCostTable("x.toml", []byte("[ops]\n\"a\" = -1.0\n"))
	require.ErrorContains(t, err, "not a finite non-negative number")
	_, err = ParseCostTable("x.toml", []byte("[ops]\n\"a\" = \"fast\"\n"))
	require.ErrorContains(t, err, "sim: x.toml")
}

func TestCalibrateBuiltins(t *testing.T) {
	tab, err := Calibrate("host", BuiltinCalibrationOps(), CalibrateOptions{MinTime: time.Millisecond, Rounds: 3})
	require.NoError(t, err)
	require.Len(t, tab.Ops, 7)
	for op, ns := range tab.Ops {
		require.Positive(t, ns, op)
	}
	// ML-KEM-768 decapsulation costs more than a SHA-256 byte.
	require.Greater(t, tab.Ops["ref.mlkem768.decaps"], 100*tab.Ops["ref.sha256.byte"])
	speed, ok := tab.SpeedRelativeTo(tab)
	require.True(t, ok)
	require.InDelta(t, 1, speed, 1e-9)
}

// TestWriteReferenceTable writes a table of the built-in operations only
// when PQLAB_CALIBRATE_OUT names the output file:
//
//	PQLAB_CALIBRATE_OUT=/tmp/builtin.toml go test -run WriteReferenceTable ./sim/
//
// models/cpu/reference.toml also holds the IKE and ESP operations; it is
// written by "pqlab calibrate --out models/cpu/reference.toml".
func TestWriteReferenceTable(t *testing.T) {
	out := os.Getenv("PQLAB_CALIBRATE_OUT")
	if out == "" {
		t.Skip("set PQLAB_CALIBRATE_OUT to regenerate the reference cost table")
	}
	tab, err := Calibrate("reference", BuiltinCalibrationOps(), CalibrateOptions{MinTime: 200 * time.Millisecond, Rounds: 7})
	require.NoError(t, err)
	tab.Source = "pqlab calibrate: sim.BuiltinCalibrationOps, median of 7 rounds of 200 ms"
	var b bytes.Buffer
	require.NoError(t, tab.WriteTOML(&b))
	require.NoError(t, os.WriteFile(out, b.Bytes(), 0o644))
}
