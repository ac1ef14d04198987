// Package plots draws pqlab's standard figures from a results file with
// gonum/plot. Each figure is drawn only when the results hold the data it
// needs (for example, latency against RTT needs runs with an "rtt" parameter).
package plots

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/pqlab/pqlab/cmd/internal/results"
)

// Figure is one drawn plot with the base name of its files.
type Figure struct {
	Name  string // file base name, e.g. "latency_cdf"
	Title string
	Plot  *plot.Plot
}

// All draws every figure that f has data for, in a fixed order.
func All(f *results.File) ([]Figure, error) {
	var figs []Figure
	add := func(name string, p *plot.Plot, err error) error {
		if err != nil {
			return fmt.Errorf("plots: %s: %w", name, err)
		}
		if p != nil {
			figs = append(figs, Figure{Name: name, Title: p.Title.Text, Plot: p})
		}
		return nil
	}
	steps := []struct {
		name string
		draw func(*results.File) (*plot.Plot, error)
	}{
		{"latency_cdf", LatencyCDF},
		{"latency_vs_rtt", func(f *results.File) (*plot.Plot, error) { return LatencyVs(f, "rtt") }},
		{"latency_vs_loss", func(f *results.File) (*plot.Plot, error) { return LatencyVs(f, "loss") }},
		{"bytes_per_exchange", func(f *results.File) (*plot.Plot, error) { return WireCost(f, false) }},
		{"datagrams_per_exchange", func(f *results.File) (*plot.Plot, error) { return WireCost(f, true) }},
		{"fragments_vs_mtu", FragmentsVsMTU},
		{"success_by_placement", SuccessByPlacement},
		{"hub_all_up", HubAllUp},
		{"esp_throughput", Throughput},
		{"interop", Interop},
	}
	for _, s := range steps {
		p, err := s.draw(f)
		if err := add(s.name, p, err); err != nil {
			return nil, err
		}
	}
	return figs, nil
}

