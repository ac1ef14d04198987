package plots

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/pqlab/pqlab/cmd/internal/results"
)

// seriesOf names a run's series in a figure against x: its parameters
// other than x and the repetition.
func seriesOf(r *results.Run, x string) string {
	var parts []string
	for k, v := range r.Params {
		if k != x && k != "rep" {
			parts = append(parts, describeParam(k, v))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "all runs"
	}
	return strings.Join(parts, ", ")
}

// hubOf returns the node of a run that waited for two or more tunnels.
func hubOf(r *results.Run) *results.NodeStats {
	var hub *results.NodeStats
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if n.AllUpNs > 0 && (hub == nil || n.CPUNs > hub.CPUNs) {
			hub = n
		}
	}
	if hub != nil {
		return hub
	}
	for i := range r.Nodes { // no all-up time: some tunnel never came up
		n := &r.Nodes[i]
		if hub == nil || n.CPUNs > hub.CPUNs {
			hub = n
		}
	}
	return hub
}

// metricSeries gathers one value per run (or several) against x, per
// series, and draws the median per x with markers.
type metricSeries struct {
	order []string
	vals  map[string]map[float64][]float64
}

func newMetricSeries() *metricSeries {
	return &metricSeries{vals: map[string]map[float64][]float64{}}
}

func (m *metricSeries) add(series string, x float64, v ...float64) {
	if m.vals[series] == nil {
		m.vals[series] = map[float64][]float64{}
		m.order = append(m.order, series)
	}
	m.vals[series][x] = append(m.vals[series][x], v...)
}

