// Package report renders an experiment's results as one self-contained HTML
// page: a summary table per suite, the failure reasons, and every figure
// inlined as SVG, so the page can be mailed or attached to a CI run.
package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/pqlab/pqlab/cmd/internal/plots"
	"github.com/pqlab/pqlab/cmd/internal/results"
)

// Page is what the template renders.
type page struct {
	Title   string
	Runs    int
	Params  []string
	Rows    []row
	Figures []figure
}

type row struct {
	Suite, Placement                       string
	Handshakes, Established                int
	Median, P95, Bytes, Datagrams, IPFrags string
	IKEFrags, RoundTrips, Reasons          string
}

type figure struct {
	Title string
	SVG   template.HTML
}

// Write renders f as an HTML page titled title.
func Write(w io.Writer, title string, f *results.File) error {
	figs, err := plots.All(f)
	if err != nil {
		return err
	}
	pg := page{Title: title, Runs: len(f.Runs), Params: results.ParamNames(f)}
	for _, s := range results.Summarize(f) {
		pg.Rows = append(pg.Rows, row{
			Suite: s.Suite, Placement: s.Placement, Handshakes: s.Handshakes, Established: s.Established,
			Median: num(s.MedianMs, 1), P95: num(s.P95Ms, 1), Bytes: num(s.Bytes, 0),
			Datagrams: num(s.Datagrams, 1), IPFrags: num(s.IPFragments, 1), IKEFrags: num(s.IKEFragments, 1),
			RoundTrips: num(s.RoundTrips, 1), Reasons: reasons(s.Reasons),
		})
	}
	for _, fg := range figs {
		c := vgsvg.New(18*vg.Centimeter, 11*vg.Centimeter)
		fg.Plot.Draw(draw.New(c))
		var buf bytes.Buffer
		if _, err := c.WriteTo(&buf); err != nil {
			return fmt.Errorf("report: %s: %w", fg.Name, err)
		}
		svg := buf.String()
		if i := strings.Index(svg, "<svg"); i > 0 {
			svg = svg[i:] // drop the XML prolog, which is not valid inside HTML
		}
		pg.Figures = append(pg.Figures, figure{Title: fg.Title, SVG: template.HTML(svg)})
	}
	return tmpl.Execute(w, pg)
}

func num(x float64, prec int) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, x)
}

func reasons(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

var tmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3} td.l{text-align:left}
figure{display:inline-block;margin:1em 1em 1em 0} figcaption{font-size:.9em;color:#555}
</style></head><body>
<h1>{{.Title}}</h1>
<p>{{.Runs}} run(s){{if .Params}}; swept parameters: {{range $i, $p := .Params}}{{if $i}}, {{end}}{{$p}}{{end}}{{end}}.</p>
<h2>Handshakes per suite</h2>
<table><tr><th>suite</th><th>ML-KEM placement</th><th>handshakes</th><th>established</th>
<th>median (ms)</th><th>p95 (ms)</th><th>bytes</th><th>datagrams</th><th>IP fragments</th>
<th>IKE fragments</th><th>round trips</th><th>failures</th></tr>
{{range .Rows}}<tr><td class="l">{{.Suite}}</td><td class="l">{{.Placement}}</td><td>{{.Handshakes}}</td>
<td>{{.Established}}</td><td>{{.Median}}</td><td>{{.P95}}</td><td>{{.Bytes}}</td><td>{{.Datagrams}}</td>
<td>{{.IPFrags}}</td><td>{{.IKEFrags}}</td><td>{{.RoundTrips}}</td><td class="l">{{.Reasons}}</td></tr>
{{end}}</table>
<p>Bytes, datagrams, fragments and round trips are means over established handshakes.</p>
<h2>Figures</h2>
{{range .Figures}}<figure>{{.SVG}}<figcaption>{{.Title}}</figcaption></figure>
{{end}}
</body></html>
`))