// Save writes each figure as PNG and SVG into dir and returns the paths written.
func Save(figs []Figure, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, fg := range figs {
		for _, ext := range []string{"png", "svg"} {
			p := filepath.Join(dir, fg.Name+"."+ext)
			if err := fg.Plot.Save(18*vg.Centimeter, 11*vg.Centimeter, p); err != nil {
				return nil, fmt.Errorf("plots: %s: %w", p, err)
			}
			paths = append(paths, p)
		}
	}
	return paths, nil
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

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

// LatencyCDF draws the distribution of handshake latency per suite.
func LatencyCDF(f *results.File) (*plot.Plot, error) {
	groups := results.GroupBy(f, suiteKey)
	p := newPlot("IKEv2 handshake latency (IKE SA + first Child SA)", "latency (ms)", "fraction of handshakes")
	p.Legend.Left = false
	p.Legend.Top = false
	p.Legend.XOffs = -vg.Millimeter
	p.Legend.YOffs = vg.Centimeter
	drawn := 0
	for i, g := range groups {
		ms := g.Latencies()
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
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", g.Key, len(ms)), l)
		drawn++
	}
	if drawn == 0 {
		return nil, nil
	}
	p.Y.Min, p.Y.Max = 0, 1
	return p, nil
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
	"loss":      "packet loss (%)",
	"mtu":       "path MTU (bytes)",
	"branches":  "branches",
	"hub_cores": "hub cores",
}

// LatencyVs draws median (solid) and 95th-percentile (dashed) handshake latency
// against a sweep parameter, one colour per suite: the layout of Paquin,
// Stebila and Tamvada's TLS study, for IKEv2.
func LatencyVs(f *results.File, param string) (*plot.Plot, error) {
	type key struct {
		suite string
		x     float64
	}
	lat := map[key][]float64{}
	var suites []string
	seen := map[string]bool{}
	for i := range f.Runs {
		r := &f.Runs[i]
		x, ok := paramValue(param, r.Params[param])
		if !ok {
			continue
		}
		for j := range r.Handshakes {
			h := &r.Handshakes[j]
			s := suiteKey(r, h)
			if !seen[s] {
				seen[s] = true
				suites = append(suites, s)
			}
			if h.Outcome == "established" {
				k := key{s, x}
				lat[k] = append(lat[k], float64(h.LatencyNs)/1e6)
			}
		}
	}
	if len(lat) == 0 {
		return nil, nil
	}
	p := newPlot("Handshake latency against "+param+": median (solid) and p95 (dashed)",
		paramAxis[param], "handshake latency (ms)")
	for i, s := range suites {
		var xs []float64
		for k := range lat {
			if k.suite == s {
				xs = append(xs, k.x)
			}
		}
		sort.Float64s(xs)
		if len(xs) == 0 {
			continue
		}
		med := make(plotter.XYs, len(xs))
		p95 := make(plotter.XYs, len(xs))
		for j, x := range xs {
			v := lat[key{s, x}]
			med[j] = plotter.XY{X: x, Y: results.Quantile(v, 0.5)}
			p95[j] = plotter.XY{X: x, Y: results.Quantile(v, 0.95)}
		}
		lm, pm, err := plotter.NewLinePoints(med)
		if err != nil {
			return nil, err
		}
		lp, err := plotter.NewLine(p95)
		if err != nil {
			return nil, err
		}
		c := plotutil.Color(i)
		lm.Color, pm.Color, lp.Color = c, c, c
		lm.Width = vg.Points(1.5)
		lp.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(lm, pm, lp)
		p.Legend.Add(s, lm, pm)
	}
	p.Y.Min = 0
	return p, nil
}

// exchangeOrder is the order in which exchanges appear in wire-cost charts.
var exchangeOrder = []string{"IKE_SA_INIT", "IKE_INTERMEDIATE", "IKE_AUTH", "CREATE_CHILD_SA", "IKE_FOLLOWUP_KE", "INFORMATIONAL"}

// WireCost draws the mean bytes (or datagrams) per exchange of an established
// handshake, one group of bars per suite, one bar colour per exchange.
func WireCost(f *results.File, datagrams bool) (*plot.Plot, error) {
	groups := results.GroupBy(f, suiteKey)
	type cell struct{ sum, n float64 }
	cells := map[string]map[string]*cell{}
	present := map[string]bool{}
	for _, g := range groups {
		cells[g.Key] = map[string]*cell{}
		for _, h := range g.Handshakes {
			if h.Outcome != "established" {
				continue
			}
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
	}
	if len(present) == 0 {
		return nil, nil
	}
	title, ylabel := "IKE bytes per exchange (both directions)", "bytes (UDP payload)"
	if datagrams {
		title, ylabel = "IKE datagrams per exchange (both directions)", "datagrams"
	}
	p := newPlot(title, "", ylabel)
	var names []string
	for _, g := range groups {
		names = append(names, g.Key)
	}
	var exs []string
	for _, e := range exchangeOrder {
		if present[e] {
			exs = append(exs, e)
		}
	}
	w := vg.Points(60 / float64(len(exs)+1))
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
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(exs)-1)/2)
		p.Add(b)
		p.Legend.Add(e, b)
	}
	p.NominalX(names...)
	if len(names) > 3 {
		p.X.Tick.Label.Rotation = 0.4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YTop
	}
	p.X.Label.Text = "suite (key exchange methods)"
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	p.Legend.Left = false
	p.Y.Min = 0
	p.Y.Max *= 1.3 // room for the legend above the bars
	return p, nil
}

