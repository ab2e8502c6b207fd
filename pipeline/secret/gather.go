package secret

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/gpipe/gpipe/pipeline/spec"
)

// Resolver reads the value a secret param's `from:` reference names, with the
// runner's own credentials, each time a run starts or resumes (so a rotated
// secret is picked up). The reference is the whole string from the spec:
// "ssm:/gpipe/token", "secretsmanager:prod/gpipe-token".
type Resolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

// EnvPrefix starts the environment variable that supplies a secret param.
const EnvPrefix = "GPIPE_SECRET_"

// EnvName is the environment variable that supplies secret param name:
// GPIPE_SECRET_ and the name upper-cased, each byte other than a letter or a
// digit turned into '_' (results-token → GPIPE_SECRET_RESULTS_TOKEN), the
// shape GitHub Actions gives `env:` names.
func EnvName(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return EnvPrefix + string(b)
}

// ResolveError says a secret param's `from:` reference could not be read.
// It names the param and the reference, never a value.
type ResolveError struct {
	Param string
	Ref   string
	Err   error
}

func (e *ResolveError) Error() string {
	return fmt.Sprintf("param %q: read secret from %s: %v", e.Param, e.Ref, e.Err)
}

func (e *ResolveError) Unwrap() error { return e.Err }

// Gather returns a copy of given in which every secret param of s that given
// lacks is filled in from the environment (EnvName; an empty variable counts
// as unset, as an undefined GitHub secret expands to "") or else from its
// `from:` reference through r. So the precedence is -p > environment > from:,
// and a param found nowhere is left out (its default, if any, applies later
// in spec.ResolveParams). Params that are not secret are never looked up.
func Gather(ctx context.Context, s *spec.Spec, given map[string]string, getenv func(string) string, r Resolver) (map[string]string, error) {
	out := maps.Clone(given)
	if out == nil {
		out = map[string]string{}
	}
	for _, p := range s.Params {
		if !p.Secret {
			continue
		}
		if _, ok := out[p.Name]; ok {
			continue
		}
		if getenv != nil {
			if v := getenv(EnvName(p.Name)); v != "" {
				out[p.Name] = v
				continue
			}
		}
		if p.From == "" {
			continue
		}
		if r == nil {
			return nil, &ResolveError{Param: p.Name, Ref: p.From, Err: fmt.Errorf("no resolver for secret references")}
		}
		v, err := r.Resolve(ctx, p.From)
		if err != nil {
			return nil, &ResolveError{Param: p.Name, Ref: p.From, Err: err}
		}
		out[p.Name] = v
	}
	return out, nil
}

// Values returns the values of s's secret params in params (resolved, so
// defaults included), for a Masker.
func Values(s *spec.Spec, params map[string]string) []string {
	var vals []string
	for _, p := range s.Params {
		if v := params[p.Name]; p.Secret && v != "" {
			vals = append(vals, v)
		}
	}
	return vals
}

// Public returns params without the secret ones: what a run may save.
func Public(s *spec.Spec, params map[string]string) map[string]string {
	out := maps.Clone(params)
	for _, p := range s.Params {
		if p.Secret {
			delete(out, p.Name)
		}
	}
	return out
}
