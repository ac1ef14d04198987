// Package plots draws pqlab's standard figures from a results file with
// gonum/plot. Each figure is drawn only when the results hold the data it
// needs (for example, latency against RTT needs runs with an "rtt"
// parameter). Figures over several conditions are faceted: one tile per
// value of the other parameter (per RTT in the latency-against-loss figure,
// per path in the latency distribution, per suite in the interop matrix),
// with the legend below the tiles. Every figure has a title, axis labels
// with units and a legend.
package plots

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/pqlab/pqlab/cmd/internal/results"
)

// All draws every figure that f has data for, in a fixed order.
func All(f *results.File) ([]Figure, error) {
	var figs []Figure
	steps := []struct {
		name string
		draw func(*results.File) ([]Figure, error)
	}{
		{"latency_cdf", one("latency_cdf", LatencyCDF)},
		{"latency_vs_rtt", one("latency_vs_rtt", func(f *results.File) (*Figure, error) { return LatencyVs(f, "rtt") })},
		{"latency_vs_loss", one("latency_vs_loss", func(f *results.File) (*Figure, error) { return LatencyVs(f, "loss") })},
		{"bytes_per_exchange", one("bytes_per_exchange", func(f *results.File) (*Figure, error) { return WireCost(f, false) })},
		{"datagrams_per_exchange", one("datagrams_per_exchange", func(f *results.File) (*Figure, error) { return WireCost(f, true) })},
		{"fragments_vs_mtu", one("fragments_vs_mtu", FragmentsVsMTU)},
		{"success_by_placement", one("success_by_placement", SuccessByPlacement)},
		{"reconnect_storm", one("reconnect_storm", ReconnectStorm)},
		{"rekey_storm", one("rekey_storm", RekeyStorm)},
		{"esp_throughput", one("esp_throughput", Throughput)},
		{"interop", Interop},
	}
	for _, s := range steps {
		fs, err := s.draw(f)
		if err != nil {
			return nil, fmt.Errorf("plots: %s: %w", s.name, err)
		}
		figs = append(figs, fs...)
	}
	return figs, nil
}

func one(name string, fn func(*results.File) (*Figure, error)) func(*results.File) ([]Figure, error) {
	return func(f *results.File) ([]Figure, error) {
		fg, err := fn(f)
		if err != nil || fg == nil {
			return nil, err
		}
		fg.Name = name
		if fg.Title == "" && fg.Plot != nil {
			fg.Title = fg.Plot.Title.Text
		}
		return []Figure{*fg}, nil
	}
}

// SuiteLabel shortens a proposal to its key exchange methods, the part that
// differs between the suites the lab compares:
// "aes256gcm16-prfsha384-x25519-ke1_mlkem768" -> "x25519+mlkem768".
func SuiteLabel(suite string) string {
	var kes []string
	for _, tok := range strings.Split(suite, "-") {
		if i := strings.Index(tok, "_"); i > 0 && strings.HasPrefix(tok, "ke") {
			tok = tok[i+1:]
		}
		switch {
		case tok == "none" || tok == "":
		case strings.HasPrefix(tok, "x25519"), strings.HasPrefix(tok, "x448"),
			strings.HasPrefix(tok, "curve"), strings.HasPrefix(tok, "ecp"),
			strings.HasPrefix(tok, "modp"), strings.HasPrefix(tok, "mlkem"):
			kes = append(kes, tok)
		}
	}
	if len(kes) == 0 {
		return suite
	}
	return strings.Join(kes, "+")
}

func suiteKey(_ *results.Run, h *results.Handshake) string {
	l := SuiteLabel(h.Suite)
	if h.Placement == "init" {
		l += " in INIT"
	}
	return l
}

// runRef is a run of the file being drawn.
type runRef struct{ run *results.Run }

func refs(f *results.File, keep func(*results.Run) bool) []runRef {
	var out []runRef
	for i := range f.Runs {
		if keep == nil || keep(&f.Runs[i]) {
			out = append(out, runRef{&f.Runs[i]})
		}
	}
	return out
}

