// Package tomlcheck decodes pqlab's TOML files strictly: unknown keys are
// errors, and every error names the file, the line and the field, as in
// "topologies/x.toml:12: link.delay: bad duration".
package tomlcheck

import (
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
	Path string
	MD   toml.MetaData
	loc  *Locator
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
	f := &File{Path: path, loc: NewLocator(data)}
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

// Line returns the line where key (with or without array indices, as in
// "node[1].name" or "node.name") or its nearest parent is defined, or 0.
func (f *File) Line(key string) int { return f.loc.Line(key) }
