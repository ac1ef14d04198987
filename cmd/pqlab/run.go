package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pqlab/pqlab/cmd/internal/lab"
	"github.com/pqlab/pqlab/cmd/internal/results"
)

func init() {
	register(&command{name: "run",
		usage: "[TOPOLOGY.toml] [--seed N] [--out DIR] [--pcap] [--keys] [--duration D] [--set KEY=VALUE]... [--reps N] [--jobs N] [--realtime [--window D] [--rounds N]]",
		short: "run a topology (or, without one, the quick default experiment) and write results, plots and a report",
		run:   runRun})
}

// setFlags collects repeated --set KEY=VALUE overrides.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, " ") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func runRun(args []string, stdout io.Writer) error {
	lab.SetMemoryLimit() // large topologies: keep the heap within the machine
	c := commands["run"]
	fs := newFlags(c, stdout)
	seed := fs.Uint64("seed", 0, "seed (default: the topology's; the default experiment's first seed is 1)")
	out := fs.String("out", "", "output directory (default: results/<topology name>, or results/default)")
	pcap := fs.Bool("pcap", false, "write one pcap file per link under OUT/pcap")
	keys := fs.Bool("keys", false, "write Wireshark's esp_sa key table under OUT/keys")
	dur := fs.Duration("duration", 0, "simulated duration (default: the topology's)")
	reps := fs.Int("reps", 10, "repetitions (seeds) per configuration of the default experiment")
	jobs := fs.Int("jobs", runtime.GOMAXPROCS(0), "runs in parallel (default experiment)")
	var sets setFlags
	fs.Var(&sets, "set", "override a topology field, e.g. --set 'link[0].mtu=1280' (repeatable)")
	realtime := fs.Bool("realtime", false, "run on the wall clock and measure ESP throughput: TCP bulk through the tunnel against plain forwarding (the topology's first initiator and its peer need lan_hosts = 2, e.g. topologies/realtime-pair.toml)")
	window := fs.Duration("window", lab.RealtimeDefaults.Window, "with --realtime: length of each measurement")
	rounds := fs.Int("rounds", lab.RealtimeDefaults.Rounds, "with --realtime: ESP and plain measurements, interleaved")
	if err := fs.Parse(reorderFlags(args)); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return fmt.Errorf("at most one topology file, got %d arguments", fs.NArg())
	}
	if *dur < 0 || *reps < 1 || *jobs < 1 {
		return fmt.Errorf("--duration must not be negative, --reps and --jobs at least 1")
	}
	if *realtime && (fs.NArg() != 1 || *window <= 0 || *rounds < 1) {
		return fmt.Errorf("--realtime needs a topology file, a positive --window and --rounds of at least 1")
	}
	ov := lab.Overrides{}
	for _, s := range sets {
		k, v, err := lab.ParseOverride(s)
		if err != nil {
			return err
		}
		ov[k] = v
	}
	var specs []lab.Spec
	title := "pqlab report"
	if fs.NArg() == 1 {
		topo := fs.Arg(0)
		top, err := lab.Load(lab.Spec{Topology: topo, Overrides: ov})
		if err != nil {
			return err
		}
		if *out == "" {
			*out = filepath.Join("results", top.Name)
		}
		specs = []lab.Spec{{Topology: topo, Seed: *seed, Duration: *dur, Overrides: ov}}
		title = "pqlab run: " + top.Name
	} else {
		if len(sets) > 0 {
			return fmt.Errorf("--set needs a topology file")
		}
		root, err := lab.FindRoot()
		if err != nil {
			return err
		}
		if *out == "" {
			*out = filepath.Join("results", "default")
		}
		if specs, err = lab.DefaultSpecs(root, *reps); err != nil {
			return err
		}
		for i := range specs {
			if *seed != 0 {
				specs[i].Seed += *seed - 1
			}
			if *dur > 0 {
				specs[i].Duration = *dur
			}
			specs[i].Topology = relPath(specs[i].Topology)
		}
		title = "pqlab default experiment: key exchanges on clean, lossy and fragment-dropping paths"
	}
	for i := range specs {
		sub := ""
		if len(specs) > 1 {
			sub = safeName(specs[i].Name)
		}
		if *pcap {
			specs[i].PcapDir = filepath.Join(*out, "pcap", sub)
		}
		if *keys {
			specs[i].KeysDir = filepath.Join(*out, "keys", sub)
		}
	}
	start := time.Now()
	var f *results.File
	var warnings []string
	if *realtime {
		r, err := lab.RunRealtime(specs[0], lab.Realtime{Window: *window, Rounds: *rounds})
		if err != nil {
			return err
		}
		if r.Handshakes == nil {
			r.Handshakes = []results.Handshake{}
		}
		f = &results.File{Schema: results.Schema, Runs: []results.Run{*r}}
		for _, t := range r.Throughput {
			fmt.Fprintf(stdout, "ESP %s, %d-octet packets: %.2f Gbit/s through the tunnel, %.2f Gbit/s plain forwarding (medians of %d windows of %v)\n",
				t.Cipher, t.PacketSize, t.Gbps, t.BaselineGbps, *rounds, *window)
		}
	} else {
		var err error
		if f, warnings, err = runSpecs(specs, *jobs, stdout); err != nil {
			return err
		}
	}
	for _, w := range warnings {
		fmt.Fprintln(stdout, "note:", w)
	}
	o, err := writeOutputs(*out, title, f)
	if err != nil {
		return err
	}
	printSummary(stdout, f)
	n := 0
	for _, r := range f.Runs {
		n += len(r.Handshakes)
	}
	fmt.Fprintf(stdout, "\n%d runs, %d handshakes in %.1f s\n", len(f.Runs), n, time.Since(start).Seconds())
	o.print(stdout)
	if *pcap {
		fmt.Fprintf(stdout, "pcap:    %s\n", filepath.Join(*out, "pcap"))
	}
	if *keys {
		fmt.Fprintf(stdout, "keys:    %s (WIRESHARK_CONFIG_DIR for tshark -o esp.enable_encryption_decode:TRUE)\n", filepath.Join(*out, "keys"))
	}
	return nil
}

