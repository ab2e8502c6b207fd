package plan

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/spec"
)

// holdsSpec is a fleet: a stack per fold (provision holds a unit of stacks
// until its teardown is done), trainings, and a final step over all folds.
// TEARDOWN is the teardown's matrix and needs.
const holdsSpec = `version: 1
name: fleet
fail_fast: false
resources: {stacks: LIMIT}
steps:
  - id: provision
    type: shell
    holds: stacks
    matrix: {fold: [0, 1, 2]}
    with: {run: "true"}
  - id: train
    type: shell
    needs: [provision]
    matrix: {fold: [0, 1, 2]}
    with: {run: "true"}
  - id: teardown
    type: shell
    if: always()
    cleans: [provision]
TEARDOWN
    with: {run: "true"}
  - id: combine
    type: shell
    needs: [train]
    with: {run: "true"}
`

// TestPlanRefusesHoldsDeadlock: a limit the run can never live with is
// refused by plan.New, naming the resource, the step that could never
// start, the holders and the fix; limits that let the run through pass.
func TestPlanRefusesHoldsDeadlock(t *testing.T) {
	perFold := "    needs: [train]\n    matrix: {fold: [0, 1, 2]}"
	afterAll := "    needs: [combine]\n    matrix: {fold: [0, 1, 2]}"
	oneTeardown := "    needs: [train]"
	for _, c := range []struct {
		name, teardown, limit string
		want                  string // "" when the plan is made
	}{
		// Each fold's teardown releases its stack: one at a time is enough.
		{"paired teardowns", perFold, "1", ""},
		// One teardown for all folds waits for every training, so every
		// stack exists at once.
		{"one teardown", oneTeardown, "2", "resources.stacks is 2, but step teardown cannot start before 3 steps that hold it have each taken a unit (provision-fold-0, provision-fold-1, provision-fold-2)"},
		{"one teardown, enough", oneTeardown, "3", ""},
		// Paired teardowns that also wait for the combined result keep
		// every stack until it is made.
		{"teardowns after combine", afterAll, "2", "step combine cannot start before 3 steps"},
		{"teardowns after combine, enough", afterAll, "3", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(strings.Replace(holdsSpec, "LIMIT", c.limit, 1), "TEARDOWN", c.teardown, 1)
			s, err := spec.NewLoader(spec.Options{}).Parse("fleet.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(s, nil)
			var de *HoldsDeadlockError
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "":
			case !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Raise resources.stacks to 3"):
				t.Fatalf("err = %v, want a deadlock saying %q", err, c.want)
			}
		})
	}
	// A holder released at its own end (nothing cleans it) never piles up.
	s, err := spec.NewLoader(spec.Options{}).Parse("x.yaml", []byte(`version: 1
name: x
resources: {slots: 1}
steps:
  - {id: a, type: shell, holds: slots, matrix: {n: [1, 2, 3]}, with: {run: "true"}}
  - {id: b, type: shell, needs: [a], with: {run: "true"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(s, nil); err != nil {
		t.Errorf("holders nobody cleans: %v", err)
	}
}

// TestShippedSpecsHoldsLive: the shipped specs with resources plan.
func TestShippedSpecsHoldsLive(t *testing.T) {
	if _, err := New(load(t, filepath.Join("..", "..", "specs", "unet-brain-5fold-fleet.yaml")), map[string]string{"results_bucket": "b"}); err != nil {
		t.Error(err)
	}
}
