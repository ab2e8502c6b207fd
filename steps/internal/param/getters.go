package param

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The getters: each declares its key (kind, default, bounds), reads the
// value if given, and records a mistake with Fail.

func bound(f float64) *float64 { return &f }

// Required declares key as one a step cannot do without and reports it
// when it is not given; it returns the value as String does.
func (r *Reader) Required(key string) string {
	r.declare(Decl{Key: key, Kind: String, Required: true})
	s, given := r.str(key, "")
	if strings.TrimSpace(s) == "" && (given || !r.Has(key)) { // a value of the wrong type is reported already
		r.Fail(key, "required")
	}
	return s
}

// String returns key's value as a string, or def; "" declares no default.
// A number or boolean is formatted as written.
func (r *Reader) String(key, def string) string {
	d := Decl{Key: key, Kind: String}
	if def != "" {
		d.Default = def
	}
	r.declare(d)
	s, _ := r.str(key, def)
	return s
}

func (r *Reader) str(key, def string) (string, bool) {
	v, ok := r.get(key)
	if !ok {
		return def, false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(x), true
	}
	r.Fail(key, "want a string, got %T", v)
	return def, false
}

// OneOf returns key's value, which must be one of allowed, or def; "" declares
// no default.
func (r *Reader) OneOf(key, def string, allowed ...string) string {
	d := Decl{Key: key, Kind: String, Enum: allowed}
	if def != "" {
		d.Default = def
	}
	r.declare(d)
	s, given := r.str(key, def)
	if !given || slices.Contains(allowed, s) {
		return s
	}
	r.Fail(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
	return def
}

// Int returns key's value as an integer in lo..hi, or def.
func (r *Reader) Int(key string, def, lo, hi int) int {
	r.declare(Decl{Key: key, Kind: Integer, Default: def, Min: bound(float64(lo)), Max: bound(float64(hi))})
	v, ok := r.get(key)
	if !ok {
		return def
	}
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case uint64:
		n = int(x)
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			r.Fail(key, "want an integer, got %v", x)
			return def
		}
		n = int(x)
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			r.Fail(key, "want an integer, got %q", x)
			return def
		}
		n = i
	default:
		r.Fail(key, "want an integer, got %T", v)
		return def
	}
	if n < lo || n > hi {
		r.Fail(key, "%d is outside %d..%d", n, lo, hi)
		return def
	}
	return n
}

func (r *Reader) float(key string) (float64, bool) {
	v, ok := r.get(key)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			r.Fail(key, "want a number, got %q", x)
			return 0, false
		}
		return f, true
	}
	r.Fail(key, "want a number, got %T", v)
	return 0, false
}

// Number returns key's value as a number in lo..hi, or def.
func (r *Reader) Number(key string, def, lo, hi float64) float64 {
	r.declare(Decl{Key: key, Kind: Number, Default: def, Min: bound(lo), Max: bound(hi)})
	f, ok := r.float(key)
	if !ok {
		return def
	}
	if f < lo || f > hi {
		r.Fail(key, "%v is outside %v..%v", f, lo, hi)
		return def
	}
	return f
}

// Positive returns key's value as a number above 0 and as written (for a
// value passed on verbatim, such as a price), or 0 and "" when it is not
// given (no default).
func (r *Reader) Positive(key string) (float64, string) {
	r.declare(Decl{Key: key, Kind: Number, Min: bound(0), ExclusiveMin: true})
	f, ok := r.float(key)
	if !ok {
		return 0, ""
	}
	if f <= 0 {
		r.Fail(key, "%v: want a number above 0", f)
		return 0, ""
	}
	if s, isStr := r.with[key].(string); isStr {
		return f, strings.TrimSpace(s)
	}
	return f, strconv.FormatFloat(f, 'f', -1, 64)
}

// Bool returns key's value as a boolean ("true"/"false" too), or def.
func (r *Reader) Bool(key string, def bool) bool {
	r.declare(Decl{Key: key, Kind: Boolean, Default: def})
	v, ok := r.get(key)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b
		}
	}
	r.Fail(key, "want true or false, got %v", v)
	return def
}

// Duration returns key's value, a duration such as "90m" that is not
// negative, or def.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	r.declare(Decl{Key: key, Kind: Duration, Default: def, Min: bound(0)})
	s, given := r.str(key, "")
	if !given {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		r.Fail(key, "%q: want a duration such as 90s, 30m or 1h30m", s)
		return def
	case d < 0:
		r.Fail(key, "%s is negative", d)
		return def
	}
	return d
}

// Strings returns key's value, a YAML list of strings, or def. With
// allowed, every item must be one of them.
func (r *Reader) Strings(key string, def []string, allowed ...string) []string {
	d := Decl{Key: key, Kind: List, Enum: allowed}
	if def != nil {
		d.Default = slices.Clone(def)
	}
	r.declare(d)
	v, ok := r.get(key)
	if !ok {
		return def
	}
	var items []any
	switch x := v.(type) {
	case []string:
		for _, s := range x {
			items = append(items, s)
		}
	case []any:
		items = x
	default:
		r.Fail(key, "want a list of strings, got %T", v)
		return def
	}
	out := make([]string, 0, len(items))
	for i, e := range items {
		s, ok := e.(string)
		switch {
		case !ok:
			r.Fail(fmt.Sprintf("%s[%d]", key, i), "want a string, got %T", e)
		case allowed != nil && !slices.Contains(allowed, s):
			r.Fail(fmt.Sprintf("%s[%d]", key, i), "%q is not one of %s", s, strings.Join(allowed, ", "))
		default:
			out = append(out, s)
		}
	}
	return out
}

// Names returns key's value, a list of distinct non-empty strings: a YAML
// list, or one string of comma-separated items (what an expression yields).
// nil when it is not given.
func (r *Reader) Names(key string) []string {
	r.declare(Decl{Key: key, Kind: List})
	v, ok := r.get(key)
	if !ok {
		return nil
	}
	var out []string
	switch x := v.(type) {
	case string:
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []string:
		out = slices.Clone(x)
	case []any:
		for i, e := range x {
			s, ok := e.(string)
			if !ok || s == "" {
				r.Fail(fmt.Sprintf("%s[%d]", key, i), "want a non-empty string, got %v", e)
				return nil
			}
			out = append(out, s)
		}
	default:
		r.Fail(key, "want a list of strings, got %T", v)
		return nil
	}
	for i, s := range out {
		if slices.Contains(out[:i], s) {
			r.Fail(key, "%q is listed twice", s)
			return nil
		}
	}
	return out
}

// StringMap returns key's value, an object of scalar values, as strings,
// with its keys sorted so requests built from it are stable.
func (r *Reader) StringMap(key string) (map[string]string, []string) {
	r.declare(Decl{Key: key, Kind: Map})
	v, ok := r.get(key)
	if !ok {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		if sm, isStrs := v.(map[string]string); isStrs {
			keys := make([]string, 0, len(sm))
			for k := range sm {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return sm, keys
		}
		r.Fail(key, "want an object, got %T", v)
		return nil, nil
	}
	out := make(map[string]string, len(m))
	keys := make([]string, 0, len(m))
	for k, x := range m {
		switch x := x.(type) {
		case string:
			out[k] = x
		case nil:
			out[k] = ""
		case int, int64, uint64, float64, bool:
			out[k] = fmt.Sprint(x)
		default:
			r.Fail(key+"."+k, "want a string, got %T", x)
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return out, keys
}
