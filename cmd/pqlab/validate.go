package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/pqlab/pqlab/cmd/internal/bench"
	"github.com/pqlab/pqlab/cmd/internal/experiment"
	"github.com/pqlab/pqlab/cmd/internal/lab"
	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/sim"
	"github.com/pqlab/pqlab/sim/topology"
)

func init() {
	register(&command{name: "validate", usage: "FILE...",
		short: "check topology and experiment files, peer profiles (models/peers) and CPU cost tables (models/cpu)", run: runValidate})
}

// fileKind is what a TOML file of the lab holds.
type fileKind int

const (
	kindTopology fileKind = iota
	kindPeer
	kindCostTable
	kindCPUClasses
	kindExperiment
)

// classesProbe is a minimal topology whose loading reads a models
// directory's CPU classes (models/cpu/classes.toml).
const classesProbe = `[[node]]
name = "a"
kind = "router"

[[node]]
name = "b"
kind = "router"

[[link]]
a = "a"
b = "b"
`

// kindOf tells a file's kind from its place (models/peers, models/cpu)
// or, elsewhere, its top-level keys.
func kindOf(path string) (fileKind, error) {
	dir := filepath.Base(filepath.Dir(path))
	parent := filepath.Base(filepath.Dir(filepath.Dir(path)))
	switch {
	case dir == "peers" && parent == "models":
		return kindPeer, nil
	case dir == "cpu" && parent == "models" && filepath.Base(path) == "classes.toml":
		return kindCPUClasses, nil
	case dir == "cpu" && parent == "models":
		return kindCostTable, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var top map[string]any
	if _, err := toml.Decode(string(data), &top); err != nil {
		return kindTopology, nil // the topology loader reports the syntax error with its line
	}
	switch {
	case top["roles"] != nil && top["ike"] != nil:
		return kindPeer, nil
	case top["ops"] != nil:
		return kindCostTable, nil
	case top["param"] != nil || top["bench"] != nil || top["reps"] != nil || top["baseline"] != nil:
		return kindExperiment, nil
	}
	return kindTopology, nil
}

func runValidate(args []string, stdout io.Writer) error {
	c := commands["validate"]
	fs := newFlags(c, stdout)
	quiet := fs.Bool("q", false, "print only problems")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("need at least one file")
	}
	bad := 0
	for _, path := range fs.Args() {
		var notes []string
		err := validateFile(path, func(s string) { notes = append(notes, s) })
		if err != nil {
			bad++
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintln(stdout, line)
			}
			continue
		}
		if !*quiet {
			fmt.Fprintf(stdout, "ok %s\n", path)
			for _, n := range notes {
				fmt.Fprintf(stdout, "   note: %s\n", n)
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d files invalid", bad, fs.NArg())
	}
	return nil
}

// validateFile checks one file by its kind. Errors carry file:line:field.
func validateFile(path string, note func(string)) error {
	kind, err := kindOf(path)
	if err != nil {
		return err
	}
	switch kind {
	case kindPeer:
		_, err := models.LoadPeer(path)
		return err
	case kindCostTable:
		_, err := sim.LoadCostTable(path)
		return err
	case kindExperiment:
		return validateExperiment(path, note)
	case kindCPUClasses:
		if _, err := os.Stat(path); err != nil {
			return err
		}
		_, err := topology.Parse("classes-check.toml", []byte(classesProbe),
			topology.LoadOptions{ModelsDir: filepath.Dir(filepath.Dir(path))})
		return err
	}
	seen := map[string]bool{}
	_, err = lab.Check(lab.Spec{Topology: path, Warn: func(s string) {
		if !seen[s] {
			seen[s] = true
			note(s)
		}
	}})
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", path, pe.Err)
	}
	return err
}

// validateExperiment checks an experiment file and every distinct
// configuration of its grid as pqlab sweep would run it (lab.Check: the
// overrides apply, the peer models can run the proposals).
func validateExperiment(path string, note func(string)) error {
	exp, err := experiment.Load(path)
	if err != nil {
		return err
	}
	ex, err := exp.Expand()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	checked, nc := 0, 0
	for _, p := range ex.Points {
		if p.Record != nil {
			nc++
			continue
		}
		if p.Bench != nil {
			if _, err := bench.ESPSuite(p.Bench.Cipher); err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			continue
		}
		key := p.Spec.Topology + "\x00" + strings.TrimSuffix(p.Spec.Name, ",rep="+p.Spec.Params["rep"])
		if seen[key] {
			continue
		}
		seen[key] = true
		checked++
		if _, err := lab.Check(p.Spec); err != nil {
			return fmt.Errorf("%s: run %s: %w", path, p.Spec.Name, err)
		}
	}
	if exp.Bench != nil {
		note(fmt.Sprintf("%d benchmarks", len(ex.Points)))
		return nil
	}
	note(fmt.Sprintf("%d runs (%d configurations checked, %d not configurable, %d grid points left out)", len(ex.Points), checked, nc, ex.Skipped))
	return nil
}
