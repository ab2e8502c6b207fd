package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

func TestIndependentStepsOverlap(t *testing.T) {
	// Each step waits until all four run at once; run one at a time, they
	// would fail instead.
	var running atomic.Int32
	barrier := func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		running.Add(1)
		if !waitFor(ctx, func() bool { return running.Load() == 4 }) {
			return pipeline.Result{}, errors.New("never saw 4 steps running together")
		}
		return pipeline.Result{}, nil
	}
	h := newHarness(t, behaviours{"a": barrier, "b": barrier, "c": barrier, "d": barrier})
	err := h.run(t.Context(), h.plan(newSpec(step("a"), step("b"), step("c"), step("d"))), Options{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNoLevelBarrier(t *testing.T) {
	// slow (level 0) only finishes once after (level 1, needs fast) ran: a
	// level-by-level walk would wait for slow before starting after.
	afterRan := make(chan struct{})
	h := newHarness(t, behaviours{
		"slow": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			select {
			case <-afterRan:
				return pipeline.Result{}, nil
			case <-time.After(10 * time.Second):
				return pipeline.Result{}, errors.New("after never started while slow ran")
			}
		},
		"after": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			close(afterRan)
			return pipeline.Result{}, nil
		},
	})
	if err := h.run(t.Context(), h.plan(newSpec(step("fast"), step("slow"), step("after", "fast"))), Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	const total, limit = 12, 3
	var mu sync.Mutex
	inflight, peak, finished := 0, 0, 0
	b := behaviours{}
	var steps []spec.Step
	for i := range total {
		id := fmt.Sprint("s", i)
		steps = append(steps, step(id))
		b[id] = func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			mu.Lock()
			inflight++
			peak = max(peak, inflight)
			mu.Unlock()
			// Hold the slot until as many steps run as the limit allows, so
			// the peak reaches the limit whenever the engine permits it.
			waitFor(ctx, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return inflight >= min(limit, total-finished)
			})
			mu.Lock()
			inflight--
			finished++
			mu.Unlock()
			return pipeline.Result{}, nil
		}
	}
	h := newHarness(t, b)
	if err := h.run(t.Context(), h.plan(newSpec(steps...)), Options{Concurrency: limit}); err != nil {
		t.Fatal(err)
	}
	if peak != limit {
		t.Errorf("peak concurrency %d, want %d", peak, limit)
	}
}

func TestFailFast(t *testing.T) {
	siblingStarted, siblingCancelled := make(chan struct{}), make(chan struct{})
	var cleanupSawCtxErr, notifyRan atomic.Bool
	h := newHarness(t, behaviours{
		"bad": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			if !recv(ctx, siblingStarted) {
				return pipeline.Result{}, errors.New("sibling never started")
			}
			fmt.Fprintln(sr.Log, "about to fail")
			return pipeline.Result{}, &pipeline.ExitError{Code: 3}
		},
		"sibling": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			close(siblingStarted)
			<-ctx.Done()
			close(siblingCancelled)
			return pipeline.Result{}, ctx.Err()
		},
		"cleanup": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			select {
			case <-siblingCancelled:
			default:
				return pipeline.Result{}, errors.New("cleanup ran before the sibling was cancelled")
			}
			cleanupSawCtxErr.Store(ctx.Err() != nil)
			return pipeline.Result{}, nil
		},
		"notify": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			notifyRan.Store(true)
			return pipeline.Result{}, nil
		},
	})
	sp := newSpec(
		step("bad"),
		step("sibling"),
		step("after-bad", "bad"),
		step("after-sibling", "sibling"),
		withIf(step("cleanup", "bad", "sibling"), "always()"),
		withIf(step("notify", "after-bad"), "failure()"),
		withIf(step("on-success", "cleanup"), ""),
	)
	err := h.run(t.Context(), h.plan(sp), Options{})
	var fe *FailedError
	if !errors.As(err, &fe) || !slices.Equal(fe.Steps, []string{"bad"}) {
		t.Fatalf("err = %v, want *FailedError for [bad]", err)
	}
	if !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q does not say why bad failed", err)
	}
	h.wantStatus(map[string]state.StepStatus{
		"bad": state.StepFailed, "sibling": state.StepCancelled, "after-bad": state.StepSkipped,
		"after-sibling": state.StepSkipped, "cleanup": state.StepSucceeded, "notify": state.StepSucceeded,
		"on-success": state.StepSkipped,
	})
	if cleanupSawCtxErr.Load() {
		t.Error("the always() step ran under a cancelled context")
	}
	if !notifyRan.Load() {
		t.Error("failure() step did not run")
	}
	if r := h.stepState("sibling").Reason; r != "cancelled: step bad failed" {
		t.Errorf("sibling reason %q", r)
	}
	if r := h.stepState("after-bad").Reason; r != "needs bad, which failed" {
		t.Errorf("after-bad reason %q", r)
	}
	a := h.stepState("bad").Attempts
	if len(a) != 1 || a[0].ExitCode == nil || *a[0].ExitCode != 3 || a[0].End == nil || a[0].Log != "bad.1" {
		t.Errorf("bad attempts %+v", a)
	}
	if snap := h.j.Snapshot(); snap.Status != state.RunFailed {
		t.Errorf("run status %s", snap.Status)
	}
	if got := h.eventsOf(RunFinished, ""); len(got) != 1 || got[0].RunStatus != state.RunFailed {
		t.Errorf("RunFinished events %+v", got)
	}
}

