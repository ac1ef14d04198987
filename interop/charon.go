package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultCharonBinary is where Debian installs charon (strongswan-charon). There is no
// charon-systemd in that package and no init system in CI, so tests run this binary directly.
const DefaultCharonBinary = "/usr/lib/ipsec/charon"

// DefaultPlugins is the explicit plugin list (load_modular = no) of the test charons, in load
// order. kdf is required from 5.9.8 on (prf+ moved there: "KDF_PRF ... not supported" otherwise);
// kernel-libipsec (userspace ESP on a TUN device, ESP only in UDP) must come before kernel-netlink,
// which still provides addresses and routes. No updown (its script calls iptables), no revocation
// (no network fetches).
var DefaultPlugins = []string{
	"random", "nonce", "openssl", "pem", "pkcs1", "pkcs8", "x509", "pubkey", "constraints",
	"curve25519", "aes", "gcm", "chapoly", "sha1", "sha2", "hmac", "kdf",
	"kernel-libipsec", "kernel-netlink", "socket-default", "vici",
}

// swanctlSubdirs are the credential directories swanctl --load-all reads; creating them keeps its
// output free of "opening directory failed" noise.
var swanctlSubdirs = []string{
	"x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey",
	"private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12",
}

// Timeouts of a charon's life cycle.
const (
	charonStartTimeout = 15 * time.Second
	charonStopTimeout  = 5 * time.Second
	viciPoll           = 25 * time.Millisecond
	// maxUnixPath is the longest UNIX socket path Linux accepts (sun_path minus the NUL).
	maxUnixPath = 107
)

// CharonConfig describes one charon instance.
type CharonConfig struct {
	// Netns is the network namespace charon runs in.
	Netns *Netns
	// Dir is the instance's directory: strongswan.conf, swanctl/, run/ (bind-mounted on /run in
	// charon's private mount namespace: charon.pid lives there), charon.vici, charon.log and
	// charon.out. It must be short enough for the vici socket path (107 bytes).
	Dir string
	// Binary defaults to DefaultCharonBinary; point it at a strongSwan 6 build to test ML-KEM.
	Binary string
	// Plugins defaults to DefaultPlugins.
	Plugins []string
	// Settings are extra keys of the charon section of strongswan.conf, such as
	// "fragment_size": "576" or "retransmit_tries": "2". They override the test defaults
	// (retransmit_timeout 1 s, retransmit_tries 3).
	Settings map[string]string
	// Swanctl is loaded with swanctl --load-all once charon answers on vici.
	Swanctl SwanctlConfig
	// LogLevels override the file log's levels per subsystem (default 2 for ike, knl, cfg, net,
	// enc, esp and chd); "ike": "4" makes charon log its IKE SA keys (Sk_ei, Sk_ai, ...).
	LogLevels map[string]string
}

// Charon is a running charon in its own network and mount namespaces.
type Charon struct {
	cfg     CharonConfig
	cmd     *exec.Cmd
	outFile *os.File
	done    chan struct{}
	waitErr error
}

// ViciPath returns the charon's vici socket path.
func (c *Charon) ViciPath() string { return filepath.Join(c.cfg.Dir, "charon.vici") }

// LogPath returns the charon's log file (ike, knl, cfg, net, enc at level 2).
func (c *Charon) LogPath() string { return filepath.Join(c.cfg.Dir, "charon.log") }

// PID returns the charon process ID.
func (c *Charon) PID() int { return c.cmd.Process.Pid }

