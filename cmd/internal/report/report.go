// Package report renders an experiment's results as one self-contained HTML
// page: a summary table per suite with the failure reasons, the
// interoperability matrix as a table (outcome, reason, bytes, datagrams,
// round trips per pair, suite and path), rekey and ESP throughput tables
// when the results have them, and every figure inlined as SVG, so the page
// can be mailed or attached to a CI run.
package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/pqlab/pqlab/cmd/internal/plots"
	"github.com/pqlab/pqlab/cmd/internal/results"
)

// Page is what the template renders.
type page struct {
	Title      string
	Runs       int
	Params     []string
	Rows       []row
	Interop    []interopRow
	Rekeys     []rekeyRow
	Throughput []results.Throughput
	Figures    []figure
}

// interopRow is one cell of an interoperability matrix.
type interopRow struct {
	Initiator, Responder, Suite, Path, Outcome, Reason, Negotiated string
	Bytes, Datagrams, RoundTrips                                   int
	Class                                                          string
}

// rekeyRow summarises the rekeys of one run.
type rekeyRow struct {
	Run                        string
	IKE, Child, Failed, Lost   int
	Median, P95, Bytes, Params string
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
	pg.Interop = interopRows(f)
	pg.Rekeys = rekeyRows(f)
	for _, r := range f.Runs {
		pg.Throughput = append(pg.Throughput, r.Throughput...)
	}
	for i := range figs {
		fg := &figs[i]
		w, h := fg.Size()
		c := vgsvg.New(w, h)
		fg.Draw(draw.New(c))
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

// interopRows lists the handshakes of runs with peer-model parameters.
func interopRows(f *results.File) []interopRow {
	var out []interopRow
	for _, r := range f.Runs {
		if r.Params["initiator_model"] == "" || r.Params["responder_model"] == "" {
			continue
		}
		for _, h := range r.Handshakes {
			row := interopRow{Initiator: h.InitiatorModel, Responder: h.ResponderModel, Suite: r.Params["suite"],
				Path: r.Params["path"], Outcome: h.Outcome, Reason: h.Reason, Bytes: h.Bytes, Datagrams: h.Datagrams,
				RoundTrips: h.RoundTrips, Class: "bad"}
			switch h.Outcome {
			case results.OutcomeEstablished:
				row.Class = "ok"
				row.Negotiated = h.Suite
				if h.Placement == "none" {
					row.Class = "warn"
				}
			case results.OutcomeNotConfigurable:
				row.Class = "nc"
			}
			out = append(out, row)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Suite != b.Suite {
			return a.Suite < b.Suite
		}
		if a.Initiator != b.Initiator {
			return a.Initiator < b.Initiator
		}
		return a.Responder < b.Responder
	})
	return out
}

// rekeyRows summarises each run's rekeys. Exchanges that lost a rekey
// collision are counted apart: neither failures nor part of the latency
// and octet statistics, which are those of established rekeys.
func rekeyRows(f *results.File) []rekeyRow {
	var out []rekeyRow
	for _, r := range f.Runs {
		if len(r.Rekeys) == 0 {
			continue
		}
		c := results.CountRekeys(r.Rekeys)
		row := rekeyRow{Run: r.Name, IKE: c.IKE, Child: c.Child, Failed: c.Failed, Lost: c.CollisionsLost}
		row.Median, row.P95 = num(results.Quantile(c.LatenciesMs, 0.5), 1), num(results.Quantile(c.LatenciesMs, 0.95), 1)
		row.Bytes = num(results.Quantile(c.IKEBytes, 0.5), 0)
		out = append(out, row)
	}
	return out
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
tr.ok td{background:#eaf6ea} tr.warn td{background:#fdf3dc} tr.bad td{background:#fbe4e1} tr.nc td{background:#eee;color:#666}
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
<p>Bytes, datagrams, fragments and round trips are means over established handshakes; records of suites
a device cannot express (not-configurable) are left out.</p>
{{if .Interop}}<h2>Interoperability</h2>
<p>One row per initiator and responder model, suite (both ends configured with it where the device can express
it) and path: the outcome and its reason, the suite negotiated, the IKE bytes and datagrams of both sides and
the initiator's round trips. Amber: established without ML-KEM; grey: a device cannot express the suite.</p>
<table><tr><th>path</th><th>suite</th><th>initiator</th><th>responder</th><th>outcome</th><th>reason</th>
<th>negotiated</th><th>bytes</th><th>datagrams</th><th>round trips</th></tr>
{{range .Interop}}<tr class="{{.Class}}"><td class="l">{{.Path}}</td><td class="l">{{.Suite}}</td><td class="l">{{.Initiator}}</td>
<td class="l">{{.Responder}}</td><td class="l">{{.Outcome}}</td><td class="l">{{.Reason}}</td><td class="l">{{.Negotiated}}</td>
<td>{{.Bytes}}</td><td>{{.Datagrams}}</td><td>{{.RoundTrips}}</td></tr>
{{end}}</table>{{end}}
{{if .Rekeys}}<h2>Rekeys</h2>
<p>Established IKE SA and Child SA rekeys; failed ones; exchanges that lost a rekey collision (both gateways
rekeyed the same SA at once and the other one's exchange replaced it, RFC 7296 Sections 2.8.1 and 2.8.2: not a
failure, not in the latency and octet columns, which are those of established rekeys).</p>
<table><tr><th>run</th><th>IKE SA rekeys</th><th>Child SA rekeys</th><th>failed</th><th>collisions lost</th><th>median (ms)</th>
<th>p95 (ms)</th><th>octets per IKE SA rekey (median)</th></tr>
{{range .Rekeys}}<tr><td class="l">{{.Run}}</td><td>{{.IKE}}</td><td>{{.Child}}</td><td>{{.Failed}}</td><td>{{.Lost}}</td><td>{{.Median}}</td>
<td>{{.P95}}</td><td>{{.Bytes}}</td></tr>
{{end}}</table>{{end}}
{{if .Throughput}}<h2>ESP throughput</h2>
<table><tr><th>cipher</th><th>direction</th><th>packet size (octets)</th><th>ESP (Gbit/s)</th><th>raw cipher (Gbit/s)</th></tr>
{{range .Throughput}}<tr><td class="l">{{.Cipher}}</td><td class="l">{{.Direction}}</td><td>{{.PacketSize}}</td>
<td>{{printf "%.2f" .Gbps}}</td><td>{{printf "%.2f" .BaselineGbps}}</td></tr>
{{end}}</table>{{end}}
<h2>Figures</h2>
{{range .Figures}}<figure>{{.SVG}}<figcaption>{{.Title}}</figcaption></figure>
{{end}}
</body></html>
`))
