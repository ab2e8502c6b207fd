package aws

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/memory"
	"github.com/gpipe/gpipe/steps/host"
	"github.com/gpipe/gpipe/steps/shell"
)

// unetSpec is unet-brain's shape: a stack, two remote steps on its instance
// (the second a long training job that waits for a gate file, and fails when
// FAIL is set), and a teardown that always runs.
const unetSpec = `version: 1
name: unet-brain
steps:
  - id: provision
    type: provision-stack
    with:
      ami: ami-0aaa
      results_bucket: unet-results
  - id: prepare
    type: shell
    needs: [provision]
    host: ${{ steps.provision.outputs.host }}
    with:
      run: |
        echo "preparing /data on $AWS_SSM_INSTANCE_ID"
        echo mount=/data >> "$GPIPE_OUTPUT"
  - id: train
    type: shell
    needs: [prepare]
    host: ${{ steps.provision.outputs.host }}
    timeout: 2h
    env:
      GATE: ${{ env.GATE }}
      FAIL: ${{ env.FAIL }}
    with:
      run: |
        echo "training on ${{ steps.prepare.outputs.mount }}"
        while [ ! -e "$GATE" ]; do sleep 0.01; done
        if [ -n "$FAIL" ]; then echo "loss is NaN"; exit 4; fi
        echo "epoch 1 dice 0.71"
        echo dice=0.71 >> "$GPIPE_OUTPUT"
  - id: teardown
    type: teardown
    needs: [train]
    if: always()
    with:
      stack: ${{ steps.provision.outputs.stack_name }}
`

type registry map[string]pipeline.Runner

func (r registry) Lookup(t string) (pipeline.Runner, bool) { x, ok := r[t]; return x, ok }

// ssmOnly routes every host to the SSM executor: this spec has no local steps.
type ssmOnly struct{ s *Steps }

func (x ssmOnly) For(h pipeline.Host) (host.Executor, error) { return x.s.SSMExecutor(h) }

func (e *wireEnv) registry() registry {
	return registry{"shell": &shell.Step{Executors: ssmOnly{e.steps}}, "provision-stack": e.steps.ProvisionStack(), "teardown": e.steps.Teardown()}
}

// mortalStore is a run store seen through a runner that can die: once dead,
// nothing it writes lands and nothing it reads arrives.
type mortalStore struct {
	state.Store
	dead *atomic.Bool
}

func (m mortalStore) check() error {
	if m.dead.Load() {
		return errKilled
	}
	return nil
}

func (m mortalStore) Save(ctx context.Context, id string, doc []byte, v state.Version) (state.Version, error) {
	if err := m.check(); err != nil {
		return "", err
	}
	return m.Store.Save(ctx, id, doc, v)
}

func (m mortalStore) Load(ctx context.Context, id string) ([]byte, state.Version, error) {
	if err := m.check(); err != nil {
		return nil, "", err
	}
	return m.Store.Load(ctx, id)
}

func (m mortalStore) AppendLog(ctx context.Context, id, name string, p []byte) error {
	if err := m.check(); err != nil {
		return err
	}
	return m.Store.AppendLog(ctx, id, name, p)
}

// pipelineRun is one gpipe process driving the unet-brain run.
type pipelineRun struct {
	ctx, hard       context.Context
	cancel, cancelH context.CancelFunc
	env             map[string]string
}

type unetEnv struct {
	*wireEnv
	store *memory.Store
	spec  *spec.Spec
	gate  string
	runID string
}

func newUnet(t *testing.T) *unetEnv {
	sp, err := specLoader().Parse("unet-brain.yaml", []byte(unetSpec))
	if err != nil {
		t.Fatal(err)
	}
	return &unetEnv{wireEnv: newWire(t, -1500*time.Millisecond), store: memory.New(t.Name()), spec: sp,
		gate: filepath.Join(t.TempDir(), "gate"), runID: "unet-brain-20260301T120000Z-ab12"}
}

func (u *unetEnv) openGate() {
	if err := os.WriteFile(u.gate, nil, 0o644); err != nil {
		u.t.Fatal(err)
	}
}

func (u *unetEnv) process(fail bool) *pipelineRun {
	r := &pipelineRun{env: map[string]string{"GATE": u.gate, "FAIL": ""}}
	if fail {
		r.env["FAIL"] = "1"
	}
	r.ctx, r.cancel = context.WithCancel(u.t.Context())
	r.hard, r.cancelH = context.WithCancel(u.t.Context())
	u.t.Cleanup(r.cancel)
	u.t.Cleanup(r.cancelH)
	u.runner()
	return r
}

func (u *unetEnv) run(r *pipelineRun, p *plan.Plan, j *state.Journal) error {
	return engine.Run(r.ctx, p, j, engine.Options{Registry: u.registry(), Concurrency: 2, Hard: r.hard, Env: r.env})
}

func (u *unetEnv) start(r *pipelineRun, st state.Store, lease state.LeaseOptions) (*plan.Plan, *state.Journal) {
	p, err := plan.New(u.spec, nil)
	if err != nil {
		u.t.Fatal(err)
	}
	j, err := state.Create(r.ctx, st, &state.Run{ID: u.runID, Pipeline: "unet-brain"}, lease)
	if err != nil {
		u.t.Fatal(err)
	}
	return p, j
}

func statuses(j *state.Journal) map[string]state.StepStatus {
	out := map[string]state.StepStatus{}
	for id, st := range j.Snapshot().Steps {
		out[id] = st.Status
	}
	return out
}

