package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Capture timeouts. They are generous because the CI machine may be shared and loaded.
const (
	captureStartTimeout = 30 * time.Second
	captureStopTimeout  = 10 * time.Second
	// captureStartFallback is how long StartCapture waits after "Capturing on" when dumpcap does
	// not announce its file.
	captureStartFallback = 2 * time.Second
	// captureDrain is how long Stop lets dumpcap read before signalling it. libpcap on Linux
	// hands packets over in TPACKET_V3 blocks retired by a timeout (dumpcap asks for 250 ms) and a
	// block not yet retired when the capture stops is lost: without the wait, the last packets
	// of a test (rekeys, deletes) were missing from the file.
	captureDrain   = 600 * time.Millisecond
	analyzeTimeout = 60 * time.Second
)

// Capture is a running dumpcap (Wireshark's capture engine, which tshark itself drives) writing one
// interface of a namespace to a pcapng file. dumpcap is used directly because it starts in
// milliseconds, where tshark first loads every dissector: on a loaded 2-core machine that took
// over 10 s.
type Capture struct {
	Path string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	mu   sync.Mutex
	errb bytes.Buffer // dumpcap's standard error
}

func (c *Capture) stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errb.String()
}

// StartCapture starts dumpcap on interface iface inside ns, writing to path, and returns once
// dumpcap is capturing, so no packet sent afterwards is missed.
func StartCapture(ctx context.Context, ns *Netns, iface, path string) (*Capture, error) {
	c := &Capture{Path: path, done: make(chan struct{})}
	c.cmd = exec.Command("ip", "netns", "exec", ns.Name, "dumpcap", "-q", "-i", iface, "-w", path)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	pr, pw := io.Pipe()
	c.cmd.Stderr = pw
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("interop: start dumpcap: %w", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		pw.Close()
		close(c.done)
	}()
	// dumpcap prints "Capturing on 'IFACE'" before the capture is live: packets sent right after
	// it were missing. "File: PATH" follows once it writes the file and packets are recorded.
	started, capturing := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		var sawStarted, sawCapturing bool
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.errb.WriteString(line + "\n")
			c.mu.Unlock()
			if !sawCapturing && strings.Contains(line, "Capturing on") {
				sawCapturing = true
				close(capturing)
			}
			if !sawStarted && strings.HasPrefix(line, "File:") {
				sawStarted = true
				close(started)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	t := time.NewTimer(captureStartTimeout)
	defer t.Stop()
	var fallback <-chan time.Time
	for {
		select {
		case <-started:
			return c, nil
		case <-capturing:
			capturing = nil
			fallback = time.After(captureStartFallback)
		case <-fallback:
			return c, nil
		case <-c.done:
			return nil, fmt.Errorf("interop: dumpcap exited: %v: %s", c.err, c.stderr())
		case <-ctx.Done():
			c.Stop()
			return nil, fmt.Errorf("interop: dumpcap start: %w", ctx.Err())
		case <-t.C:
			c.Stop()
			return nil, fmt.Errorf("interop: dumpcap did not start capturing: %s", c.stderr())
		}
	}
}

// Stop ends the capture and waits for it: it lets dumpcap drain the kernel's packet buffer
// (captureDrain), then sends SIGINT, on which dumpcap completes the file. Safe to call twice.
func (c *Capture) Stop() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	time.Sleep(captureDrain)
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
		return nil
	case <-time.After(captureStopTimeout):
		c.cmd.Process.Kill()
		<-c.done
		return errors.New("interop: dumpcap ignored SIGINT and was killed")
	}
}

// Frame is one frame of a capture as tshark dissects it.
type Frame struct {
	Number    int
	Protocols string // frame.protocols, e.g. "eth:ethertype:ip:udp:isakmp"
	SrcPort   int
	DstPort   int
	// Src and Dst are the outer IP addresses (the first IP header).
	Src, Dst string
	// AuthMethods are the Auth Methods of the frame's AUTH payloads: visible only when the SK
	// payload was decrypted (with a key table in AnalyzeOptions.ConfigDir).
	AuthMethods []int
	// Notifies are the Notify Message Types of the frame's (readable) Notify payloads.
	Notifies []int
	// Decrypted is set when tshark decrypted the frame's SK payload (or the SKF fragments it
	// completes) with a key table.
	Decrypted bool
	// Exchanges are the IKE exchange types of the frame (isakmp.exchangetype), empty if not IKE.
	Exchanges []int
	// ESPSPIs are the ESP SPIs of the frame, empty if not ESP.
	ESPSPIs []string
	// Malformed is set when a dissector flagged the frame as malformed.
	Malformed bool
	// Expert lists the expert infos of severity warning or error ("severity: message").
	Expert []string
}

// CaptureReport is the tshark dissection of a capture file.
type CaptureReport struct {
	Frames []Frame
}

// IKEFrames counts frames that carry IKE.
func (r *CaptureReport) IKEFrames() int {
	return r.count(func(f Frame) bool { return len(f.Exchanges) > 0 })
}

// ESPFrames counts frames that carry ESP.
func (r *CaptureReport) ESPFrames() int {
	return r.count(func(f Frame) bool { return len(f.ESPSPIs) > 0 })
}

func (r *CaptureReport) count(pred func(Frame) bool) int {
	n := 0
	for _, f := range r.Frames {
		if pred(f) {
			n++
		}
	}
	return n
}