// reorderFlags lets flags follow the positional argument ("pqlab run
// topo.toml --seed 3"), as users type them.
func reorderFlags(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && !boolFlag[name] && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(flags, pos...)
}

// boolFlag names the flags of run that take no value.
var boolFlag = map[string]bool{"pcap": true, "keys": true, "h": true, "help": true, "list": true, "update-baseline": true, "realtime": true,
	"kex": true, "handshake": true, "esp": true}

// runSpecs runs specs on jobs workers and returns them as one file, in
// spec order, with the distinct warnings.
func runSpecs(specs []lab.Spec, jobs int, stdout io.Writer) (*results.File, []string, error) {
	runs, errs, warnings := runParallel(len(specs), jobs, func(i int, warn func(string)) (*results.Run, error) {
		s := specs[i]
		s.Warn = warn
		return lab.Run(s)
	})
	f := &results.File{Schema: results.Schema}
	for i, r := range runs {
		if errs[i] != nil {
			if len(specs) > 1 {
				return nil, nil, fmt.Errorf("run %s: %w", specs[i].Name, errs[i])
			}
			return nil, nil, errs[i]
		}
		f.Runs = append(f.Runs, *r)
	}
	return f, warnings, nil
}

// runParallel calls run for jobs 0..n-1 on up to workers goroutines with a
// progress bar, and returns the runs and errors in job order and the
// distinct warnings passed to warn, sorted.
func runParallel(n, workers int, run func(i int, warn func(string)) (*results.Run, error)) ([]*results.Run, []error, []string) {
	runs := make([]*results.Run, n)
	errs := make([]error, n)
	var mu sync.Mutex
	seen := map[string]bool{}
	var warnings []string
	warn := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if !seen[s] {
			seen[s] = true
			warnings = append(warnings, s)
		}
	}
	prog := newProgress(n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				runs[i], errs[i] = run(i, warn)
				prog.done()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	prog.finish()
	sort.Strings(warnings)
	return runs, errs, warnings
}

// progress draws a bar with the runs done and the time left on stderr
// when stderr is a terminal, and nothing otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	start time.Time
	mu    sync.Mutex
	n     int
	last  time.Time // of the last redraw
}