func (m *metricSeries) draw(p *plot.Plot, q float64, dashes []vg.Length, index map[string]int) error {
	for _, s := range m.order {
		var xs []float64
		for x := range m.vals[s] {
			xs = append(xs, x)
		}
		sort.Float64s(xs)
		var xys plotter.XYs
		for _, x := range xs {
			if v := m.vals[s][x]; len(v) > 0 {
				xys = append(xys, plotter.XY{X: x, Y: results.Quantile(v, q)})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		styleLine(l, pts, index[s])
		if dashes != nil {
			l.Dashes = dashes
			l.Width = vg.Points(1)
			p.Add(l)
			continue
		}
		p.Add(l, pts)
	}
	return nil
}

func seriesIndex(order ...[]string) (map[string]int, []string) {
	idx := map[string]int{}
	var all []string
	for _, o := range order {
		for _, s := range o {
			if _, ok := idx[s]; !ok {
				idx[s] = len(all)
				all = append(all, s)
			}
		}
	}
	return idx, all
}

// ReconnectStorm draws, against the branch count (runs with a "branches"
// parameter and no rekeys), the time until the hub had every tunnel up,
// the hub's CPU busy time and the 95th percentile of handshake latency, one
// line per remaining parameter (hub cores, suite).
func ReconnectStorm(f *results.File) (*Figure, error) {
	runs := refs(f, func(r *results.Run) bool {
		_, ok := paramValue("branches", r.Params["branches"])
		return ok && len(r.Rekeys) == 0 && len(r.Nodes) > 0
	})
	if len(runs) == 0 {
		return nil, nil
	}
	allUp, busy, lat := newMetricSeries(), newMetricSeries(), newMetricSeries()
	var xs []float64
	for _, rr := range runs {
		x, _ := paramValue("branches", rr.run.Params["branches"])
		xs = append(xs, x)
		s := seriesOf(rr.run, "branches")
		if hub := hubOf(rr.run); hub != nil {
			if hub.AllUpNs > 0 {
				allUp.add(s, x, float64(hub.AllUpNs)/1e9)
			}
			busy.add(s, x, float64(hub.BusyNs)/1e9)
		}
		var ls []float64
		for _, h := range rr.run.Handshakes {
			if h.Outcome == results.OutcomeEstablished {
				ls = append(ls, float64(h.LatencyNs)/1e9)
			}
		}
		if len(ls) > 0 {
			lat.add(s, x, results.Quantile(ls, 0.95))
		}
	}
	idx, all := seriesIndex(allUp.order, busy.order, lat.order)
	fig := &Figure{Title: "Reconnect storm: every branch initiates at once", Cols: 3}
	tiles := []struct {
		m      *metricSeries
		title  string
		ylabel string
	}{
		{allUp, "time until the hub has every tunnel up", "time (s, virtual)"},
		{busy, "hub CPU busy time (at least one core busy)", "busy time (s)"},
		{lat, "handshake latency, 95th percentile", "latency (s)"},
	}
	for _, t := range tiles {
		p := newTile(t.title, "branches (log scale)", t.ylabel)
		if err := t.m.draw(p, 0.5, nil, idx); err != nil {
			return nil, err
		}
		p.Y.Min = 0
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = ticksAt(xs, formatNum)
		fig.Tiles = append(fig.Tiles, p)
	}
	for i, s := range all {
		fig.Legend = append(fig.Legend, seriesEntry(s, i))
	}
	return fig, nil
}

// RekeyStorm draws, against the branch count, the latency of IKE SA rekeys
// (median solid, 95th percentile dashed), the octets per IKE SA rekey and
// the hub's CPU busy time, one line per remaining parameter (suite).
// Latency and octets are those of established rekeys; exchanges that lost
// a rekey collision are left out (see ikeRekeys).
func RekeyStorm(f *results.File) (*Figure, error) {
	runs := refs(f, func(r *results.Run) bool {
		_, ok := paramValue("branches", r.Params["branches"])
		return ok && len(r.Rekeys) > 0
	})
	if len(runs) == 0 {
		return nil, nil
	}
	lat, bytes, busy, failed := newMetricSeries(), newMetricSeries(), newMetricSeries(), newMetricSeries()
	var xs []float64
	for _, rr := range runs {
		x, _ := paramValue("branches", rr.run.Params["branches"])
		xs = append(xs, x)
		s := seriesOf(rr.run, "branches")
		latMs, octets, nFail := ikeRekeys(rr.run)
		for i := range latMs {
			lat.add(s, x, latMs[i])
			bytes.add(s, x, octets[i])
		}
		failed.add(s, x, float64(nFail))
		if hub := hubOf(rr.run); hub != nil {
			busy.add(s, x, float64(hub.BusyNs)/1e9)
		}
	}
	idx, all := seriesIndex(lat.order, bytes.order, busy.order)
	maxMs := 0.0
	for _, byX := range lat.vals {
		for _, v := range byX {
			maxMs = math.Max(maxMs, results.Quantile(v, 0.95))
		}
	}
	div, unit := timeUnit(maxMs)
	for _, byX := range lat.vals {
		for x, v := range byX {
			for i := range v {
				v[i] /= div
			}
			byX[x] = v
		}
	}
	fig := &Figure{Title: "Rekey storm: every branch rekeys its IKE SA at once", Cols: 3}
	pl := newTile("IKE SA rekey latency: median, 95th percentile (dashed)", "branches (log scale)", "rekey latency ("+unit+")")
	if err := lat.draw(pl, 0.5, nil, idx); err != nil {
		return nil, err
	}
	if err := lat.draw(pl, 0.95, dashed, idx); err != nil {
		return nil, err
	}
	pb := newTile("octets per IKE SA rekey (both directions)", "branches (log scale)", "octets (UDP payload), median")
	if err := bytes.draw(pb, 0.5, nil, idx); err != nil {
		return nil, err
	}
	pc := newTile("hub CPU busy time over the run", "branches (log scale)", "busy time (s)")
	if err := busy.draw(pc, 0.5, nil, idx); err != nil {
		return nil, err
	}
	for _, p := range []*plot.Plot{pl, pb, pc} {
		p.Y.Min = 0
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = ticksAt(xs, formatNum)
		fig.Tiles = append(fig.Tiles, p)
	}
	for i, s := range all {
		fig.Legend = append(fig.Legend, seriesEntry(s, i))
	}
	fig.Legend = append(fig.Legend, LegendEntry{Label: "95th percentile (latency)", Thumbs: []plot.Thumbnailer{lineThumb{c: palette(7), dashes: dashed}}})
	return fig, nil
}

// ikeRekeys returns the latency (ms) and octets of each established IKE SA
// rekey of r, and the number of failed ones. An exchange that lost a rekey
// collision is neither: the other gateway's exchange rekeyed the SA.
func ikeRekeys(r *results.Run) (latMs, octets []float64, failed int) {
	for _, k := range r.Rekeys {
		if k.Kind != "ike" {
			continue
		}
		switch k.Outcome {
		case results.OutcomeEstablished:
			latMs = append(latMs, float64(k.LatencyNs)/1e6)
			octets = append(octets, float64(k.Bytes))
		case results.OutcomeCollisionLost:
		default:
			failed++
		}
	}
	return latMs, octets, failed
}

// Throughput draws ESP throughput (solid) and the raw cipher of the same
// run (dashed) against packet size, one colour per cipher, one tile per
// direction.
func Throughput(f *results.File) (*Figure, error) {
	type key struct{ dir, cipher string }
	by := map[key]plotter.XYs{}
	base := map[key]plotter.XYs{}
	var ciphers, dirs []string
	seenC, seenD := map[string]bool{}, map[string]bool{}
	var sizes []float64
	for _, r := range f.Runs {
		for _, t := range r.Throughput {
			d := t.Direction
			if d == "" {
				d = "seal"
			}
			if !seenC[t.Cipher] {
				seenC[t.Cipher] = true
				ciphers = append(ciphers, t.Cipher)
			}
			if !seenD[d] {
				seenD[d] = true
				dirs = append(dirs, d)
			}
			k := key{d, t.Cipher}
			by[k] = append(by[k], plotter.XY{X: float64(t.PacketSize), Y: t.Gbps})
			sizes = append(sizes, float64(t.PacketSize))
			if t.BaselineGbps > 0 {
				base[k] = append(base[k], plotter.XY{X: float64(t.PacketSize), Y: t.BaselineGbps})
			}
		}
	}
	if len(by) == 0 {
		return nil, nil
	}
	realtime := false
	for _, r := range f.Runs {
		if r.Params["mode"] == "realtime" && len(r.Throughput) > 0 {
			realtime = true
		}
	}
	if _, labels := categories(sizes); len(labels) == 1 || realtime {
		return throughputBars(f, realtime)
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i] > dirs[j] }) // seal, open
	pos, labels := categories(sizes)
	fig := &Figure{Title: "ESP tunnel-mode throughput on one core (solid) and the raw cipher in the same run (dashed)", Cols: len(dirs)}
	for _, d := range dirs {
		name := map[string]string{"seal": "encapsulation (seal)", "open": "decapsulation (open)"}[d]
		p := newTile(name, "inner packet size (octets)", "throughput (Gbit/s of inner packets)")
		for i, c := range ciphers {
			for _, set := range []struct {
				xys    plotter.XYs
				dashed bool
			}{{by[key{d, c}], false}, {base[key{d, c}], true}} {
				if len(set.xys) == 0 {
					continue
				}
				xys := make(plotter.XYs, len(set.xys))
				for k, xy := range set.xys {
					xys[k] = plotter.XY{X: pos[xy.X], Y: xy.Y}
				}
				sort.Slice(xys, func(a, b int) bool { return xys[a].X < xys[b].X })
				l, pts, err := plotter.NewLinePoints(xys)
				if err != nil {
					return nil, err
				}
				styleLine(l, pts, i)
				if set.dashed {
					l.Dashes = dashed
					l.Width = vg.Points(1)
					p.Add(l)
					continue
				}
				p.Add(l, pts)
			}
		}
		p.Y.Min = 0
		p.X.Min, p.X.Max = -0.4, float64(len(labels))-0.6
		p.X.Tick.Marker = nameTicks(labels)
		fig.Tiles = append(fig.Tiles, p)
	}
	fig.Width = singleW
	fig.Height = 10*vg.Centimeter + fig.titleHeight() + legendHeight(fig.Legend, singleW)
	for i, c := range ciphers {
		fig.Legend = append(fig.Legend, seriesEntry("ESP "+c, i))
	}
	fig.Legend = append(fig.Legend, LegendEntry{Label: "raw cipher, same octets", Thumbs: []plot.Thumbnailer{lineThumb{c: palette(7), dashes: dashed}}})
	fig.Height = 10*vg.Centimeter + fig.titleHeight() + legendHeight(fig.Legend, singleW)
	return fig, nil
}