func TestFailureStepSkippedOnSuccess(t *testing.T) {
	h := newHarness(t, nil)
	sp := newSpec(step("a"), withIf(step("on-failure", "a"), "failure()"), withIf(step("always", "a"), "always()"))
	if err := h.run(t.Context(), h.plan(sp), Options{}); err != nil {
		t.Fatal(err)
	}
	h.wantStatus(map[string]state.StepStatus{"a": state.StepSucceeded, "on-failure": state.StepSkipped, "always": state.StepSucceeded})
	if r := h.stepState("on-failure").Reason; r != "if: failure() is false" {
		t.Errorf("reason %q", r)
	}
	if h.j.Snapshot().Status != state.RunSucceeded {
		t.Error("run not succeeded")
	}
}

func TestInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	var cleanupCtxErr atomic.Value
	h := newHarness(t, behaviours{
		"long": func(c context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			cancel(fmt.Errorf("%w by test", ErrInterrupted)) // the first SIGINT
			<-c.Done()
			return pipeline.Result{}, c.Err()
		},
		"cleanup": func(c context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			cleanupCtxErr.Store(fmt.Sprint(c.Err()))
			return pipeline.Result{}, nil
		},
	})
	sp := newSpec(step("long"), step("next", "long"), withIf(step("cleanup", "long"), "always()"),
		withIf(step("on-failure", "long"), "failure()"), withIf(step("on-cancel", "long"), "cancelled()"))
	err := h.run(ctx, h.plan(sp), Options{})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	h.wantStatus(map[string]state.StepStatus{
		"long": state.StepCancelled, "next": state.StepCancelled, "cleanup": state.StepSucceeded,
		"on-failure": state.StepSkipped, "on-cancel": state.StepSucceeded,
	})
	if got := cleanupCtxErr.Load(); got != "<nil>" {
		t.Errorf("cleanup ran with ctx error %v", got)
	}
	if r := h.stepState("long").Reason; r != "interrupted" {
		t.Errorf("long reason %q", r)
	}
	if h.j.Snapshot().Status != state.RunInterrupted {
		t.Errorf("run status %s", h.j.Snapshot().Status)
	}
}

func TestHardCancelStopsCleanup(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	hard, cancelHard := context.WithCancel(t.Context())
	defer cancel()
	defer cancelHard()
	h := newHarness(t, behaviours{
		"long": func(c context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			cancel()
			<-c.Done()
			return pipeline.Result{}, c.Err()
		},
		"cleanup": func(c context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			cancelHard() // the second SIGINT, while cleanup runs
			<-c.Done()
			return pipeline.Result{}, c.Err()
		},
	})
	sp := newSpec(step("long"), withIf(step("cleanup", "long"), "always()"))
	if err := h.run(ctx, h.plan(sp), Options{Hard: hard}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v", err)
	}
	h.wantStatus(map[string]state.StepStatus{"long": state.StepCancelled, "cleanup": state.StepCancelled})
	if h.j.Snapshot().Status != state.RunInterrupted {
		t.Errorf("final status not saved after the hard stop: %s", h.j.Snapshot().Status)
	}
}

