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

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Figure is one drawn figure with the base name of its files: a single
// plot, or facets (tiles) under a common title with a common legend below.
type Figure struct {
	Name  string // file base name, e.g. "latency_cdf"
	Title string
	// Plot is a single plot with its own title and legend.
	Plot *plot.Plot
	// Tiles are facets drawn in Cols columns under Title, with Legend
	// (shared by the tiles) below them.
	Tiles  []*plot.Plot
	Cols   int
	Legend []LegendEntry
	// Width and Height override the default size.
	Width, Height vg.Length
}

// LegendEntry is one entry of a figure's shared legend.
type LegendEntry struct {
	Label  string
	Thumbs []plot.Thumbnailer
}

// Default sizes.
const (
	singleW = 18 * vg.Centimeter
	singleH = 11 * vg.Centimeter
	tileW   = 9 * vg.Centimeter
	tileH   = 7.5 * vg.Centimeter
	titleH  = 1 * vg.Centimeter
)

func (f *Figure) rows() int { return (len(f.Tiles) + f.Cols - 1) / f.Cols }

// single makes a figure of one plot whose legend goes below it (so that it
// covers no data): the plot's title becomes the figure's.
func single(p *plot.Plot, legend []LegendEntry) *Figure {
	fig := &Figure{Title: p.Title.Text, Tiles: []*plot.Plot{p}, Cols: 1, Legend: legend}
	p.Title.Text = ""
	return fig
}

// Size returns the figure's width and height.
func (f *Figure) Size() (vg.Length, vg.Length) {
	if f.Width > 0 && f.Height > 0 {
		return f.Width, f.Height
	}
	if f.Plot != nil {
		return singleW, singleH
	}
	w := vg.Length(f.Cols) * tileW
	if w < singleW {
		w = singleW
	}
	th := tileH
	if len(f.Tiles) == 1 {
		th = singleH
	}
	return w, vg.Length(f.rows())*th + f.titleHeight() + legendHeight(f.Legend, w)
}

// titleHeight is the height of the figure title (one or two lines).
func (f *Figure) titleHeight() vg.Length {
	return titleH * vg.Length(1+strings.Count(f.Title, "\n"))
}

// Draw draws the figure on c.
func (f *Figure) Draw(c draw.Canvas) {
	if f.Plot != nil {
		f.Plot.Draw(c)
		return
	}
	w := c.Max.X - c.Min.X
	// Title.
	ts := titleStyle()
	th := f.titleHeight()
	c.FillText(ts, vg.Point{X: c.Min.X + w/2, Y: c.Max.Y - th/2}, f.Title)
	lh := legendHeight(f.Legend, w)
	drawLegend(draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{Min: c.Min, Max: vg.Point{X: c.Max.X, Y: c.Min.Y + lh}}}, f.Legend)
	area := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
		Min: vg.Point{X: c.Min.X, Y: c.Min.Y + lh}, Max: vg.Point{X: c.Max.X, Y: c.Max.Y - th}}}
	rows := f.rows()
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, f.Cols)
		for k := 0; k < f.Cols; k++ {
			if i := r*f.Cols + k; i < len(f.Tiles) {
				grid[r][k] = f.Tiles[i]
			}
		}
	}
	t := draw.Tiles{Rows: rows, Cols: f.Cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 3, PadTop: vg.Millimeter, PadBottom: vg.Millimeter}
	canvases := plot.Align(grid, t, area)
	for r := range grid {
		for k, p := range grid[r] {
			if p != nil {
				p.Draw(canvases[r][k])
			}
		}
	}
}

func titleStyle() draw.TextStyle {
	p := plot.New()
	s := p.Title.TextStyle
	s.Font.Size = vg.Points(13)
	s.XAlign = draw.XCenter
	s.YAlign = draw.YCenter
	return s
}

func legendStyle() draw.TextStyle {
	l := plot.NewLegend()
	return l.TextStyle
}

const (
	legendThumbW = 22 // points
	legendPad    = 4  // points
)

