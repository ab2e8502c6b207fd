package plan

import (
	"fmt"
	"maps"
	"strings"

	"github.com/gpipe/gpipe/pipeline/state"
)

// UnknownStepError says --from named a step the plan does not have.
type UnknownStepError struct {
	Step  string
	Known []string // spec step ids
}

func (e *UnknownStepError) Error() string {
	return fmt.Sprintf("no step %q in the pipeline (steps: %s)", e.Step, strings.Join(e.Known, ", "))
}

// ForResume decides, for a plan rebuilt from a run's saved spec (or an edited
// one), which steps a resume reuses and which it runs again, and sets each
// step's Reason:
//
//   - from (a spec step id, meaning all its matrix copies, or one expanded id)
//     forces that step and everything downstream of it to run;
//   - a step whose definition changed, or that the previous run did not have,
//     or that needed a step the plan no longer has (a removed matrix copy),
//     runs, and so does everything downstream of it;
//   - a step that a succeeded cleanup step cleans (spec `cleans`) runs, and so
//     does everything downstream of it, when a step that runs anyway needs it
//     (directly or not): what it made is gone. When nothing else runs (a
//     succeeded run resumed) it is reused: re-provisioning an instance only
//     to tear it down again would cost money and do nothing;
//   - a step that succeeded before is reused, its outputs restored;
//   - anything else (failed, cancelled, skipped, never started, running when the
//     runner died) runs; a step that was running and saved resume data gets
//     it back (Reattach) to reattach to its work or stop its leftovers.
//
// Steps of prev that the plan no longer has are ignored.
func (p *Plan) ForResume(prev *state.Run, from string) error {
	if prev == nil {
		return fmt.Errorf("plan for resume: no previous run state")
	}
	forced := map[string]string{} // id → the step that forced it
	if from != "" {
		roots := p.instances[from]
		if roots == nil && p.byID[from] != nil {
			roots = []string{from}
		}
		if roots == nil {
			known := make([]string, 0, len(p.Spec.Steps))
			for i := range p.Spec.Steps {
				known = append(known, p.Spec.Steps[i].ID)
			}
			return fmt.Errorf("plan for resume --from: %w", &UnknownStepError{Step: from, Known: known})
		}
		for _, id := range roots {
			forced[id] = ""
		}
		for _, id := range p.graph.Descendants(roots...) {
			if _, ok := forced[id]; !ok {
				forced[id] = from
			}
		}
	}

	// A cleanup that succeeded destroyed what the steps it cleans made: they
	// run again, and everything after them follows through needs.
	cleaned := map[string]string{} // id → the cleanup step
	for _, s := range p.Steps {
		if ps := prev.Steps[s.ID]; ps != nil && ps.Released != nil {
			cleaned[s.ID] = "gpipe teardown"
		}
	}
	for _, s := range p.Steps {
		if ps := prev.Steps[s.ID]; ps == nil || ps.Status != state.StepSucceeded || len(s.Spec.Cleans) == 0 {
			continue
		}
		for _, target := range s.Spec.Cleans {
			// A matrix cleanup cleans its paired copies, as needs pair up:
			// teardown-fold-2 deleted provision-fold-2's stack, no other.
			for _, id := range p.PairedCopies(s, target) {
				cleaned[id] = s.ID
			}
		}
	}

	// A cleaned step reruns on demand: start with none, and add the cleaned
	// steps that a rerun step (other than their own cleanup) depends on,
	// until nothing changes. Only steps the cleanup comes after use what it
	// destroyed: a step that does not lead to the cleanup (a summary over
	// the folds' outputs, beside each fold's teardown) reruns from the
	// outputs saved, without re-provisioning. `gpipe teardown` has no place
	// in the graph: everything is in its scope.
	scopes := map[string]map[string]bool{}
	inScope := func(id, by string) bool {
		if p.byID[by] == nil {
			return true
		}
		if scopes[by] == nil {
			scopes[by] = map[string]bool{}
			for _, a := range p.graph.Ancestors(by) {
				scopes[by][a] = true
			}
		}
		return scopes[by][id]
	}
	active := map[string]string{}
	for {
		p.decide(prev, from, forced, active)
		grown := false
		for _, s := range p.Steps {
			if s.Action != Run {
				continue
			}
			for _, up := range p.graph.Ancestors(s.ID) {
				by, ok := cleaned[up]
				if !ok || by == s.ID || !inScope(s.ID, by) {
					continue
				}
				if _, done := active[up]; !done {
					active[up] = by
					grown = true
				}
			}
		}
		if !grown {
			return nil
		}
	}
}

