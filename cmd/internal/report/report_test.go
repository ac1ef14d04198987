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
