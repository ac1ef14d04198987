// Package experiment reads pqlab's experiment files (experiments/*.toml)
// and expands them into runs: a parameter grid over topology fields, each
// grid parameter mapping to one or more overrides of package lab, times a
// number of repetitions under derived seeds.
//
// An experiment file:
//
//	name = "latency-rtt-loss"
//	description = "..."
//	topology = "../topologies/two-sites.toml"  # relative to this file
//	duration = "180s"                           # default: the topology's
//	seed = 1                                    # base seed of the derived seeds
//	reps = 3                                    # repetitions of every grid point
//	set = { "link[gw-a-inet].jitter" = "0ms" }  # overrides of every run
//
//	[[param]]                                   # a grid dimension
//	name = "rtt"
//	values = ["5.6ms", "31.2ms"]
//	set = { "link[gw-a-inet].delay" = "${rtt/4}", "link[gw-b-inet].delay" = "${rtt/4}" }
//
//	[[param]]
//	name = "path"
//	  [[param.case]]                            # values with their own settings
//	  value = "fragdrop"
//	  topology = "../topologies/fragment-dropping.toml"
//	  duration = "180s"
//	  set = { ... }
//	  vars = { ... }                            # strings for ${...} templates
//
// Parameter kinds: "set" (the default: the overrides in set, with ${NAME}
// templates naming any parameter or var, optionally divided or multiplied
// by a number: ${rtt/4}, ${loss*2}); "peer_model" (sets the peer_model of
// the tables in `on`, e.g. ["node[gw-a]"]; the value "*" stands for every
// profile in models/peers that can take those nodes' role, and grid points
// whose roles the profile does not take are left out); "suite" (sets the
// IKE proposals of the tables in `on` to the value's proposal, a label of
// Suites or a case's `proposal`; a device whose peer model cannot express
// it makes the point "not-configurable", recorded without running, unless
// its model implements no ML-KEM at all and `fallback` names the proposal
// such devices run instead).
//
// Run seeds are derived from the base seed and the repetition only
// (sim.DeriveSeed(seed, "rep=N")), so every grid point of a repetition sees
// the same random streams (paired comparisons), and the seeds do not depend
// on how a sweep is sharded.
package experiment

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pqlab/pqlab/cmd/internal/lab"
	"github.com/pqlab/pqlab/cmd/internal/results"
	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/models/tomlcheck"
	"github.com/pqlab/pqlab/sim"
	"github.com/pqlab/pqlab/sim/topology"
)

// File is an experiment file.
type File struct {
	Name        string         `toml:"name"`
	Description string         `toml:"description"`
	Topology    string         `toml:"topology"`
	Duration    string         `toml:"duration"`
	Seed        int64          `toml:"seed"`
	Reps        int            `toml:"reps"`
	Set         map[string]any `toml:"set"`
	Param       []Param        `toml:"param"`
	// Bench makes the experiment a set of benchmarks instead of simulated
	// runs (ESP throughput).
	Bench *Bench `toml:"bench"`
	// Realtime makes every run a real-time data-plane measurement
	// (lab.RunRealtime: TCP bulk through the ESP tunnel against plain
	// forwarding through the same gateways, on the wall clock).
	Realtime *Realtime `toml:"realtime"`
	// Baseline is the wire baseline the experiment is compared with
	// (relative to the file), for regression experiments.
	Baseline string `toml:"baseline"`

	path string
	file *tomlcheck.File
	dur  time.Duration
}

// Param is one dimension of the grid.
type Param struct {
	Name   string         `toml:"name"`
	Kind   string         `toml:"kind"`
	Values []any          `toml:"values"`
	Set    map[string]any `toml:"set"`
	Case   []Case         `toml:"case"`
	// On lists the tables (node[NAME] or group[NAME]) a peer_model or
	// suite parameter configures.
	On []string `toml:"on"`
	// Fallback is the proposal a device whose model implements no ML-KEM
	// runs in every suite (suite parameters).
	Fallback string `toml:"fallback"`
	// Unsupported says what a suite that a device cannot express does:
	// "not-configurable" (the default: a record without a run), "skip"
	// (no record) or "error".
	Unsupported string `toml:"unsupported"`
	// ESP sets the ESP proposals of the tables in On (suite parameters).
	ESP string `toml:"esp"`
}

