package expr

import (
	"fmt"
	"sort"
)

// Interpolate returns a copy of v (a step's with: maps, slices, strings and
// scalars as decoded from YAML) with every string evaluated as a Template.
// Results stay strings even when they look like numbers: step types convert.
func Interpolate(v any, sc *Scope) (any, error) {
	return interpolate(v, sc, "")
}

func interpolate(v any, sc *Scope, path string) (any, error) {
	switch v := v.(type) {
	case string:
		t, err := Parse(v)
		if err != nil {
			return nil, wrapPath(path, err)
		}
		if t.IsLiteral() {
			return v, nil
		}
		s, err := t.Eval(sc)
		if err != nil {
			return nil, wrapPath(path, err)
		}
		return s, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		// Sorted so that the first error reported is the same every time.
		sort.Strings(keys)
		for _, k := range keys {
			x, err := interpolate(v[k], sc, join(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			x, err := interpolate(e, sc, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	}
	return v, nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func wrapPath(path string, err error) error {
	if path == "" {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// RefsIn returns the references of every string in v (maps, slices, strings
// and scalars, as Interpolate walks them), in no particular order.
func RefsIn(v any) ([]Ref, error) {
	var out []Ref
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case string:
			t, err := Parse(v)
			if err != nil {
				return err
			}
			out = append(out, t.Refs()...)
		case map[string]any:
			for _, x := range v {
				if err := walk(x); err != nil {
					return err
				}
			}
		case []any:
			for _, x := range v {
				if err := walk(x); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(v)
}
