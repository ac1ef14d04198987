package results

import (
	"math"
	"sort"
)

// Quantile returns the q-quantile (0 <= q <= 1) of xs by linear interpolation
// between closest ranks, or NaN for an empty slice. xs is not modified.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	if lo == hi {
		return s[lo]
	}
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

// Group is the set of handshakes that share a key, in the order first seen.
type Group struct {
	Key        string
	Handshakes []Handshake
	Runs       []*Run // the run of each handshake
}

// GroupBy splits the handshakes of f by key(run, handshake), keeping the order in
// which keys first appear.
func GroupBy(f *File, key func(r *Run, h *Handshake) string) []*Group {
	var groups []*Group
	index := map[string]*Group{}
	for i := range f.Runs {
		r := &f.Runs[i]
		for j := range r.Handshakes {
			h := &r.Handshakes[j]
			k := key(r, h)
			g := index[k]
			if g == nil {
				g = &Group{Key: k}
				index[k] = g
				groups = append(groups, g)
			}
			g.Handshakes = append(g.Handshakes, *h)
			g.Runs = append(g.Runs, r)
		}
	}
	return groups
}

// Latencies returns the latencies in milliseconds of the established handshakes of g.
func (g *Group) Latencies() []float64 {
	var ms []float64
	for _, h := range g.Handshakes {
		if h.Outcome == "established" {
			ms = append(ms, float64(h.LatencyNs)/1e6)
		}
	}
	return ms
}

// SuccessRate returns the fraction of g's handshakes that were established,
// leaving out the not-configurable ones; NaN when none ran.
func (g *Group) SuccessRate() float64 {
	ok, n := 0, 0
	for _, h := range g.Handshakes {
		if h.Outcome == OutcomeNotConfigurable {
			continue
		}
		n++
		if h.Outcome == OutcomeEstablished {
			ok++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return float64(ok) / float64(n)
}

// RekeyCounts condenses a run's rekey records by outcome.
type RekeyCounts struct {
	// IKE and Child count the established rekeys of each kind.
	IKE, Child int
	// Failed counts the failed rekeys (Outcome "failed").
	Failed int
	// CollisionsLost counts the exchanges that lost a rekey collision
	// (OutcomeCollisionLost): neither established nor failed, the SA was
	// rekeyed by the other gateway's exchange.
	CollisionsLost int
	// LatenciesMs are the latencies of the established rekeys, in
	// milliseconds, in record order.
	LatenciesMs []float64
	// IKEBytes are the octets of each established IKE SA rekey.
	IKEBytes []float64
}

// CountRekeys counts rs by outcome and collects the latencies and IKE SA
// rekey octets of the established ones.
func CountRekeys(rs []Rekey) RekeyCounts {
	var c RekeyCounts
	for _, k := range rs {
		switch k.Outcome {
		case OutcomeEstablished:
			c.LatenciesMs = append(c.LatenciesMs, float64(k.LatencyNs)/1e6)
			if k.Kind == "ike" {
				c.IKE++
				c.IKEBytes = append(c.IKEBytes, float64(k.Bytes))
			} else {
				c.Child++
			}
		case OutcomeCollisionLost:
			c.CollisionsLost++
		default:
			c.Failed++
		}
	}
	return c
}
