package main

import (
	"fmt"
	"io"
	"maps"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/expr"
	"github.com/gpipe/gpipe/pipeline/plan"
)

// printScripts prints the script every host step would run. Values only known
// at run time (step outputs, env) show as <steps.provision.outputs.host>.
func (a *App) printScripts(w io.Writer, p *plan.Plan) error {
	reg := a.registry()
	for _, ps := range p.Steps {
		runner, ok := reg.Lookup(ps.Spec.Type)
		if !ok {
			return fmt.Errorf("step %s: unknown type %s", ps.ID, ps.Spec.Type)
		}
		renderer, ok := runner.(pipeline.ScriptRenderer)
		if !ok {
			fmt.Fprintf(w, "\n# ---- %s (%s): runs in gpipe, no script\n", ps.ID, ps.Spec.Type)
			continue
		}
		sc := placeholderScope(p, ps)
		with, err := expr.Interpolate(ps.Spec.With, sc)
		if err != nil {
			return fmt.Errorf("step %s: %w", ps.ID, err)
		}
		withMap, _ := with.(map[string]any)
		sr := &pipeline.StepRun{
			RunID: "<run.id>", StepID: ps.ID, Type: ps.Spec.Type, Attempt: 1, With: withMap,
			Host: pipeline.Host{Name: "local", Address: "local"},
		}
		if d, ok := runner.(pipeline.CardDemander); ok {
			for i := 0; i < d.Cards(withMap); i++ {
				sr.Cards = append(sr.Cards, i)
			}
		}
		script, err := renderer.Script(sr)
		if err != nil {
			return fmt.Errorf("render script of step %s: %w", ps.ID, err)
		}
		fmt.Fprintf(w, "\n# ---- %s (%s)\n%s", ps.ID, ps.Spec.Type, script)
	}
	return nil
}

// placeholderScope resolves what a plan knows (params, matrix values) and
// names what it cannot know yet.
func placeholderScope(p *plan.Plan, ps *plan.Step) *expr.Scope {
	sc := &expr.Scope{
		Params: maps.Clone(p.Params),
		Matrix: map[string]string{},
		Run:    map[string]string{"id": "<run.id>"},
		Env:    map[string]string{},
		Steps:  map[string]map[string]string{},
	}
	maskSecretParams(p.Spec, sc.Params) // a printed script shows a secret as ***
	for _, kv := range ps.Matrix {
		sc.Matrix[kv.Key] = kv.Value
	}
	refs, _ := expr.RefsIn(ps.Spec.With) // the spec was validated
	for _, r := range refs {
		switch r.Kind {
		case "steps":
			if sc.Steps[r.Name] == nil {
				sc.Steps[r.Name] = map[string]string{}
			}
			// Path-shaped, since most outputs that feed scripts are paths
			// and the steps check those are absolute.
			sc.Steps[r.Name][r.Key] = fmt.Sprintf("/<steps.%s.outputs.%s>", r.Name, r.Key)
		case "env":
			sc.Env[r.Name] = "<env." + r.Name + ">"
		}
	}
	return sc
}
