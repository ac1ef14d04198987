package sim

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// CostTable maps operation names to their cost on a reference host, in
// nanoseconds per unit (per call, or per byte for per-byte operations, whose
// names end in ".byte" by convention). Operation names are free-form strings
// registered by the packages that perform them (the IKE engine and ESP).
type CostTable struct {
	// Name identifies the table (file name without extension by default).
	Name string `toml:"name"`
	// Source says where the numbers come from ("pqlab calibrate", a paper,
	// "assumed").
	Source string `toml:"source"`
	// Host describes the machine the table was measured on.
	Host string `toml:"host"`
	// Ops holds the costs in nanoseconds per unit.
	Ops map[string]float64 `toml:"ops"`
}

// Cost returns the cost of units units of op.
func (t *CostTable) Cost(op string, units int) (time.Duration, bool) {
	ns, ok := t.Ops[op]
	if !ok {
		return 0, false
	}
	return time.Duration(math.Round(ns * float64(units))), true
}

// Set records the cost of op in nanoseconds per unit.
func (t *CostTable) Set(op string, nsPerUnit float64) {
	if t.Ops == nil {
		t.Ops = make(map[string]float64)
	}
	t.Ops[op] = nsPerUnit
}

// Validate checks names and values.
func (t *CostTable) Validate() error {
	for _, k := range t.opNames() {
		v := t.Ops[k]
		if k == "" || strings.ContainsAny(k, " \t\n\"") {
			return fmt.Errorf("sim: cost table %s: bad operation name %q", t.Name, k)
		}
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("sim: cost table %s: ops.%s: cost %v is not a finite non-negative number", t.Name, k, v)
		}
	}
	return nil
}