// HasExchange reports whether any frame carries IKE exchange type t.
func (r *CaptureReport) HasExchange(t int) bool {
	for _, f := range r.Frames {
		for _, e := range f.Exchanges {
			if e == t {
				return true
			}
		}
	}
	return false
}

// Problems lists every malformed frame and every expert info of severity error, one line each.
// Warnings are not problems: tshark warns, for example, on IKE exchange types it does not know.
func (r *CaptureReport) Problems() []string {
	var out []string
	for _, f := range r.Frames {
		if f.Malformed {
			out = append(out, fmt.Sprintf("frame %d (%s): malformed", f.Number, f.Protocols))
		}
		for _, e := range f.Expert {
			if strings.HasPrefix(e, "error") {
				out = append(out, fmt.Sprintf("frame %d (%s): %s", f.Number, f.Protocols, e))
			}
		}
	}
	return out
}

// tshark expert severities (epan/proto.h PI_WARN, PI_ERROR).
const (
	expertWarn  = 0x00600000
	expertError = 0x00800000
)

// analyzeFields are the tshark fields read per frame, in column order.
var analyzeFields = []string{
	"frame.number", "frame.protocols", "udp.srcport", "udp.dstport",
	"isakmp.exchangetype", "esp.spi", "_ws.malformed", "_ws.expert.severity", "_ws.expert.message",
	"ip.src", "ip.dst", "isakmp.auth.method", "isakmp.notify.msgtype", "isakmp.enc.decrypted",
}

// AnalyzeOptions adjust Analyze.
type AnalyzeOptions struct {
	// ConfigDir is tshark's personal configuration directory (WIRESHARK_CONFIG_DIR), for example
	// one holding the key logs ikev2_decryption_table and esp_sa. Empty means a fresh empty
	// directory, so that no user preference changes the dissection.
	ConfigDir string
	// Args are extra tshark arguments placed before the file, such as
	// "-o", "esp.enable_encryption_decode:TRUE".
	Args []string
}

// Analyze dissects a capture with tshark (UDP ports 500 and 4500 decode as IKE and ESP in UDP by
// default) and returns every frame's protocols, IKE exchange types, ESP SPIs, malformed flag and
// expert infos.
func Analyze(ctx context.Context, path string, opts AnalyzeOptions) (*CaptureReport, error) {
	ctx, cancel := context.WithTimeout(ctx, analyzeTimeout)
	defer cancel()
	confDir := opts.ConfigDir
	if confDir == "" {
		d, err := os.MkdirTemp("", "pqi-tshark")
		if err != nil {
			return nil, fmt.Errorf("interop: %w", err)
		}
		defer os.RemoveAll(d)
		confDir = d
	}
	args := []string{"-n", "-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|"}
	for _, f := range analyzeFields {
		args = append(args, "-e", f)
	}
	args = append(args, opts.Args...)
	cmd := exec.CommandContext(ctx, "tshark", args...)
	cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+confDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("interop: tshark -r %s: %v: %s", path, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return parseFields(stdout.String())
}

func parseFields(out string) (*CaptureReport, error) {
	r := &CaptureReport{}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		col := strings.Split(line, "\t")
		if len(col) != len(analyzeFields) {
			return nil, fmt.Errorf("interop: tshark line with %d fields, want %d: %q", len(col), len(analyzeFields), line)
		}
		f := Frame{
			Number:    atoi(col[0]),
			Protocols: col[1],
			SrcPort:   atoi(firstOf(col[2])),
			Src:       firstOf(col[9]),
			Dst:       firstOf(col[10]),
			DstPort:   atoi(firstOf(col[3])),
			Malformed: col[6] != "" || strings.Contains(col[1], "malformed"),
			Decrypted: col[13] != "",
		}
		for _, e := range split(col[4]) {
			n, err := strconv.ParseInt(e, 0, 32)
			if err != nil {
				return nil, fmt.Errorf("interop: tshark exchange type %q", e)
			}
			f.Exchanges = append(f.Exchanges, int(n))
		}
		f.ESPSPIs = split(col[5])
		for _, m := range split(col[11]) {
			n, err := strconv.Atoi(m)
			if err != nil {
				return nil, fmt.Errorf("interop: tshark auth method %q", m)
			}
			f.AuthMethods = append(f.AuthMethods, n)
		}
		for _, m := range split(col[12]) {
			n, err := strconv.Atoi(m)
			if err != nil {
				return nil, fmt.Errorf("interop: tshark notify type %q", m)
			}
			f.Notifies = append(f.Notifies, n)
		}
		sev, msg := split(col[7]), split(col[8])
		for i, s := range sev {
			n, err := strconv.ParseInt(s, 0, 64)
			if err != nil || n < expertWarn {
				continue
			}
			level := "warning"
			if n >= expertError {
				level = "error"
			}
			m := ""
			if i < len(msg) {
				m = msg[i]
			}
			f.Expert = append(f.Expert, level+": "+m)
		}
		r.Frames = append(r.Frames, f)
	}
	return r, nil
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "|")
}

func firstOf(s string) string {
	v, _, _ := strings.Cut(s, "|")
	return v
}

// TsharkVersion returns the first line of "tshark --version".
func TsharkVersion(ctx context.Context) (string, error) {
	out, err := run(ctx, "tshark", "--version")
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(out, "\n")
	return line, nil
}
