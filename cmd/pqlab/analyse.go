package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pqlab/pqlab/cmd/internal/plots"
	"github.com/pqlab/pqlab/cmd/internal/report"
	"github.com/pqlab/pqlab/cmd/internal/results"
)

func init() {
	register(&command{name: "merge", usage: "-o OUT.json IN.json...",
		short: "join the results files of a sharded sweep into one", run: runMerge})
	register(&command{name: "plot", usage: "[-o DIR] RESULTS_DIR|RESULTS.json",
		short: "draw the standard figures (PNG and SVG) from a results file", run: runPlot})
	register(&command{name: "report", usage: "[-o FILE] RESULTS_DIR|RESULTS.json",
		short: "write a self-contained HTML report of a results file", run: runReport})
}

// resultsPath accepts a results directory or a results.json file.
func resultsPath(arg string) string {
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		return filepath.Join(arg, "results.json")
	}
	return arg
}

func runMerge(args []string, stdout io.Writer) error {
	c := commands["merge"]
	fs := newFlags(c, stdout)
	out := fs.String("o", "", "output results file (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("need -o and at least one input")
	}
	var files []*results.File
	for _, p := range fs.Args() {
		f, err := results.ReadFile(resultsPath(p))
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	m, err := results.Merge(files...)
	if err != nil {
		return err
	}
	if err := writeResults(*out, m); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "merged %d runs into %s\n", len(m.Runs), *out)
	return nil
}

// writeResults writes f to path (results.json) and the CSV beside it, and
// the rekey records to results-rekeys.csv when there are any.
func writeResults(path string, f *results.File) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := results.Write(fh, f); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	base := path[:len(path)-len(filepath.Ext(path))]
	if err := writeCSV(base+".csv", f, results.WriteCSV); err != nil {
		return err
	}
	if hasRekeys(f) {
		return writeCSV(base+"-rekeys.csv", f, results.WriteRekeysCSV)
	}
	return nil
}

func hasRekeys(f *results.File) bool {
	for _, r := range f.Runs {
		if len(r.Rekeys) > 0 {
			return true
		}
	}
	return false
}

// writeCSV writes one CSV view of f to path.
func writeCSV(path string, f *results.File, write func(io.Writer, *results.File) error) error {
	ch, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(ch, f); err != nil {
		ch.Close()
		return err
	}
	return ch.Close()
}

// readResultsArg reads the results file named by the one argument of fs (a
// results directory or file) and returns its path.
func readResultsArg(fs *flag.FlagSet) (string, *results.File, error) {
	if fs.NArg() != 1 {
		fs.Usage()
		return "", nil, fmt.Errorf("need one results directory or file")
	}
	path := resultsPath(fs.Arg(0))
	f, err := results.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	return path, f, nil
}

// outputs are the files writeOutputs wrote.
type outputs struct {
	results, plots, report string
	figures                int
	rekeys                 bool // results-rekeys.csv written
}

// writeOutputs writes under dir what run, sweep and bench leave behind:
// results.json with results.csv beside it, the figures in plots/ and
// report.html with the given title.
func writeOutputs(dir, title string, f *results.File) (outputs, error) {
	o := outputs{results: filepath.Join(dir, "results.json"), plots: filepath.Join(dir, "plots"), report: filepath.Join(dir, "report.html")}
	if err := writeResults(o.results, f); err != nil {
		return o, err
	}
	o.rekeys = hasRekeys(f)
	paths, err := drawPlots(f, o.plots)
	if err != nil {
		return o, err
	}
	o.figures = len(paths) / 2
	return o, writeReport(o.report, title, f)
}

// print says where the outputs are.
func (o outputs) print(w io.Writer) {
	csvs := "results.csv"
	if o.rekeys {
		csvs += ", results-rekeys.csv"
	}
	fmt.Fprintf(w, "results: %s (and %s)\n", o.results, csvs)
	fmt.Fprintf(w, "plots:   %s (%d figures, PNG and SVG)\n", o.plots, o.figures)
	fmt.Fprintf(w, "report:  %s\n", o.report)
}

func runPlot(args []string, stdout io.Writer) error {
	c := commands["plot"]
	fs := newFlags(c, stdout)
	out := fs.String("o", "", "directory for the figures (default: RESULTS_DIR/plots)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	path, f, err := readResultsArg(fs)
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(filepath.Dir(path), "plots")
	}
	paths, err := drawPlots(f, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d figures to %s\n", len(paths)/2, dir)
	return nil
}

func drawPlots(f *results.File, dir string) ([]string, error) {
	figs, err := plots.All(f)
	if err != nil {
		return nil, err
	}
	return plots.Save(figs, dir)
}

func runReport(args []string, stdout io.Writer) error {
	c := commands["report"]
	fs := newFlags(c, stdout)
	out := fs.String("o", "", "output HTML file (default: RESULTS_DIR/report.html)")
	title := fs.String("title", "pqlab report", "page title")
	if err := fs.Parse(args); err != nil {
		return err
	}
	path, f, err := readResultsArg(fs)
	if err != nil {
		return err
	}
	dst := *out
	if dst == "" {
		dst = filepath.Join(filepath.Dir(path), "report.html")
	}
	if err := writeReport(dst, *title, f); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", dst)
	return nil
}

func writeReport(path, title string, f *results.File) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := report.Write(fh, title, f); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
