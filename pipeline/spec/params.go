package spec

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	suggestpkg "github.com/gpipe/gpipe/internal/suggest"
)

// ParamError is a problem with a param given to a run (or one not given).
type ParamError struct {
	Name   string
	Reason string
}

func (e *ParamError) Error() string { return fmt.Sprintf("param %q: %s", e.Name, e.Reason) }

// ResolveParams combines the declared params with the given values (from
// `-p name=value`): defaults fill what was not given, and every value is
// checked against its type and enum. Values come back as strings, normalised
// (booleans as true/false, integers without leading zeros). All problems are
// reported, each as a *ParamError, joined with errors.Join.
func ResolveParams(s *Spec, given map[string]string) (map[string]string, error) {
	declared := make(map[string]*Param, len(s.Params))
	names := make([]string, 0, len(s.Params))
	for i := range s.Params {
		declared[s.Params[i].Name] = &s.Params[i]
		names = append(names, s.Params[i].Name)
	}
	var errs []error
	givenNames := make([]string, 0, len(given))
	for n := range given {
		givenNames = append(givenNames, n)
	}
	sort.Strings(givenNames)
	for _, n := range givenNames {
		if declared[n] == nil {
			reason := "unknown param (the spec declares none)"
			if len(names) > 0 {
				reason = "unknown param" + suggestpkg.DidYouMean(n, names) + " (declared: " + strings.Join(names, ", ") + ")"
			}
			errs = append(errs, &ParamError{Name: n, Reason: reason})
		}
	}
	out := make(map[string]string, len(s.Params))
	for i := range s.Params {
		p := &s.Params[i]
		v, ok := given[p.Name]
		if !ok {
			if p.Default == nil {
				errs = append(errs, &ParamError{Name: p.Name, Reason: "required: give it with -p " + p.Name + "=VALUE"})
				continue
			}
			v = scalarString(p.Default)
		}
		// A secret's value is never echoed, not even when it is wrong.
		shown := strconv.Quote(v)
		if p.Secret {
			shown = "the value (secret, not shown)"
		}
		norm, err := normalize(p.Type, v)
		if err != nil {
			errs = append(errs, &ParamError{Name: p.Name, Reason: shown + " is not " + typeWords(p.Type)})
			continue
		}
		if len(p.Enum) > 0 && !matchesEnum(p.Type, norm, p.Enum) {
			allowed := make([]string, len(p.Enum))
			for j, e := range p.Enum {
				allowed[j] = scalarString(e)
			}
			errs = append(errs, &ParamError{Name: p.Name, Reason: fmt.Sprintf("%s is not one of %s", shown, strings.Join(allowed, ", "))})
			continue
		}
		out[p.Name] = norm
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// errNotType is normalize's only error; the caller words it, so that a
// secret's value is never part of an error.
var errNotType = errors.New("not of the param's type")

func normalize(typ, v string) (string, error) {
	switch typ {
	case "integer":
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return "", errNotType
		}
		return strconv.FormatInt(n, 10), nil
	case "number":
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return "", errNotType
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case "boolean":
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return "", errNotType
		}
		return strconv.FormatBool(b), nil
	}
	return v, nil
}

func matchesEnum(typ, v string, enum []any) bool {
	for _, e := range enum {
		ev, err := normalize(typ, scalarString(e))
		if err == nil && ev == v {
			return true
		}
	}
	return false
}
