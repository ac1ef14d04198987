// Command pqlab runs pqlab's experiments and turns their results into plots
// and reports. Run "pqlab help" for the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// command is one pqlab sub-command.
type command struct {
	name  string
	usage string // argument synopsis
	short string // one line for the command list
	run   func(args []string, stdout io.Writer) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// errUsage marks errors after which the command's usage is printed.
var errUsage = errors.New("usage")

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// stderr is where progress bars go (the process's standard error, or what
// runMain was given).
var stderr io.Writer = os.Stderr

func runMain(args []string, stdout, errw io.Writer) int {
	stderr = errw
	if len(args) == 0 {
		printHelp(errw)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c := commands[args[1]]; c != nil {
				_ = c.run([]string{"-h"}, stdout)
				return 0
			}
		}
		printHelp(stdout)
		return 0
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, "pqlab", version)
		return 0
	}
	c := commands[args[0]]
	if c == nil {
		fmt.Fprintf(errw, "pqlab: unknown command %q (run 'pqlab help')\n", args[0])
		return 2
	}
	if err := c.run(args[1:], stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(errw, "pqlab %s: %v\n", c.name, err)
		return 1
	}
	return 0
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "pqlab %s: a simulation and performance lab for post-quantum IPsec\n\nUsage: pqlab COMMAND [flags] [args]\n\nCommands:\n", version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].short)
	}
	fmt.Fprintln(w, "\nRun 'pqlab help COMMAND' or 'pqlab COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set for c that prints c's usage to stdout on -h.
func newFlags(c *command, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: pqlab %s %s\n\n%s\n", c.name, c.usage, c.short)
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(stdout)
		if b.Len() > 0 {
			fmt.Fprintf(stdout, "\nFlags:\n%s", b.String())
		}
	}
	return fs
}
