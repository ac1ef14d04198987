package plots

import (
	"fmt"
	"image/color"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/pqlab/pqlab/cmd/internal/results"
)

// Cell states of the interoperability heat map.
type cellState int

const (
	cellNone            cellState = iota // the pair did not run (roles)
	cellEstablished                      // established as configured
	cellNoMLKEM                          // established without ML-KEM in a column that asks for it
	cellPartial                          // established in some repetitions only
	cellFailed                           // failed
	cellNotConfigurable                  // a device cannot express the suite
)

var cellColors = map[cellState]color.Color{
	cellEstablished:     color.RGBA{80, 175, 90, 255},
	cellNoMLKEM:         color.RGBA{240, 190, 60, 255},
	cellPartial:         color.RGBA{250, 150, 90, 255},
	cellFailed:          color.RGBA{215, 70, 60, 255},
	cellNotConfigurable: color.RGBA{190, 190, 190, 255},
}

// abbreviations of failure reasons in cells, explained in the legend.
var reasonAbbrev = map[string]string{
	"NO_PROPOSAL_CHOSEN":    "NPC",
	"AUTHENTICATION_FAILED": "AUTH",
	"TS_UNACCEPTABLE":       "TS",
	"INVALID_KE_PAYLOAD":    "IKE",
	"INVALID_SYNTAX":        "SYN",
	"timeout":               "t/o",
	"half-open-timeout":     "t/o",
	"run-ended":             "end",
}

func abbrev(reason string) string {
	if a, ok := reasonAbbrev[reason]; ok {
		return a
	}
	if len(reason) > 5 {
		return strings.ToLower(reason[:5])
	}
	return strings.ToLower(reason)
}

// cell is one initiator/responder pair of a facet.
type cell struct {
	x, y  int
	state cellState
	color color.Color // overrides the state's colour
	label string
}

// cellGrid draws coloured cells with labels at integer positions.
type cellGrid struct{ cells []cell }

func (g cellGrid) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	ts := withSize(plot.NewLegend().TextStyle, 7.5)
	ts.XAlign, ts.YAlign = draw.XCenter, draw.YCenter
	for _, cl := range g.cells {
		x0, x1 := tx(float64(cl.x)-0.48), tx(float64(cl.x)+0.48)
		y0, y1 := ty(float64(cl.y)-0.46), ty(float64(cl.y)+0.46)
		pts := []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
		col := cl.color
		if col == nil {
			col = cellColors[cl.state]
		}
		c.FillPolygon(col, c.ClipPolygonXY(pts))
		if cl.label != "" {
			c.FillText(ts, vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, cl.label)
		}
	}
}

// Interop draws the interoperability matrix: initiator models across,
// responder models up, one tile per suite (run parameter "suite") and one
// figure per path (run parameter "path") when the runs have them. A cell
// is green when the pair established the tunnel as configured, amber when
// it did without ML-KEM although the column asks for it, red with the
// reason when it failed, grey when a device cannot be configured with the
// suite, and empty when the profiles do not take the roles.
func Interop(f *results.File) ([]Figure, error) {
	// The runs of a matrix (peer models as parameters); without any, every
	// run whose handshakes name models, if they make two pairs or more.
	runs := refs(f, isInterop)
	if len(runs) == 0 {
		runs = refs(f, func(r *results.Run) bool {
			for _, h := range r.Handshakes {
				if h.InitiatorModel != "" && h.ResponderModel != "" {
					return true
				}
			}
			return false
		})
		pairs := map[[2]string]bool{}
		for _, rr := range runs {
			for _, h := range rr.run.Handshakes {
				pairs[[2]string{h.InitiatorModel, h.ResponderModel}] = true
			}
		}
		if len(pairs) < 2 {
			return nil, nil
		}
	}
	paths := distinctParam(runs, "path")
	if len(paths) == 0 {
		paths = []string{""}
	}
	var figs []Figure
	for _, pth := range paths {
		sub := runs
		if pth != "" {
			sub = nil
			for _, rr := range runs {
				if rr.run.Params["path"] == pth {
					sub = append(sub, rr)
				}
			}
		}
		fig, err := interopFigure(sub, pth)
		if err != nil {
			return nil, err
		}
		if fig == nil {
			continue
		}
		fig.Name = "interop"
		if pth != "" && len(paths) > 1 {
			fig.Name = "interop_" + safe(pth)
		}
		figs = append(figs, *fig)
	}
	return figs, nil
}