// StartCharon writes the configuration, starts charon inside cfg.Netns with a private /run, waits
// for its vici socket and loads the swanctl configuration. If anything fails, charon is stopped
// and the error carries the end of its log.
func StartCharon(ctx context.Context, cfg CharonConfig) (*Charon, error) {
	if cfg.Netns == nil || cfg.Dir == "" {
		return nil, errors.New("interop: CharonConfig needs Netns and Dir")
	}
	if cfg.Binary == "" {
		cfg.Binary = DefaultCharonBinary
	}
	if len(cfg.Plugins) == 0 {
		cfg.Plugins = DefaultPlugins
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, charonStartTimeout)
		defer cancel()
	}
	if profiles, err := os.ReadFile(apparmorProfiles); err == nil { // absent without AppArmor
		if err := apparmorConfines(profiles, cfg.Binary); err != nil {
			return nil, err
		}
	}
	c := &Charon{cfg: cfg, done: make(chan struct{})}
	if len(c.ViciPath()) > maxUnixPath {
		return nil, fmt.Errorf("interop: vici socket path %q longer than %d bytes", c.ViciPath(), maxUnixPath)
	}
	if err := c.writeFiles(); err != nil {
		return nil, err
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	if err := c.waitVici(ctx); err != nil {
		return nil, errors.Join(err, c.Stop(), c.logErr())
	}
	if err := c.loadAll(ctx); err != nil {
		return nil, errors.Join(err, c.Stop(), c.logErr())
	}
	return c, nil
}

// apparmorProfiles lists the loaded AppArmor profiles and their modes.
const apparmorProfiles = "/sys/kernel/security/apparmor/profiles"

// apparmorConfines returns an error when the loaded profiles (the content of apparmorProfiles)
// include an enforcing one for binary: Debian's
// profile for /usr/lib/ipsec/charon only allows /etc/strongswan.conf, /etc/strongswan.d and
// /run/charon.*, so a test charon could read neither its configuration nor write its log and vici
// socket (the kernel here has no AppArmor; Ubuntu hosts do).
func apparmorConfines(profiles []byte, binary string) error {
	for _, line := range strings.Split(string(profiles), "\n") {
		if strings.HasPrefix(line, binary+" ") && strings.Contains(line, "(enforce)") {
			return fmt.Errorf("interop: AppArmor profile %q is enforcing and blocks the test charon's files; "+
				"run 'aa-complain %s' (apparmor-utils) or 'apparmor_parser -R /etc/apparmor.d/usr.lib.ipsec.charon' "+
				"and the same for usr.sbin.swanctl", line, binary)
		}
	}
	return nil
}

func (c *Charon) writeFiles() error {
	dir := c.cfg.Dir
	for _, d := range append([]string{"run"}, prefixAll("swanctl/", swanctlSubdirs)...) {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return fmt.Errorf("interop: %w", err)
		}
	}
	conf, err := c.strongswanConf()
	if err != nil {
		return err
	}
	swan, err := c.cfg.Swanctl.Render()
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"strongswan.conf":      []byte(conf),
		"swanctl/swanctl.conf": []byte(swan),
	}
	for name, b := range c.cfg.Swanctl.Files {
		files[filepath.Join("swanctl", name)] = b
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("interop: %w", err)
		}
	}
	return nil
}

func prefixAll(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// strongswanConf renders strongswan.conf. It includes nothing from /etc, so the system's
// configuration cannot change the tests.
func (c *Charon) strongswanConf() (string, error) {
	settings := map[string]string{
		"retransmit_timeout": "1",
		"retransmit_tries":   "3",
	}
	for k, v := range c.cfg.Settings {
		settings[k] = v
	}
	w := &confWriter{}
	w.open("charon")
	w.kv("load_modular", "no")
	w.kv("load", strings.Join(c.cfg.Plugins, " "))
	w.kv("install_routes", "yes")
	w.kv("install_virtual_ip", "no")
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.kv(k, settings[k])
	}
	w.open("plugins")
	w.open("vici")
	w.kv("socket", "unix://"+c.ViciPath())
	w.close()
	w.close()
	w.open("filelog")
	w.open("test")
	w.kv("path", c.LogPath())
	w.kv("time_format", "%H:%M:%S")
	w.kv("flush_line", "yes")
	w.kv("default", "1")
	levels := map[string]string{}
	for _, g := range []string{"ike", "knl", "cfg", "net", "enc", "esp", "chd"} {
		levels[g] = "2"
	}
	for g, l := range c.cfg.LogLevels {
		levels[g] = l
	}
	groups := make([]string, 0, len(levels))
	for g := range levels {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		w.kv(g, levels[g])
	}
	w.close()
	w.close()
	w.open("syslog")
	w.open("daemon")
	w.kv("default", "-1")
	w.close()
	w.close()
	w.close()
	return w.String()
}

