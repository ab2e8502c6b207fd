package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
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

// fn adapts a function to pipeline.Runner.
type fn func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error)

func (f fn) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	return f(ctx, sr)
}

// carded is a Runner that demands with["cards"] cards.
type carded struct{ fn }

func (carded) Cards(with map[string]any) int {
	switch v := with["cards"].(type) {
	case int:
		return v
	case uint64:
		return int(v)
	}
	return 0
}

// registry maps step types to runners. The "fake" type dispatches on the
// step id to behaviours of the test, succeeding by default.
type registry map[string]pipeline.Runner

func (r registry) Lookup(t string) (pipeline.Runner, bool) { x, ok := r[t]; return x, ok }

type behaviours map[string]fn

func (b behaviours) runner() fn {
	return func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		if f := b[sr.StepID]; f != nil {
			return f(ctx, sr)
		}
		return pipeline.Result{}, nil
	}
}

func step(id string, needs ...string) spec.Step {
	return spec.Step{ID: id, Type: "fake", Needs: needs}
}

func withIf(s spec.Step, cond string) spec.Step { s.If = cond; return s }

func newSpec(steps ...spec.Step) *spec.Spec {
	return &spec.Spec{Version: 1, Name: "test", Steps: steps}
}

// harness drives one run against the in-memory store with a real Journal.
type harness struct {
	t             *testing.T
	store         *memory.Store
	j             *state.Journal
	reg           registry
	mu            sync.Mutex
	events        []Event
	sleeps        []time.Duration
	inCall        atomic.Int32 // concurrent Events calls (must stay ≤ 1)
	overlapEvents atomic.Bool
}

func newHarness(t *testing.T, b behaviours) *harness {
	t.Helper()
	h := &harness{t: t, store: memory.New(t.Name()), reg: registry{"fake": b.runner()}}
	j, err := state.Create(t.Context(), h.store, &state.Run{ID: "run-1", Pipeline: "test"}, state.LeaseOptions{Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h.j = j
	t.Cleanup(func() { _ = j.Close(context.WithoutCancel(t.Context())) })
	return h
}

func (h *harness) plan(sp *spec.Spec) *plan.Plan {
	h.t.Helper()
	p, err := plan.New(sp, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) options(opt Options) Options {
	if opt.Registry == nil {
		opt.Registry = h.reg
	}
	if opt.Concurrency == 0 {
		opt.Concurrency = 8
	}
	opt.Events = func(e Event) {
		if h.inCall.Add(1) > 1 {
			h.overlapEvents.Store(true)
		}
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
		h.inCall.Add(-1)
	}
	if opt.Sleep == nil {
		opt.Sleep = func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.sleeps = append(h.sleeps, d)
			h.mu.Unlock()
			return context.Cause(ctx)
		}
	}
	return opt
}

// runDeadline bounds every engine run in these tests: a broken engine (a
// fail-fast that cancels nothing, a step that never starts) fails the test
// saying which steps were still running, instead of blocking until go test's
// timeout. Steps that wait for each other use recv, so the deadline reaches
// them too.
const runDeadline = 30 * time.Second

var errRunDeadline = errors.New("the test's run deadline passed")

func (h *harness) run(ctx context.Context, p *plan.Plan, opt Options) error {
	ctx, cancel := context.WithTimeoutCause(ctx, runDeadline, errRunDeadline)
	defer cancel()
	// Should Run not return even once its context has ended, no test can
	// continue: stop the binary with the steps that hang named.
	watchdog := time.AfterFunc(runDeadline+10*time.Second, func() {
		panic(fmt.Sprintf("%s: engine.Run still running 10s after its context ended; steps started and not finished: %v",
			h.t.Name(), h.running()))
	})
	defer watchdog.Stop()
	// Which steps hang is known when the deadline passes, not after Run
	// cancelled them.
	var hanging []string
	snapped := make(chan struct{})
	context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), errRunDeadline) {
			hanging = h.running()
		}
		close(snapped)
	})
	err := Run(ctx, p, h.j, h.options(opt))
	if errors.Is(context.Cause(ctx), errRunDeadline) {
		<-snapped // closed by the AfterFunc the deadline started
		h.t.Errorf("the run did not finish within %v; steps started and not finished then: %v", runDeadline, hanging)
	}
	if h.overlapEvents.Load() {
		h.t.Error("Events was called concurrently")
	}
	return err
}

// running lists the steps that started and have not finished.
func (h *harness) running() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	open := map[string]bool{}
	for _, e := range h.events {
		switch e.Kind {
		case StepStarted:
			open[e.Step] = true
		case StepFinished:
			delete(open, e.Step)
		}
	}
	out := make([]string, 0, len(open))
	for id := range open {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// recv waits for ch, or for ctx to end (false): a step that waits for
// another one must not outlive the run's deadline.
func recv[T any](ctx context.Context, ch <-chan T) bool {
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// await waits in the test goroutine for ch, failing the test with what it
// waited for when runDeadline passes first.
func await[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(runDeadline):
		t.Fatalf("waited %v for %s", runDeadline, what)
	}
	var zero T
	return zero
}

func (h *harness) stepState(id string) *state.Step {
	h.t.Helper()
	st := h.j.Snapshot().Steps[id]
	if st == nil {
		h.t.Fatalf("no state for step %s", id)
	}
	return st
}

// wantStatus checks the recorded statuses of steps.
func (h *harness) wantStatus(want map[string]state.StepStatus) {
	h.t.Helper()
	snap := h.j.Snapshot()
	for id, w := range want {
		st := snap.Steps[id]
		if st == nil {
			h.t.Errorf("step %s: no state", id)
			continue
		}
		if st.Status != w {
			h.t.Errorf("step %s: status %s (reason %q), want %s", id, st.Status, st.Reason, w)
		}
	}
}

func (h *harness) eventsOf(kind EventKind, stepID string) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Event
	for _, e := range h.events {
		if e.Kind == kind && (stepID == "" || e.Step == stepID) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor polls cond, failing the step (not the test) after a generous
// deadline, so a broken engine shows up as a failure instead of a hang.
func waitFor(ctx context.Context, cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
