package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pqlab/pqlab/cmd/internal/bench"
	"github.com/pqlab/pqlab/cmd/internal/experiment"
	"github.com/pqlab/pqlab/cmd/internal/lab"
	"github.com/pqlab/pqlab/cmd/internal/results"
)

func init() {
	register(&command{name: "sweep",
		usage: "EXPERIMENT.toml [--out DIR] [--jobs N] [--shard I/N] [--reps N] [--list] [--update-baseline]",
		short: "run an experiment's parameter grid (experiments/*.toml), or one shard of it, and write results, plots and a report",
		run:   runSweep})
}

// shard is the part of a sweep one invocation runs: points k with
// k mod n == i-1.
type shard struct{ i, n int }

func parseShard(s string) (shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return shard{}, fmt.Errorf("--shard %q: want I/N with 1 <= I <= N, e.g. 2/8", s)
	}
	return shard{i, n}, nil
}

func (s shard) has(k int) bool { return s.n == 0 || k%s.n == s.i-1 }

func runSweep(args []string, stdout io.Writer) error {
	lab.SetMemoryLimit() // large topologies: keep the heap within the machine
	c := commands["sweep"]
	fs := newFlags(c, stdout)
	out := fs.String("out", "", "output directory (default: results/<experiment name>, a shard under it in shard-I-of-N)")
	jobs := fs.Int("jobs", runtime.GOMAXPROCS(0), "runs in parallel")
	shardFlag := fs.String("shard", "", "run only shard I of N (1-based), e.g. 3/8; join the shards with pqlab merge")
	reps := fs.Int("reps", 0, "repetitions per grid point (default: the experiment's reps)")
	list := fs.Bool("list", false, "print the runs (of the shard) without running them")
	update := fs.Bool("update-baseline", false, "write the experiment's wire baseline from this run instead of comparing with it")
	if err := fs.Parse(reorderFlags(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("need one experiment file")
	}
	if *jobs < 1 || *reps < 0 {
		return fmt.Errorf("--jobs must be at least 1 and --reps not negative")
	}
	var sh shard
	if *shardFlag != "" {
		var err error
		if sh, err = parseShard(*shardFlag); err != nil {
			return err
		}
	}
	exp, err := experiment.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	if *reps > 0 {
		exp.Reps = *reps
	}
	if exp.Bench != nil || exp.Realtime != nil {
		*jobs = 1 // measurements on the wall clock: parallel runs would disturb them
	}
	if *update && (sh.n > 0 || exp.BaselinePath() == "") {
		return fmt.Errorf("--update-baseline needs a whole sweep of an experiment with a baseline")
	}
	ex, err := exp.Expand()
	if err != nil {
		return err
	}
	var points []experiment.Point
	for k, p := range ex.Points {
		if sh.has(k) {
			points = append(points, p)
		}
	}
	if *list {
		for _, p := range points {
			note := ""
			if p.Record != nil {
				note = "  (not run: " + p.Record.Handshakes[0].Outcome + ")"
			}
			fmt.Fprintf(stdout, "%s%s\n", p.Name(), note)
		}
		fmt.Fprintf(stdout, "%d runs", len(points))
		if sh.n > 0 {
			fmt.Fprintf(stdout, " in shard %d/%d of %d", sh.i, sh.n, len(ex.Points))
		}
		if ex.Skipped > 0 {
			fmt.Fprintf(stdout, " (%d grid points left out: roles the peer model does not take)", ex.Skipped)
		}
		fmt.Fprintln(stdout)
		return nil
	}
	defaultOut := *out == ""
	if defaultOut {
		*out = filepath.Join("results", exp.Name)
		if sh.n > 0 {
			*out = filepath.Join(*out, fmt.Sprintf("shard-%d-of-%d", sh.i, sh.n))
		}
	}
	start := time.Now()
	f, warnings, err := runPoints(points, *jobs)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintln(stdout, "note:", w)
	}
	if sh.n > 0 {
		resPath := filepath.Join(*out, "results.json")
		if err := writeResults(resPath, f); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "shard %d/%d: %d of %d runs in %.1f s\nresults: %s\n", sh.i, sh.n, len(f.Runs), len(ex.Points),
			time.Since(start).Seconds(), resPath)
		if defaultOut {
			fmt.Fprintf(stdout, "join the shards: pqlab merge -o %s %s\n", filepath.Join(filepath.Dir(*out), "results.json"),
				filepath.Join(filepath.Dir(*out), "shard-*-of-"+strconv.Itoa(sh.n)))
		} else {
			fmt.Fprintf(stdout, "join the shards: pqlab merge -o OUT/results.json SHARD_DIR... (all %d shards)\n", sh.n)
		}
		return nil
	}
	title := "pqlab sweep: " + exp.Name
	if exp.Description != "" {
		title += ": " + exp.Description
	}
	o, err := writeOutputs(*out, title, f)
	if err != nil {
		return err
	}
	printSummary(stdout, f)
	fmt.Fprintf(stdout, "\n%d runs in %.1f s", len(f.Runs), time.Since(start).Seconds())
	if ex.Skipped > 0 {
		fmt.Fprintf(stdout, " (%d grid points left out: roles the peer model does not take)", ex.Skipped)
	}
	fmt.Fprintln(stdout)
	o.print(stdout)
	if bp := exp.BaselinePath(); bp != "" {
		return checkBaseline(stdout, bp, f, *update)
	}
	return nil
}

