package lab

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Overrides change fields of a topology file before it is loaded, the way
// a sweep varies one parameter. A key is a dotted path of the file's
// fields; tables in arrays ([[node]], [[group]], [[link]], [[event]],
// [[node.traffic]] ...) are selected by index or by name in brackets:
//
//	duration                  "90s"
//	link[0].mtu               1280
//	link[gw-b-inet].loss      0.01        (a link's name, or "a-b")
//	node[gw-a].proposals      ["aes256gcm16-prfsha384-x25519"]
//	group[branch].count       1000
//	group[branch].uplink.delay "uniform(10ms,60ms)"
//	node[hub].cpu             "hub-server"
//
// Values are TOML values (string, int64, float64, bool or lists of them);
// ParseOverride reads "key=value" from a command line.
type Overrides map[string]any

// ParseOverride reads "key=value": value as a TOML value if it parses as
// one ("1280", "0.01", "true", "[\"a\", \"b\"]", "\"5ms\""), else as a
// string.
func ParseOverride(s string) (string, any, error) {
	k, v, ok := strings.Cut(s, "=")
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if !ok || k == "" {
		return "", nil, fmt.Errorf("lab: override %q: want key=value", s)
	}
	var m map[string]any
	if _, err := toml.Decode("v = "+v, &m); err == nil {
		return k, m["v"], nil
	}
	return k, v, nil
}

// pathElem is one element of an override key: a field name and, for an
// array of tables, the selector in brackets.
type pathElem struct {
	name, sel string
	hasSel    bool
}

func parsePath(key string) ([]pathElem, error) {
	var out []pathElem
	rest := key
	for rest != "" {
		var e pathElem
		i := strings.IndexAny(rest, ".[")
		if i < 0 {
			e.name, rest = rest, ""
		} else {
			e.name = rest[:i]
			if rest[i] == '[' {
				j := strings.IndexByte(rest[i:], ']')
				if j < 0 {
					return nil, fmt.Errorf("missing ]")
				}
				e.sel, e.hasSel = rest[i+1:i+j], true
				rest = rest[i+j+1:]
			} else {
				rest = rest[i:]
			}
			if strings.HasPrefix(rest, ".") {
				rest = rest[1:]
				if rest == "" {
					return nil, fmt.Errorf("ends with '.'")
				}
			} else if rest != "" {
				return nil, fmt.Errorf("expected '.' after ]")
			}
		}
		if e.name == "" {
			return nil, fmt.Errorf("empty field name")
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty key")
	}
	return out, nil
}

// applyOverrides returns the topology source with the overrides applied.
// The result is re-encoded TOML: line numbers in later errors refer to it,
// so callers validate the original first.
func applyOverrides(data []byte, ov Overrides) ([]byte, error) {
	if len(ov) == 0 {
		return data, nil
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	keys := make([]string, 0, len(ov))
	for k := range ov {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := setPath(doc, k, normalise(ov[k])); err != nil {
			return nil, fmt.Errorf("lab: override %s: %w", k, err)
		}
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(doc); err != nil {
		return nil, fmt.Errorf("lab: overrides: %w", err)
	}
	return b.Bytes(), nil
}

// normalise turns Go values into the types the TOML decoder produces.
func normalise(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	}
	return v
}

func setPath(doc map[string]any, key string, val any) error {
	path, err := parsePath(key)
	if err != nil {
		return err
	}
	cur := doc
	for i, e := range path {
		last := i == len(path)-1
		if !e.hasSel {
			if last {
				cur[e.name] = val
				return nil
			}
			next, ok := cur[e.name].(map[string]any)
			if !ok {
				if _, exists := cur[e.name]; exists {
					return fmt.Errorf("%s is not a table", e.name)
				}
				next = map[string]any{}
				cur[e.name] = next
			}
			cur = next
			continue
		}
		arr, ok := cur[e.name].([]map[string]any)
		if !ok {
			return fmt.Errorf("no array of tables %q", e.name)
		}
		idx := -1
		if n, err := strconv.Atoi(e.sel); err == nil {
			if n < 0 || n >= len(arr) {
				return fmt.Errorf("%s[%d] out of range (%d entries)", e.name, n, len(arr))
			}
			idx = n
		} else {
			for j, t := range arr {
				if tableName(t) == e.sel {
					idx = j
					break
				}
			}
			if idx < 0 {
				return fmt.Errorf("no %s named %q", e.name, e.sel)
			}
		}
		if last {
			m, ok := val.(map[string]any)
			if !ok {
				return fmt.Errorf("%s[%s] needs a table", e.name, e.sel)
			}
			arr[idx] = m
			return nil
		}
		cur = arr[idx]
	}
	return nil
}

// tableName is the name a table is selected by: its "name", or for a link
// without one "a-b" as the loader names it.
func tableName(t map[string]any) string {
	if n, ok := t["name"].(string); ok && n != "" {
		return n
	}
	a, _ := t["a"].(string)
	b, _ := t["b"].(string)
	if a != "" && b != "" {
		return a + "-" + b
	}
	return ""
}