func (u *unetEnv) wantStatuses(j *state.Journal, want map[string]state.StepStatus) {
	u.t.Helper()
	got := statuses(j)
	for id, w := range want {
		if got[id] != w {
			u.t.Errorf("step %s: %s (%q), want %s", id, got[id], j.Snapshot().Steps[id].Reason, w)
		}
	}
}

func (u *unetEnv) wantStackDeleted() {
	u.t.Helper()
	stacks := u.srv.CFN.Stacks()
	if len(stacks) != 1 || stacks[0].Status != "DELETE_COMPLETE" {
		u.t.Errorf("stacks after the run: %+v", stacks)
	}
}

func TestUnetBrainRunSucceeds(t *testing.T) {
	u := newUnet(t)
	r := u.process(false)
	u.openGate()
	p, j := u.start(r, u.store, state.LeaseOptions{Owner: "runner-1"})
	defer j.Close(context.WithoutCancel(r.ctx))
	if err := u.run(r, p, j); err != nil {
		t.Fatalf("run: %v", err)
	}
	u.wantStatuses(j, map[string]state.StepStatus{"provision": state.StepSucceeded, "prepare": state.StepSucceeded,
		"train": state.StepSucceeded, "teardown": state.StepSucceeded})
	steps := j.Snapshot().Steps
	if steps["train"].Outputs["dice"] != "0.71" || steps["prepare"].Outputs["mount"] != "/data" ||
		steps["teardown"].Outputs["deleted"] != steps["provision"].Outputs["stack_name"] {
		t.Errorf("outputs: train %v, prepare %v, teardown %v", steps["train"].Outputs, steps["prepare"].Outputs, steps["teardown"].Outputs)
	}
	log, err := u.store.ReadLog(t.Context(), u.runID, "train.1", 0)
	if err != nil || !strings.Contains(string(log), "training on /data\nepoch 1 dice 0.71\n") {
		t.Errorf("train log %q (%v)", log, err)
	}
	if u.srv.SSM.Sent() != 2 {
		t.Errorf("%d commands sent, want 2", u.srv.SSM.Sent())
	}
	u.wantStackDeleted()
}

func TestUnetBrainFailureStillTearsDown(t *testing.T) {
	u := newUnet(t)
	r := u.process(true)
	u.openGate()
	p, j := u.start(r, u.store, state.LeaseOptions{Owner: "runner-1"})
	defer j.Close(context.WithoutCancel(r.ctx))
	err := u.run(r, p, j)
	var fe *engine.FailedError
	var ee *pipeline.ExitError
	if !errors.As(err, &fe) || len(fe.Steps) != 1 || fe.Steps[0] != "train" || !errors.As(err, &ee) || ee.Code != 4 {
		t.Fatalf("err = %v, want train failed with exit status 4", err)
	}
	u.wantStatuses(j, map[string]state.StepStatus{"provision": state.StepSucceeded, "prepare": state.StepSucceeded,
		"train": state.StepFailed, "teardown": state.StepSucceeded})
	u.wantStackDeleted()
}

// TestUnetBrainInterruptDuringCreate: Ctrl-C while the stack is
// CREATE_IN_PROGRESS; the remote steps never start, teardown deletes the
// stack.
func TestUnetBrainInterruptDuringCreate(t *testing.T) {
	u := newUnet(t)
	u.srv.CFN.CreateWaits = 20
	r := u.process(false)
	var once sync.Once
	u.clock.setHook(func(int) {
		if len(u.srv.CFN.Stacks()) == 1 && u.srv.CFN.Stacks()[0].Status == "CREATE_IN_PROGRESS" {
			once.Do(r.cancel) // the first Ctrl-C
		}
	})
	p, j := u.start(r, u.store, state.LeaseOptions{Owner: "runner-1"})
	defer j.Close(context.WithoutCancel(r.ctx))
	if err := u.run(r, p, j); !errors.Is(err, engine.ErrInterrupted) {
		t.Fatalf("err = %v, want interrupted", err)
	}
	u.wantStatuses(j, map[string]state.StepStatus{"provision": state.StepCancelled, "prepare": state.StepCancelled,
		"train": state.StepCancelled, "teardown": state.StepSucceeded})
	u.wantStackDeleted()
	if u.srv.SSM.Sent() != 0 {
		t.Errorf("%d commands sent after the interrupt", u.srv.SSM.Sent())
	}
}

// TestUnetBrainInterruptDuringTraining: the first Ctrl-C while train runs
// stops the remote command (CancelCommand) and teardown deletes the stack.
func TestUnetBrainInterruptDuringTraining(t *testing.T) {
	u := newUnet(t)
	r := u.process(false)
	var once sync.Once
	var polls atomic.Int32
	u.clock.setHook(func(int) {
		if u.srv.SSM.Sent() == 2 && polls.Add(1) == 3 {
			once.Do(r.cancel)
		}
	})
	p, j := u.start(r, u.store, state.LeaseOptions{Owner: "runner-1"})
	defer j.Close(context.WithoutCancel(r.ctx))
	if err := u.run(r, p, j); !errors.Is(err, engine.ErrInterrupted) {
		t.Fatalf("err = %v, want interrupted", err)
	}
	u.wantStatuses(j, map[string]state.StepStatus{"provision": state.StepSucceeded, "prepare": state.StepSucceeded,
		"train": state.StepCancelled, "teardown": state.StepSucceeded})
	if u.srv.Calls("SSM.CancelCommand") != 1 {
		t.Errorf("%d CancelCommand calls", u.srv.Calls("SSM.CancelCommand"))
	}
	u.wantStackDeleted()
}
