package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pqlab/pqlab/sim"
	"github.com/pqlab/pqlab/sim/gateway"
)

func init() {
	register(&command{name: "calibrate", usage: "[--out FILE] [--rounds N] [--min-time D] [--only PREFIX]",
		short: "measure the cost of every crypto operation on this host and write a CPU cost table", run: runCalibrate})
}

func runCalibrate(args []string, stdout io.Writer) error {
	c := commands["calibrate"]
	fs := newFlags(c, stdout)
	out := fs.String("out", filepath.Join("models", "cpu", "host.toml"), "cost table to write")
	rounds := fs.Int("rounds", 5, "measuring rounds per operation (the median is kept)")
	minTime := fs.Duration("min-time", 50*time.Millisecond, "minimum measuring time per round")
	only := fs.String("only", "", "measure only the operations whose names start with this prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *rounds < 1 || *minTime <= 0 {
		return fmt.Errorf("--rounds must be at least 1 and --min-time positive")
	}
	ops, err := calibrationOps(*only)
	if err != nil {
		return err
	}
	name := strings.TrimSuffix(filepath.Base(*out), filepath.Ext(*out))
	fmt.Fprintf(stdout, "measuring %d operations (%d rounds of at least %v each)...\n", len(ops), *rounds, *minTime)
	t, err := sim.Calibrate(name, ops, sim.CalibrateOptions{MinTime: *minTime, Rounds: *rounds})
	if err != nil {
		return err
	}
	t.Source = fmt.Sprintf("pqlab calibrate: sim.BuiltinCalibrationOps and gateway.CalibrationOps, median of %d rounds of %v", *rounds, *minTime)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	fh, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := t.WriteTOML(fh); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d operations)\n", *out, len(t.Ops))
	return nil
}

// calibrationOps lists the simulator's and the gateway's operations, or
// those starting with prefix.
func calibrationOps(prefix string) ([]sim.CalibrationOp, error) {
	gw, err := gateway.CalibrationOps()
	if err != nil {
		return nil, err
	}
	var out []sim.CalibrationOp
	for _, op := range append(sim.BuiltinCalibrationOps(), gw...) {
		if strings.HasPrefix(op.Name, prefix) {
			out = append(out, op)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no operation starts with %q", prefix)
	}
	return out, nil
}
