package tomlcheck

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Locator maps TOML key paths to line numbers, for error messages. The TOML
// decoder does not report key positions, so the locator scans the file: it
// follows [table] and [[array]] headers (counting array elements) and
// records each "key =" line, including the keys of single-line inline
// tables. Paths look like "link[2].a_to_b.delay"; the same path without
// indices ("link.a_to_b.delay") maps to its first occurrence.
type Locator struct {
	lines map[string]int
}

var (
	reHeader = regexp.MustCompile(`^\[\[?\s*([^\]]+?)\s*\]\]?`)
	reKey    = regexp.MustCompile(`^("[^"]*"|'[^']*'|[A-Za-z0-9_\-\.]+)\s*=`)
	reIndex  = regexp.MustCompile(`\[\d+\]`)
)

// NewLocator scans data (a TOML file) for its tables and keys.
func NewLocator(data []byte) *Locator {
	l := &Locator{lines: make(map[string]int)}
	counts := map[string]int{} // array table path (with parent indices) -> elements seen
	cur := ""                  // current table path with indices
	depth := 0                 // bracket depth of a multi-line value
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(stripComment(raw))
		n := i + 1
		if depth > 0 {
			depth += bracketDelta(line)
			continue
		}
		if line == "" {
			continue
		}
		if m := reHeader.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "[") {
			parts := splitKey(m[1])
			// Resolve the parent path with the current indices of any
			// arrays it passes through.
			path := ""
			for j, p := range parts {
				if path != "" {
					path += "."
				}
				path += p
				if j < len(parts)-1 {
					if c, ok := counts[path]; ok {
						path += fmt.Sprintf("[%d]", c-1)
					}
				}
			}
			if strings.HasPrefix(line, "[[") {
				idx := counts[path]
				counts[path] = idx + 1
				path += fmt.Sprintf("[%d]", idx)
			}
			cur = path
			l.record(cur, n)
			continue
		}
		m := reKey.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := strings.Join(splitKey(m[1]), ".")
		full := join(cur, key)
		l.record(full, n)
		rest := strings.TrimSpace(line[len(m[0]):])
		if strings.HasPrefix(rest, "{") {
			// Keys of an inline table on the same line.
			for _, km := range regexp.MustCompile(`[{,]\s*("[^"]*"|[A-Za-z0-9_\-]+)\s*=`).FindAllStringSubmatch(rest, -1) {
				l.record(join(full, strings.Trim(km[1], `"`)), n)
			}
		}
		depth = bracketDelta(rest)
		if depth < 0 {
			depth = 0
		}
	}
	return l
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func (l *Locator) record(path string, n int) {
	if _, ok := l.lines[path]; !ok {
		l.lines[path] = n
	}
	plain := reIndex.ReplaceAllString(path, "")
	if _, ok := l.lines[plain]; !ok {
		l.lines[plain] = n
	}
}

// Line returns the line of path, or of its nearest recorded parent, or 0.
func (l *Locator) Line(path string) int {
	for p := path; p != ""; {
		if n, ok := l.lines[p]; ok {
			return n
		}
		if n, ok := l.lines[reIndex.ReplaceAllString(p, "")]; ok && !strings.Contains(p, "[") {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// splitKey splits a dotted TOML key, unquoting quoted parts.
func splitKey(k string) []string {
	var out []string
	for _, p := range strings.Split(k, ".") {
		p = strings.TrimSpace(p)
		if uq, err := strconv.Unquote(p); err == nil {
			p = uq
		}
		out = append(out, strings.Trim(p, "'"))
	}
	return out
}

// stripComment removes a # comment that is not inside a string.
func stripComment(s string) string {
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0:
			if c == '\\' && inStr == '"' {
				i++
			} else if c == inStr {
				inStr = 0
			}
		case c == '"' || c == '\'':
			inStr = c
		case c == '#':
			return s[:i]
		}
	}
	return s
}

// bracketDelta counts unclosed [ and { outside strings.
func bracketDelta(s string) int {
	d := 0
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0:
			if c == '\\' && inStr == '"' {
				i++
			} else if c == inStr {
				inStr = 0
			}
		case c == '"' || c == '\'':
			inStr = c
		case c == '[' || c == '{':
			d++
		case c == ']' || c == '}':
			d--
		}
	}
	return d
}
