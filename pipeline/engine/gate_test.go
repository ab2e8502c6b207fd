package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/memory"
)

// countingStore counts the saves that reach the store.
type countingStore struct {
	slowStore
	saves atomic.Int64
}

func (s *countingStore) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	s.saves.Add(1)
	return s.slowStore.Save(ctx, runID, doc, v)
}

// A step's outcome is not awaited by the step: its dependents start once the
// store has it, and steps that do not depend on it run meanwhile, their
// outcomes sharing saves. With a post delay of an hour, the run ends only if
// the scheduler hurries the journal whenever a slot would otherwise idle;
// every step checks that the store already says its needs succeeded.
func TestDependentsStartOnceTheirNeedsAreStored(t *testing.T) {
	store := &countingStore{slowStore: slowStore{memory.New(t.Name()), 2 * time.Millisecond}}
	j, err := state.Create(t.Context(), store, &state.Run{ID: "run-1", Pipeline: "test"},
		state.LeaseOptions{Owner: "test", PostDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close(context.WithoutCancel(t.Context())) })

	// Three layers of eight: each step of a layer needs two of the last,
	// and a chain of four runs beside them (a slot of its own half the time).
	var steps []spec.Step
	for l := 0; l < 3; l++ {
		for i := 0; i < 8; i++ {
			s := step(fmt.Sprintf("l%d-%d", l, i))
			if l > 0 {
				s.Needs = []string{fmt.Sprintf("l%d-%d", l-1, i), fmt.Sprintf("l%d-%d", l-1, (i+3)%8)}
			}
			steps = append(steps, s)
		}
	}
	for i := 0; i < 4; i++ {
		s := step(fmt.Sprintf("chain-%d", i))
		if i > 0 {
			s.Needs = []string{fmt.Sprintf("chain-%d", i-1)}
		}
		steps = append(steps, s)
	}
	sp := newSpec(steps...)
	needs := map[string][]string{}
	for _, s := range sp.Steps {
		needs[s.ID] = s.Needs
	}
	var mu sync.Mutex
	ran := 0
	check := fn(func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		run := stored(t, store, "run-1")
		for _, need := range needs[sr.StepID] {
			if st := run.Steps[need]; st == nil || st.Status != state.StepSucceeded {
				t.Errorf("step %s started before the store had its need %s succeeded (%+v)", sr.StepID, need, st)
			}
		}
		mu.Lock()
		ran++
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // some work: steps end apart
		return pipeline.Result{Outputs: map[string]string{"x": "1"}}, nil
	})
	p, err := plan.New(sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := Run(ctx, p, j, Options{Registry: registry{"fake": check}, Concurrency: 2}); err != nil {
		t.Fatal(err)
	}
	if ran != len(steps) {
		t.Fatalf("%d steps ran, want %d", ran, len(steps))
	}
	for id, st := range stored(t, store, "run-1").Steps {
		if st.Status != state.StepSucceeded {
			t.Errorf("step %s stored %s", id, st.Status)
		}
	}
	// Two saves per step (start and end) is what awaiting each outcome
	// would cost at most; sharing saves must do better than one per step.
	t.Logf("%d saves for %d steps", store.saves.Load(), len(steps))
	if n := store.saves.Load(); n >= int64(len(steps)) {
		t.Errorf("%d saves for %d steps: outcomes did not share saves", n, len(steps))
	}
}