func (t *CostTable) opNames() []string {
	out := make([]string, 0, len(t.Ops))
	for k := range t.Ops {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseCostTable reads a cost table in TOML. Unknown keys are errors. name is
// used in messages and as the default table name.
func ParseCostTable(name string, data []byte) (*CostTable, error) {
	var t CostTable
	md, err := toml.Decode(string(data), &t)
	if err != nil {
		return nil, fmt.Errorf("sim: %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("sim: %s:%d: %s: unknown key", name, keyLine(data, und[0]), und[0])
	}
	if t.Name == "" {
		t.Name = strings.TrimSuffix(baseName(name), ".toml")
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %s: %w", name, err)
	}
	return &t, nil
}

// LoadCostTable reads a cost table file such as models/cpu/reference.toml.
func LoadCostTable(path string) (*CostTable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return ParseCostTable(path, data)
}

// WriteTOML writes the table in the format ParseCostTable reads, operations
// sorted by name.
func (t *CostTable) WriteTOML(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# CPU cost table: nanoseconds per unit (per call, or per byte for *.byte).\n")
	fmt.Fprintf(&b, "name = %q\nsource = %q\nhost = %q\n\n[ops]\n", t.Name, t.Source, t.Host)
	for _, k := range t.opNames() {
		fmt.Fprintf(&b, "%q = %s\n", k, formatNs(t.Ops[k]))
	}
	_, err := w.Write(b.Bytes())
	return err
}

func formatNs(v float64) string {
	f := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(f, ".eE") {
		f += ".0"
	}
	return f
}

// roundSignificant rounds v to four significant digits: calibrated costs are
// not more precise than that.
func roundSignificant(v float64) float64 {
	if v == 0 {
		return 0
	}
	scale := math.Pow(10, 3-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}

// CalibrationOp is an operation to measure: Fn performs Units units of it
// (1 for a call, the byte count for a per-byte operation).
type CalibrationOp struct {
	Name  string
	Units int
	Fn    func()
}

// CalibrateOptions tune Calibrate.
type CalibrateOptions struct {
	// MinTime is the minimum measuring time per round (default 20 ms).
	MinTime time.Duration
	// Rounds is the number of rounds; the median is kept (default 5).
	Rounds int
}

// Calibrate measures each operation on this host and returns a cost table
// named name. Each operation runs in several rounds of at least MinTime; the
// table keeps the median nanoseconds per unit (the host's speed drifts, so a
// single round is not trusted). It reads the wall clock and is not
// deterministic by nature.
func Calibrate(name string, ops []CalibrationOp, opts CalibrateOptions) (*CostTable, error) {
	if opts.MinTime <= 0 {
		opts.MinTime = 20 * time.Millisecond
	}
	if opts.Rounds <= 0 {
		opts.Rounds = 5
	}
	t := &CostTable{
		Name:   name,
		Source: "pqlab calibrate (median of rounds)",
		Host:   hostDescription(),
	}
	for _, op := range ops {
		if op.Fn == nil || op.Units <= 0 || op.Name == "" {
			return nil, fmt.Errorf("sim: calibrate: bad operation %q", op.Name)
		}
		op.Fn() // warm up
		per := make([]float64, 0, opts.Rounds)
		for r := 0; r < opts.Rounds; r++ {
			n := 0
			t0 := time.Now()
			var el time.Duration
			for el < opts.MinTime {
				op.Fn()
				n++
				el = time.Since(t0)
			}
			per = append(per, float64(el.Nanoseconds())/float64(n*op.Units))
		}
		sort.Float64s(per)
		t.Set(op.Name, roundSignificant(per[len(per)/2]))
	}
	return t, t.Validate()
}

// BuiltinCalibrationOps returns standard-library operations the simulator can
// measure on its own: SHA-256 of 1 KiB, AES-256-GCM sealing of 1400-byte
// packets, X25519 key generation and shared secret, and ML-KEM-768 key
// generation, encapsulation and decapsulation. The IKE and ESP packages add
// their own operations when they bind to the simulator.
func BuiltinCalibrationOps() []CalibrationOp {
	buf := make([]byte, 1024)
	pkt := make([]byte, 1400)
	key := make([]byte, 32)
	blk, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(blk)
	nonce := make([]byte, gcm.NonceSize())
	out := make([]byte, 0, len(pkt)+gcm.Overhead())
	x := ecdh.X25519()
	// Fixed scalars keep the inputs constant; the costs do not depend on
	// the values.
	priv, _ := x.NewPrivateKey(bytes.Repeat([]byte{7}, 32))
	peer, _ := x.NewPrivateKey(bytes.Repeat([]byte{9}, 32))
	dk, _ := mlkem.NewDecapsulationKey768(bytes.Repeat([]byte{1}, mlkem.SeedSize))
	ek := dk.EncapsulationKey()
	_, ct := ek.Encapsulate()
	return []CalibrationOp{
		{Name: "ref.sha256.byte", Units: len(buf), Fn: func() { sha256.Sum256(buf) }},
		{Name: "ref.aes256gcm.seal.byte", Units: len(pkt), Fn: func() { out = gcm.Seal(out[:0], nonce, pkt, nil) }},
		{Name: "ref.x25519.keygen", Units: 1, Fn: func() { _ = priv.PublicKey().Bytes(); _, _ = x.NewPrivateKey(bytes.Repeat([]byte{7}, 32)) }},
		{Name: "ref.x25519.shared", Units: 1, Fn: func() { _, _ = priv.ECDH(peer.PublicKey()) }},
		{Name: "ref.mlkem768.keygen", Units: 1, Fn: func() {
			_, _ = mlkem.NewDecapsulationKey768(bytes.Repeat([]byte{1}, mlkem.SeedSize))
		}},
		{Name: "ref.mlkem768.encaps", Units: 1, Fn: func() { _, _ = ek.Encapsulate() }},
		{Name: "ref.mlkem768.decaps", Units: 1, Fn: func() { _, _ = dk.Decapsulate(ct) }},
	}
}

// SpeedRelativeTo estimates how fast this table's host is relative to ref,
// as the median ratio of the costs of the operations both tables share
// (>1: this host is faster). It reports false when they share none.
func (t *CostTable) SpeedRelativeTo(ref *CostTable) (float64, bool) {
	var r []float64
	for k, v := range t.Ops {
		if w, ok := ref.Ops[k]; ok && v > 0 && w > 0 {
			r = append(r, w/v)
		}
	}
	if len(r) == 0 {
		return 0, false
	}
	sort.Float64s(r)
	return r[len(r)/2], true
}

// hostDescription names the machine: CPU model (from /proc/cpuinfo where
// there is one), OS, architecture, CPU count and Go version.
func hostDescription() string {
	cpu := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, ln := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(ln, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v) + ", "
				break
			}
		}
	}
	return fmt.Sprintf("%s%s/%s, %d CPUs, %s", cpu, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// keyLine finds the line of a TOML key path in data: the line of the last
// path element's key after the table that holds it, or 0 when not found.
// It is used for error messages only.
func keyLine(data []byte, key toml.Key) int {
	lines := strings.Split(string(data), "\n")
	last := key[len(key)-1]
	start := 0
	if len(key) > 1 {
		// Find the table header that opens the parent path.
		parent := strings.Join(key[:len(key)-1], ".")
		for i, ln := range lines {
			s := strings.TrimSpace(ln)
			if s == "["+parent+"]" || s == "[["+parent+"]]" {
				start = i
				break
			}
		}
	}
	for i := start; i < len(lines); i++ {
		s := strings.TrimSpace(lines[i])
		s = strings.TrimPrefix(s, `"`)
		if strings.HasPrefix(s, last) {
			rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(s, last), `"`))
			if strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, ".") {
				return i + 1
			}
		}
		if s == "["+strings.Join(key, ".")+"]" || s == "[["+strings.Join(key, ".")+"]]" {
			return i + 1
		}
	}
	return 0
}
