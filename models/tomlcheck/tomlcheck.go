// Package tomlcheck decodes pqlab's TOML files strictly: unknown keys are
// errors, and every error names the file, the line and the field, as in
// "topologies/x.toml:12: link.delay: bad duration".
package tomlcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// File is a decoded TOML file that can locate its keys.
type File struct {
	Path  string
	MD    toml.MetaData
	lines map[string]int // dotted key -> line of first definition
}

// Error is a problem in a TOML file at a line and field.
type Error struct {
	Path  string
	Line  int // 0 when unknown
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.Path
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.Path, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

var typeErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// DecodeFile reads path into v, rejecting syntax errors, type mismatches and
// unknown keys with an *Error.
func DecodeFile(path string, v any) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Decode(path, data, v)
}

// Decode decodes data (read from path) into v like DecodeFile.
func Decode(path string, data []byte, v any) (*File, error) {
	f := &File{Path: path, lines: keyLines(data)}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(v)
	if err != nil {
		var pe toml.ParseError
		var ppe *toml.ParseError
		if errors.As(err, &ppe) {
			pe = *ppe
		}
		if ppe != nil || errors.As(err, &pe) {
			msg := pe.Message
			if msg == "" && pe.Position.Line == 0 {
				msg = err.Error()
			}
			return nil, &Error{Path: path, Line: pe.Position.Line, Field: pe.LastKey, Msg: msg}
		}
		// Type mismatches come as "toml: line N (last key "k"): message".
		if m := typeErr.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{Path: path, Line: line, Field: m[2], Msg: m[3]}
		}
		return nil, &Error{Path: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	f.MD = md
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		return nil, f.Errorf(k, "unknown key")
	}
	return f, nil
}

// Errorf returns an *Error for the dotted key (e.g. "fragmentation.size"),
// located at the line where the key, or failing that its nearest enclosing
// table, is defined.
func (f *File) Errorf(key, format string, args ...any) error {
	return &Error{Path: f.Path, Line: f.Line(key), Field: key, Msg: fmt.Sprintf(format, args...)}
}

// Line returns the line where key or its nearest parent is defined, or 0.
func (f *File) Line(key string) int {
	for k := key; k != ""; {
		if l, ok := f.lines[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// keyLines maps dotted keys to the line of their first definition. It
// understands the subset of TOML that pqlab's files use: [table],
// [[array.of.tables]] (elements numbered name[0], name[1], ...), and key =
// value lines; quoted keys keep their quotes stripped.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "" || s[0] == '#':
		case strings.HasPrefix(s, "[["):
			name := unquote(strings.TrimSpace(strings.TrimSuffix(strings.SplitN(s[2:], "]]", 2)[0], "]]")))
			table = fmt.Sprintf("%s[%d]", name, counts[name])
			counts[name]++
			set(lines, name, n)
			set(lines, table, n)
		case s[0] == '[':
			table = unquote(strings.TrimSpace(strings.SplitN(s[1:], "]", 2)[0]))
			set(lines, table, n)
		default:
			eq := strings.Index(s, "=")
			if eq <= 0 {
				continue
			}
			k := unquote(strings.TrimSpace(s[:eq]))
			if table != "" {
				k = table + "." + k
			}
			set(lines, k, n)
		}
	}
	return lines
}

func set(m map[string]int, k string, line int) {
	if _, ok := m[k]; !ok {
		m[k] = line
	}
}

func unquote(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}
