package lab

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/sim/topology"
)

// Some override keys name no field of the topology file; the lab applies
// them itself after loading:
//
//	node[hub].cores                  4        cores of a node (its CPU class's otherwise)
//	node[hub].speed                  0.5      speed of a node's cores relative to the cost table's host
//	group[branch].cores              1        the same for every member of a group
//	group[branch].speed              0.25
//	model[strongswan-6].lifetimes.ike "60s"   a field of a peer model (models/peers), for this run
//	model[cisco-8000].fragmentation.size 1280
//
// A model key is model[NAME].SECTION.FIELD with the TOML names of the
// profile (SECTION is ike, fragmentation, retransmit, lifetimes, nat, dos or
// dpd); the value takes the field's type (strings, numbers, booleans,
// durations as "60s", lists of strings).

// cpuOverride sets the cores or speed of a node or of a group's members.
type cpuOverride struct {
	key   string
	group bool
	name  string
	field string // "cores" or "speed"
	value any
}

// modelOverride sets one field of a peer model.
type modelOverride struct {
	key     string
	model   string
	section string
	field   string
	value   any
}

// splitOverrides separates the topology's overrides from the lab's.
func splitOverrides(ov Overrides) (topo Overrides, cpu []cpuOverride, mod []modelOverride, err error) {
	keys := make([]string, 0, len(ov))
	for k := range ov {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		path, perr := parsePath(k)
		if perr != nil {
			return nil, nil, nil, fmt.Errorf("lab: override %s: %v", k, perr)
		}
		switch {
		case len(path) == 2 && path[0].hasSel && (path[0].name == "node" || path[0].name == "group") &&
			(path[1].name == "cores" || path[1].name == "speed") && !path[1].hasSel:
			cpu = append(cpu, cpuOverride{key: k, group: path[0].name == "group", name: path[0].sel, field: path[1].name, value: ov[k]})
		case path[0].name == "model":
			if len(path) != 3 || !path[0].hasSel || path[1].hasSel || path[2].hasSel {
				return nil, nil, nil, fmt.Errorf("lab: override %s: want model[NAME].SECTION.FIELD", k)
			}
			mod = append(mod, modelOverride{key: k, model: path[0].sel, section: path[1].name, field: path[2].name, value: ov[k]})
		default:
			if topo == nil {
				topo = Overrides{}
			}
			topo[k] = ov[k]
		}
	}
	return topo, cpu, mod, nil
}

// applyCPU sets the cores and speeds the overrides give.
func applyCPU(top *topology.Topology, cpu []cpuOverride) error {
	for _, c := range cpu {
		var nodes []*topology.Node
		if c.group {
			for _, n := range top.Nodes {
				if n.Group == c.name && n.Kind != topology.KindHost && n.Kind != topology.KindNAT {
					nodes = append(nodes, n)
				}
			}
			if len(nodes) == 0 {
				return fmt.Errorf("lab: override %s: no group named %q", c.key, c.name)
			}
		} else {
			n := top.Node(c.name)
			if n == nil {
				return fmt.Errorf("lab: override %s: no node named %q", c.key, c.name)
			}
			nodes = append(nodes, n)
		}
		switch c.field {
		case "cores":
			v, ok := asInt(c.value)
			if !ok || v < 1 || v > 1024 {
				return fmt.Errorf("lab: override %s: want a number of cores in 1..1024, got %v", c.key, c.value)
			}
			for _, n := range nodes {
				n.CPU.Cores = v
			}
		case "speed":
			v, ok := asFloat(c.value)
			if !ok || v <= 0 || v > 1000 {
				return fmt.Errorf("lab: override %s: want a positive speed, got %v", c.key, c.value)
			}
			for _, n := range nodes {
				n.CPU.Speed = v
			}
		}
	}
	return nil
}

// applyModels returns peers with the model overrides applied to copies of
// the profiles they name; the input map is not changed.
func applyModels(peers map[string]*models.Peer, mod []modelOverride) (map[string]*models.Peer, error) {
	if len(mod) == 0 {
		return peers, nil
	}
	out := make(map[string]*models.Peer, len(peers))
	for k, v := range peers {
		out[k] = v
	}
	copied := map[string]bool{}
	for _, m := range mod {
		p := out[m.model]
		if p == nil {
			return nil, fmt.Errorf("lab: override %s: no peer model %q", m.key, m.model)
		}
		if !copied[m.model] {
			c := *p
			p = &c
			out[m.model] = p
			copied[m.model] = true
		}
		if err := setModelField(p, m.section, m.field, m.value); err != nil {
			return nil, fmt.Errorf("lab: override %s: %v", m.key, err)
		}
	}
	return out, nil
}

// setModelField sets the field whose TOML name is section.field.
func setModelField(p *models.Peer, section, field string, val any) error {
	sec, ok := fieldByTag(reflect.ValueOf(p).Elem(), section)
	if !ok || sec.Kind() != reflect.Struct {
		return fmt.Errorf("peer models have no section %q", section)
	}
	f, ok := fieldByTag(sec, field)
	if !ok {
		return fmt.Errorf("section %s has no field %q", section, field)
	}
	bad := func() error { return fmt.Errorf("%s.%s: cannot use %v (%T)", section, field, val, val) }
	switch {
	case f.Type() == reflect.TypeOf(models.Duration{}):
		s, ok := val.(string)
		if !ok {
			return bad()
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("%s.%s: bad duration %q", section, field, s)
		}
		f.Set(reflect.ValueOf(models.Duration{Duration: d}))
	case f.Kind() == reflect.String:
		s, ok := val.(string)
		if !ok {
			return bad()
		}
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			return bad()
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int:
		n, ok := asInt(val)
		if !ok {
			return bad()
		}
		f.SetInt(int64(n))
	case f.Kind() == reflect.Float64:
		x, ok := asFloat(val)
		if !ok {
			return bad()
		}
		f.SetFloat(x)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		ss, ok := asStrings(val)
		if !ok {
			return bad()
		}
		f.Set(reflect.ValueOf(ss))
	default:
		return fmt.Errorf("%s.%s cannot be overridden", section, field)
	}
	return nil
}

// fieldByTag returns the field of struct v whose toml tag is name.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if tag == name && t.Field(i).IsExported() {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		if x == float64(int(x)) {
			return int(x), true
		}
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func asStrings(v any) ([]string, bool) {
	switch x := v.(type) {
	case []string:
		return append([]string(nil), x...), true
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	}
	return nil, false
}