// Case is one value of a parameter with settings of its own.
type Case struct {
	Value    any               `toml:"value"`
	Topology string            `toml:"topology"`
	Duration string            `toml:"duration"`
	Proposal string            `toml:"proposal"`
	Set      map[string]any    `toml:"set"`
	Vars     map[string]string `toml:"vars"`
}

// Realtime configures the real-time runs of an experiment (see
// lab.Realtime; zero fields take lab.RealtimeDefaults).
type Realtime struct {
	From   string `toml:"from"`
	To     string `toml:"to"`
	Window string `toml:"window"`
	Warmup string `toml:"warmup"`
	Rounds int    `toml:"rounds"`

	rt lab.Realtime
}

// Bench describes a benchmark experiment (see package bench).
type Bench struct {
	// Ciphers are ESP suites in strongSwan syntax (aes128gcm16,
	// aes256gcm16, chacha20poly1305, aes128-sha256 ...).
	Ciphers []string `toml:"ciphers"`
	// Sizes are inner packet sizes in octets.
	Sizes []int `toml:"sizes"`
	// Directions: "seal", "open" (default both).
	Directions []string `toml:"directions"`
	// Time is the measuring time of each benchmark (default 100ms).
	Time string `toml:"time"`

	dur time.Duration
}

// Parameter kinds.
const (
	KindSet       = "set"
	KindPeerModel = "peer_model"
	KindSuite     = "suite"
)

// Suites are the suite labels a suite parameter knows without a case
// proposal. ESP is left to the topology or the param's esp.
var Suites = map[string]string{
	"x25519":                   "aes256gcm16-prfsha384-x25519",
	"x25519+mlkem768":          "aes256gcm16-prfsha384-x25519-ke1_mlkem768",
	"x25519+mlkem1024":         "aes256gcm16-prfsha384-x25519-ke1_mlkem1024",
	"mlkem768-init":            "aes256gcm16-prfsha384-mlkem768",
	"mlkem1024-init":           "aes256gcm16-prfsha384-mlkem1024",
	"ecp384":                   "aes256gcm16-prfsha384-ecp384",
	"ecp384+mlkem768":          "aes256gcm16-prfsha384-ecp384-ke1_mlkem768",
	"ecp384+mlkem1024":         "aes256gcm16-prfsha384-ecp384-ke1_mlkem1024",
	"ecp384+mlkem768-optional": "aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_none",
}

