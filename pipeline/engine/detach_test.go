package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// remoteLike behaves like a step on an SSM host: it saves a command id, then
// waits; on detach it returns a *pipeline.DetachedError and leaves the
// command alone, on any other cancellation it "cancels" the command. A
// resumed attempt that gets the saved id back finishes at once.
type remoteLike struct {
	started   chan struct{}
	once      sync.Once
	cancelled atomic.Int32 // remote commands cancelled
	sent      atomic.Int32 // remote commands started
	reattach  atomic.Value // the command id a resumed attempt got
}

func newRemoteLike() *remoteLike { return &remoteLike{started: make(chan struct{})} }

func (r *remoteLike) run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	if id := sr.Resume["command_id"]; id != "" {
		r.reattach.Store(id)
		return pipeline.Result{Outputs: map[string]string{"dice": "0.9"}}, nil
	}
	r.sent.Add(1)
	if err := sr.SaveResume(ctx, "command_id", "cmd-1"); err != nil {
		return pipeline.Result{}, err
	}
	r.once.Do(func() { close(r.started) })
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), pipeline.ErrDetached) {
		return pipeline.Result{}, &pipeline.DetachedError{Running: "command cmd-1"}
	}
	r.cancelled.Add(1)
	return pipeline.Result{}, context.Cause(ctx)
}

// localLike behaves like steps/host.Local: on any cancellation it stops its
// process and returns the context's cause, which is ErrDetached itself on a
// detach (not a *DetachedError: nothing lives on).
func localLike(started chan<- struct{}) fn {
	var once sync.Once
	return func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return pipeline.Result{}, context.Cause(ctx)
	}
}

// detachSpec: provision, then train (remote) and prep (local) side by side,
// evaluate after train, and an always() teardown after both.
func detachSpec() *spec.Spec {
	return newSpec(step("provision"), step("train", "provision"), step("prep", "provision"),
		step("evaluate", "train"), withIf(step("teardown", "train", "prep"), "always()"))
}

func TestDetachLeavesRemoteStepsRunningAndResumeReattaches(t *testing.T) {
	remote := newRemoteLike()
	localStarted := make(chan struct{})
	var teardowns, preps atomic.Int32
	local := localLike(localStarted)
	resumed := atomic.Bool{}
	h := newHarness(t, behaviours{
		"train": remote.run,
		"prep": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			preps.Add(1)
			if resumed.Load() {
				return pipeline.Result{}, nil
			}
			return local(ctx, sr)
		},
		"teardown": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			teardowns.Add(1)
			return pipeline.Result{}, nil
		},
	})
	detach := make(chan struct{})
	go func() {
		if recv(t.Context(), remote.started) && recv(t.Context(), localStarted) {
			close(detach)
		}
	}()
	sp := detachSpec()
	err := h.run(t.Context(), h.plan(sp), Options{Detach: detach})
	var de *DetachedRunError
	if !errors.As(err, &de) || !errors.Is(err, pipeline.ErrDetached) {
		t.Fatalf("err = %v, want a *DetachedRunError", err)
	}
	if strings.Join(de.Running, ",") != "train" || strings.Join(de.Stopped, ",") != "prep,evaluate,teardown" {
		t.Errorf("running %v, stopped %v", de.Running, de.Stopped)
	}
	h.wantStatus(map[string]state.StepStatus{
		"provision": state.StepSucceeded, "train": state.StepRunning, "prep": state.StepCancelled,
		"evaluate": state.StepPending, "teardown": state.StepPending,
	})
	if teardowns.Load() != 0 {
		t.Error("the always() teardown ran on detach")
	}
	if remote.cancelled.Load() != 0 {
		t.Error("the remote command was cancelled on detach")
	}
	snap := h.j.Snapshot()
	if snap.Status != state.RunDetached {
		t.Errorf("run status %s, want detached", snap.Status)
	}
	train := snap.Steps["train"]
	if train.Resume["command_id"] != "cmd-1" || !strings.Contains(train.Reason, "command cmd-1") {
		t.Errorf("train state %+v: want its command id kept and a reason naming it", train)
	}
	if n := len(train.Attempts); n != 1 || train.Attempts[0].End != nil || train.Attempts[0].Error != "" {
		t.Errorf("train attempts %+v: the detached attempt must stay open", train.Attempts)
	}
	prep := snap.Steps["prep"]
	if !strings.Contains(prep.Reason, "detached") || len(prep.Attempts) != 1 || prep.Attempts[0].End == nil {
		t.Errorf("prep state %+v: want cancelled by the detach, its attempt closed", prep)
	}
	if r := snap.Steps["evaluate"].Reason; r != "not started: the runner detached" {
		t.Errorf("evaluate reason %q", r)
	}
	if evs := h.eventsOf(StepFinished, "train"); len(evs) != 1 || evs[0].Status != state.StepRunning {
		t.Errorf("train finished events %+v", evs)
	}

	// Resume: train reattaches to cmd-1 instead of starting again; prep,
	// evaluate and teardown run.
	resumed.Store(true)
	p := h.plan(sp)
	if err := p.ForResume(h.j.Snapshot(), ""); err != nil {
		t.Fatal(err)
	}
	if ps := p.Step("train"); !ps.Reattach || ps.Action != plan.Run || ps.Reason != "detached while running; resuming with its saved data" {
		t.Fatalf("resume plan for train: %+v", ps)
	}
	if err := h.run(t.Context(), p, Options{}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got, _ := remote.reattach.Load().(string); got != "cmd-1" || remote.sent.Load() != 1 {
		t.Errorf("resume reattached to %q after %d sends; want cmd-1 after 1", got, remote.sent.Load())
	}
	h.wantStatus(map[string]state.StepStatus{
		"provision": state.StepSucceeded, "train": state.StepSucceeded, "prep": state.StepSucceeded,
		"evaluate": state.StepSucceeded, "teardown": state.StepSucceeded,
	})
	if teardowns.Load() != 1 || preps.Load() != 2 {
		t.Errorf("teardown ran %d times, prep %d; want 1 and 2", teardowns.Load(), preps.Load())
	}
	if s := h.j.Snapshot().Status; s != state.RunSucceeded {
		t.Errorf("run status after resume %s", s)
	}
}

