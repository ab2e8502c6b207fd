package engine

import (
	"fmt"
	"maps"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/expr"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
)

// stepRefs returns the ids of the steps whose outputs a step's expressions
// (with, env, host, if) refer to, so its Scope holds only those: building
// a scope from every upstream step would cost O(n) per step on long chains.
func stepRefs(ps *plan.Step, hosts []spec.HostDecl, cond *expr.Condition) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(refs []expr.Ref) {
		for _, r := range refs {
			if r.Kind == "steps" && !seen[r.Name] {
				seen[r.Name] = true
				out = append(out, r.Name)
			}
		}
	}
	walk := func(v any) error {
		refs, err := expr.RefsIn(v)
		add(refs)
		return err
	}
	if err := walk(ps.Spec.With); err != nil {
		return nil, fmt.Errorf("with: %w", err)
	}
	for _, kv := range ps.Spec.Env {
		if err := walk(kv.Value); err != nil {
			return nil, fmt.Errorf("env %s: %w", kv.Key, err)
		}
	}
	if err := walk(ps.Spec.Host); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	// A step on a declared host resolves the host's address, which usually
	// names the provision step's outputs.
	for _, h := range hosts {
		if h.Name == ps.Spec.Host {
			if err := walk(h.Address); err != nil {
				return nil, fmt.Errorf("address of host %s: %w", h.Name, err)
			}
		}
	}
	add(cond.Refs())
	return out, nil
}

func kvMap(kvs []spec.KV) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// interpolateString evaluates one string template.
func interpolateString(s string, sc *expr.Scope) (string, error) {
	t, err := expr.Parse(s)
	if err != nil {
		return "", err
	}
	if t.IsLiteral() {
		return s, nil
	}
	return t.Eval(sc)
}

// resolved is what a step attempt gets after its expressions are evaluated.
type resolved struct {
	with  map[string]any
	env   map[string]string // spec env, then step env
	host  pipeline.Host
	pool  string // card pool key
	cards []int  // granted card indices
}

// resolve evaluates a step's env, with and host against sc. sc.Env holds the
// runner's env plus the spec's env; the step's own env is added in order so
// later entries and with see earlier ones.
func (e *engine) resolve(ps *plan.Step, sc *expr.Scope) (*resolved, error) {
	r := &resolved{env: maps.Clone(e.specEnv)}
	if len(ps.Spec.Env) > 0 {
		scEnv := maps.Clone(sc.Env)
		for _, kv := range ps.Spec.Env {
			sc2 := *sc
			sc2.Env = scEnv
			v, err := interpolateString(kv.Value, &sc2)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", kv.Key, err)
			}
			r.env[kv.Key] = v
			scEnv[kv.Key] = v
		}
		sc.Env = scEnv
	}
	if ps.Spec.With != nil {
		w, err := expr.Interpolate(ps.Spec.With, sc)
		if err != nil {
			return nil, fmt.Errorf("with: %w", err)
		}
		m, ok := w.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("with: got %T, want a mapping", w)
		}
		r.with = m
	} else {
		r.with = map[string]any{}
	}
	h, pool, err := e.resolveHost(ps.Spec.Host, sc)
	if err != nil {
		return nil, err
	}
	r.host, r.pool = h, pool
	return r, nil
}

// resolveHost maps a step's host: a declared host name (its address may be an
// expression), "" or "local" for this machine, else a literal address. The
// second result keys the card pool: declared hosts share cards by name.
func (e *engine) resolveHost(raw string, sc *expr.Scope) (pipeline.Host, string, error) {
	name, err := interpolateString(raw, sc)
	if err != nil {
		return pipeline.Host{}, "", fmt.Errorf("host: %w", err)
	}
	if name == "" {
		name = "local"
	}
	if d, ok := e.hosts[name]; ok {
		addr, err := interpolateString(d.Address, sc)
		if err != nil {
			return pipeline.Host{}, "", fmt.Errorf("address of host %s: %w", name, err)
		}
		if addr == "" {
			addr = "local"
		}
		// Cards are counted per machine: a host whose address is an
		// expression may be a different machine in each matrix copy (a
		// stack per fold).
		return pipeline.Host{Name: d.Name, Address: addr, Cards: d.Cards}, "host:" + d.Name + "@" + addr, nil
	}
	if name == "local" {
		return pipeline.Host{Name: "local", Address: "local"}, "host:local", nil
	}
	return pipeline.Host{Name: name, Address: name}, "addr:" + name, nil
}
