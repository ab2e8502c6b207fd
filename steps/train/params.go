package train

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ParamError reports a `with:` value a step cannot use. The schema catches most
// of these before a run starts; values that arrive through ${{ }} expressions
// are only known at run time, so the steps check again.
type ParamError struct {
	Step  string // step type
	Param string
	Msg   string
}

// Permanent: a retry would fail the same way.
func (e *ParamError) Permanent() bool { return true }

func (e *ParamError) Error() string {
	return fmt.Sprintf("%s: with.%s: %s", e.Step, e.Param, e.Msg)
}

// params decodes a step's `with` map. Numbers may arrive as YAML ints, floats,
// or strings (an expression like ${{ matrix.fold }} evaluates to a string), so
// every getter accepts both. Errors accumulate so a user sees all at once.
type params struct {
	step string
	m    map[string]any
	used map[string]bool
	errs []error
}

func newParams(step string, with map[string]any) *params {
	return &params{step: step, m: with, used: map[string]bool{}}
}

func (p *params) fail(key, format string, args ...any) {
	p.errs = append(p.errs, &ParamError{Step: p.step, Param: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *params) get(key string) (any, bool) {
	p.used[key] = true
	v, ok := p.m[key]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

func (p *params) str(key, def string) string {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case string:
		return x
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(x)
	}
	p.fail(key, "want a string, got %T", v)
	return def
}

func (p *params) integer(key string, def, lo, hi int) int {
	v, ok := p.get(key)
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
		if x != math.Trunc(x) {
			p.fail(key, "want an integer, got %v", x)
			return def
		}
		n = int(x)
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			p.fail(key, "want an integer, got %q", x)
			return def
		}
		n = i
	default:
		p.fail(key, "want an integer, got %T", v)
		return def
	}
	if n < lo || n > hi {
		p.fail(key, "%d is outside %d..%d", n, lo, hi)
		return def
	}
	return n
}

func (p *params) number(key string, def, lo, hi float64) float64 {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case float64:
		f = x
	case string:
		g, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			p.fail(key, "want a number, got %q", x)
			return def
		}
		f = g
	default:
		p.fail(key, "want a number, got %T", v)
		return def
	}
	if f < lo || f > hi || math.IsNaN(f) {
		p.fail(key, "%v is outside %v..%v", f, lo, hi)
		return def
	}
	return f
}

func (p *params) strs(key string, def []string) []string {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	list, ok := v.([]any)
	if !ok {
		if s, isStr := v.([]string); isStr {
			return s
		}
		p.fail(key, "want a list of strings, got %T", v)
		return def
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			p.fail(fmt.Sprintf("%s[%d]", key, i), "want a string, got %T", e)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (p *params) oneOf(key, def string, allowed ...string) string {
	s := p.str(key, def)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	p.fail(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
	return def
}

// done reports unknown keys and all collected errors.
func (p *params) done() error {
	var unknown []string
	for k := range p.m {
		if !p.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		p.fail(k, "unknown parameter")
	}
	return errors.Join(p.errs...)
}
