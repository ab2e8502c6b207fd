package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/gpipe/gpipe/pipeline/expr"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps"
)

// The one path from a spec to a plan, for every command: a spec file
// (loadSpec) or a run's saved copy (snapshotSpec), then the params given
// with -p filled in for what the command does with them (fillParams), then
// the plan (plan.New resolves the params against their declarations).

// paramUse says what a command does with its params, which decides how the
// secret params and the missing ones are filled in.
type paramUse int

const (
	// paramsToRun reads the secret params -p did not give, from
	// GPIPE_SECRET_<NAME> or the spec's from:.
	paramsToRun paramUse = iota
	// paramsToShow is for a plan that is only shown (run --dry-run, resume
	// --plan): no secret is needed, or read.
	paramsToShow
	// paramsToShowAll is paramsToShow that also shows a required string
	// param that was not given as a placeholder, and says so (gpipe plan).
	paramsToShowAll
)

// loader is the spec loader, with what the step types add to the spec
// language (steps.SpecOptions).
func (a *App) loader() *spec.Loader {
	if a.specs == nil {
		a.specs = spec.NewLoader(steps.SpecOptions())
	}
	return a.specs
}

// loadSpec loads and validates a spec, printing every error (and, inside
// GitHub Actions, annotations) before returning.
func (a *App) loadSpec(ctx context.Context, path string) (*spec.Spec, error) {
	sp, err := a.loader().LoadContext(ctx, path)
	if err != nil && ctx.Err() != nil {
		return nil, context.Cause(ctx) // says which signal
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("spec %s: no such file", path)
	}
	if err != nil {
		var errs spec.Errors
		if errors.As(err, &errs) {
			a.reportSpecErrors(errs)
			return nil, reported{errs}
		}
		return nil, err
	}
	return sp, nil
}

// snapshotSpec loads the spec a run was saved with (its snapshot, named by
// the run's spec digest); file names it in messages.
func (a *App) snapshotSpec(ctx context.Context, st state.Store, runID, file, digest string) (*spec.Spec, error) {
	src, err := st.GetBlob(ctx, runID, specBlobName(digest))
	if err != nil {
		return nil, fmt.Errorf("read spec snapshot of run %s: %w", runID, err)
	}
	return a.loader().ParseContext(ctx, file, src)
}

// loadSpecParams loads the spec at path and parses the -p flags given.
func (a *App) loadSpecParams(ctx context.Context, path string, flags []string) (*spec.Spec, map[string]string, error) {
	sp, err := a.loadSpec(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	given, err := parseParams(flags)
	if err != nil {
		return nil, nil, err
	}
	return sp, given, nil
}

// loadPlan loads the spec at path and plans it with the -p flags given,
// filled in for use. It returns the params as filled in (before their
// defaults apply): run records which secrets it was given.
func (a *App) loadPlan(ctx context.Context, path string, flags []string, use paramUse) (*plan.Plan, map[string]string, error) {
	sp, given, err := a.loadSpecParams(ctx, path, flags)
	if err != nil {
		return nil, nil, err
	}
	if given, err = a.fillParams(ctx, sp, given, use); err != nil {
		return nil, nil, err
	}
	p, err := plan.New(sp, given)
	if err != nil {
		return nil, nil, err
	}
	return p, given, nil
}

// fillParams fills in the params that given lacks, as use says.
func (a *App) fillParams(ctx context.Context, sp *spec.Spec, given map[string]string, use paramUse) (map[string]string, error) {
	if use == paramsToRun {
		return a.gatherSecrets(ctx, sp, given)
	}
	given = secretPlaceholders(sp, given)
	if use == paramsToShowAll {
		// A plan is for looking: a required string param that was not given
		// shows as a placeholder rather than stopping the plan.
		for _, prm := range sp.Params {
			if _, ok := given[prm.Name]; !ok && prm.Default == nil && prm.Type == "string" {
				given[prm.Name] = "<" + prm.Name + ">"
				fmt.Fprintf(a.Stderr, "gpipe: param %s not given; shown as <%s>\n", prm.Name, prm.Name)
			}
		}
	}
	return given, nil
}

// withParamsResolved replaces, in every step's with, the strings whose
// expressions name only params by their values, so that the IAM policy can
// scope what the spec leaves to params (results_bucket). Params that were
// not given and have no default stay expressions.
func withParamsResolved(sp *spec.Spec, given map[string]string) error {
	vals := map[string]string{}
	for _, p := range sp.Params {
		if v, ok := given[p.Name]; ok {
			vals[p.Name] = v
		} else if p.Default != nil {
			vals[p.Name] = fmt.Sprint(p.Default)
		}
	}
	for k := range given {
		if _, ok := vals[k]; !ok {
			return usagef("-p %s: the spec declares no such param", k)
		}
	}
	sc := &expr.Scope{Params: vals}
	for i := range sp.Steps {
		for k, v := range sp.Steps[i].With {
			str, ok := v.(string)
			if !ok {
				continue
			}
			t, err := expr.Parse(str)
			if err != nil || t.IsLiteral() {
				continue
			}
			if out, err := t.Eval(sc); err == nil {
				sp.Steps[i].With[k] = out
			}
		}
	}
	return nil
}
