package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

func folds(s spec.Step, n int) spec.Step {
	vals := make([]any, n)
	for i := range vals {
		vals[i] = i
	}
	s.Matrix = []spec.MatrixAxis{{Name: "fold", Values: vals}}
	return s
}

// byPrefix dispatches on the spec step id of a matrix copy (up-fold-2 → up).
func byPrefix(b map[string]fn) fn {
	return func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		base, _, _ := strings.Cut(sr.StepID, "-fold-")
		if f := b[base]; f != nil {
			return f(ctx, sr)
		}
		return pipeline.Result{}, nil
	}
}

// fleet is up (holds a stack) → work → down (cleans up, always) per fold.
func fleet(n, limit int) *spec.Spec {
	up := folds(step("up"), n)
	up.Holds = "stacks"
	down := folds(withIf(step("down", "work"), "always()"), n)
	down.Cleans = []string{"up"}
	s := newSpec(up, folds(step("work", "up"), n), down)
	s.Resources = []spec.Resource{{Name: "stacks", Limit: limit}}
	return s
}

// TestHoldsLimitsStacksUntilTheirCleanup: with stacks: 2, no more than two
// folds' stacks exist at once, counting from each provision's start to its
// own teardown's end (not to the end of the provision step), and all five
// folds run.
func TestHoldsLimitsStacksUntilTheirCleanup(t *testing.T) {
	var mu sync.Mutex
	alive, most, started := 0, 0, 0
	h := newHarness(t, nil)
	h.reg["fake"] = byPrefix(map[string]fn{
		"up": func(context.Context, *pipeline.StepRun) (pipeline.Result, error) {
			mu.Lock()
			alive++
			started++
			most = max(most, alive)
			mu.Unlock()
			return pipeline.Result{}, nil
		},
		// A fold's work lasts until a second stack exists (or no fold is
		// left to make one), so that reaching the limit does not depend on
		// how fast the scheduler is.
		"work": func(ctx context.Context, _ *pipeline.StepRun) (pipeline.Result, error) {
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				mu.Lock()
				done := alive >= 2 || started == 5
				mu.Unlock()
				if done {
					break
				}
				time.Sleep(time.Millisecond)
			}
			return pipeline.Result{}, nil
		},
		"down": func(context.Context, *pipeline.StepRun) (pipeline.Result, error) {
			mu.Lock()
			alive--
			mu.Unlock()
			return pipeline.Result{}, nil
		},
	})
	if err := h.run(t.Context(), h.plan(fleet(5, 2)), Options{}); err != nil {
		t.Fatal(err)
	}
	if most != 2 {
		t.Errorf("at most %d stacks at once, want 2 (the limit, reached)", most)
	}
	for i := range 5 {
		h.wantStatus(map[string]state.StepStatus{"down-fold-" + itoa(i): state.StepSucceeded})
	}
}

// TestKeepGoingFinishesOtherFolds: with fail_fast: false a failing fold
// stops only what needs it: its cleanup runs, the other folds finish (one
// still running when the failure happens is not cancelled), a step that
// needs every fold is skipped, and the run fails naming the fold.
func TestKeepGoingFinishesOtherFolds(t *testing.T) {
	failed := make(chan struct{})
	h := newHarness(t, nil)
	h.reg["fake"] = byPrefix(map[string]fn{
		"work": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			switch sr.StepID {
			case "work-fold-1":
				defer close(failed)
				return pipeline.Result{}, errors.New("fold 1 diverged")
			case "work-fold-0":
				if !recv(ctx, failed) {
					return pipeline.Result{}, context.Cause(ctx)
				}
			}
			return pipeline.Result{}, nil
		},
	})
	sp := fleet(3, 3)
	sp.KeepGoing = true
	sp.Steps = append(sp.Steps, step("combine", "work"))
	err := h.run(t.Context(), h.plan(sp), Options{})
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Steps) != 1 || fe.Steps[0] != "work-fold-1" {
		t.Fatalf("err = %v, want the run failed by work-fold-1", err)
	}
	h.wantStatus(map[string]state.StepStatus{"work-fold-0": state.StepSucceeded, "work-fold-2": state.StepSucceeded,
		"down-fold-0": state.StepSucceeded, "down-fold-1": state.StepSucceeded, "down-fold-2": state.StepSucceeded,
		"combine": state.StepSkipped})
}