// start runs charon as "ip netns exec NS sh -c 'mount --bind DIR/run /run && exec charon'":
// ip netns exec gives the process a new mount namespace whose mounts do not propagate back, the
// bind mount gives it a private /run (charon.pid is fixed at /var/run/charon.pid), and exec keeps
// one process ID from ip to charon so that signals and Wait reach charon itself.
func (c *Charon) start() error {
	out, err := os.OpenFile(filepath.Join(c.cfg.Dir, "charon.out"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	c.outFile = out
	cmd := exec.Command("ip", "netns", "exec", c.cfg.Netns.Name,
		"sh", "-c", `mount --bind "$1" /run && exec "$2"`, "sh", filepath.Join(c.cfg.Dir, "run"), c.cfg.Binary)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(c.cfg.Dir, "strongswan.conf"))
	cmd.Stdout, cmd.Stderr = out, out
	// If the test process dies, charon dies with it rather than outliving its namespace.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("interop: start charon: %w", err)
	}
	c.cmd = cmd
	go func() {
		c.waitErr = cmd.Wait()
		out.Close()
		close(c.done)
	}()
	return nil
}

func (c *Charon) waitVici(ctx context.Context) error {
	t := time.NewTicker(viciPoll)
	defer t.Stop()
	for {
		if v, err := DialVici(ctx, c.ViciPath()); err == nil {
			_, err = v.Call(ctx, "version", nil)
			v.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-c.done:
			return fmt.Errorf("interop: charon exited during start-up: %v", c.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("interop: charon vici socket not ready: %w", ctx.Err())
		case <-t.C:
		}
	}
}

var loadedConns = regexp.MustCompile(`successfully loaded (\d+) connections, 0 unloaded`)

// loadAll runs swanctl --load-all against this charon and checks that every connection loaded.
func (c *Charon) loadAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "swanctl", "--load-all", "--noprompt",
		"--file", filepath.Join(c.cfg.Dir, "swanctl", "swanctl.conf"),
		"--uri", "unix://"+c.ViciPath())
	// swanctl takes its credential directory from SWANCTL_DIR and reads strongswan.conf, but not the
	// vici socket from it: --uri is needed.
	cmd.Env = append(os.Environ(),
		"SWANCTL_DIR="+filepath.Join(c.cfg.Dir, "swanctl"),
		"STRONGSWAN_CONF="+filepath.Join(c.cfg.Dir, "strongswan.conf"))
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("interop: swanctl --load-all: %v: %s", err, bytes.TrimSpace(out))
	}
	m := loadedConns.FindSubmatch(out)
	if want := len(c.cfg.Swanctl.Conns); want > 0 && (m == nil || string(m[1]) != strconv.Itoa(want)) {
		return fmt.Errorf("interop: swanctl --load-all did not load %d connections: %s", want, bytes.TrimSpace(out))
	}
	return nil
}

// Stop terminates charon (SIGTERM, then SIGKILL after a grace period) and waits for it. Its
// private mount namespace and /run disappear with it. Safe to call more than once.
func (c *Charon) Stop() error {
	if c.cmd == nil {
		return nil
	}
	select {
	case <-c.done:
		return nil
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(charonStopTimeout):
	}
	c.cmd.Process.Kill()
	select {
	case <-c.done:
		return errors.New("interop: charon ignored SIGTERM and was killed")
	case <-time.After(charonStopTimeout):
		return fmt.Errorf("interop: charon %d did not exit", c.cmd.Process.Pid)
	}
}