// legendLayout returns the column width and the number of columns and
// rows of a legend strip of width w.
func legendLayout(entries []LegendEntry, w vg.Length) (colW vg.Length, cols, rows int) {
	if len(entries) == 0 {
		return 0, 0, 0
	}
	ts := legendStyle()
	for _, e := range entries {
		if x := ts.Width(e.Label); x > colW {
			colW = x
		}
	}
	colW += vg.Points(legendThumbW + 3*legendPad)
	cols = int(float64(w-vg.Points(2*legendPad)) / float64(colW))
	cols = max(1, min(cols, len(entries)))
	rows = (len(entries) + cols - 1) / cols
	return colW, cols, rows
}

func legendHeight(entries []LegendEntry, w vg.Length) vg.Length {
	_, _, rows := legendLayout(entries, w)
	if rows == 0 {
		return 0
	}
	return vg.Length(rows)*(legendStyle().Height("Xg")+vg.Points(3)) + vg.Points(2*legendPad)
}

// drawLegend draws the entries in columns across c, centred.
func drawLegend(c draw.Canvas, entries []LegendEntry) {
	colW, cols, _ := legendLayout(entries, c.Max.X-c.Min.X)
	if cols == 0 {
		return
	}
	ts := legendStyle()
	ts.XAlign = draw.XLeft
	ts.YAlign = draw.YCenter
	rowH := ts.Height("Xg") + vg.Points(3)
	x0 := c.Min.X + (c.Max.X-c.Min.X-vg.Length(cols)*colW)/2
	y0 := c.Max.Y - vg.Points(legendPad)
	for i, e := range entries {
		col, row := i%cols, i/cols
		x := x0 + vg.Length(col)*colW
		y := y0 - vg.Length(row)*rowH - rowH/2
		thumb := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: y - rowH/2 + vg.Points(2)},
			Max: vg.Point{X: x + vg.Points(legendThumbW), Y: y + rowH/2 - vg.Points(2)}}}
		for _, t := range e.Thumbs {
			t.Thumbnail(&thumb)
		}
		c.FillText(ts, vg.Point{X: x + vg.Points(legendThumbW+legendPad), Y: y}, e.Label)
	}
}

// Save writes each figure as PNG and SVG into dir and returns the paths written.
func Save(figs []Figure, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for i := range figs {
		fg := &figs[i]
		w, h := fg.Size()
		for _, ext := range []string{"png", "svg"} {
			p := filepath.Join(dir, fg.Name+"."+ext)
			c, err := draw.NewFormattedCanvas(w, h, ext)
			if err != nil {
				return nil, err
			}
			fg.Draw(draw.New(c))
			fh, err := os.Create(p)
			if err != nil {
				return nil, err
			}
			if _, err := c.WriteTo(fh); err != nil {
				fh.Close()
				return nil, fmt.Errorf("plots: %s: %w", p, err)
			}
			if err := fh.Close(); err != nil {
				return nil, err
			}
			paths = append(paths, p)
		}
	}
	return paths, nil
}

// newPlot starts a plot with a title, axis labels and a grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.X.Tick.Marker = plainTicks{}
	p.Y.Tick.Marker = plainTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// plainTicks are gonum's default ticks with labels in the shortest form
// ("25", not "25.00"), so that facets of one figure label alike.
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = formatNum(ticks[i].Value)
		}
	}
	return ticks
}

// newTile starts a facet: a smaller title, the same axes.
func newTile(title, x, y string) *plot.Plot {
	p := newPlot(title, x, y)
	p.Title.TextStyle.Font.Size = vg.Points(11)
	return p
}

// dashes of the second line style (p95, IKE fragments, raw baselines).
var dashed = []vg.Length{vg.Points(5), vg.Points(3)}

// series is the style of the i-th series: colour, glyph shape.
func styleLine(l *plotter.Line, pts *plotter.Scatter, i int) {
	c := palette(i)
	l.Color = c
	l.Width = vg.Points(1.6)
	if pts != nil {
		pts.Color = c
		pts.Shape = shapes[i%len(shapes)]
		pts.Radius = vg.Points(3)
	}
}

var shapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{},
	draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.PlusGlyph{}}

