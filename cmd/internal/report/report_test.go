package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pqlab/pqlab/cmd/internal/results"
)

func TestWrite(t *testing.T) {
	f := &results.File{Runs: []results.Run{{Name: "r", Params: map[string]string{"rtt": "5ms"}, Handshakes: []results.Handshake{
		{Suite: "aes256gcm16-prfsha384-x25519-ke1_mlkem768", Placement: "intermediate", Outcome: "established", LatencyNs: 12e6, Bytes: 4000},
		{Suite: "aes256gcm16-prfsha384-mlkem768", Placement: "init", Outcome: "failed", Reason: "retransmission timeout"},
	}}}}
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, "test <report>", f))
	out := buf.String()
	require.Contains(t, out, "<title>test &lt;report&gt;</title>")
	require.Contains(t, out, "retransmission timeout ×1")
	require.Contains(t, out, "<svg")
	require.NotContains(t, out, "<?xml")
	require.Equal(t, 2, strings.Count(out, "<tr><td"))
}

// TestRekeyRows: the rekey table counts lost collisions apart from
// failures and keeps them out of the latency and octet columns.
func TestRekeyRows(t *testing.T) {
	f := &results.File{Runs: []results.Run{{Name: "storm", Rekeys: []results.Rekey{
		{Initiator: "a", Responder: "b", Kind: "ike", Outcome: results.OutcomeEstablished, LatencyNs: 40e6, Bytes: 2869},
		{Initiator: "b", Responder: "a", Kind: "ike", Outcome: results.OutcomeCollisionLost, Reason: "rekey-collision", Bytes: 390},
		{Initiator: "a", Responder: "b", Kind: "child", Outcome: results.OutcomeFailed, Reason: "timeout"},
	}}}}
	rows := rekeyRows(f)
	require.Len(t, rows, 1)
	r := rows[0]
	require.Equal(t, 1, r.IKE)
	require.Zero(t, r.Child)
	require.Equal(t, 1, r.Failed)
	require.Equal(t, 1, r.Lost)
	require.Equal(t, "40.0", r.Median)
	require.Equal(t, "40.0", r.P95)
	require.Equal(t, "2869", r.Bytes)
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, "rekeys", f))
	require.Contains(t, buf.String(), "<th>collisions lost</th>")
	require.Contains(t, buf.String(), "<td>1</td><td>1</td><td>40.0</td>")
}
