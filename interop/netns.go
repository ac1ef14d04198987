package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pqlab/pqlab/interop/realnet"
)

// NetnsPrefix starts the name of every namespace this package creates; the rest of the name is the
// creating process ID, a sequence number and a role, so that stale namespaces of dead test
// processes can be found and removed (see CleanupStale).
const NetnsPrefix = "pqi-"

// cmdTimeout bounds every short external command (ip, swanctl, sh) this package runs.
const cmdTimeout = 10 * time.Second

var netnsSeq atomic.Uint64

// Netns is a named network namespace managed with iproute2 ("ip netns").
type Netns struct {
	Name string
}

// Path returns the namespace's bind-mount path, for realnet.InNetns.
func (n *Netns) Path() string { return realnet.NetnsPath(n.Name) }

// Available reports why network namespaces cannot be used here, or nil: it needs root and the
// ip command from iproute2.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("interop: needs root (network namespaces, veth, TUN)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("interop: ip (iproute2) not found; run interop/install.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Errorf("interop: ip netns unavailable: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// UniqueNetnsName returns a namespace name not used by any other process or earlier call:
// NetnsPrefix, the process ID, a sequence number and role (letters and digits only).
func UniqueNetnsName(role string) string {
	return fmt.Sprintf("%s%d-%d-%s", NetnsPrefix, os.Getpid(), netnsSeq.Add(1), role)
}

// CreateNetns creates the network namespace name, brings its loopback up and disables IPv6 in it,
// so that captures and TUN devices carry only the test's IPv4 traffic (no router solicitations).
func CreateNetns(ctx context.Context, name string) (*Netns, error) {
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return nil, err
	}
	n := &Netns{Name: name}
	if err := n.setup(ctx); err != nil {
		return nil, errors.Join(err, n.Delete(context.WithoutCancel(ctx)))
	}
	return n, nil
}

func (n *Netns) setup(ctx context.Context) error {
	if _, err := n.IP(ctx, "link", "set", "lo", "up"); err != nil {
		return err
	}
	return realnet.InNetns(n.Path(), func() error {
		for _, f := range []string{"all", "default"} {
			p := "/proc/sys/net/ipv6/conf/" + f + "/disable_ipv6"
			if err := os.WriteFile(p, []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("interop: disable IPv6: %w", err)
			}
		}
		return nil
	})
}

// EnableIPv6 turns IPv6 back on in the namespace (CreateNetns disables it), for the interfaces
// that exist and those created later.
func (n *Netns) EnableIPv6() error {
	return realnet.InNetns(n.Path(), func() error {
		files, err := filepath.Glob("/proc/sys/net/ipv6/conf/*/disable_ipv6")
		if err != nil {
			return err
		}
		for _, p := range files {
			if err := os.WriteFile(p, []byte("0"), 0); err != nil {
				return fmt.Errorf("interop: enable IPv6: %w", err)
			}
		}
		return nil
	})
}

// IP runs "ip -n NAME args..." and returns its standard output.
func (n *Netns) IP(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"-n", n.Name}, args...)...)
}

// Exec runs a command inside the namespace ("ip netns exec NAME argv...") and returns its
// standard output.
func (n *Netns) Exec(ctx context.Context, argv ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", n.Name}, argv...)...)
}

// AddAddr adds prefix to device dev and brings dev up.
func (n *Netns) AddAddr(ctx context.Context, dev string, prefix netip.Prefix) error {
	if _, err := n.IP(ctx, "addr", "add", prefix.String(), "dev", dev); err != nil {
		return err
	}
	_, err := n.IP(ctx, "link", "set", dev, "up")
	return err
}

// PIDs returns the processes that live in the namespace.
func (n *Netns) PIDs(ctx context.Context) ([]int, error) {
	out, err := run(ctx, "ip", "netns", "pids", n.Name)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Delete kills what still runs in the namespace (only this package's children live in its
// uniquely named namespaces) and removes it; the veth ends inside disappear with it.
func (n *Netns) Delete(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	if pids, err := n.PIDs(ctx); err == nil {
		for _, p := range pids {
			if p != os.Getpid() { // never this process (see realnet.InNetns)
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}
	_, err := run(ctx, "ip", "netns", "del", n.Name)
	return err
}

// CleanupStale removes namespaces that this package created in processes that no longer exist
// (a test binary killed by a timeout cannot run its cleanups). It never touches namespaces of
// live processes nor any without NetnsPrefix.
func CleanupStale(ctx context.Context) error { return cleanupStale(ctx, NetnsPrefix) }

func cleanupStale(ctx context.Context, prefix string) error {
	ents, err := os.ReadDir(realnet.NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue // alive (or not ours to judge)
		}
		n := &Netns{Name: name}
		if err := n.Delete(ctx); err != nil && fileExists(n.Path()) {
			errs = append(errs, err) // a concurrent cleanup may have removed it first
		}
	}
	return errors.Join(errs...)
}

// run runs a short command with a bounded time and returns its standard output; the error carries
// its standard error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("interop: %s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
