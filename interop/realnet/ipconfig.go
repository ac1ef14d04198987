package realnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ipTimeout bounds one ip command.
const ipTimeout = 10 * time.Second

// IPConfig configures addresses and routes with iproute2's ip command, in the namespace called
// Netns ("ip -n NAME") or, when Netns is empty, in the caller's. It is what a route-based tunnel
// needs around a TUN device: the local inner addresses on the device, and a route to each remote
// traffic selector through it with a local inner address as source (as charon's kernel-netlink
// plugin installs for its own TUN device).
type IPConfig struct {
	Netns string
}

// SetupTUN adds addrs to the interface dev, sets its MTU (when mtu > 0) and brings it up.
func (c IPConfig) SetupTUN(ctx context.Context, dev string, addrs []netip.Prefix, mtu int) error {
	for _, a := range addrs {
		if !a.IsValid() {
			return errors.New("realnet: invalid interface address")
		}
		if err := c.ip(ctx, "addr", "add", a.String(), "dev", dev); err != nil {
			return err
		}
	}
	args := []string{"link", "set", "dev", dev}
	if mtu > 0 {
		args = append(args, "mtu", strconv.Itoa(mtu))
	}
	return c.ip(ctx, append(args, "up")...)
}

// AddRoute routes dst through dev, with src as the preferred source address when valid. An
// existing route to dst is replaced.
func (c IPConfig) AddRoute(ctx context.Context, dst netip.Prefix, dev string, src netip.Addr) error {
	if !dst.IsValid() {
		return errors.New("realnet: invalid route destination")
	}
	args := []string{"route", "replace", dst.Masked().String(), "dev", dev}
	if src.IsValid() {
		args = append(args, "src", src.String())
	}
	return c.ip(ctx, args...)
}

// DelRoute removes the route to dst through dev.
func (c IPConfig) DelRoute(ctx context.Context, dst netip.Prefix, dev string) error {
	if !dst.IsValid() {
		return errors.New("realnet: invalid route destination")
	}
	return c.ip(ctx, "route", "del", dst.Masked().String(), "dev", dev)
}

// RouteGet returns the output of "ip route get addr": how the kernel would route to addr.
func (c IPConfig) RouteGet(ctx context.Context, addr netip.Addr) (string, error) {
	return c.output(ctx, "route", "get", addr.String())
}

func (c IPConfig) ip(ctx context.Context, args ...string) error {
	_, err := c.output(ctx, args...)
	return err
}

func (c IPConfig) output(ctx context.Context, args ...string) (string, error) {
	if c.Netns != "" {
		args = append([]string{"-n", c.Netns}, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, ipTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("realnet: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// AddRouteVia routes dst through the gateway via (when valid) on dev, replacing an existing route
// to dst.
func (c IPConfig) AddRouteVia(ctx context.Context, dst netip.Prefix, via netip.Addr, dev string) error {
	if !dst.IsValid() {
		return errors.New("realnet: invalid route destination")
	}
	args := []string{"route", "replace", dst.Masked().String()}
	if via.IsValid() {
		args = append(args, "via", via.String())
	}
	return c.ip(ctx, append(args, "dev", dev)...)
}