// palette is a colour-blind-friendly set (Okabe and Ito).
func palette(i int) color.Color {
	cs := []color.RGBA{
		{0, 114, 178, 255}, {230, 159, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
		{86, 180, 233, 255}, {213, 94, 0, 255}, {240, 228, 66, 255}, {0, 0, 0, 255},
	}
	return cs[i%len(cs)]
}

// lineThumb is a legend thumbnail of a line in a style.
type lineThumb struct {
	c      color.Color
	dashes []vg.Length
	shape  draw.GlyphDrawer
}

func (t lineThumb) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	ls := draw.LineStyle{Color: t.c, Width: vg.Points(1.6), Dashes: t.dashes}
	c.StrokeLine2(ls, c.Min.X, y, c.Max.X, y)
	if t.shape != nil {
		c.DrawGlyph(draw.GlyphStyle{Color: t.c, Radius: vg.Points(3), Shape: t.shape}, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: y})
	}
}

// boxThumb is a legend thumbnail of a filled box.
type boxThumb struct{ c color.Color }

func (t boxThumb) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(t.c, c.ClipPolygonXY(pts))
	c.StrokeLines(draw.LineStyle{Color: color.Gray{Y: 0x80}, Width: vg.Points(0.5)}, append(pts, pts[0]))
}

func seriesEntry(label string, i int) LegendEntry {
	return LegendEntry{Label: label, Thumbs: []plot.Thumbnailer{lineThumb{c: palette(i), shape: shapes[i%len(shapes)]}}}
}

// valueTicks puts a tick at each value, labelled as given.
type valueTicks struct {
	vals   []float64
	labels []string
}

func (t valueTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for i, v := range t.vals {
		if v >= min-1e-9 && v <= max+1e-9 {
			out = append(out, plot.Tick{Value: v, Label: t.labels[i]})
		}
	}
	return out
}

func ticksAt(vals []float64, format func(float64) string) valueTicks {
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	t := valueTicks{}
	for i, v := range s {
		if i > 0 && v == s[i-1] {
			continue
		}
		t.vals = append(t.vals, v)
		t.labels = append(t.labels, format(v))
	}
	return t
}

func formatNum(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// timeUnit picks milliseconds or seconds for values given in milliseconds.
func timeUnit(maxMs float64) (div float64, unit string) {
	if maxMs > 5000 {
		return 1000, "s"
	}
	return 1, "ms"
}

// gridAxes labels the axes of a grid of cells (a heatmap) with the column
// names xs, the x labels turned by rotation radians, and the row names ys.
func gridAxes(p *plot.Plot, xs, ys []string, rotation float64) {
	p.X.Tick.Marker = nameTicks(xs)
	p.Y.Tick.Marker = nameTicks(ys)
	p.X.Tick.Label.Rotation = rotation
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YTop
	p.X.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Tick.Label.Font.Size = vg.Points(8)
	p.X.Min, p.X.Max = -0.5, float64(len(xs))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(ys))-0.5
}

// nameTicks labels integer positions with names.
type nameTicks []string

func (t nameTicks) Ticks(min, max float64) []plot.Tick {
	ticks := make([]plot.Tick, len(t))
	for i, n := range t {
		ticks[i] = plot.Tick{Value: float64(i), Label: n}
	}
	return ticks
}

// facetCols chooses the columns of n facets.
func facetCols(n int) int {
	switch {
	case n <= 2:
		return n
	case n == 4:
		return 2
	default:
		return 3
	}
}

// fontSize returns a text style's font at a size.
func withSize(s draw.TextStyle, pts float64) draw.TextStyle {
	s.Font.Size = font.Length(vg.Points(pts))
	return s
}

// distinct returns the distinct values of a run parameter in order of
// appearance, or of numeric value when all parse as numbers.
func distinctParam(runs []runRef, name string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range runs {
		v, ok := r.run.Params[name]
		if !ok || seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	numeric := true
	for _, v := range out {
		if _, ok := paramValue(name, v); !ok {
			numeric = false
		}
	}
	if numeric {
		sort.Slice(out, func(i, j int) bool {
			a, _ := paramValue(name, out[i])
			b, _ := paramValue(name, out[j])
			return a < b
		})
	}
	return out
}

// describeParam renders a parameter value for a facet title.
func describeParam(name, v string) string {
	switch name {
	case "rtt":
		if x, ok := paramValue(name, v); ok {
			return "RTT " + formatNum(x) + " ms"
		}
	case "loss":
		if x, ok := paramValue(name, v); ok {
			return "loss " + formatNum(x) + " %"
		}
	case "mtu":
		return "MTU " + v
	case "path":
		return "path: " + v
	}
	return strings.ReplaceAll(name, "_", " ") + ": " + v
}

func nanToZero(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}
