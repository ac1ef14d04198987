package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pqlab/pqlab/interop/driver"
)

func init() {
	register(&command{name: "connect", usage: "[-check] [-v] [-for DURATION] CONFIG.toml",
		short: "run pqlab as an IKEv2/IPsec gateway against a real peer (root: UDP 500/4500, TUN)", run: runConnect})
}

// runConnect loads a connect configuration (see interop/README.md) and runs the real-network
// driver until SIGINT or SIGTERM (or -for), then deletes its IKE SAs and exits.
func runConnect(args []string, stdout io.Writer) error {
	c := commands["connect"]
	fs := newFlags(c, stdout)
	check := fs.Bool("check", false, "only check the configuration and print what would run")
	verbose := fs.Bool("v", false, "log debug details")
	dur := fs.Duration("for", 0, "stop after this long (0: run until SIGINT or SIGTERM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("need one configuration file")
	}
	cfg, err := driver.LoadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	if *check {
		describeConnect(stdout, cfg)
		return nil
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level}))
	d, err := driver.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	ikeAddr, natt := d.Local()
	cfg.Logger.Info("listening", "ike", ikeAddr, "natt", natt, "tun", d.TUNName(), "inner", fmt.Sprint(cfg.Inner))
	start := time.Now()
	err = d.Run(ctx)
	st := d.Stats()
	cfg.Logger.Info("stopped", "after", time.Since(start).Round(time.Millisecond), "esp_in", st.ESPIn, "esp_out", st.ESPOut,
		"in_drops", st.InDrops, "no_sa", st.NoSA, "send_errors", st.SendErrors)
	return err
}

// describeConnect prints the checked configuration.
func describeConnect(w io.Writer, cfg driver.Config) {
	tun := cfg.TUN
	if tun == "" {
		tun = driver.DefaultTUN
	}
	fmt.Fprintf(w, "local %v, TUN %s with %v", cfg.Local, tun, cfg.Inner)
	if cfg.Netns != "" {
		fmt.Fprintf(w, " in network namespace %s", cfg.Netns)
	}
	fmt.Fprintln(w)
	for _, p := range cfg.IKE.Peers {
		auth := "psk"
		if p.Auth.Signer != nil {
			auth = "certificate"
		}
		role := "responder"
		for _, n := range cfg.Initiate {
			if n == p.Name {
				role = "initiator"
			}
		}
		remote := "any"
		if p.Remote.IsValid() {
			remote = p.Remote.String()
		}
		fmt.Fprintf(w, "peer %q (%s): remote %s, id %v -> %v, %s, IKE %v\n", p.Name, role, remote, p.LocalID, p.RemoteID, auth, p.IKEProposals)
		for _, ch := range p.Children {
			fmt.Fprintf(w, "  child %q: %v <-> %v, ESP %v\n", ch.Name, ch.LocalTS, ch.RemoteTS, ch.ESPProposals)
		}
	}
	if len(cfg.IKE.Peers) == 0 {
		fmt.Fprintln(w, "no peers")
	}
}
