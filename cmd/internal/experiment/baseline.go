package experiment

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pqlab/pqlab/cmd/internal/results"
)

// WireSummary renders what a regression baseline pins down: for every run
// (in name order) and every handshake, the suite, the outcome and reason,
// and the wire cost (bytes, datagrams, IP packets and fragments, IKE
// fragments, retransmissions, round trips, bytes and datagrams per
// exchange), one line each. Latency and CPU time are left out: they follow
// the CPU cost tables, not the wire.
func WireSummary(f *results.File) string {
	runs := append([]results.Run(nil), f.Runs...)
	sort.Slice(runs, func(i, j int) bool { return runs[i].Name < runs[j].Name })
	var b strings.Builder
	b.WriteString("# pqlab wire baseline: one line per handshake (run, endpoints, suite, outcome, wire cost)\n")
	for _, r := range runs {
		for i, h := range r.Handshakes {
			fmt.Fprintf(&b, "%s #%d %s->%s suite=%s placement=%s outcome=%s", r.Name, i, h.Initiator, h.Responder, h.Suite, h.Placement, h.Outcome)
			if h.Reason != "" {
				fmt.Fprintf(&b, " reason=%q", h.Reason)
			}
			fmt.Fprintf(&b, " bytes=%d datagrams=%d ip_packets=%d ip_fragments=%d ike_fragments=%d retransmissions=%d round_trips=%d",
				h.Bytes, h.Datagrams, h.IPPackets, h.IPFragments, h.IKEFragments, h.Retransmissions, h.RoundTrips)
			if len(h.Exchanges) > 0 {
				var ex []string
				for _, e := range h.Exchanges {
					ex = append(ex, fmt.Sprintf("%s:%d/%d", e.Name, e.Bytes, e.Datagrams))
				}
				fmt.Fprintf(&b, " exchanges=%s", strings.Join(ex, ","))
			}
			b.WriteByte('\n')
		}
		for i, k := range r.Rekeys {
			fmt.Fprintf(&b, "%s rekey#%d %s->%s kind=%s outcome=%s bytes=%d datagrams=%d\n", r.Name, i, k.Initiator, k.Responder, k.Kind, k.Outcome, k.Bytes, k.Datagrams)
		}
	}
	return b.String()
}

// Diff returns a line diff of want and got ("-" lines only in want, "+"
// lines only in got, with up to two lines of context), or "" when they
// are equal.
func Diff(want, got string) string {
	if want == got {
		return ""
	}
	a := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	b := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	// Longest common subsequence by dynamic programming; baselines are a
	// few hundred lines.
	if len(a)*len(b) > 25_000_000 {
		return fmt.Sprintf("baselines differ (%d and %d lines, too many to diff)\n", len(a), len(b))
	}
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			lines = append(lines, line{' ', a[i]})
			i++
			j++
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			lines = append(lines, line{'+', b[j]})
			j++
		default:
			lines = append(lines, line{'-', a[i]})
			i++
		}
	}
	const context = 2
	keep := make([]bool, len(lines))
	for k, l := range lines {
		if l.op != ' ' {
			for c := max(0, k-context); c <= min(len(lines)-1, k+context); c++ {
				keep[c] = true
			}
		}
	}
	var out strings.Builder
	skipped := false
	for k, l := range lines {
		if !keep[k] {
			skipped = true
			continue
		}
		if skipped {
			out.WriteString("   ...\n")
			skipped = false
		}
		fmt.Fprintf(&out, "%c %s\n", l.op, l.text)
	}
	return out.String()
}
