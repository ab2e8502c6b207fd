package cfn

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Step parameters arrive after expression evaluation, so a number or boolean
// may be a string ("${{ params.gib }}" → "200"). These helpers accept both.

func str(with map[string]any, key string) (string, error) {
	v, ok := with[key]
	if !ok || v == nil {
		return "", nil
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case int, int64, uint64, float64:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("with.%s: want a string, got %T", key, v)
}

func integer(with map[string]any, key string, def int) (int, error) {
	v, ok := with[key]
	if !ok || v == nil || v == "" {
		return def, nil
	}
	switch v := v.(type) {
	case int:
		return v, nil
	case int64:
		return int(v), nil
	case uint64:
		return int(v), nil
	case float64:
		if v == float64(int(v)) {
			return int(v), nil
		}
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("with.%s: want an integer, got %v", key, v)
}

func boolean(with map[string]any, key string, def bool) (bool, error) {
	v, ok := with[key]
	if !ok || v == nil || v == "" {
		return def, nil
	}
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		if b, err := strconv.ParseBool(v); err == nil {
			return b, nil
		}
	}
	return false, fmt.Errorf("with.%s: want true or false, got %v", key, v)
}

func duration(with map[string]any, key string, def time.Duration) (time.Duration, error) {
	s, err := str(with, key)
	if err != nil || s == "" {
		return def, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("with.%s: %w", key, err)
	}
	return d, nil
}

// strMap reads an object of string values, returned with sorted keys so
// requests are stable.
func strMap(with map[string]any, key string) (map[string]string, []string, error) {
	v, ok := with[key]
	if !ok || v == nil {
		return nil, nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("with.%s: want an object, got %T", key, v)
	}
	out := make(map[string]string, len(m))
	keys := make([]string, 0, len(m))
	for k, x := range m {
		s, err := str(m, k)
		if err != nil {
			return nil, nil, fmt.Errorf("with.%s.%s: want a string, got %T", key, k, x)
		}
		out[k] = s
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return out, keys, nil
}

// strList reads a list of strings: a YAML list, or one string of
// comma-separated items (what an expression yields).
func strList(with map[string]any, key string) ([]string, error) {
	v, ok := with[key]
	if !ok || v == nil {
		return nil, nil
	}
	var out []string
	switch v := v.(type) {
	case string:
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []string:
		out = append(out, v...)
	case []any:
		for i, x := range v {
			s, ok := x.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("with.%s[%d]: want a non-empty string, got %v", key, i, x)
			}
			out = append(out, s)
		}
	default:
		return nil, fmt.Errorf("with.%s: want a list of strings, got %T", key, v)
	}
	seen := map[string]bool{}
	for _, s := range out {
		if seen[s] {
			return nil, fmt.Errorf("with.%s: %q is listed twice", key, s)
		}
		seen[s] = true
	}
	return out, nil
}
