package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/gpipe/gpipe/pipeline/secret"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// gatherSecrets fills in the secret params that -p did not give, from
// GPIPE_SECRET_<NAME> or the spec's from: (read with the runner's AWS
// credentials).
func (a *App) gatherSecrets(ctx context.Context, sp *spec.Spec, given map[string]string) (map[string]string, error) {
	return secret.Gather(ctx, sp, given, a.Getenv, a.cloud().Secrets())
}

// secretPlaceholders fills in, for commands that only show a plan, each
// secret param that has no value and no default with a value of its type: a
// plan never needs a secret, and shows every secret as *** (maskSecretParams).
func secretPlaceholders(sp *spec.Spec, given map[string]string) map[string]string {
	out := maps.Clone(given)
	for _, p := range sp.Params {
		if _, ok := out[p.Name]; ok || !p.Secret || p.Default != nil {
			continue
		}
		switch {
		case len(p.Enum) > 0:
			out[p.Name] = fmt.Sprint(p.Enum[0])
		case p.Type == "integer", p.Type == "number":
			out[p.Name] = "0"
		case p.Type == "boolean":
			out[p.Name] = "false"
		default:
			out[p.Name] = secret.Mask
		}
	}
	return out
}

// maskSecretParams replaces the secret params' values in resolved params by
// ***, for what only shows them (plan --scripts).
func maskSecretParams(sp *spec.Spec, params map[string]string) {
	for _, p := range sp.Params {
		if _, ok := params[p.Name]; ok && p.Secret {
			params[p.Name] = secret.Mask
		}
	}
}

// secretParamsGiven names the secret params that have a value in given (not
// a default): a resume must be given those again.
func secretParamsGiven(sp *spec.Spec, given map[string]string) []string {
	var names []string
	for _, p := range sp.Params {
		if _, ok := given[p.Name]; ok && p.Secret {
			names = append(names, p.Name)
		}
	}
	return names
}

// onlySecrets keeps the secret params of given (what run --resume-existing
// passes on: a resume keeps the run's other params).
func onlySecrets(sp *spec.Spec, given map[string]string) map[string]string {
	out := map[string]string{}
	for _, p := range sp.Params {
		if v, ok := given[p.Name]; ok && p.Secret {
			out[p.Name] = v
		}
	}
	return out
}

// resumeParams is what a resumed run's params are: the saved ones, and the
// secret ones given again (-p on resume > GPIPE_SECRET_<NAME> > from:). A
// secret the run was given, or one without a default, that is found nowhere
// is an error saying how to give it. A -p of a param that is not secret is
// refused unless it repeats the run's value: a resume keeps the params the
// run started with.
func (a *App) resumeParams(ctx context.Context, sp *spec.Spec, prev *state.Run, flags map[string]string, planOnly bool) (map[string]string, error) {
	// A run saved by an older gpipe may hold secret values in its params:
	// they come last, after every source of a value given now.
	given := secret.Public(sp, prev.Params)
	if given == nil {
		given = map[string]string{}
	}
	for _, k := range slices.Sorted(maps.Keys(flags)) {
		i := slices.IndexFunc(sp.Params, func(p spec.Param) bool { return p.Name == k })
		switch {
		case i < 0:
			return nil, usagef("-p %s: the spec of run %s declares no such param", k, prev.ID)
		case !sp.Params[i].Secret && given[k] != flags[k]:
			// The same value is fine (the GitHub action passes all params).
			return nil, usagef("-p %s: only secret params are given on resume; run %s keeps the params it started with (%s=%s)",
				k, prev.ID, k, given[k])
		}
		given[k] = flags[k]
	}
	if planOnly {
		// needs no secret, not even a saved one
		return a.fillParams(ctx, sp, given, paramsToShow)
	}
	given, err := a.fillParams(ctx, sp, given, paramsToRun)
	if err != nil {
		return nil, err
	}
	for k, v := range prev.Params {
		if _, ok := given[k]; !ok {
			given[k] = v
		}
	}
	for _, p := range sp.Params {
		if _, ok := given[p.Name]; ok || !p.Secret || (p.Default != nil && !slices.Contains(prev.SecretParams, p.Name)) {
			continue
		}
		return nil, &spec.ParamError{Name: p.Name, Reason: fmt.Sprintf(
			"secret, so run %s did not save its value: give it again with gpipe resume -p %s=VALUE, "+
				"or in the environment variable %s (or declare from: ssm:/NAME or from: secretsmanager:ID in the spec)",
			prev.ID, p.Name, secret.EnvName(p.Name))}
	}
	return given, nil
}

// scrubSecretParams moves secret params' values that an older gpipe saved in
// a run's Params out of it, keeping only their names.
func scrubSecretParams(sp *spec.Spec, r *state.Run) {
	for _, p := range sp.Params {
		if _, ok := r.Params[p.Name]; ok && p.Secret {
			delete(r.Params, p.Name)
			if !slices.Contains(r.SecretParams, p.Name) {
				r.SecretParams = append(r.SecretParams, p.Name)
			}
		}
	}
}