// errBaseline reports a wire result that differs from the baseline.
var errBaseline = errors.New("the wire results differ from the baseline (see the diff above; pqlab sweep --update-baseline accepts them)")

// checkBaseline compares f's wire summary with the baseline file, or
// writes the file when update is set.
func checkBaseline(stdout io.Writer, path string, f *results.File, update bool) error {
	got := experiment.WireSummary(f)
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "baseline: wrote %s\n", path)
		return nil
	}
	want, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("baseline: %w (create it with --update-baseline)", err)
	}
	if d := experiment.Diff(string(want), got); d != "" {
		fmt.Fprintf(stdout, "baseline: %s differs (- baseline, + this run):\n%s", path, d)
		return errBaseline
	}
	fmt.Fprintf(stdout, "baseline: matches %s\n", path)
	return nil
}

// runPoints runs the points on jobs workers and returns them as one file,
// runs in name order (as pqlab merge orders them), with the distinct
// warnings.
func runPoints(points []experiment.Point, jobs int) (*results.File, []string, error) {
	runs, errs, warnings := runParallel(len(points), jobs, func(i int, warn func(string)) (*results.Run, error) {
		return runPoint(points[i], warn)
	})
	f := &results.File{Schema: results.Schema, Runs: []results.Run{}}
	for i, r := range runs {
		if errs[i] != nil {
			return nil, nil, fmt.Errorf("run %s: %w", points[i].Name(), errs[i])
		}
		f.Runs = append(f.Runs, *r)
	}
	if len(f.Runs) > 0 {
		m, err := results.Merge(f)
		if err != nil {
			return nil, nil, err
		}
		f = m
	}
	return f, warnings, nil
}

func runPoint(p experiment.Point, warn func(string)) (*results.Run, error) {
	switch {
	case p.Record != nil:
		return p.Record, nil
	case p.Bench != nil:
		return runBenchPoint(p.Bench)
	}
	s := p.Spec
	s.Topology = relPath(s.Topology)
	s.Warn = warn
	if p.Realtime != nil {
		r, err := lab.RunRealtime(s, *p.Realtime)
		if err != nil {
			return nil, err
		}
		r.Name = s.Name // RunRealtime adds its windows to Params; the name stays the grid's
		if r.Handshakes == nil {
			r.Handshakes = []results.Handshake{}
		}
		return r, nil
	}
	return lab.Run(s)
}

// runBenchPoint measures one cipher and packet size.
func runBenchPoint(b *experiment.BenchPoint) (*results.Run, error) {
	r := &results.Run{Name: b.Name, Topology: "bench", Params: map[string]string{"cipher": b.Cipher, "size": strconv.Itoa(b.Size)},
		Handshakes: []results.Handshake{}}
	for _, dir := range b.Directions {
		res, err := bench.ESP(b.Cipher, b.Size, dir, b.Time)
		if err != nil {
			return nil, err
		}
		r.Throughput = append(r.Throughput, results.Throughput{Cipher: b.Cipher, Direction: dir, PacketSize: b.Size,
			Gbps: res.Gbps(), BaselineGbps: res.BaselineGbps()})
	}
	return r, nil
}
