package topology

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Value is a topology field that holds a constant or a distribution: a TOML
// number, or a string such as "10ms", "100Mbit", "0.5%",
// "uniform(10ms,120ms)", "normal(40ms,5ms)", "exp(20ms)" or
// "choice(1280,1400,1500)". The unit depends on the field. A nil *Value is an
// unset field.
type Value struct {
	raw any
}

// UnmarshalTOML implements toml.Unmarshaler.
func (v *Value) UnmarshalTOML(data any) error {
	switch data.(type) {
	case int64, float64, string:
		v.raw = data
		return nil
	}
	return fmt.Errorf("expected a number or a string, not %T", data)
}

// String returns the value as written.
func (v *Value) String() string {
	if v == nil {
		return "<unset>"
	}
	return fmt.Sprint(v.raw)
}

// unit converts one constant into base units (ns, bit/s, probability, count).
type unit struct {
	name  string
	parse func(s string, isNum bool, num float64) (float64, error)
	min   float64
	max   float64
}

var (
	unitDuration = unit{name: "duration", min: 0, max: float64(365 * 24 * time.Hour), parse: func(s string, isNum bool, num float64) (float64, error) {
		if isNum {
			if num == 0 {
				return 0, nil
			}
			return 0, fmt.Errorf("a duration needs a unit, e.g. \"%vms\"", num)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return float64(d), nil
	}}
	unitBandwidth = unit{name: "bandwidth", min: 0, max: 1e13, parse: func(s string, isNum bool, num float64) (float64, error) {
		if isNum {
			return num, nil
		}
		return parseBandwidth(s)
	}}
	unitProb = unit{name: "probability", min: 0, max: 1, parse: func(s string, isNum bool, num float64) (float64, error) {
		if isNum {
			return num, nil
		}
		if p, ok := strings.CutSuffix(s, "%"); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil {
				return 0, fmt.Errorf("bad percentage %q", s)
			}
			return f / 100, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("bad probability %q", s)
		}
		return f, nil
	}}
	unitCount = unit{name: "integer", min: 0, max: 1 << 31, parse: func(s string, isNum bool, num float64) (float64, error) {
		if isNum {
			return num, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("bad integer %q", s)
		}
		return f, nil
	}}
	unitMTU = unit{name: "MTU", min: 576, max: 65535, parse: unitCount.parse}
)

// parseBandwidth reads "100Mbit", "1.5Gbit/s", "512kbps", "2e6": bits per
// second with SI prefixes.
func parseBandwidth(s string) (float64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "/s"), "ps")
	t = strings.TrimSuffix(t, "bit")
	t = strings.TrimSuffix(t, "b")
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "k") || strings.HasSuffix(t, "K"):
		mult, t = 1e3, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1e6, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1e9, t[:len(t)-1]
	case strings.HasSuffix(t, "T"):
		mult, t = 1e12, t[:len(t)-1]
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil {
		return 0, fmt.Errorf("bad bandwidth %q (want e.g. \"100Mbit\")", s)
	}
	return f * mult, nil
}

// dist is a parsed Value.
type dist struct {
	kind   string // "const", "uniform", "normal", "exp", "choice"
	params []float64
	u      unit
}

// parse turns the value into a distribution in the unit's base units and
// checks its parameters.
func (v *Value) parse(u unit) (dist, error) {
	switch x := v.raw.(type) {
	case int64:
		return constDist(u, "", true, float64(x))
	case float64:
		return constDist(u, "", true, x)
	case string:
		s := strings.TrimSpace(x)
		open := strings.IndexByte(s, '(')
		if open < 0 || !strings.HasSuffix(s, ")") {
			return constDist(u, s, false, 0)
		}
		name := strings.TrimSpace(s[:open])
		var params []float64
		for _, a := range strings.Split(s[open+1:len(s)-1], ",") {
			a = strings.TrimSpace(a)
			num, err := strconv.ParseFloat(a, 64)
			f, perr := u.parse(a, err == nil, num)
			if perr != nil {
				return dist{}, perr
			}
			params = append(params, f)
		}
		d := dist{kind: name, params: params, u: u}
		want := map[string]int{"uniform": 2, "normal": 2, "exp": 1, "choice": -1}[name]
		switch {
		case want == 0:
			return dist{}, fmt.Errorf("unknown distribution %q (want uniform, normal, exp or choice)", name)
		case want > 0 && len(params) != want:
			return dist{}, fmt.Errorf("%s takes %d parameters, not %d", name, want, len(params))
		case len(params) == 0:
			return dist{}, fmt.Errorf("%s needs parameters", name)
		}
		if name == "uniform" && params[0] > params[1] {
			return dist{}, fmt.Errorf("uniform(a,b) needs a <= b")
		}
		if name == "normal" && params[1] < 0 {
			return dist{}, fmt.Errorf("normal(mean,sd) needs sd >= 0")
		}
		// Every value the distribution can take must be in range (normal
		// and exp are clamped at sampling).
		check := params
		if name == "normal" || name == "exp" {
			check = params[:1]
		}
		for _, p := range check {
			if err := inRange(u, p); err != nil {
				return dist{}, err
			}
		}
		return d, nil
	}
	return dist{}, fmt.Errorf("unset")
}

func constDist(u unit, s string, isNum bool, num float64) (dist, error) {
	f, err := u.parse(s, isNum, num)
	if err != nil {
		return dist{}, err
	}
	if err := inRange(u, f); err != nil {
		return dist{}, err
	}
	return dist{kind: "const", params: []float64{f}, u: u}, nil
}

func inRange(u unit, f float64) error {
	if math.IsNaN(f) || f < u.min || f > u.max {
		return fmt.Errorf("%s %v outside [%v, %v]", u.name, f, u.min, u.max)
	}
	return nil
}

// constant reports whether the distribution always gives the same value.
func (d dist) constant() bool { return d.kind == "const" }

// sample draws a value in base units, clamped to the unit's range.
func (d dist) sample(r *rand.Rand) float64 {
	var f float64
	p := d.params
	switch d.kind {
	case "const":
		f = p[0]
	case "uniform":
		f = p[0] + r.Float64()*(p[1]-p[0])
	case "normal":
		f = p[0] + r.NormFloat64()*p[1]
	case "exp":
		f = r.ExpFloat64() * p[0]
	case "choice":
		f = p[r.IntN(len(p))]
	}
	return math.Min(math.Max(f, d.u.min), d.u.max)
}