func TestRetry(t *testing.T) {
	var calls atomic.Int32
	h := newHarness(t, behaviours{
		"flaky": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			n := calls.Add(1)
			if sr.Attempt != int(n) {
				return pipeline.Result{}, fmt.Errorf("attempt %d on call %d", sr.Attempt, n)
			}
			if n < 3 {
				fmt.Fprintf(sr.Log, "try %d\n", n)
				return pipeline.Result{}, &pipeline.ExitError{Code: 10 + int(n)}
			}
			return pipeline.Result{Outputs: map[string]string{"ok": "yes"}}, nil
		},
	})
	s := step("flaky")
	s.Retry = spec.Retry{Attempts: 4, Backoff: time.Second, MaxBackoff: 90 * time.Second}
	if err := h.run(t.Context(), h.plan(newSpec(s)), Options{}); err != nil {
		t.Fatal(err)
	}
	st := h.stepState("flaky")
	if st.Status != state.StepSucceeded || st.Outputs["ok"] != "yes" {
		t.Fatalf("state %+v", st)
	}
	if len(st.Attempts) != 3 {
		t.Fatalf("%d attempts recorded, want 3", len(st.Attempts))
	}
	for i, a := range st.Attempts {
		wantCode := []int{11, 12, 0}[i]
		if a.N != i+1 || a.End == nil || a.ExitCode == nil || *a.ExitCode != wantCode || a.Log != fmt.Sprint("flaky.", i+1) {
			t.Errorf("attempt %d: %+v", i, a)
		}
		if (i < 2) != (a.Error != "") {
			t.Errorf("attempt %d error %q", i, a.Error)
		}
	}
	if len(h.sleeps) != 2 || h.sleeps[0] > time.Second || h.sleeps[1] > 2*time.Second {
		t.Errorf("backoff sleeps %v, want 2 within [0,1s] and [0,2s]", h.sleeps)
	}
	if got := h.eventsOf(StepRetry, "flaky"); len(got) != 2 || got[0].Attempt != 1 {
		t.Errorf("retry events %+v", got)
	}
	if log, err := h.store.ReadLog(t.Context(), "run-1", "flaky.2", 0); err != nil || string(log) != "try 2\n" {
		t.Errorf("log flaky.2 = %q, %v", log, err)
	}
}

func TestRetryOn(t *testing.T) {
	tests := []struct {
		name     string
		output   string
		attempts int
	}{
		{"matching log retries", "synStatus=26 [Device not found]\n", 3},
		{"other failure does not", "ModuleNotFoundError: torch\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, behaviours{"train": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
				io.WriteString(sr.Log, "starting\n"+tt.output)
				return pipeline.Result{}, &pipeline.ExitError{Code: 1}
			}})
			s := step("train")
			s.Retry = spec.Retry{Attempts: 3, On: []string{`synStatus[= ]26`}}
			err := h.run(t.Context(), h.plan(newSpec(s)), Options{})
			var fe *FailedError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v", err)
			}
			if n := len(h.stepState("train").Attempts); n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	h := newHarness(t, behaviours{"slow": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		<-ctx.Done()
		return pipeline.Result{}, &pipeline.ExitError{Code: -1, Err: ctx.Err()}
	}})
	s := step("slow")
	s.Timeout = 20 * time.Millisecond
	err := h.run(t.Context(), h.plan(newSpec(s, step("next", "slow"))), Options{})
	var te *TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "timed out after 20ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	h.wantStatus(map[string]state.StepStatus{"slow": state.StepFailed, "next": state.StepSkipped})
	if a := h.stepState("slow").Attempts; len(a) != 1 || a[0].Error != "timed out after 20ms" {
		t.Errorf("attempts %+v", a)
	}
}

func TestBackoff(t *testing.T) {
	top := func(n int64) int64 { return n - 1 } // the largest draw
	r := spec.Retry{Backoff: time.Second, MaxBackoff: 5 * time.Second}
	var got []time.Duration
	for a := 1; a <= 5; a++ {
		got = append(got, backoff(r, a, top))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("backoff caps %v, want %v", got, want)
	}
	// Equal jitter: the smallest draw waits half the delay, never less.
	var low []time.Duration
	for a := 1; a <= 5; a++ {
		low = append(low, backoff(r, a, func(int64) int64 { return 0 }))
	}
	if want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 2500 * time.Millisecond, 2500 * time.Millisecond}; !slices.Equal(low, want) {
		t.Errorf("smallest backoffs %v, want %v (half of each delay)", low, want)
	}
	if d := backoff(spec.Retry{}, 100, top); d != defaultMaxBackoff {
		t.Errorf("default cap %v", d)
	}
}

type permanentErr struct{}

func (permanentErr) Error() string   { return "archive entry escapes its destination" }
func (permanentErr) Permanent() bool { return true }

// A failure no retry can fix is not retried, whatever the retry policy says.
func TestPermanentErrorNotRetried(t *testing.T) {
	var calls atomic.Int32
	h := newHarness(t, behaviours{
		"fetch": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			calls.Add(1)
			return pipeline.Result{}, fmt.Errorf("extract: %w", permanentErr{})
		},
	})
	s := step("fetch")
	s.Retry = spec.Retry{Attempts: 3, Backoff: time.Second}
	var failed *FailedError
	if err := h.run(t.Context(), h.plan(newSpec(s)), Options{}); !errors.As(err, &failed) {
		t.Fatalf("err = %v, want a failed pipeline", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	if len(h.sleeps) != 0 {
		t.Errorf("slept %v before a retry that cannot help", h.sleeps)
	}
}