// Load reads and checks an experiment file. Errors name file:line: field.
func Load(path string) (*File, error) {
	var f File
	tf, err := tomlcheck.DecodeFile(path, &f)
	if err != nil {
		return nil, err
	}
	f.path, f.file = path, tf
	if err := f.check(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Path is the file the experiment was read from.
func (f *File) Path() string { return f.path }

// BaselinePath returns the baseline file (relative to the working
// directory), or "".
func (f *File) BaselinePath() string {
	if f.Baseline == "" {
		return ""
	}
	return f.rel(f.Baseline)
}

// rel resolves a path written in the file.
func (f *File) rel(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(f.path), p)
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

var tmplRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:([*/])([0-9.]+))?\}`)

func (f *File) check() error {
	if f.Name == "" {
		return f.file.Errorf("name", "missing")
	}
	if f.Reps == 0 {
		f.Reps = 1
	}
	if f.Reps < 0 || f.Reps > 100000 {
		return f.file.Errorf("reps", "want 1..100000, got %d", f.Reps)
	}
	if f.Seed == 0 {
		f.Seed = 1
	}
	if f.Seed < 0 {
		return f.file.Errorf("seed", "must be positive")
	}
	if f.Duration != "" {
		d, err := time.ParseDuration(f.Duration)
		if err != nil || d <= 0 {
			return f.file.Errorf("duration", "bad duration %q", f.Duration)
		}
		f.dur = d
	}
	if f.Bench != nil {
		if f.Topology != "" || len(f.Param) > 0 {
			return f.file.Errorf("bench", "a bench experiment has no topology or param")
		}
		return f.checkBench()
	}
	if f.Topology == "" {
		return f.file.Errorf("topology", "missing")
	}
	if r := f.Realtime; r != nil {
		r.rt = lab.Realtime{From: r.From, To: r.To, Rounds: r.Rounds}
		for _, d := range []struct {
			field string
			s     string
			dst   *time.Duration
		}{{"window", r.Window, &r.rt.Window}, {"warmup", r.Warmup, &r.rt.Warmup}} {
			if d.s == "" {
				continue
			}
			v, err := time.ParseDuration(d.s)
			if err != nil || v <= 0 {
				return f.file.Errorf("realtime."+d.field, "bad duration %q", d.s)
			}
			*d.dst = v
		}
		if r.Rounds < 0 || r.Rounds > 100 {
			return f.file.Errorf("realtime.rounds", "want 1..100, got %d", r.Rounds)
		}
	}
	if _, err := os.Stat(f.rel(f.Topology)); err != nil {
		return f.file.Errorf("topology", "%v", err)
	}
	if err := f.checkSet("set", f.Set); err != nil {
		return err
	}
	seen := map[string]bool{"rep": true}
	names := map[string]bool{}
	for i := range f.Param {
		names[f.Param[i].Name] = true
		for _, c := range f.Param[i].Case {
			for v := range c.Vars {
				names[v] = true
			}
		}
	}
	for i := range f.Param {
		p := &f.Param[i]
		field := fmt.Sprintf("param[%d]", i)
		if !nameRE.MatchString(p.Name) {
			return f.file.Errorf(field+".name", "want a lower-case name like \"rtt\", got %q", p.Name)
		}
		if seen[p.Name] {
			return f.file.Errorf(field+".name", "%q appears twice (or is reserved)", p.Name)
		}
		seen[p.Name] = true
		if p.Kind == "" {
			p.Kind = KindSet
		}
		if len(p.Values) > 0 && len(p.Case) > 0 {
			return f.file.Errorf(field+".case", "give values or cases, not both")
		}
		if len(p.Values) == 0 && len(p.Case) == 0 {
			return f.file.Errorf(field+".values", "no values")
		}
		for j, v := range p.Values {
			if _, err := label(v); err != nil {
				return f.file.Errorf(fmt.Sprintf("%s.values[%d]", field, j), "%v", err)
			}
		}
		vals := map[string]bool{}
		for j := range p.Case {
			c := &p.Case[j]
			cf := fmt.Sprintf("%s.case[%d]", field, j)
			l, err := label(c.Value)
			if err != nil {
				return f.file.Errorf(cf+".value", "%v", err)
			}
			if vals[l] {
				return f.file.Errorf(cf+".value", "%q appears twice", l)
			}
			vals[l] = true
			if c.Topology != "" {
				if _, err := os.Stat(f.rel(c.Topology)); err != nil {
					return f.file.Errorf(cf+".topology", "%v", err)
				}
			}
			if c.Duration != "" {
				if d, err := time.ParseDuration(c.Duration); err != nil || d <= 0 {
					return f.file.Errorf(cf+".duration", "bad duration %q", c.Duration)
				}
			}
			if err := f.checkSet(cf+".set", c.Set); err != nil {
				return err
			}
			if err := checkTemplates(f, cf+".set", c.Set, names); err != nil {
				return err
			}
		}
		if err := f.checkSet(field+".set", p.Set); err != nil {
			return err
		}
		if err := checkTemplates(f, field+".set", p.Set, names); err != nil {
			return err
		}
		switch p.Kind {
		case KindSet:
			if len(p.On) > 0 || p.Fallback != "" || p.Unsupported != "" || p.ESP != "" {
				return f.file.Errorf(field+".kind", "on, fallback, unsupported and esp belong to suite or peer_model parameters")
			}
		case KindPeerModel, KindSuite:
			if len(p.On) == 0 {
				return f.file.Errorf(field+".on", "name the tables to configure, e.g. [\"node[gw-a]\"]")
			}
			for _, t := range p.On {
				if !tableRE.MatchString(t) {
					return f.file.Errorf(field+".on", "%q is not node[NAME] or group[NAME]", t)
				}
			}
			if p.Kind == KindSuite {
				switch p.Unsupported {
				case "":
					p.Unsupported = results.OutcomeNotConfigurable
				case results.OutcomeNotConfigurable, "skip", "error":
				default:
					return f.file.Errorf(field+".unsupported", "want not-configurable, skip or error, got %q", p.Unsupported)
				}
				if p.Fallback != "" {
					if _, err := suite.ParseProposals(wire.ProtocolIKE, p.Fallback); err != nil {
						return f.file.Errorf(field+".fallback", "%v", err)
					}
				}
				for j, v := range p.values() {
					if _, err := p.proposal(j); err != nil {
						return f.file.Errorf(field, "value %q: %v", v, err)
					}
				}
			} else {
				if p.Fallback != "" || p.Unsupported != "" || p.ESP != "" {
					return f.file.Errorf(field+".kind", "fallback, unsupported and esp belong to suite parameters")
				}
				if err := f.expandModels(p, field); err != nil {
					return err
				}
			}
		default:
			return f.file.Errorf(field+".kind", "want set, peer_model or suite, got %q", p.Kind)
		}
	}
	return nil
}

// expandModels replaces the value "*" of a peer_model parameter by every
// profile of the topology's models directory, in name order.
func (f *File) expandModels(p *Param, field string) error {
	all := false
	for _, v := range p.values() {
		if v == "*" {
			all = true
		}
	}
	if !all {
		return nil
	}
	if len(p.Values) != 1 {
		return f.file.Errorf(field+".values", "\"*\" must be the only value")
	}
	peers, err := lab.LoadPeers(lab.Spec{Topology: f.rel(f.Topology)})
	if err != nil {
		return f.file.Errorf(field+".values", "%v", err)
	}
	p.Values = nil
	names := make([]string, 0, len(peers))
	for n := range peers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p.Values = append(p.Values, n)
	}
	return nil
}

var tableRE = regexp.MustCompile(`^(node|group)\[[^\]]+\]$`)

func (f *File) checkSet(field string, m map[string]any) error {
	for k := range m {
		if k == "topology" || k == "duration" || k == "seed" {
			return f.file.Errorf(field, "%q is not an override here: use the experiment's or the case's %s", k, k)
		}
	}
	return nil
}

func checkTemplates(f *File, field string, m map[string]any, names map[string]bool) error {
	var bad error
	walkStrings(m, func(s string) {
		for _, g := range tmplRE.FindAllStringSubmatch(s, -1) {
			if !names[g[1]] && bad == nil {
				bad = f.file.Errorf(field, "template %s names no parameter or var", g[0])
			}
		}
		if strings.Contains(tmplRE.ReplaceAllString(s, ""), "${") && bad == nil {
			bad = f.file.Errorf(field, "bad template in %q (want ${name}, ${name/N} or ${name*N})", s)
		}
	})
	return bad
}

func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case []map[string]any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	}
}

func (f *File) checkBench() error {
	b := f.Bench
	if len(b.Ciphers) == 0 {
		return f.file.Errorf("bench.ciphers", "no ciphers")
	}
	if len(b.Sizes) == 0 {
		return f.file.Errorf("bench.sizes", "no sizes")
	}
	for _, n := range b.Sizes {
		if n < 64 || n > 65000 {
			return f.file.Errorf("bench.sizes", "size %d outside 64..65000", n)
		}
	}
	if len(b.Directions) == 0 {
		b.Directions = []string{"seal", "open"}
	}
	for _, d := range b.Directions {
		if d != "seal" && d != "open" {
			return f.file.Errorf("bench.directions", "want seal or open, got %q", d)
		}
	}
	b.dur = 100 * time.Millisecond
	if b.Time != "" {
		d, err := time.ParseDuration(b.Time)
		if err != nil || d <= 0 {
			return f.file.Errorf("bench.time", "bad duration %q", b.Time)
		}
		b.dur = d
	}
	return nil
}

// BenchTime is the measuring time of each benchmark.
func (b *Bench) BenchTime() time.Duration { return b.dur }

// label turns a TOML value into the string a run records.
func label(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if x == "" || strings.ContainsAny(x, ",=") {
			return "", fmt.Errorf("value %q: empty, or holds ',' or '='", x)
		}
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", fmt.Errorf("missing value")
	}
	return "", fmt.Errorf("value %v: want a string, number or boolean", v)
}

func (p *Param) values() []string {
	var out []string
	if len(p.Case) > 0 {
		for _, c := range p.Case {
			l, _ := label(c.Value)
			out = append(out, l)
		}
		return out
	}
	for _, v := range p.Values {
		l, _ := label(v)
		out = append(out, l)
	}
	return out
}

func (p *Param) raw(i int) any {
	if len(p.Case) > 0 {
		return p.Case[i].Value
	}
	return p.Values[i]
}

// proposal is the IKE proposal of a suite parameter's i-th value.
func (p *Param) proposal(i int) (string, error) {
	pr := ""
	if len(p.Case) > 0 {
		pr = p.Case[i].Proposal
	}
	v := p.values()[i]
	if pr == "" {
		pr = Suites[v]
	}
	if pr == "" {
		pr = v
	}
	if _, err := suite.ParseProposals(wire.ProtocolIKE, pr); err != nil {
		return "", fmt.Errorf("not a known suite label and not a proposal (%v)", err)
	}
	return pr, nil
}

// Point is one run of an experiment: a spec for lab.Run, or a record that
// needs no run (a suite a device cannot be configured with), or a
// benchmark.
type Point struct {
	Spec lab.Spec
	// Record, when set, is the run's result without running.
	Record *results.Run
	// Bench, when set, is the benchmark to run.
	Bench *BenchPoint
	// Realtime, when set, makes the run a real-time data-plane
	// measurement (lab.RunRealtime).
	Realtime *lab.Realtime
}

// Name is the run name of the point.
func (p *Point) Name() string {
	switch {
	case p.Record != nil:
		return p.Record.Name
	case p.Bench != nil:
		return p.Bench.Name
	}
	return p.Spec.Name
}

// BenchPoint is one ESP benchmark: a cipher and a packet size.
type BenchPoint struct {
	Name       string
	Cipher     string
	Size       int
	Directions []string
	Time       time.Duration
}

// Expansion is the list of points of an experiment, in a fixed order, with
// what expansion left out.
type Expansion struct {
	Points []Point
	// Skipped counts grid points left out (roles the peer model does not
	// take, or unsupported = "skip").
	Skipped int
}

// Expand returns every point of the experiment.
func (f *File) Expand() (*Expansion, error) {
	if f.Bench != nil {
		return f.expandBench(), nil
	}
	ex := &Expansion{}
	e := &expander{f: f, tops: map[string]*topology.Topology{}, peers: map[string]map[string]*models.Peer{}}
	idx := make([]int, len(f.Param))
	for {
		for rep := 1; rep <= f.Reps; rep++ {
			pt, skip, err := e.point(idx, rep)
			if err != nil {
				return nil, err
			}
			if skip {
				ex.Skipped++
				continue
			}
			ex.Points = append(ex.Points, *pt)
		}
		// Next grid index, the last parameter fastest.
		k := len(idx) - 1
		for ; k >= 0; k-- {
			idx[k]++
			if idx[k] < len(f.Param[k].values()) {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			break
		}
	}
	return ex, nil
}

func (f *File) expandBench() *Expansion {
	ex := &Expansion{}
	for _, c := range f.Bench.Ciphers {
		for _, n := range f.Bench.Sizes {
			ex.Points = append(ex.Points, Point{Bench: &BenchPoint{
				Name:   fmt.Sprintf("cipher=%s,size=%d", c, n),
				Cipher: c, Size: n, Directions: f.Bench.Directions, Time: f.Bench.dur,
			}})
		}
	}
	return ex
}

type expander struct {
	f     *File
	tops  map[string]*topology.Topology
	peers map[string]map[string]*models.Peer
}

func (e *expander) topology(path string) (*topology.Topology, error) {
	if t, ok := e.tops[path]; ok {
		return t, nil
	}
	t, err := lab.Load(lab.Spec{Topology: path})
	if err != nil {
		return nil, err
	}
	e.tops[path] = t
	return t, nil
}

func (e *expander) peersFor(spec lab.Spec) (map[string]*models.Peer, error) {
	hasModel := false
	for k := range spec.Overrides {
		if strings.HasPrefix(k, "model[") {
			hasModel = true
		}
	}
	if !hasModel {
		if p, ok := e.peers[spec.Topology]; ok {
			return p, nil
		}
	}
	p, err := lab.LoadPeers(spec)
	if err != nil {
		return nil, err
	}
	if !hasModel {
		e.peers[spec.Topology] = p
	}
	return p, nil
}

// DeriveSeed is the seed of repetition rep under the experiment's base
// seed: positive, below 2^63, and the same for every grid point.
func DeriveSeed(base int64, rep int) uint64 {
	s := sim.DeriveSeed(uint64(base), "rep="+strconv.Itoa(rep)) & math.MaxInt64
	if s == 0 {
		s = 1
	}
	return s
}

// point builds the point of grid index idx and repetition rep.
func (e *expander) point(idx []int, rep int) (*Point, bool, error) {
	f := e.f
	topo := f.rel(f.Topology)
	dur := f.dur
	params := map[string]string{}
	vars := map[string]any{}
	var nameParts []string
	for i, p := range f.Param {
		l := p.values()[idx[i]]
		params[p.Name] = l
		vars[p.Name] = p.raw(idx[i])
		nameParts = append(nameParts, p.Name+"="+l)
		if len(p.Case) > 0 {
			c := p.Case[idx[i]]
			if c.Topology != "" {
				topo = f.rel(c.Topology)
			}
			if c.Duration != "" {
				dur, _ = time.ParseDuration(c.Duration)
			}
			for k, v := range c.Vars {
				vars[k] = v
			}
		}
	}
	params["rep"] = strconv.Itoa(rep)
	nameParts = append(nameParts, "rep="+strconv.Itoa(rep))
	ov := lab.Overrides{}
	for k, v := range f.Set {
		ov[k] = v
	}
	for i, p := range f.Param {
		if p.Kind != KindSet {
			continue
		}
		if err := expandSet(ov, p.Set, vars); err != nil {
			return nil, false, fmt.Errorf("%s: param %s: %w", f.path, p.Name, err)
		}
		if len(p.Case) > 0 {
			if err := expandSet(ov, p.Case[idx[i]].Set, vars); err != nil {
				return nil, false, fmt.Errorf("%s: param %s: %w", f.path, p.Name, err)
			}
		}
	}
	spec := lab.Spec{Topology: topo, Name: strings.Join(nameParts, ","), Seed: DeriveSeed(f.Seed, rep),
		Duration: dur, Params: params, Overrides: ov}
	top, err := e.topology(topo)
	if err != nil {
		return nil, false, err
	}
	// Peer models first: suites depend on them.
	for i, p := range f.Param {
		if p.Kind != KindPeerModel {
			continue
		}
		model := p.values()[idx[i]]
		peers, err := e.peersFor(spec)
		if err != nil {
			return nil, false, err
		}
		if model == "*" {
			return nil, false, fmt.Errorf("%s: param %s: \"*\" must be the only value", f.path, p.Name)
		}
		pm := peers[model]
		if pm == nil {
			return nil, false, fmt.Errorf("%s: param %s: no peer model %q", f.path, p.Name, model)
		}
		for _, t := range p.On {
			n, err := firstNode(top, t)
			if err != nil {
				return nil, false, fmt.Errorf("%s: param %s: %w", f.path, p.Name, err)
			}
			if !takesRole(pm, n.Engine.Role) {
				return nil, true, nil
			}
			ov[t+".peer_model"] = model
			for _, k := range []string{".proposals", ".esp_proposals"} {
				if _, ok := ov[t+k]; !ok {
					ov[t+k] = []string{}
				}
			}
		}
		if err := expandSet(ov, p.Set, vars); err != nil {
			return nil, false, err
		}
		if len(p.Case) > 0 {
			if err := expandSet(ov, p.Case[idx[i]].Set, vars); err != nil {
				return nil, false, err
			}
		}
	}
	for i, p := range f.Param {
		if p.Kind != KindSuite {
			continue
		}
		prop, _ := p.proposal(idx[i])
		peers, err := e.peersFor(spec)
		if err != nil {
			return nil, false, err
		}
		for _, t := range p.On {
			n, err := firstNode(top, t)
			if err != nil {
				return nil, false, fmt.Errorf("%s: param %s: %w", f.path, p.Name, err)
			}
			model := n.Engine.PeerModel
			if m, ok := ov[t+".peer_model"].(string); ok {
				model = m
			}
			if model == "" {
				model = lab.DefaultPeerModel
			}
			pm := peers[model]
			if pm == nil {
				return nil, false, fmt.Errorf("%s: param %s: %s: no peer model %q", f.path, p.Name, t, model)
			}
			use := prop
			if why := Expressible(pm, prop); why != nil {
				switch {
				case len(pm.IKE.MLKEM) == 0 && p.Fallback != "" && Expressible(pm, p.Fallback) == nil:
					use = p.Fallback
				case p.Unsupported == "skip":
					return nil, true, nil
				case p.Unsupported == "error":
					return nil, false, fmt.Errorf("%s: %s: %s (%s): %v", f.path, spec.Name, t, model, why)
				default:
					rec, err := e.notConfigurable(spec, top, ov, prop, fmt.Sprintf("%s (%s): %v", model, strings.TrimSuffix(strings.TrimPrefix(t, tableKind(t)+"["), "]"), why))
					if err != nil {
						return nil, false, err
					}
					return &Point{Spec: spec, Record: rec}, false, nil
				}
			}
			ov[t+".proposals"] = []string{use}
			if p.ESP != "" {
				ov[t+".esp_proposals"] = []string{p.ESP}
			}
		}
		if err := expandSet(ov, p.Set, vars); err != nil {
			return nil, false, err
		}
		if len(p.Case) > 0 {
			if err := expandSet(ov, p.Case[idx[i]].Set, vars); err != nil {
				return nil, false, err
			}
		}
	}
	pt := &Point{Spec: spec}
	if f.Realtime != nil {
		rt := f.Realtime.rt
		pt.Realtime = &rt
	}
	return pt, false, nil
}

func tableKind(t string) string {
	k, _, _ := strings.Cut(t, "[")
	return k
}

// firstNode returns the node a table names (a group's first member).
func firstNode(top *topology.Topology, t string) (*topology.Node, error) {
	kind := tableKind(t)
	name := strings.TrimSuffix(strings.TrimPrefix(t, kind+"["), "]")
	if kind == "node" {
		if n := top.Node(name); n != nil {
			return n, nil
		}
		return nil, fmt.Errorf("%s: no node %q in %s", t, name, top.Path)
	}
	for _, n := range top.Nodes {
		if n.Group == name && n.Kind == topology.KindGateway {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%s: no gateway group %q in %s", t, name, top.Path)
}

// takesRole says whether a profile can take a topology role.
func takesRole(p *models.Peer, r topology.Role) bool {
	ini, resp := slices.Contains(p.Roles, "initiator"), slices.Contains(p.Roles, "responder")
	switch r {
	case topology.RoleInitiator:
		return ini
	case topology.RoleResponder:
		return resp
	case topology.RoleBoth:
		return ini && resp
	}
	return true
}

// notConfigurable makes the record of a point that does not run: one
// handshake per connection the topology's initiators would start.
func (e *expander) notConfigurable(spec lab.Spec, top *topology.Topology, ov lab.Overrides, prop, why string) (*results.Run, error) {
	model := func(n *topology.Node) string {
		for _, t := range []string{"node[" + n.Name + "]", "group[" + n.Group + "]"} {
			if m, ok := ov[t+".peer_model"].(string); ok && m != "" {
				return m
			}
		}
		if n.Engine.PeerModel == "" {
			return lab.DefaultPeerModel
		}
		return n.Engine.PeerModel
	}
	run := &results.Run{Name: spec.Name, Topology: spec.Topology, Seed: int64(spec.Seed), Params: spec.Params,
		Handshakes: []results.Handshake{}}
	for _, n := range top.Gateways() {
		if n.Engine.Role != topology.RoleInitiator && n.Engine.Role != topology.RoleBoth {
			continue
		}
		for _, peer := range n.Engine.Peers {
			pn := top.Node(peer)
			run.Handshakes = append(run.Handshakes, results.Handshake{
				Initiator: n.Name, Responder: peer, InitiatorModel: model(n), ResponderModel: model(pn),
				Suite: prop, Placement: lab.PlacementOf(prop), Auth: "psk",
				Outcome: results.OutcomeNotConfigurable, Reason: why,
			})
		}
	}
	return run, nil
}

// Expressible says why a device of peer model p cannot be configured with
// an IKE proposal, or nil if it can (see lab.Expressible).
func Expressible(p *models.Peer, proposal string) error { return lab.Expressible(p, proposal) }

// expandSet adds the overrides of set to ov with the templates filled in.
func expandSet(ov lab.Overrides, set map[string]any, vars map[string]any) error {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := fill(set[k], vars)
		if err != nil {
			return fmt.Errorf("set %s: %w", k, err)
		}
		ov[k] = v
	}
	return nil
}

// fill replaces the ${...} templates in v. A string that is one template
// takes the type of the value (a number stays a number).
func fill(v any, vars map[string]any) (any, error) {
	switch x := v.(type) {
	case string:
		if m := tmplRE.FindStringSubmatchIndex(x); m != nil && m[0] == 0 && m[1] == len(x) {
			return evalTemplate(x, vars)
		}
		var ferr error
		out := tmplRE.ReplaceAllStringFunc(x, func(t string) string {
			r, err := evalTemplate(t, vars)
			if err != nil && ferr == nil {
				ferr = err
			}
			l, _ := label(r)
			return l
		})
		return out, ferr
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := fill(e, vars)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			r, err := fill(e, vars)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []map[string]any:
		out := make([]map[string]any, len(x))
		for i, e := range x {
			r, err := fill(e, vars)
			if err != nil {
				return nil, err
			}
			out[i] = r.(map[string]any)
		}
		return out, nil
	}
	return v, nil
}

// evalTemplate evaluates one ${name}, ${name/N} or ${name*N}: durations
// stay durations ("5.6ms" / 4 = "1.4ms"), numbers numbers.
func evalTemplate(t string, vars map[string]any) (any, error) {
	m := tmplRE.FindStringSubmatch(t)
	v, ok := vars[m[1]]
	if !ok {
		return nil, fmt.Errorf("template %s: no such parameter or var", t)
	}
	if m[2] == "" {
		return v, nil
	}
	k, err := strconv.ParseFloat(m[3], 64)
	if err != nil || k == 0 {
		return nil, fmt.Errorf("template %s: bad factor", t)
	}
	if m[2] == "/" {
		k = 1 / k
	}
	switch x := v.(type) {
	case int64:
		r := float64(x) * k
		if r == math.Trunc(r) {
			return int64(r), nil
		}
		return r, nil
	case float64:
		return x * k, nil
	case string:
		if d, err := time.ParseDuration(x); err == nil {
			return time.Duration(math.Round(float64(d) * k)).String(), nil
		}
		if n, err := strconv.ParseFloat(x, 64); err == nil {
			return n * k, nil
		}
	}
	return nil, fmt.Errorf("template %s: %v is not a number or duration", t, v)
}