func newProgress(total int) *progress {
	p := &progress{w: stderr, total: total, start: time.Now()}
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = total > 1
		}
	}
	return p
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if !p.tty || (p.n < p.total && time.Since(p.last) < 100*time.Millisecond) {
		return
	}
	p.last = time.Now()
	el := time.Since(p.start)
	eta := time.Duration(float64(el) / float64(p.n) * float64(p.total-p.n))
	const width = 30
	bar := strings.Repeat("#", width*p.n/p.total) + strings.Repeat(".", width-width*p.n/p.total)
	fmt.Fprintf(p.w, "\r[%s] %d/%d runs, ETA %s   ", bar, p.n, p.total, eta.Round(100*time.Millisecond))
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// printSummary prints one line per suite: success, latency and wire cost.
// Runs of an interoperability matrix (no "suite" parameter, when others
// have one) get a line of their own.
func printSummary(w io.Writer, f *results.File) {
	suites := &results.File{Schema: f.Schema}
	var interop, interopOK, pairs, rekeys, rekeyFailed, rekeyLost int
	var iop []results.Run
	for _, r := range f.Runs {
		if r.Params["initiator_model"] != "" && r.Params["responder_model"] != "" {
			pairs++
			iop = append(iop, r)
			for _, h := range r.Handshakes {
				if h.Outcome == results.OutcomeNotConfigurable {
					continue
				}
				interop++
				if h.Outcome == results.OutcomeEstablished {
					interopOK++
				}
			}
			continue
		}
		suites.Runs = append(suites.Runs, r)
		c := results.CountRekeys(r.Rekeys)
		rekeys += len(r.Rekeys)
		rekeyFailed += c.Failed
		rekeyLost += c.CollisionsLost
	}
	if len(suites.Runs) > 0 {
		printSuites(w, suites)
	}
	if rekeys > 0 {
		fmt.Fprintf(w, "rekeys: %d, %d failed, %d lost a collision to the peer's rekey (see report.html)\n", rekeys, rekeyFailed, rekeyLost)
	}
	if pairs > 0 {
		printInterop(w, iop)
		fmt.Fprintf(w, "interop matrix: %d of %d handshakes that ran established, over %d runs of pairs of peer models (see plots/interop*.png)\n",
			interopOK, interop, pairs)
	}
}

// printInterop prints, per suite and path of an interoperability matrix,
// how many pairs established with ML-KEM, without it, failed (by reason),
// or could not be configured.
func printInterop(w io.Writer, runs []results.Run) {
	type key struct{ suite, path string }
	type acc struct {
		pq, classical, failed, nc int
		reasons                   map[string]int
	}
	var keys []key
	m := map[key]*acc{}
	for _, r := range runs {
		k := key{r.Params["suite"], r.Params["path"]}
		a := m[k]
		if a == nil {
			a = &acc{reasons: map[string]int{}}
			m[k] = a
			keys = append(keys, k)
		}
		for _, h := range r.Handshakes {
			switch {
			case h.Outcome == results.OutcomeNotConfigurable:
				a.nc++
			case h.Outcome == results.OutcomeEstablished && h.Placement == "none":
				a.classical++
			case h.Outcome == results.OutcomeEstablished:
				a.pq++
			default:
				a.failed++
				a.reasons[h.Reason]++
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].path != keys[j].path {
			return keys[i].path < keys[j].path
		}
		return keys[i].suite < keys[j].suite
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "interop suite\tpath\twith ML-KEM\twithout ML-KEM\tfailed\tnot configurable\tfailure reasons\t")
	for _, k := range keys {
		a := m[k]
		var rs []string
		for r, n := range a.reasons {
			rs = append(rs, fmt.Sprintf("%s:%d", r, n))
		}
		sort.Strings(rs)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t\n", k.suite, k.path, a.pq, a.classical, a.failed, a.nc, strings.Join(rs, " "))
	}
	tw.Flush()
}

func printSuites(w io.Writer, f *results.File) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "suite\tplacement\testablished\tmedian ms\tp95 ms\tbytes\tdatagrams\tIKE frags\tIP frags\tfailures\t")
	for _, s := range results.Summarize(f) {
		var reasons []string
		for r, n := range s.Reasons {
			reasons = append(reasons, fmt.Sprintf("%s:%d", r, n))
		}
		sort.Strings(reasons)
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.1f\t%.1f\t%.0f\t%.1f\t%.1f\t%.1f\t%s\t\n", s.Suite, s.Placement, s.Established, s.Handshakes,
			s.MedianMs, s.P95Ms, s.Bytes, s.Datagrams, s.IKEFragments, s.IPFragments, strings.Join(reasons, " "))
	}
	tw.Flush()
}

// relPath shortens a path to the working directory's view, for records.
func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// safeName turns a run name into a directory name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '+', r == '_', r == '=':
			return r
		}
		return '_'
	}, s)
}