// decide sets each step's action and reason for one round of ForResume;
// cleaned holds the cleaned steps that must rerun.
func (p *Plan) decide(prev *state.Run, from string, forced, cleaned map[string]string) {
	// cause maps a rerun step to the step whose rerun it follows from, so a
	// long chain says "downstream of train" rather than of its direct need.
	cause := map[string]string{}
	for _, s := range p.Steps {
		s.Action, s.Reason, s.Outputs, s.Reattach = Run, "", nil, false
		ps := prev.Steps[s.ID]
		if by, ok := forced[s.ID]; ok {
			if by == "" {
				s.Reason = "--from " + from
			} else {
				s.Reason = "downstream of " + by + " (--from)"
			}
			cause[s.ID] = from
			continue
		}
		if by, ok := cleaned[s.ID]; ok {
			s.Reason = "cleaned up by " + by + " in the previous run"
			cause[s.ID] = s.ID
			continue
		}
		if ps == nil {
			s.Reason = "new step"
			cause[s.ID] = s.ID
			continue
		}
		if ps.DefDigest != s.DefDigest {
			s.Reason = "definition changed"
			cause[s.ID] = s.ID
			continue
		}
		if gone := goneNeed(ps, p); gone != "" {
			// Its definition is the same, but what it consumed is not: a
			// matrix copy it needed was removed (`needs: [train]` over fewer
			// folds), so its outputs describe inputs the pipeline no longer has.
			s.Reason = "needed " + gone + ", which the pipeline no longer has"
			cause[s.ID] = s.ID
			continue
		}
		if up := firstRerunNeed(s, p, cause); up != "" {
			s.Reason = "downstream of " + up
			cause[s.ID] = up
			continue
		}
		switch ps.Status {
		case state.StepSucceeded:
			s.Action = Reuse
			s.Reason = "succeeded in previous run"
			s.Outputs = maps.Clone(ps.Outputs)
			if s.Outputs == nil {
				s.Outputs = map[string]string{}
			}
			continue
		case state.StepRunning:
			s.Reason = "running when the previous runner stopped"
			if prev.Status == state.RunDetached {
				// The runner left it running on purpose (gpipe --detach-after).
				s.Reason = "detached while running"
			}
			if len(ps.Resume) > 0 {
				// The step type decides what its data means: a remote
				// step reattaches to its command, a local one stops what
				// the dead runner left running and starts over.
				s.Reattach = true
				s.Reason += "; resuming with its saved data"
			}
		case state.StepPending, "":
			s.Reason = "not started in previous run"
		default:
			s.Reason = string(ps.Status) + " in previous run"
		}
		cause[s.ID] = s.ID
	}
}

// firstRerunNeed returns the root cause of the first need of s that runs
// again, or "". Needs precede s in p.Steps, so their decisions are made.
func firstRerunNeed(s *Step, p *Plan, cause map[string]string) string {
	for _, n := range s.Needs {
		if p.byID[n].Action == Run {
			return cause[n]
		}
	}
	return ""
}

// goneNeed returns a step the previous run's step needed that the plan no
// longer has, or "".
func goneNeed(prev *state.Step, p *Plan) string {
	for _, n := range prev.Needs {
		if p.byID[n] == nil {
			return n
		}
	}
	return ""
}

// Counts returns how many steps run and how many are reused.
func (p *Plan) Counts() (run, reuse int) {
	for _, s := range p.Steps {
		if s.Action == Reuse {
			reuse++
		} else {
			run++
		}
	}
	return run, reuse
}