// isInterop tells the runs of an interoperability matrix (peer models as
// parameters) from the others.
func isInterop(r *results.Run) bool {
	return r.Params["initiator_model"] != "" && r.Params["responder_model"] != ""
}

// paramValue turns a sweep parameter into a number for an axis: durations in
// milliseconds, loss as a percentage when given as a fraction, plain numbers
// as they are.
func paramValue(name, v string) (float64, bool) {
	if d, err := time.ParseDuration(v); err == nil {
		return float64(d) / float64(time.Millisecond), true
	}
	x, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil {
		return 0, false
	}
	if name == "loss" && !strings.HasSuffix(v, "%") {
		x *= 100
	}
	return x, true
}

var paramAxis = map[string]string{
	"rtt":       "round-trip time (ms)",
	"loss":      "packet loss each way (%)",
	"mtu":       "path MTU (octets)",
	"branches":  "branches",
	"hub_cores": "hub cores",
}

var paramTitle = map[string]string{"rtt": "round-trip time", "loss": "packet loss", "mtu": "path MTU", "branches": "branch count"}

// LatencyCDF draws the distribution of handshake latency per suite, one
// tile per path when the runs have several.
func LatencyCDF(f *results.File) (*Figure, error) {
	// The runs of an interoperability matrix mixed with others (the
	// default experiment) have a figure of their own.
	runs := refs(f, func(r *results.Run) bool { return !isInterop(r) })
	if len(runs) == 0 {
		runs = refs(f, nil)
	}
	paths := distinctParam(runs, "path")
	facets := []string{""}
	if len(paths) > 1 {
		facets = paths
	}
	var suites []string
	seen := map[string]bool{}
	lat := map[[2]string][]float64{}
	maxMs := 0.0
	for _, rr := range runs {
		pth := rr.run.Params["path"]
		if len(facets) > 1 && pth == "" {
			continue
		}
		if len(facets) == 1 {
			pth = ""
		}
		for j := range rr.run.Handshakes {
			h := &rr.run.Handshakes[j]
			if h.Outcome != results.OutcomeEstablished {
				continue
			}
			s := suiteKey(rr.run, h)
			if !seen[s] {
				seen[s] = true
				suites = append(suites, s)
			}
			ms := float64(h.LatencyNs) / 1e6
			lat[[2]string{pth, s}] = append(lat[[2]string{pth, s}], ms)
			maxMs = math.Max(maxMs, ms)
		}
	}
	if len(lat) == 0 {
		return nil, nil
	}
	minMs := math.Inf(1)
	for _, v := range lat {
		for _, x := range v {
			if x > 0 {
				minMs = math.Min(minMs, x)
			}
		}
	}
	logX := maxMs/minMs > 50
	title := "IKEv2 handshake latency (IKE SA and first Child SA): distribution per suite"
	xlabel := "handshake latency (ms)"
	if logX {
		xlabel = "handshake latency (ms, log scale)"
	}
	build := func(p *plot.Plot, facet string, legend bool) error {
		for i, s := range suites {
			ms := append([]float64(nil), lat[[2]string{facet, s}]...)
			if len(ms) == 0 {
				continue
			}
			sort.Float64s(ms)
			xys := make(plotter.XYs, 0, 2*len(ms))
			for j, v := range ms {
				xys = append(xys, plotter.XY{X: v, Y: float64(j) / float64(len(ms))})
				xys = append(xys, plotter.XY{X: v, Y: float64(j+1) / float64(len(ms))})
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return err
			}
			styleLine(l, nil, i)
			l.Dashes = dashStyles[i%len(dashStyles)]
			p.Add(l)
			if legend {
				p.Legend.Add(fmt.Sprintf("%s (n=%d)", s, len(ms)), l)
			}
		}
		p.Y.Min, p.Y.Max = 0, 1
		// The same latency range on every tile, so that they compare.
		p.X.Min, p.X.Max = minMs, maxMs
		if logX {
			p.X.Min, p.X.Max = minMs/1.2, maxMs*1.2
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		return nil
	}
	var legend []LegendEntry
	for i, s := range suites {
		n := 0
		for k, v := range lat {
			if k[1] == s {
				n += len(v)
			}
		}
		legend = append(legend, LegendEntry{Label: fmt.Sprintf("%s (n=%d)", s, n), Thumbs: []plot.Thumbnailer{
			lineThumb{c: palette(i), dashes: dashStyles[i%len(dashStyles)]}}})
	}
	if len(facets) == 1 {
		p := newPlot(title, xlabel, "fraction of handshakes established")
		if err := build(p, "", false); err != nil {
			return nil, err
		}
		return single(p, legend), nil
	}
	fig := &Figure{Title: title + ", by path", Cols: facetCols(len(facets)), Legend: legend}
	for _, pth := range facets {
		p := newTile(describeParam("path", pth), xlabel, "fraction established")
		if err := build(p, pth, false); err != nil {
			return nil, err
		}
		fig.Tiles = append(fig.Tiles, p)
	}
	return fig, nil
}

// dashStyles tell overlapping CDF lines apart.
var dashStyles = [][]vg.Length{nil, {vg.Points(6), vg.Points(2)}, {vg.Points(2), vg.Points(2)}, {vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}}

// LatencyVs draws median (solid) and 95th-percentile (dashed) handshake
// latency against a sweep parameter ("rtt" or "loss"), one colour and
// marker per suite: the layout of Paquin, Stebila and Tamvada's TLS study,
// for IKEv2. When the runs also vary the other of the two, there is one
// tile per value of it.
func LatencyVs(f *results.File, param string) (*Figure, error) {
	other := "loss"
	if param == "loss" {
		other = "rtt"
	}
	runs := refs(f, func(r *results.Run) bool { _, ok := paramValue(param, r.Params[param]); return ok })
	if len(runs) == 0 {
		return nil, nil
	}
	facets := distinctParam(runs, other)
	if len(facets) <= 1 {
		facets = []string{""}
	}
	type key struct {
		facet, suite string
		x            float64
	}
	lat := map[key][]float64{}
	var suites []string
	seen := map[string]bool{}
	var xs []float64
	maxMs := 0.0
	for _, rr := range runs {
		x, _ := paramValue(param, rr.run.Params[param])
		xs = append(xs, x)
		fc := ""
		if len(facets) > 1 {
			fc = rr.run.Params[other]
		}
		for j := range rr.run.Handshakes {
			h := &rr.run.Handshakes[j]
			if h.Outcome == results.OutcomeNotConfigurable {
				continue
			}
			s := suiteKey(rr.run, h)
			if !seen[s] {
				seen[s] = true
				suites = append(suites, s)
			}
			if h.Outcome == results.OutcomeEstablished {
				k := key{fc, s, x}
				lat[k] = append(lat[k], float64(h.LatencyNs)/1e6)
			}
		}
	}
	if len(lat) == 0 {
		return nil, nil
	}
	for _, v := range lat {
		maxMs = math.Max(maxMs, results.Quantile(v, 0.95))
	}
	div, unit := timeUnit(maxMs)
	xTicks := ticksAt(xs, formatNum)
	build := func(p *plot.Plot, fc string, legend bool) error {
		for i, s := range suites {
			var pts []float64
			for k := range lat {
				if k.suite == s && k.facet == fc {
					pts = append(pts, k.x)
				}
			}
			sort.Float64s(pts)
			if len(pts) == 0 {
				continue
			}
			med := make(plotter.XYs, len(pts))
			p95 := make(plotter.XYs, len(pts))
			for j, x := range pts {
				v := lat[key{fc, s, x}]
				med[j] = plotter.XY{X: x, Y: results.Quantile(v, 0.5) / div}
				p95[j] = plotter.XY{X: x, Y: results.Quantile(v, 0.95) / div}
			}
			lm, pm, err := plotter.NewLinePoints(med)
			if err != nil {
				return err
			}
			lp, err := plotter.NewLine(p95)
			if err != nil {
				return err
			}
			styleLine(lm, pm, i)
			styleLine(lp, nil, i)
			lp.Dashes = dashed
			lp.Width = vg.Points(1)
			p.Add(lm, pm, lp)
			if legend {
				p.Legend.Add(s, lm, pm)
			}
		}
		p.Y.Min = 0
		p.X.Tick.Marker = xTicks
		return nil
	}
	title := fmt.Sprintf("Handshake latency against %s", paramTitle[param])
	ylabel := "handshake latency (" + unit + ")"
	var legend []LegendEntry
	for i, s := range suites {
		legend = append(legend, seriesEntry(s, i))
	}
	legend = append(legend, LegendEntry{Label: "median", Thumbs: []plot.Thumbnailer{lineThumb{c: palette(7)}}},
		LegendEntry{Label: "95th percentile", Thumbs: []plot.Thumbnailer{lineThumb{c: palette(7), dashes: dashed}}})
	if len(facets) == 1 {
		p := newPlot(title+": median and 95th percentile", paramAxis[param], ylabel)
		if err := build(p, "", false); err != nil {
			return nil, err
		}
		return single(p, legend), nil
	}
	fig := &Figure{Title: title + ", one tile per " + paramTitle[other] + "\nmedian (solid) and 95th percentile (dashed) of established handshakes",
		Cols: facetCols(len(facets)), Legend: legend}
	for _, fc := range facets {
		p := newTile(describeParam(other, fc), paramAxis[param], ylabel)
		if err := build(p, fc, false); err != nil {
			return nil, err
		}
		fig.Tiles = append(fig.Tiles, p)
	}
	return fig, nil
}

// exchangeOrder is the order in which exchanges appear in wire-cost charts.
var exchangeOrder = []string{"IKE_SA_INIT", "IKE_INTERMEDIATE", "IKE_AUTH", "CREATE_CHILD_SA", "IKE_FOLLOWUP_KE", "INFORMATIONAL"}

// WireCost draws the mean bytes (or datagrams) per exchange of an established
// handshake, one group of bars per suite, one bar colour per exchange.
func WireCost(f *results.File, datagrams bool) (*Figure, error) {
	groups := results.GroupBy(f, suiteKey)
	type cell struct{ sum, n float64 }
	cells := map[string]map[string]*cell{}
	present := map[string]bool{}
	var names []string
	for _, g := range groups {
		cells[g.Key] = map[string]*cell{}
		any := false
		for _, h := range g.Handshakes {
			if h.Outcome != results.OutcomeEstablished {
				continue
			}
			any = true
			for _, ex := range h.Exchanges {
				c := cells[g.Key][ex.Name]
				if c == nil {
					c = &cell{}
					cells[g.Key][ex.Name] = c
				}
				v := float64(ex.Bytes)
				if datagrams {
					v = float64(ex.Datagrams)
				}
				c.sum += v
				c.n++
				present[ex.Name] = true
			}
		}
		if any {
			names = append(names, g.Key)
		}
	}
	if len(present) == 0 {
		return nil, nil
	}
	title, ylabel := "IKE bytes per exchange of an established handshake (both directions)", "octets (UDP payload), mean"
	if datagrams {
		title, ylabel = "IKE datagrams per exchange of an established handshake (both directions)", "datagrams, mean"
	}
	p := newPlot(title, "suite (key exchange methods)", ylabel)
	var exs []string
	for _, e := range exchangeOrder {
		if present[e] {
			exs = append(exs, e)
		}
	}
	w := vg.Points(math.Min(14, 200/float64(len(names)*(len(exs)+1))))
	var legend []LegendEntry
	for i, e := range exs {
		vals := make(plotter.Values, len(names))
		for j, s := range names {
			if c := cells[s][e]; c != nil && c.n > 0 {
				vals[j] = c.sum / c.n
			}
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		b.Color = palette(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(exs)-1)/2)
		p.Add(b)
		legend = append(legend, LegendEntry{Label: e, Thumbs: []plot.Thumbnailer{boxThumb{palette(i)}}})
	}
	p.NominalX(names...)
	if len(names) > 3 {
		p.X.Tick.Label.Rotation = 0.4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YTop
	}
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	p.Y.Min = 0
	return single(p, legend), nil
}

// FragmentsVsMTU draws IP fragments (solid) and RFC 7383 IKE fragments
// (dashed) per handshake against the path MTU, one colour per suite.
func FragmentsVsMTU(f *results.File) (*Figure, error) {
	type key struct {
		suite string
		mtu   float64
	}
	type acc struct{ ip, ike, n float64 }
	m := map[key]*acc{}
	var suites []string
	seen := map[string]bool{}
	var mtus []float64
	for i := range f.Runs {
		r := &f.Runs[i]
		mtu, ok := paramValue("mtu", r.Params["mtu"])
		if !ok {
			continue
		}
		mtus = append(mtus, mtu)
		for j := range r.Handshakes {
			h := &r.Handshakes[j]
			if h.Outcome == results.OutcomeNotConfigurable {
				continue
			}
			s := suiteKey(r, h)
			if !seen[s] {
				seen[s] = true
				suites = append(suites, s)
			}
			a := m[key{s, mtu}]
			if a == nil {
				a = &acc{}
				m[key{s, mtu}] = a
			}
			a.ip += float64(h.IPFragments)
			a.ike += float64(h.IKEFragments)
			a.n++
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	// The MTUs sit at equal distances (categories), and the series are
	// dodged a little so that equal values stay visible.
	sort.Float64s(mtus)
	var cats []float64
	for i, x := range mtus {
		if i == 0 || x != mtus[i-1] {
			cats = append(cats, x)
		}
	}
	pos := map[float64]float64{}
	var labels []string
	for i, x := range cats {
		pos[x] = float64(i)
		labels = append(labels, formatNum(x))
	}
	fig := &Figure{Title: "Fragments per handshake against the path MTU", Cols: 2}
	ipT := newTile("IP fragments (made by the sender or a router)", "path MTU (octets)", "IP fragments per handshake, mean")
	ikeT := newTile("IKE fragments (RFC 7383 SKF messages)", "path MTU (octets)", "IKE fragments per handshake, mean")
	dodge := 0.3 / float64(len(suites))
	for i, s := range suites {
		var ip, ike plotter.XYs
		var xs []float64
		for k := range m {
			if k.suite == s {
				xs = append(xs, k.mtu)
			}
		}
		sort.Float64s(xs)
		off := dodge * (float64(i) - float64(len(suites)-1)/2)
		for _, x := range xs {
			a := m[key{s, x}]
			ip = append(ip, plotter.XY{X: pos[x] + off, Y: a.ip / a.n})
			ike = append(ike, plotter.XY{X: pos[x] + off, Y: a.ike / a.n})
		}
		for _, t := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{ipT, ip}, {ikeT, ike}} {
			l, pts, err := plotter.NewLinePoints(t.xys)
			if err != nil {
				return nil, err
			}
			styleLine(l, pts, i)
			t.p.Add(l, pts)
		}
		fig.Legend = append(fig.Legend, seriesEntry(s, i))
	}
	for _, p := range []*plot.Plot{ipT, ikeT} {
		p.Y.Min = 0
		p.X.Min, p.X.Max = -0.5, float64(len(cats))-0.5
		p.X.Tick.Marker = nameTicks(labels)
	}
	fig.Tiles = []*plot.Plot{ipT, ikeT}
	fig.Height = 11*vg.Centimeter + titleH + legendHeight(fig.Legend, singleW)
	fig.Width = singleW
	return fig, nil
}

// SuccessByPlacement draws the share of established handshakes per suite
// (labelled with where its ML-KEM runs) and path kind (the run parameter
// "path"), as a grid of cells coloured from red (0 %) to green (100 %), one
// tile per peer model when the runs have a "peer" parameter. Cells of
// suites a device cannot express are grey.
func SuccessByPlacement(f *results.File) (*Figure, error) {
	runs := refs(f, func(r *results.Run) bool { return r.Params["path"] != "" && !isInterop(r) })
	if len(runs) == 0 {
		return nil, nil
	}
	paths := distinctParamOrdered(runs, "path")
	peers := distinctParamOrdered(runs, "peer")
	if len(peers) <= 1 {
		peers = []string{""}
	}
	var suites []string
	seen := map[string]bool{}
	type key struct{ peer, path, suite string }
	ok, n, nc := map[key]float64{}, map[key]float64{}, map[key]bool{}
	for _, rr := range runs {
		pe := ""
		if len(peers) > 1 {
			pe = rr.run.Params["peer"]
		}
		for j := range rr.run.Handshakes {
			h := &rr.run.Handshakes[j]
			s := placementLabel(h)
			if !seen[s] {
				seen[s] = true
				suites = append(suites, s)
			}
			k := key{pe, rr.run.Params["path"], s}
			if h.Outcome == results.OutcomeNotConfigurable {
				nc[k] = true
				continue
			}
			n[k]++
			if h.Outcome == results.OutcomeEstablished {
				ok[k]++
			}
		}
	}
	if len(n) == 0 {
		return nil, nil
	}
	sort.Strings(suites)
	build := func(p *plot.Plot, pe string) {
		var g cellGrid
		for y, s := range suites {
			for x, pth := range paths {
				k := key{pe, pth, s}
				switch {
				case n[k] > 0:
					r := ok[k] / n[k]
					g.cells = append(g.cells, cell{x: x, y: y, color: redGreen(r), label: fmt.Sprintf("%.0f%%", 100*r)})
				case nc[k]:
					g.cells = append(g.cells, cell{x: x, y: y, state: cellNotConfigurable, label: "n/c"})
				}
			}
		}
		p.Add(g)
		gridAxes(p, paths, suites, 0.4)
	}
	legend := []LegendEntry{
		{Label: "100 % established", Thumbs: []plot.Thumbnailer{boxThumb{redGreen(1)}}},
		{Label: "50 %", Thumbs: []plot.Thumbnailer{boxThumb{redGreen(0.5)}}},
		{Label: "0 %", Thumbs: []plot.Thumbnailer{boxThumb{redGreen(0)}}},
	}
	for _, c := range nc {
		if c {
			legend = append(legend, LegendEntry{Label: "the peer model cannot express the suite (n/c)",
				Thumbs: []plot.Thumbnailer{boxThumb{cellColors[cellNotConfigurable]}}})
			break
		}
	}
	title := "Handshakes established (%) by suite (where ML-KEM runs) and path"
	if len(peers) == 1 {
		p := newPlot(title, "path", "suite (ML-KEM placement)")
		build(p, "")
		return single(p, legend), nil
	}
	fig := &Figure{Title: title + "\none tile per peer model (both ends)", Cols: facetCols(len(peers)), Legend: legend}
	for _, pe := range peers {
		p := newTile("peer model: "+pe, "path", "suite (ML-KEM placement)")
		build(p, pe)
		fig.Tiles = append(fig.Tiles, p)
	}
	fig.Width = vg.Length(fig.Cols) * 11 * vg.Centimeter
	fig.Height = vg.Length(fig.rows())*8*vg.Centimeter + fig.titleHeight() + legendHeight(legend, fig.Width)
	return fig, nil
}

// redGreen is a colour from red (0) through yellow to green (1).
func redGreen(t float64) color.Color {
	r, g := 1.0, 1.0
	if t < 0.5 {
		g = 2 * t
	} else {
		r = 2 * (1 - t)
	}
	return color.RGBA{R: uint8(60 + 170*r), G: uint8(70 + 130*g), B: 70, A: 255}
}

func placementLabel(h *results.Handshake) string {
	l := SuiteLabel(h.Suite)
	switch h.Placement {
	case "init":
		return l + " (INIT)"
	case "intermediate":
		return l + " (INTERMEDIATE)"
	}
	return l
}
