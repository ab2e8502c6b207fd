package aws

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws/ssmhost"
)

// TestUnetBrainDetachDuringTrainingResumes: the runner detaches while train
// runs on the instance (gpipe --detach-after, before a CI job's time limit).
// Unlike a kill it still reaches AWS and the store, and must use that only to
// record the run: no CancelCommand, no teardown, train left running with its
// command id, the run detached and its lease released. A resume reattaches
// to the same command and tears down.
func TestUnetBrainDetachDuringTrainingResumes(t *testing.T) {
	u := newUnet(t)
	r1 := u.process(false)
	detach := make(chan struct{})
	var once sync.Once
	var polls atomic.Int32
	u.clock.setHook(func(int) {
		if u.srv.SSM.Sent() == 2 && polls.Add(1) == 3 { // train was sent and has been polled a little
			once.Do(func() { close(detach) })
		}
	})
	p, j1 := u.start(r1, u.store, state.LeaseOptions{Owner: "runner-1"})
	err := engine.Run(r1.ctx, p, j1, engine.Options{Registry: u.registry(), Concurrency: 2, Hard: r1.hard, Env: r1.env, Detach: detach})
	var de *engine.DetachedRunError
	if !errors.As(err, &de) || !errors.Is(err, pipeline.ErrDetached) || strings.Join(de.Running, ",") != "train" {
		t.Fatalf("err = %v, want detached with train running", err)
	}
	if err := j1.Close(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	u.clock.setHook(nil)

	saved, err := state.Read(t.Context(), u.store, u.runID)
	if err != nil {
		t.Fatal(err)
	}
	train := saved.Steps["train"]
	cmd := train.Resume[ssmhost.ResumeCommandID]
	if saved.Status != state.RunDetached || train.Status != state.StepRunning || cmd == "" ||
		saved.Steps["teardown"].Status != state.StepPending || saved.Lease != nil {
		t.Fatalf("stored state after the detach: run %s, train %s %v, teardown %s, lease %+v",
			saved.Status, train.Status, train.Resume, saved.Steps["teardown"].Status, saved.Lease)
	}
	if st := u.srv.SSM.Status(cmd); st != "InProgress" || u.srv.Calls("SSM.CancelCommand") != 0 {
		t.Fatalf("command %s is %s after the detach (%d CancelCommand calls)", cmd, st, u.srv.Calls("SSM.CancelCommand"))
	}
	if stacks := u.srv.CFN.Stacks(); stacks[0].Status != "CREATE_COMPLETE" {
		t.Fatalf("the detached runner touched the stack: %+v", stacks)
	}

	// "Re-run failed jobs": a new runner takes the released lease at once.
	r2 := u.process(false)
	j2, err := state.Acquire(r2.ctx, u.store, u.runID, state.LeaseOptions{Owner: "runner-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close(context.WithoutCancel(t.Context()))
	p2, err := plan.New(u.spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.ForResume(j2.Snapshot(), ""); err != nil {
		t.Fatal(err)
	}
	if !p2.Step("train").Reattach || p2.Step("prepare").Action != plan.Reuse {
		t.Fatalf("resume plan: train %+v", p2.Step("train"))
	}
	u.openGate()
	if err := u.run(r2, p2, j2); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	u.wantStatuses(j2, map[string]state.StepStatus{"provision": state.StepSucceeded, "prepare": state.StepSucceeded,
		"train": state.StepSucceeded, "teardown": state.StepSucceeded})
	if n := u.srv.SSM.Sent(); n != 2 {
		t.Errorf("SendCommand accepted %d times, want 2 (prepare and train, once each)", n)
	}
	if out := j2.Snapshot().Steps["train"].Outputs; out["dice"] != "0.71" {
		t.Errorf("train outputs %v", out)
	}
	u.wantStackDeleted()
}
