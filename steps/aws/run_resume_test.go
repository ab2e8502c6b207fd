package aws

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws/ssmhost"
)

// TestUnetBrainKilledDuringTrainingResumes: the runner dies while train runs
// on the instance (a CI job hitting its time limit and being killed: nothing
// it sends reaches AWS or the run store any more, so nothing is cancelled or
// torn down). A new runner resumes the run from the store: provision and
// prepare are reused, train reattaches to the saved command id (SendCommand
// is not called again) and collects the result, then teardown runs.
func TestUnetBrainKilledDuringTrainingResumes(t *testing.T) {
	u := newUnet(t)
	r1 := u.process(false)
	var dead atomic.Bool
	net := u.net
	var once sync.Once
	var sinceSent atomic.Int32
	u.clock.setHook(func(int) {
		if u.srv.SSM.Sent() == 2 && sinceSent.Add(1) == 3 { // train was sent and has been polled a little
			once.Do(func() {
				net.cut.Store(true)
				dead.Store(true)
				r1.cancel()
				r1.cancelH()
			})
		}
	})
	// The dead runner's lease is taken over at once: it was this host's
	// process 1111, which no longer exists.
	p, j1 := u.start(r1, mortalStore{Store: u.store, dead: &dead}, state.LeaseOptions{Owner: "runner-1", Host: "ci", PID: 1111, TTL: 300 * time.Millisecond})
	err := u.run(r1, p, j1)
	if err == nil {
		t.Fatal("the killed runner's run succeeded")
	}
	_ = j1.Close(context.WithoutCancel(t.Context()))
	u.clock.setHook(nil)

	saved, err := state.Read(t.Context(), u.store, u.runID)
	if err != nil {
		t.Fatal(err)
	}
	train := saved.Steps["train"]
	cmd := train.Resume[ssmhost.ResumeCommandID]
	if train.Status != state.StepRunning || cmd == "" || saved.Steps["teardown"].Status == state.StepSucceeded {
		t.Fatalf("stored state after the kill: train %s %v, teardown %s", train.Status, train.Resume, saved.Steps["teardown"].Status)
	}
	if st := u.srv.SSM.Status(cmd); st != "InProgress" || u.srv.Calls("SSM.CancelCommand") != 0 {
		t.Fatalf("command %s is %s after the kill (%d CancelCommand calls)", cmd, st, u.srv.Calls("SSM.CancelCommand"))
	}
	if stacks := u.srv.CFN.Stacks(); stacks[0].Status != "CREATE_COMPLETE" {
		t.Fatalf("the dead runner touched the stack: %+v", stacks)
	}

	// A new runner resumes; the training finishes meanwhile.
	r2 := u.process(false)
	j2, err := state.Acquire(r2.ctx, u.store, u.runID, state.LeaseOptions{Owner: "runner-2", Host: "ci", PID: 2222,
		ProcessAlive: func(pid int) bool { return pid != 1111 }})
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
	if p2.Step("provision").Action != plan.Reuse || p2.Step("prepare").Action != plan.Reuse || !p2.Step("train").Reattach {
		t.Fatalf("resume plan: provision %s, prepare %s, train reattach %v", p2.Step("provision").Action, p2.Step("prepare").Action, p2.Step("train").Reattach)
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
	log, err := u.store.ReadLog(t.Context(), u.runID, "train.2", 0)
	if err != nil || !strings.Contains(string(log), "reattaching to SSM command "+cmd) || !strings.Contains(string(log), "epoch 1 dice 0.71") {
		t.Errorf("train.2 log %q (%v)", log, err)
	}
	u.wantStackDeleted()
}
