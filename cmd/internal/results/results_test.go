package results

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func sample() *File {
	return &File{Runs: []Run{
		{Name: "b", Seed: 2, Params: map[string]string{"rtt": "31ms"}, Handshakes: []Handshake{
			{Initiator: "br1", Responder: "hub", Suite: "x", Placement: "intermediate", Outcome: "established", LatencyNs: 4e6, Bytes: 3000},
		}},
		{Name: "a", Seed: 1, Params: map[string]string{"loss": "0.1"}, Handshakes: []Handshake{
			{Initiator: "br2", Responder: "hub", Suite: "y", Placement: "none", Outcome: "failed", Reason: "NO_PROPOSAL_CHOSEN"},
		}},
	}}
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, sample()))
	f, err := Read(&buf)
	require.NoError(t, err)
	require.Equal(t, sample().Runs, f.Runs)
}

func TestReadRejects(t *testing.T) {
	_, err := Read(strings.NewReader(`{"schema":"other","runs":[]}`))
	require.ErrorContains(t, err, "schema")
	_, err = Read(strings.NewReader(`{"schema":"pqlab/results/v1","runs":[],"extra":1}`))
	require.ErrorContains(t, err, "extra")
}

func TestMerge(t *testing.T) {
	s := sample()
	a := &File{Runs: s.Runs[:1]}
	b := &File{Runs: s.Runs[1:]}
	m1, err := Merge(a, b)
	require.NoError(t, err)
	m2, err := Merge(b, a)
	require.NoError(t, err)
	require.Equal(t, m1, m2)
	require.Equal(t, "a", m1.Runs[0].Name)
	_, err = Merge(a, a)
	require.ErrorContains(t, err, "twice")
}

func TestCSV(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteCSV(&buf, sample()))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	require.True(t, strings.HasSuffix(lines[0], ",loss,rtt"), lines[0])
	require.True(t, strings.HasSuffix(lines[1], ",,31ms"), lines[1])
	require.Contains(t, lines[2], "NO_PROPOSAL_CHOSEN")
}

func TestQuantile(t *testing.T) {
	require.True(t, math.IsNaN(Quantile(nil, 0.5)))
	require.Equal(t, 2.0, Quantile([]float64{3, 1, 2}, 0.5))
	require.InDelta(t, 2.5, Quantile([]float64{1, 2, 3, 4}, 0.5), 1e-9)
	require.Equal(t, 4.0, Quantile([]float64{4, 1, 2, 3}, 1))
}

func TestGroupBy(t *testing.T) {
	g := GroupBy(sample(), func(_ *Run, h *Handshake) string { return h.Responder })
	require.Len(t, g, 1)
	require.Len(t, g[0].Handshakes, 2)
	require.Equal(t, 0.5, g[0].SuccessRate())
	require.Equal(t, []float64{4}, g[0].Latencies())
}

func TestSummarize(t *testing.T) {
	f := sample()
	f.Runs[0].Handshakes = append(f.Runs[0].Handshakes, Handshake{Suite: "x", Placement: "intermediate", Outcome: "established", LatencyNs: 6e6, Bytes: 5000})
	s := Summarize(f)
	require.Len(t, s, 2)
	require.Equal(t, 2, s[0].Established)
	require.Equal(t, 4000.0, s[0].Bytes)
	require.Equal(t, 5.0, s[0].MedianMs)
	require.Equal(t, map[string]int{"NO_PROPOSAL_CHOSEN": 1}, s[1].Reasons)
	require.True(t, math.IsNaN(s[1].MedianMs))
}

// TestCountRekeys: a lost rekey collision is neither established nor
// failed, and its (zero) latency stays out of the latencies.
func TestCountRekeys(t *testing.T) {
	c := CountRekeys([]Rekey{
		{Kind: "ike", Outcome: OutcomeEstablished, LatencyNs: 40e6, Bytes: 2869},
		{Kind: "ike", Outcome: OutcomeCollisionLost, Reason: "rekey-collision", Bytes: 390},
		{Kind: "child", Outcome: OutcomeEstablished, LatencyNs: 20e6},
		{Kind: "child", Outcome: OutcomeCollisionLost, Reason: "rekey-collision"},
		{Kind: "child", Outcome: OutcomeFailed, Reason: "timeout"},
		{Kind: "unknown", Outcome: OutcomeFailed, Reason: "run-ended"},
	})
	require.Equal(t, 1, c.IKE)
	require.Equal(t, 1, c.Child)
	require.Equal(t, 2, c.Failed)
	require.Equal(t, 2, c.CollisionsLost)
	require.Equal(t, []float64{40, 20}, c.LatenciesMs)
	require.Equal(t, []float64{2869}, c.IKEBytes)
}

func TestWriteRekeysCSV(t *testing.T) {
	f := &File{Runs: []Run{{Name: "r", Seed: 2, Params: map[string]string{"suite": "x25519"}, Rekeys: []Rekey{
		{Initiator: "a", Responder: "b", Kind: "ike", StartNs: 30e9, LatencyNs: 2e7, Outcome: OutcomeEstablished, Bytes: 362, Datagrams: 2},
		{Initiator: "b", Responder: "a", Kind: "ike", StartNs: 30e9 + 5e6, Outcome: OutcomeCollisionLost, Reason: "rekey-collision", Bytes: 362, Datagrams: 2},
	}}}}
	var b strings.Builder
	require.NoError(t, WriteRekeysCSV(&b, f))
	require.Equal(t, "run,seed,initiator,responder,kind,start_ns,latency_ns,outcome,reason,bytes,datagrams,suite\n"+
		"r,2,a,b,ike,30000000000,20000000,established,,362,2,x25519\n"+
		"r,2,b,a,ike,30005000000,0,collision-lost,rekey-collision,362,2,x25519\n", b.String())
}
