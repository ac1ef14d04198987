package results

// Summary condenses the handshakes of one suite and placement.
type Summary struct {
	Suite        string  `json:"suite"`
	Placement    string  `json:"placement"`
	Handshakes   int     `json:"handshakes"`
	Established  int     `json:"established"`
	MedianMs     float64 `json:"median_ms"`
	P95Ms        float64 `json:"p95_ms"`
	Bytes        float64 `json:"bytes"`     // mean per established handshake
	Datagrams    float64 `json:"datagrams"` // mean per established handshake
	IPFragments  float64 `json:"ip_fragments"`
	IKEFragments float64 `json:"ike_fragments"`
	RoundTrips   float64 `json:"round_trips"`
	// Reasons counts the failure reasons.
	Reasons map[string]int `json:"reasons,omitempty"`
}

// Summarize returns one Summary per suite and placement, in the order they
// first appear in f. Not-configurable records are left out.
func Summarize(f *File) []Summary {
	groups := GroupBy(f, func(_ *Run, h *Handshake) string {
		if h.Outcome == OutcomeNotConfigurable {
			return ""
		}
		return h.Suite + "\x00" + h.Placement
	})
	out := make([]Summary, 0, len(groups))
	for _, g := range groups {
		if g.Key == "" {
			continue
		}
		s := Summary{Suite: g.Handshakes[0].Suite, Placement: g.Handshakes[0].Placement, Handshakes: len(g.Handshakes)}
		for _, h := range g.Handshakes {
			if h.Outcome != "established" {
				if s.Reasons == nil {
					s.Reasons = map[string]int{}
				}
				s.Reasons[h.Reason]++
				continue
			}
			s.Established++
			s.Bytes += float64(h.Bytes)
			s.Datagrams += float64(h.Datagrams)
			s.IPFragments += float64(h.IPFragments)
			s.IKEFragments += float64(h.IKEFragments)
			s.RoundTrips += float64(h.RoundTrips)
		}
		if n := float64(s.Established); n > 0 {
			s.Bytes /= n
			s.Datagrams /= n
			s.IPFragments /= n
			s.IKEFragments /= n
			s.RoundTrips /= n
		}
		lat := g.Latencies()
		s.MedianMs = Quantile(lat, 0.5)
		s.P95Ms = Quantile(lat, 0.95)
		out = append(out, s)
	}
	return out
}
