package plan

import (
	"testing"

	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// TestResumeFleetRerunsOnlyTheFailedFold: each fold has its own stack,
// deleted by its own teardown. After fold 1 failed (and every teardown
// ran), a resume re-provisions fold 1 only: a teardown cleans its paired
// copy, and the summary over the folds' outputs does not lead to any
// teardown, so it needs no stack.
func TestResumeFleetRerunsOnlyTheFailedFold(t *testing.T) {
	src := `version: 1
name: fleet
steps:
  - {id: up, type: shell, matrix: {fold: [0, 1, 2]}, with: {run: "true"}}
  - {id: work, type: shell, needs: [up], matrix: {fold: [0, 1, 2]}, with: {run: "true"}}
  - {id: down, type: shell, needs: [work], if: always(), cleans: [up], matrix: {fold: [0, 1, 2]}, with: {run: "true"}}
  - {id: combine, type: shell, needs: [work], with: {run: "true"}}
`
	s, err := spec.NewLoader(spec.Options{}).Parse("fleet.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	prev := &state.Run{Steps: map[string]*state.Step{}}
	for _, st := range p.Steps {
		prev.Steps[st.ID] = &state.Step{ID: st.ID, Status: state.StepSucceeded, DefDigest: st.DefDigest}
	}
	prev.Steps["work-fold-1"].Status = state.StepFailed
	prev.Steps["combine"].Status = state.StepSkipped
	if err := p.ForResume(prev, ""); err != nil {
		t.Fatal(err)
	}
	want := map[string]Action{"up-fold-0": Reuse, "work-fold-0": Reuse, "down-fold-0": Reuse,
		"up-fold-1": Run, "work-fold-1": Run, "down-fold-1": Run,
		"up-fold-2": Reuse, "work-fold-2": Reuse, "down-fold-2": Reuse, "combine": Run}
	for id, a := range want {
		if st := p.Step(id); st.Action != a {
			t.Errorf("%s: %s (%s), want %s", id, st.Action, st.Reason, a)
		}
	}
	if r := p.Step("up-fold-1").Reason; r != "cleaned up by down-fold-1 in the previous run" {
		t.Errorf("up-fold-1 reason %q", r)
	}
}