// FragmentsVsMTU draws IP fragments (solid) and RFC 7383 IKE fragments
// (dashed) per handshake against the path MTU, one colour per suite.
func FragmentsVsMTU(f *results.File) (*plot.Plot, error) {
	type key struct {
		suite string
		mtu   float64
	}
	type acc struct{ ip, ike, n float64 }
	m := map[key]*acc{}
	var suites []string
	seen := map[string]bool{}
	for i := range f.Runs {
		r := &f.Runs[i]
		mtu, ok := paramValue("mtu", r.Params["mtu"])
		if !ok {
			continue
		}
		for j := range r.Handshakes {
			h := &r.Handshakes[j]
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
	p := newPlot("IP fragments (solid) and IKE fragments (dashed) per handshake", paramAxis["mtu"], "fragments per handshake")
	p.Legend.Left = false
	for i, s := range suites {
		var ip, ike plotter.XYs
		var mtus []float64
		for k := range m {
			if k.suite == s {
				mtus = append(mtus, k.mtu)
			}
		}
		sort.Float64s(mtus)
		for _, x := range mtus {
			a := m[key{s, x}]
			ip = append(ip, plotter.XY{X: x, Y: a.ip / a.n})
			ike = append(ike, plotter.XY{X: x, Y: a.ike / a.n})
		}
		li, pi, err := plotter.NewLinePoints(ip)
		if err != nil {
			return nil, err
		}
		lk, err := plotter.NewLine(ike)
		if err != nil {
			return nil, err
		}
		c := plotutil.Color(i)
		li.Color, pi.Color, lk.Color = c, c, c
		lk.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(li, pi, lk)
		p.Legend.Add(s, li, pi)
	}
	p.Y.Min = 0
	return p, nil
}

// SuccessByPlacement draws the share of established handshakes per ML-KEM
// placement, one bar per path kind (the run parameter "path", e.g. "clean" or
// "fragdrop").
func SuccessByPlacement(f *results.File) (*plot.Plot, error) {
	groups := results.GroupBy(f, func(r *results.Run, h *results.Handshake) string {
		return r.Params["path"] + "\x00" + placementLabel(h)
	})
	paths, places := []string{}, []string{}
	seenP, seenL := map[string]bool{}, map[string]bool{}
	rate := map[string]float64{}
	for _, g := range groups {
		pth, pl, _ := strings.Cut(g.Key, "\x00")
		if pth == "" {
			continue
		}
		if !seenP[pth] {
			seenP[pth] = true
			paths = append(paths, pth)
		}
		if !seenL[pl] {
			seenL[pl] = true
			places = append(places, pl)
		}
		rate[g.Key] = 100 * g.SuccessRate()
	}
	if len(paths) == 0 {
		return nil, nil
	}
	p := newPlot("Handshakes established by ML-KEM placement and path", "", "established (%)")
	w := vg.Points(60 / float64(len(paths)+1))
	for i, pth := range paths {
		vals := make(plotter.Values, len(places))
		for j, pl := range places {
			vals[j] = rate[pth+"\x00"+pl]
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(paths)-1)/2)
		p.Add(b)
		p.Legend.Add("path: "+pth, b)
	}
	p.NominalX(places...)
	p.X.Label.Text = "where ML-KEM runs"
	p.X.Min, p.X.Max = -0.6, float64(len(places))-0.4
	p.Legend.Left = false
	p.Y.Min, p.Y.Max = 0, 130
	return p, nil
}

func placementLabel(h *results.Handshake) string {
	switch h.Placement {
	case "init":
		return "ML-KEM in IKE_SA_INIT"
	case "intermediate":
		return "ML-KEM in IKE_INTERMEDIATE"
	default:
		return "classical"
	}
}

// HubAllUp draws the virtual time until a hub's last tunnel is up against the
// number of branches, one line per hub core count.
func HubAllUp(f *results.File) (*plot.Plot, error) {
	lines := map[string]plotter.XYs{}
	var cores []string
	for i := range f.Runs {
		r := &f.Runs[i]
		n, ok := paramValue("branches", r.Params["branches"])
		if !ok {
			continue
		}
		for _, nd := range r.Nodes {
			if nd.AllUpNs == 0 {
				continue
			}
			c := strconv.Itoa(nd.Cores) + " hub cores"
			if _, ok := lines[c]; !ok {
				cores = append(cores, c)
			}
			lines[c] = append(lines[c], plotter.XY{X: n, Y: float64(nd.AllUpNs) / 1e9})
		}
	}
	if len(lines) == 0 {
		return nil, nil
	}
	sort.Strings(cores)
	p := newPlot("Reconnect storm: time until every branch tunnel is up", "branches", "time until all up (s)")
	for i, c := range cores {
		xys := lines[c]
		sort.Slice(xys, func(a, b int) bool { return xys[a].X < xys[b].X })
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
		p.Add(l, pts)
		p.Legend.Add(c, l, pts)
	}
	p.Y.Min = 0
	return p, nil
}

// Throughput draws ESP throughput against packet size, one colour per cipher,
// with the raw AEAD baseline of the same run dashed.
func Throughput(f *results.File) (*plot.Plot, error) {
	by := map[string]plotter.XYs{}
	base := map[string]plotter.XYs{}
	var ciphers []string
	for _, r := range f.Runs {
		for _, t := range r.Throughput {
			if _, ok := by[t.Cipher]; !ok {
				ciphers = append(ciphers, t.Cipher)
			}
			by[t.Cipher] = append(by[t.Cipher], plotter.XY{X: float64(t.PacketSize), Y: t.Gbps})
			if t.BaselineGbps > 0 {
				base[t.Cipher] = append(base[t.Cipher], plotter.XY{X: float64(t.PacketSize), Y: t.BaselineGbps})
			}
		}
	}
	if len(by) == 0 {
		return nil, nil
	}
	p := newPlot("ESP throughput (solid) and raw AEAD (dashed) per core", "packet size (bytes)", "throughput (Gbit/s)")
	for i, c := range ciphers {
		for _, set := range []struct {
			xys    plotter.XYs
			dashed bool
		}{{by[c], false}, {base[c], true}} {
			if len(set.xys) == 0 {
				continue
			}
			sort.Slice(set.xys, func(a, b int) bool { return set.xys[a].X < set.xys[b].X })
			l, pts, err := plotter.NewLinePoints(set.xys)
			if err != nil {
				return nil, err
			}
			l.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
			if set.dashed {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				p.Add(l)
				continue
			}
			p.Add(l, pts)
			p.Legend.Add(c, l, pts)
		}
	}
	p.Y.Min = 0
	return p, nil
}

// interopGrid is a heat map grid of success rates, initiator models on X and
// responder models on Y.
type interopGrid struct {
	xs, ys []string
	v      [][]float64 // v[y][x]
}

func (g interopGrid) Dims() (c, r int)   { return len(g.xs), len(g.ys) }
func (g interopGrid) Z(c, r int) float64 { return g.v[r][c] }
func (g interopGrid) X(c int) float64    { return float64(c) }
func (g interopGrid) Y(r int) float64    { return float64(r) }

// Interop draws the share of established handshakes for each pair of peer
// models: green established, red failed.
func Interop(f *results.File) (*plot.Plot, error) {
	type pair struct{ i, r string }
	ok, n := map[pair]float64{}, map[pair]float64{}
	var is, rs []string
	si, sr := map[string]bool{}, map[string]bool{}
	for _, r := range f.Runs {
		for _, h := range r.Handshakes {
			if h.InitiatorModel == "" || h.ResponderModel == "" {
				continue
			}
			k := pair{h.InitiatorModel, h.ResponderModel}
			if !si[k.i] {
				si[k.i] = true
				is = append(is, k.i)
			}
			if !sr[k.r] {
				sr[k.r] = true
				rs = append(rs, k.r)
			}
			n[k]++
			if h.Outcome == "established" {
				ok[k]++
			}
		}
	}
	if len(n) == 0 {
		return nil, nil
	}
	sort.Strings(is)
	sort.Strings(rs)
	g := interopGrid{xs: is, ys: rs, v: make([][]float64, len(rs))}
	for y, r := range rs {
		g.v[y] = make([]float64, len(is))
		for x, i := range is {
			k := pair{i, r}
			if n[k] == 0 {
				g.v[y][x] = math.NaN()
				continue
			}
			g.v[y][x] = 100 * ok[k] / n[k]
		}
	}
	p := newPlot("Interoperability: handshakes established (%)", "initiator model", "responder model")
	hm := plotter.NewHeatMap(g, redGreen{})
	hm.Min, hm.Max = 0, 100
	hm.NaN = color.Gray{Y: 0xdd}
	p.Add(hm)
	var labels plotter.XYLabels
	for y := range rs {
		for x := range is {
			if !math.IsNaN(g.v[y][x]) {
				labels.XYs = append(labels.XYs, plotter.XY{X: float64(x), Y: float64(y)})
				labels.Labels = append(labels.Labels, fmt.Sprintf("%.0f%%", g.v[y][x]))
			}
		}
	}
	if len(labels.XYs) > 0 {
		lb, err := plotter.NewLabels(labels)
		if err != nil {
			return nil, err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].XAlign = draw.XCenter
			lb.TextStyle[i].YAlign = draw.YCenter
		}
		p.Add(lb)
	}
	p.X.Tick.Marker = nameTicks(is)
	p.Y.Tick.Marker = nameTicks(rs)
	p.X.Tick.Label.Rotation = 0.35
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Min, p.X.Max = -0.5, float64(len(is))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(rs))-0.5
	p.Legend = plot.NewLegend()
	return p, nil
}

type nameTicks []string

func (t nameTicks) Ticks(min, max float64) []plot.Tick {
	ticks := make([]plot.Tick, len(t))
	for i, n := range t {
		ticks[i] = plot.Tick{Value: float64(i), Label: n}
	}
	return ticks
}

// redGreen is a palette from red (0 %) through yellow to green (100 %).
type redGreen struct{}

func (redGreen) Colors() []color.Color {
	const n = 32
	cs := make([]color.Color, n)
	for i := range cs {
		t := float64(i) / float64(n-1)
		r, g := 1.0, 1.0
		if t < 0.5 {
			g = 2 * t
		} else {
			r = 2 * (1 - t)
		}
		cs[i] = color.RGBA{R: uint8(60 + 180*r), G: uint8(60 + 160*g), B: 70, A: 255}
	}
	return cs
}
