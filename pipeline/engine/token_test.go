package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/memory"
)

// slowStore delays every Save, as a real store does (an fsync, an S3 PUT):
// a change merely posted to the journal is not yet stored when the step
// type is called.
type slowStore struct {
	state.Store
	delay time.Duration
}

func (s slowStore) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	time.Sleep(s.delay)
	return s.Store.Save(ctx, runID, doc, v)
}

// stored is the run as the store has it, not as the journal holds it.
func stored(t *testing.T, s state.Store, runID string) *state.Run {
	t.Helper()
	r, err := state.Read(context.WithoutCancel(t.Context()), s, runID)
	if err != nil {
		t.Error(err)
		return &state.Run{}
	}
	return r
}

// A step's processes carry RUNNER/STEP/N, and RUNNER is in the stored state
// before any step runs: a runner killed at any later moment, even before the
// attempt itself is saved, leaves a state by which its processes are found.
// The attempt's log reaches the store only once the attempt is saved.
func TestRunnerTokenIsStoredBeforeAnyStepRuns(t *testing.T) {
	store := slowStore{memory.New(t.Name()), 20 * time.Millisecond}
	j, err := state.Create(t.Context(), store, &state.Run{ID: "run-1", Pipeline: "test", Runners: []string{"old"}}, state.LeaseOptions{Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close(context.WithoutCancel(t.Context())) })
	var mu sync.Mutex
	tokens := map[string]bool{}
	check := fn(func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		mu.Lock()
		if tokens[sr.Token] {
			t.Errorf("step %s attempt %d: token %q used before", sr.StepID, sr.Attempt, sr.Token)
		}
		tokens[sr.Token] = true
		mu.Unlock()
		runner, rest, _ := strings.Cut(sr.Token, "/")
		if want := sr.StepID + "/" + strconv.Itoa(sr.Attempt); rest != want || runner == "" {
			t.Errorf("step %s attempt %d: token %q, want RUNNER/%s", sr.StepID, sr.Attempt, sr.Token, want)
		}
		if runners := stored(t, store, "run-1").Runners; !slices.Equal(runners, []string{"old", runner}) {
			t.Errorf("step %s runs with token %s; the stored runners are %q", sr.StepID, sr.Token, runners)
		}
		if want := []string{"old/" + sr.StepID + "/", runner + "/" + sr.StepID + "/"}; !slices.Equal(sr.Leftovers, want) {
			t.Errorf("step %s: leftovers %q, want %q", sr.StepID, sr.Leftovers, want)
		}
		// Written now, so the first flush is at the end of the attempt.
		fmt.Fprintf(sr.Log, "attempt %d\n", sr.Attempt)
		if sr.Attempt == 1 && sr.StepID == "b" {
			return pipeline.Result{}, errors.New("fails once")
		}
		return pipeline.Result{}, nil
	})
	b := step("b")
	b.Retry = spec.Retry{Attempts: 2}
	p, err := plan.New(newSpec(step("a"), b, step("c", "a")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(t.Context(), p, j, Options{Registry: registry{"fake": check}, Concurrency: 4, Sleep: func(context.Context, time.Duration) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 4 {
		t.Errorf("%d attempts ran, want 4", len(tokens))
	}
	for id, st := range stored(t, store, "run-1").Steps {
		for _, a := range st.Attempts {
			if !tokens[a.Token] {
				t.Errorf("step %s attempt %d: stored token %q is not one a step ran with", id, a.N, a.Token)
			}
		}
	}
}

// The log writer holds the attempt's output back until the attempt is saved:
// a runner that dies before leaves no log under a number that a later
// attempt, not seeing it used, takes again.
func TestLogWaitsForTheAttemptToBeSaved(t *testing.T) {
	store := memory.New(t.Name())
	if _, err := store.Create(t.Context(), "r", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	saved := make(chan struct{})
	lw := newLogWriter(t.Context(), store, "r", "s.1", func(ctx context.Context) error {
		select {
		case <-saved:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, func(string) {})
	go func() {
		time.Sleep(50 * time.Millisecond)
		if b, err := store.ReadLog(t.Context(), "r", "s.1", 0); err == nil {
			t.Errorf("log stored before the attempt was saved: %d bytes", len(b))
		}
		close(saved)
	}()
	// A chunk this big is flushed by Write itself, as soon as it may be.
	fmt.Fprintf(lw, "%s\n", strings.Repeat("x", flushSize))
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := store.ReadLog(t.Context(), "r", "s.1", 0); err != nil || len(b) != flushSize+1 {
		t.Errorf("log after the save: %d bytes, %v", len(b), err)
	}
}

// Attempt numbers go on from those of earlier runners, and every attempt
// gets the token prefixes of every runner of the run, so a host can stop what
// any of them left running of the step.
func TestAttemptGetsEveryRunnersTokenPrefix(t *testing.T) {
	var mu sync.Mutex
	var got []*pipeline.StepRun
	h := newHarness(t, behaviours{"train": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		mu.Lock()
		got = append(got, sr)
		n := len(got)
		mu.Unlock()
		if n == 1 {
			return pipeline.Result{}, errors.New("first attempt fails")
		}
		return pipeline.Result{}, nil
	}})
	train := step("train")
	train.Retry = spec.Retry{Attempts: 2}
	p := h.plan(newSpec(train))
	t0 := time.Now()
	if err := h.j.Update(t.Context(), func(r *state.Run) {
		r.Runners = []string{"r1", "r2"}
		r.Steps = map[string]*state.Step{"train": {ID: "train", Type: "fake", Status: state.StepRunning, DefDigest: p.Step("train").DefDigest,
			Attempts: []state.Attempt{{N: 1, Log: "train.1", Token: "r1/train/1", End: &t0, Error: "x"}, {N: 2, Log: "train.2", Token: "r2/train/2"}}}}
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.ForResume(h.j.Snapshot(), ""); err != nil {
		t.Fatal(err)
	}
	if err := h.run(t.Context(), p, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d attempts, want 2", len(got))
	}
	runner, _, _ := strings.Cut(got[0].Token, "/")
	want := []string{"r1/train/", "r2/train/", runner + "/train/"}
	for i, sr := range got {
		if !slices.Equal(sr.Leftovers, want) || sr.Attempt != 3+i || sr.Token != runner+"/train/"+strconv.Itoa(3+i) {
			t.Errorf("attempt %d (token %s): leftovers %q, want attempt %d with %q", sr.Attempt, sr.Token, sr.Leftovers, 3+i, want)
		}
	}
	var ns []int
	for _, a := range h.stepState("train").Attempts {
		ns = append(ns, a.N)
	}
	if !slices.Equal(ns, []int{1, 2, 3, 4}) {
		t.Errorf("attempt numbers %v", ns)
	}
}