// Exited reports whether the charon process has ended.
func (c *Charon) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// LogTail returns the last n lines of the charon log and of its standard output.
func (c *Charon) LogTail(n int) string {
	var b strings.Builder
	for _, p := range []string{c.LogPath(), filepath.Join(c.cfg.Dir, "charon.out")} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s\n", p, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

func (c *Charon) logErr() error { return errors.New(c.LogTail(30)) }

// vici opens a vici connection for one call.
func (c *Charon) vici(ctx context.Context) (*Vici, error) { return DialVici(ctx, c.ViciPath()) }

// Version returns charon's "daemon version (sysname release machine)".
func (c *Charon) Version(ctx context.Context) (string, error) {
	v, err := c.vici(ctx)
	if err != nil {
		return "", err
	}
	defer v.Close()
	r, err := v.Call(ctx, "version", nil)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s (%s %s %s)", r.Str("daemon"), r.Str("version"), r.Str("sysname"), r.Str("release"), r.Str("machine")), nil
}

// Initiate starts the CHILD_SA child of connection ike (either may be empty, not both) and waits
// until it is established or fails; the error carries charon's control log.
func (c *Charon) Initiate(ctx context.Context, ike, child string) error {
	req := NewViciMessage()
	if ike != "" {
		req.Set("ike", ike)
	}
	if child != "" {
		req.Set("child", child)
	}
	req.Set("timeout", viciTimeout(ctx))
	return c.control(ctx, "initiate", req)
}

// Terminate deletes IKE SA ike (a connection name) and its CHILD_SAs and waits for the exchange.
func (c *Charon) Terminate(ctx context.Context, ike string) error {
	req := NewViciMessage().Set("ike", ike).Set("timeout", viciTimeout(ctx))
	return c.control(ctx, "terminate", req)
}

// TerminateChild deletes the CHILD_SAs named child and waits for the exchange.
func (c *Charon) TerminateChild(ctx context.Context, child string) error {
	req := NewViciMessage().Set("child", child).Set("timeout", viciTimeout(ctx))
	return c.control(ctx, "terminate", req)
}

// Rekey asks charon to rekey the IKE SA ike or the CHILD_SA child (one of them empty). charon
// starts the exchange and returns at once; wait for the result with WaitSAs.
func (c *Charon) Rekey(ctx context.Context, ike, child string) error {
	req := NewViciMessage()
	if ike != "" {
		req.Set("ike", ike)
	}
	if child != "" {
		req.Set("child", child)
	}
	v, err := c.vici(ctx)
	if err != nil {
		return err
	}
	defer v.Close()
	r, err := v.Call(ctx, "rekey", req)
	if err != nil {
		return err
	}
	return viciOK("rekey", r)
}

func (c *Charon) control(ctx context.Context, cmd string, req *ViciMessage) error {
	v, err := c.vici(ctx)
	if err != nil {
		return err
	}
	defer v.Close()
	var log []string
	r, err := v.Stream(ctx, cmd, "control-log", req, func(m *ViciMessage) {
		log = append(log, m.Str("msg"))
	})
	if err == nil {
		err = viciOK(cmd, r)
	}
	if err != nil {
		return fmt.Errorf("%w\ncharon control log:\n  %s", err, strings.Join(log, "\n  "))
	}
	return nil
}

// viciTimeout is the remaining time of ctx in milliseconds, the unit of vici's "timeout" key.
func viciTimeout(ctx context.Context) string {
	d, ok := ctx.Deadline()
	if !ok {
		return strconv.Itoa(int(cmdTimeout / time.Millisecond))
	}
	ms := time.Until(d).Milliseconds() - 100
	if ms < 1 {
		ms = 1
	}
	return strconv.FormatInt(ms, 10)
}