// TestPairedHostPerFold: a host whose address reads steps.up.outputs.host
// is, in each fold, the machine that fold's up made, and cards are counted
// per machine: two one-card steps of different folds run at once on a host
// that declares one card.
func TestPairedHostPerFold(t *testing.T) {
	started := make(chan struct{})
	var mu sync.Mutex
	addrs := map[string]string{}
	h := newHarness(t, nil)
	h.reg["fake"] = byPrefix(map[string]fn{
		"up": func(_ context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			return pipeline.Result{Outputs: map[string]string{"host": "ssm:i-" + sr.StepID}}, nil
		},
	})
	h.reg["carded"] = carded{func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		mu.Lock()
		addrs[sr.StepID] = sr.Host.Address
		mu.Unlock()
		if sr.StepID == "train-fold-0" {
			if !recv(ctx, started) {
				return pipeline.Result{}, context.Cause(ctx)
			}
		} else {
			close(started)
		}
		return pipeline.Result{}, nil
	}}
	train := folds(spec.Step{ID: "train", Type: "carded", Needs: []string{"up"}, Host: "box", With: map[string]any{"cards": 1}}, 2)
	sp := newSpec(folds(step("up"), 2), train)
	sp.Hosts = []spec.HostDecl{{Name: "box", Address: "${{ steps.up.outputs.host }}", Cards: 1}}
	if err := h.run(t.Context(), h.plan(sp), Options{}); err != nil {
		t.Fatal(err)
	}
	if addrs["train-fold-0"] != "ssm:i-up-fold-0" || addrs["train-fold-1"] != "ssm:i-up-fold-1" {
		t.Errorf("hosts %v", addrs)
	}
}

// TestHoldsDeadlockFails: a cleanup that needs a step waiting for the unit
// its own holder has can never free it; the waiting step fails saying so
// rather than the run hanging or succeeding.
func TestHoldsDeadlockFails(t *testing.T) {
	a, b := step("a"), step("b")
	a.Holds, b.Holds = "stacks", "stacks"
	down := withIf(step("down", "a", "b"), "always()")
	down.Cleans = []string{"a"}
	sp := newSpec(a, b, down)
	sp.Resources = []spec.Resource{{Name: "stacks", Limit: 1}}
	h := newHarness(t, behaviours{})
	err := h.run(t.Context(), h.plan(sp), Options{})
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Steps) != 1 || fe.Steps[0] != "b" ||
		!strings.Contains(fe.Errors[0].Error(), "no running step will release one") {
		t.Fatalf("err = %v", err)
	}
	h.wantStatus(map[string]state.StepStatus{"a": state.StepSucceeded, "down": state.StepSucceeded})
}

func itoa(i int) string { return string(rune('0' + i)) }

// TestHoldsWaitersSkippedAfterFailure: with fail-fast, a fold waiting for a
// unit when another fold fails never starts; it is skipped for that failure
// (not reported as a deadlock), every started fold's cleanup runs, and the
// cleanups of folds that never started are skipped: they made nothing.
func TestHoldsWaitersSkippedAfterFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.reg["fake"] = byPrefix(map[string]fn{
		"work": func(context.Context, *pipeline.StepRun) (pipeline.Result, error) {
			return pipeline.Result{}, errors.New("diverged")
		},
	})
	err := h.run(t.Context(), h.plan(fleet(3, 1)), Options{})
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Steps) != 1 || fe.Steps[0] != "work-fold-0" {
		t.Fatalf("err = %v, want work-fold-0 alone failed", err)
	}
	h.wantStatus(map[string]state.StepStatus{"down-fold-0": state.StepSucceeded, "up-fold-1": state.StepSkipped,
		"up-fold-2": state.StepSkipped, "down-fold-1": state.StepSkipped, "down-fold-2": state.StepSkipped})
	if r := h.stepState("down-fold-1").Reason; r != "nothing to clean: the steps it cleans never started" {
		t.Errorf("down-fold-1 reason %q", r)
	}
}
