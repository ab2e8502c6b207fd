package main

import (
	"context"
	"slices"
	"strings"

	"github.com/gpipe/gpipe/internal/suggest"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// planStepNames are the names a user may give where a step is expected: the
// spec's step ids (a matrix step's id meaning all its copies) and the
// expanded ids of the copies, spec order.
func planStepNames(p *plan.Plan) []string {
	var names []string
	for i := range p.Spec.Steps {
		id := p.Spec.Steps[i].ID
		names = append(names, id)
		for _, inst := range p.Instances(id) {
			if inst != id {
				names = append(names, inst)
			}
		}
	}
	return names
}

// resolveStepIDs turns a step name typed for a run into the run's step ids:
// the step itself, or every copy of a matrix step named by its spec id
// (train → train-fold-0 … train-fold-4), which the run's spec snapshot
// knows. An unknown name is a usage error with a did-you-mean.
func (a *App) resolveStepIDs(ctx context.Context, st state.Store, run *state.Run, typed string) ([]string, error) {
	if run.Steps[typed] != nil {
		return []string{typed}, nil
	}
	names := slices.Clone(run.Order)
	if sp := a.runSpec(ctx, st, run); sp != nil {
		for i := range sp.Steps {
			s := &sp.Steps[i]
			insts, err := spec.Expand(s)
			if err != nil {
				continue
			}
			var ids []string
			for _, in := range insts {
				if run.Steps[in.ID] != nil {
					ids = append(ids, in.ID)
				}
			}
			if s.ID == typed && len(ids) > 0 {
				return ids, nil
			}
			if !slices.Contains(names, s.ID) {
				names = append(names, s.ID)
			}
		}
	}
	return nil, usagef("run %s has no step %q%s (steps: %s)", run.ID, typed,
		suggest.DidYouMean(typed, names), strings.Join(run.Order, ", "))
}

// runSpec is the run's spec snapshot, or nil when it cannot be read (the
// caller then knows only the expanded ids of the state).
func (a *App) runSpec(ctx context.Context, st state.Store, run *state.Run) *spec.Spec {
	sp, err := a.snapshotSpec(ctx, st, run.ID, run.SpecFile, run.SpecDigest)
	if err != nil {
		return nil
	}
	return sp
}

// stepFilter is a set of step ids, nil meaning every step.
type stepFilter map[string]bool

func newStepFilter(ids []string) stepFilter {
	if ids == nil {
		return nil
	}
	f := stepFilter{}
	for _, id := range ids {
		f[id] = true
	}
	return f
}

func (f stepFilter) has(id string) bool { return f == nil || f[id] }