// categories places distinct values at equal distances (0, 1, 2 ...) in
// increasing order, with their labels.
func categories(vals []float64) (map[float64]float64, []string) {
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	pos := map[float64]float64{}
	var labels []string
	for i, v := range s {
		if i > 0 && v == s[i-1] {
			continue
		}
		pos[v] = float64(len(labels))
		labels = append(labels, formatNum(v))
	}
	return pos, labels
}

// throughputBars draws throughput per cipher as bars (ESP and its baseline
// side by side), for measurements at one packet size, such as real-time
// runs (whose baseline is plain forwarding through the same gateways).
func throughputBars(f *results.File, realtime bool) (*Figure, error) {
	type acc struct{ esp, base []float64 }
	by := map[string]*acc{}
	var ciphers []string
	size := 0
	for _, r := range f.Runs {
		for _, t := range r.Throughput {
			if t.Direction == "open" {
				continue
			}
			a := by[t.Cipher]
			if a == nil {
				a = &acc{}
				by[t.Cipher] = a
				ciphers = append(ciphers, t.Cipher)
			}
			a.esp = append(a.esp, t.Gbps)
			a.base = append(a.base, t.BaselineGbps)
			size = t.PacketSize
		}
	}
	if len(ciphers) == 0 {
		return nil, nil
	}
	title := fmt.Sprintf("ESP throughput per cipher on one core, %d-octet packets:\nESP and the raw cipher over the same octets", size)
	baseLabel := "raw cipher over the same octets"
	if realtime {
		title = fmt.Sprintf("TCP bulk transfer through the ESP tunnel and plain forwarding\nthrough the same gateways (%d-octet packets, real time)", size)
		baseLabel = "plain forwarding, same gateways and links"
	}
	p := newPlot(title, "ESP cipher", "throughput (Gbit/s), median of runs")
	w := vg.Points(18)
	for i, set := range []func(*acc) []float64{func(a *acc) []float64 { return a.esp }, func(a *acc) []float64 { return a.base }} {
		vals := make(plotter.Values, len(ciphers))
		for j, c := range ciphers {
			vals[j] = nanToZero(results.Quantile(set(by[c]), 0.5))
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		b.Color = palette(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-0.5)
		p.Add(b)
	}
	p.NominalX(ciphers...)
	p.X.Min, p.X.Max = -0.6, float64(len(ciphers))-0.4
	p.Y.Min = 0
	legend := []LegendEntry{
		{Label: "through ESP", Thumbs: []plot.Thumbnailer{boxThumb{palette(0)}}},
		{Label: baseLabel, Thumbs: []plot.Thumbnailer{boxThumb{palette(1)}}},
	}
	return single(p, legend), nil
}