func TestDetachStopsCleanupInProgress(t *testing.T) {
	// A teardown already running when the runner detaches is stopped too and
	// stays to be run by the resume: the runner is about to be killed anyway.
	detach := make(chan struct{})
	h := newHarness(t, behaviours{
		"a": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			return pipeline.Result{}, errors.New("boom")
		},
		"teardown": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			close(detach)
			<-ctx.Done()
			return pipeline.Result{}, context.Cause(ctx)
		},
	})
	err := h.run(t.Context(), h.plan(newSpec(step("a"), withIf(step("teardown", "a"), "always()"))), Options{Detach: detach})
	if !errors.Is(err, pipeline.ErrDetached) {
		t.Fatalf("err = %v, want detached (cleanup did not finish)", err)
	}
	h.wantStatus(map[string]state.StepStatus{"a": state.StepFailed, "teardown": state.StepCancelled})
	if s := h.j.Snapshot().Status; s != state.RunDetached {
		t.Errorf("run status %s", s)
	}
}

func TestDetachBeforeStartRunsNothing(t *testing.T) {
	var ran atomic.Int32
	h := newHarness(t, behaviours{"a": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		ran.Add(1)
		return pipeline.Result{}, nil
	}})
	detach := make(chan struct{})
	close(detach)
	err := h.run(t.Context(), h.plan(newSpec(step("a"), withIf(step("b", "a"), "always()"))), Options{Detach: detach})
	if !errors.Is(err, pipeline.ErrDetached) || ran.Load() != 0 {
		t.Fatalf("err = %v, a ran %d times", err, ran.Load())
	}
	h.wantStatus(map[string]state.StepStatus{"a": state.StepPending, "b": state.StepPending})
}

func TestDetachAfterEverythingEndedIsNoDetach(t *testing.T) {
	// The trigger fires while the last step returns on its own: nothing is
	// left behind, so the run ends as it would have.
	detach := make(chan struct{})
	h := newHarness(t, behaviours{"a": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		close(detach)
		return pipeline.Result{}, nil
	}})
	if err := h.run(t.Context(), h.plan(newSpec(step("a"))), Options{Detach: detach}); err != nil {
		t.Fatalf("err = %v", err)
	}
	if s := h.j.Snapshot().Status; s != state.RunSucceeded {
		t.Errorf("run status %s", s)
	}
}

func TestDetachedErrorWithoutDetachFails(t *testing.T) {
	// A step type that claims to have detached when nobody asked is a failed
	// step, not one left running.
	h := newHarness(t, behaviours{"a": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		return pipeline.Result{}, &pipeline.DetachedError{Running: "something"}
	}})
	var fe *FailedError
	if err := h.run(t.Context(), h.plan(newSpec(step("a"))), Options{}); !errors.As(err, &fe) {
		t.Fatalf("err = %v, want *FailedError", err)
	}
	h.wantStatus(map[string]state.StepStatus{"a": state.StepFailed})
}

func TestDetachSavesResumeDataDuringCancellation(t *testing.T) {
	// A command id that exists must be saved even if the step's context is
	// cancelled between sending and saving.
	detach := make(chan struct{})
	h := newHarness(t, behaviours{"a": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		close(detach)
		<-ctx.Done()
		if err := sr.SaveResume(ctx, "command_id", "cmd-7"); err != nil {
			return pipeline.Result{}, err
		}
		return pipeline.Result{}, &pipeline.DetachedError{Running: "command cmd-7"}
	}})
	if err := h.run(t.Context(), h.plan(newSpec(step("a"))), Options{Detach: detach}); !errors.Is(err, pipeline.ErrDetached) {
		t.Fatalf("err = %v", err)
	}
	if st := h.stepState("a"); st.Status != state.StepRunning || st.Resume["command_id"] != "cmd-7" {
		t.Errorf("state %+v", st)
	}
}
