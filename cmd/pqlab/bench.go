package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pqlab/pqlab/cmd/internal/bench"
	"github.com/pqlab/pqlab/cmd/internal/experiment"
	"github.com/pqlab/pqlab/cmd/internal/lab"
	"github.com/pqlab/pqlab/cmd/internal/results"
	"github.com/pqlab/pqlab/models"
)

func init() {
	register(&command{name: "bench",
		usage: "[--kex] [--handshake] [--esp] [--time D] [--out DIR] [--suites L] [--model M] [--ciphers L] [--sizes L]",
		short: "measure key exchanges, whole handshakes and ESP on this host, each with a same-run baseline",
		run:   runBench})
}

func runBench(args []string, stdout io.Writer) error {
	c := commands["bench"]
	fs := newFlags(c, stdout)
	kex := fs.Bool("kex", false, "key exchange methods (baseline: the standard library's X25519, P-256/384 and ML-KEM)")
	hs := fs.Bool("handshake", false, "whole IKEv2 handshakes in memory (baseline: the sum of their crypto primitives)")
	espFlag := fs.Bool("esp", false, "ESP seal and open (baseline: the raw AEAD or AES-CBC + HMAC over the same octets)")
	d := fs.Duration("time", 200*time.Millisecond, "measuring time per benchmark")
	out := fs.String("out", "", "write results.json (ESP Throughput records), plots and report into this directory")
	suites := fs.String("suites", "x25519,x25519+mlkem768,mlkem768-init,ecp384+mlkem1024", "handshake suites (labels of pqlab sweep's suites or proposals)")
	model := fs.String("model", "strongswan-6", "peer model of both handshake ends (models/peers)")
	ciphers := fs.String("ciphers", "aes128gcm16,aes256gcm16,chacha20poly1305,aes128-sha256", "ESP ciphers")
	sizes := fs.String("sizes", "64,512,1400,8900", "ESP inner packet sizes (octets)")
	only := fs.String("ke", "", "key exchange methods to measure (comma-separated names; default all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *d <= 0 {
		return fmt.Errorf("--time must be positive")
	}
	if !*kex && !*hs && !*espFlag {
		*kex, *hs, *espFlag = true, true, true
	}
	var sz []int
	for _, s := range splitList(*sizes) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 64 || n > 65000 {
			return fmt.Errorf("--sizes: %q is not a size in 64..65000", s)
		}
		sz = append(sz, n)
	}
	for _, ci := range splitList(*ciphers) {
		if _, err := bench.ESPSuite(ci); err != nil {
			return err
		}
	}
	var peer *models.Peer
	var props []string
	if *hs {
		root, err := lab.FindRoot()
		if err != nil {
			return err
		}
		peers, err := models.LoadPeers(filepath.Join(root, "models", "peers"))
		if err != nil {
			return err
		}
		if peer = peers[*model]; peer == nil {
			return fmt.Errorf("--model: no peer model %q", *model)
		}
		for _, s := range splitList(*suites) {
			p := s
			if q, ok := experiment.Suites[s]; ok {
				p = q
			}
			if err := lab.Expressible(peer, p); err != nil {
				return fmt.Errorf("--suites: %s on %s: %v", s, *model, err)
			}
			props = append(props, p)
		}
	}
	fmt.Fprintf(stdout, "pqlab bench: %v per measurement on this host (figures vary with load)\n", *d)
	if *kex {
		var filter func(string) bool
		if *only != "" {
			want := map[string]bool{}
			for _, s := range splitList(*only) {
				want[s] = true
			}
			filter = func(n string) bool { return want[n] }
		}
		rs, err := bench.KeyExchanges(*d, filter)
		if err != nil {
			return err
		}
		printOps(stdout, "key exchange methods", rs)
	}
	if *hs {
		var rs []bench.Result
		for _, p := range props {
			r, err := bench.Handshake(peer, p, *d)
			if err != nil {
				return err
			}
			rs = append(rs, r)
		}
		printOps(stdout, "handshakes ("+*model+" both ends, PSK, first Child SA)", rs)
	}
	if !*espFlag {
		return nil
	}
	f := &results.File{Schema: results.Schema}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(stdout, "\nESP tunnel mode, one core (inner-packet bytes; ESP and the raw cipher alternate in batches, median of 5 rounds):")
	fmt.Fprintln(tw, "cipher\tsize\tdirection\tESP Gbit/s\traw Gbit/s\tESP/raw\tESP packets/s\t")
	for _, ci := range splitList(*ciphers) {
		for _, n := range sz {
			run := results.Run{Name: fmt.Sprintf("cipher=%s,size=%d", ci, n), Topology: "bench",
				Params: map[string]string{"cipher": ci, "size": strconv.Itoa(n)}, Handshakes: []results.Handshake{}}
			for _, dir := range []string{"seal", "open"} {
				r, err := bench.ESP(ci, n, dir, *d)
				if err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\t%.2f\t%.2f\t%.0f\t\n", ci, n, dir, r.Gbps(), r.BaselineGbps(), r.Gbps()/r.BaselineGbps(), r.OpsPerSec())
				run.Throughput = append(run.Throughput, results.Throughput{Cipher: ci, Direction: dir, PacketSize: n,
					Gbps: r.Gbps(), BaselineGbps: r.BaselineGbps()})
			}
			f.Runs = append(f.Runs, run)
		}
	}
	tw.Flush()
	if *out == "" {
		return nil
	}
	o, err := writeOutputs(*out, "pqlab bench: ESP throughput", f)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "results: %s\nplots:   %s (%d figures)\nreport:  %s\n", o.results, o.plots, o.figures, o.report)
	return nil
}

// printOps prints operations per second with the baseline.
func printOps(w io.Writer, title string, rs []bench.Result) {
	fmt.Fprintf(w, "\n%s:\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "benchmark\tµs/op\tops/s\tbaseline ops/s\tspeed vs baseline\tbaseline\t")
	for _, r := range rs {
		base, ratio := "–", "–"
		if r.Baseline > 0 {
			base = fmt.Sprintf("%.0f", r.BaselineOpsPerSec())
			ratio = fmt.Sprintf("%.2fx", float64(r.Baseline)/float64(r.PerOp))
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%s\t%s\t%s\t\n", r.Name, float64(r.PerOp)/1e3, r.OpsPerSec(), base, ratio, r.BaselineName)
	}
	tw.Flush()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