func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func interopFigure(runs []runRef, pth string) (*Figure, error) {
	suites := distinctParamOrdered(runs, "suite")
	if len(suites) == 0 {
		suites = []string{""}
	}
	type pair struct{ suite, i, r string }
	type acc struct {
		n, ok, noPQ, nc int
		reasons         map[string]int
	}
	cells := map[pair]*acc{}
	pq := map[string]bool{} // suites whose offers carry ML-KEM
	si, sr := map[string]bool{}, map[string]bool{}
	var is, rs []string
	for _, rr := range runs {
		s := rr.run.Params["suite"]
		for _, h := range rr.run.Handshakes {
			if h.InitiatorModel == "" || h.ResponderModel == "" {
				continue
			}
			if !si[h.InitiatorModel] {
				si[h.InitiatorModel] = true
				is = append(is, h.InitiatorModel)
			}
			if !sr[h.ResponderModel] {
				sr[h.ResponderModel] = true
				rs = append(rs, h.ResponderModel)
			}
			if h.Placement != "none" && h.Placement != "" {
				pq[s] = true
			}
			k := pair{s, h.InitiatorModel, h.ResponderModel}
			a := cells[k]
			if a == nil {
				a = &acc{reasons: map[string]int{}}
				cells[k] = a
			}
			a.n++
			switch h.Outcome {
			case results.OutcomeEstablished:
				a.ok++
				if h.Placement == "none" {
					a.noPQ++
				}
			case results.OutcomeNotConfigurable:
				a.nc++
			default:
				a.reasons[h.Reason]++
			}
		}
	}
	if len(cells) == 0 {
		return nil, nil
	}
	sort.Strings(is)
	sort.Strings(rs)
	title := "Interoperability: initiator model against responder model"
	if pth != "" {
		title += ", path: " + pth
	}
	cols := facetCols(len(suites))
	fig := &Figure{Title: title, Cols: cols}
	used := map[string]bool{}
	states := map[cellState]bool{}
	for _, s := range suites {
		t := "suite: " + s
		if s == "" {
			t = "each model's own proposals"
		}
		p := newTile(t, "initiator model", "responder model")
		var g cellGrid
		for y, r := range rs {
			for x, i := range is {
				a := cells[pair{s, i, r}]
				if a == nil {
					continue
				}
				c := cell{x: x, y: y}
				switch {
				case a.nc == a.n:
					c.state, c.label = cellNotConfigurable, "n/c"
				case a.ok == a.n-a.nc && a.noPQ > 0 && pq[s]:
					c.state, c.label = cellNoMLKEM, "no PQ"
				case a.ok == a.n-a.nc:
					c.state, c.label = cellEstablished, "ok"
				case a.ok > 0:
					c.state, c.label = cellPartial, fmt.Sprintf("%d/%d", a.ok, a.n-a.nc)
				default:
					c.state = cellFailed
					best, bn := "", 0
					for reason, n := range a.reasons {
						if n > bn || n == bn && reason < best {
							best, bn = reason, n
						}
					}
					c.label = abbrev(best)
					used[best] = true
				}
				states[c.state] = true
				g.cells = append(g.cells, c)
			}
		}
		p.Add(g)
		gridAxes(p, is, rs, 0.6)
		fig.Tiles = append(fig.Tiles, p)
	}
	w := 8*vg.Centimeter + vg.Length(len(is))*vg.Centimeter*0.7
	h := 6*vg.Centimeter + vg.Length(len(rs))*vg.Centimeter*0.55
	rows := (len(fig.Tiles) + cols - 1) / cols
	fig.Width = vg.Length(cols) * w
	for _, e := range []struct {
		s     cellState
		label string
	}{
		{cellEstablished, "established (ok)"},
		{cellNoMLKEM, "established without ML-KEM (no PQ)"},
		{cellPartial, "established in some repetitions"},
		{cellFailed, "failed (reason)"},
		{cellNotConfigurable, "a device cannot express the suite (n/c)"},
	} {
		if states[e.s] {
			fig.Legend = append(fig.Legend, LegendEntry{Label: e.label, Thumbs: []plot.Thumbnailer{boxThumb{cellColors[e.s]}}})
		}
	}
	var reasons []string
	for r := range used {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fig.Legend = append(fig.Legend, LegendEntry{Label: abbrev(r) + " = " + r})
	}
	fig.Height = vg.Length(rows)*h + titleH + legendHeight(fig.Legend, fig.Width)
	return fig, nil
}

// distinctParamOrdered returns the distinct values of a parameter in the
// order they first appear (suites keep the experiment's order).
func distinctParamOrdered(runs []runRef, name string) []string {
	seen := map[string]bool{}
	var out []string
	for _, rr := range runs {
		v, ok := rr.run.Params[name]
		if ok && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
