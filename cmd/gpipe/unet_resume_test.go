package main

// The resume tests run specs/unet-brain.yaml the way unet_e2e_test.go does
// (-p host=local, the AWS wire fake, versitygw, the fakes of testdata/unet/bin)
// and stop it while train-unet runs: the fake docker, given FAKE_TRAIN_GATE,
// writes an epoch-0 checkpoint and blocks. Then `gpipe resume` must finish
// the run from that checkpoint:
//   - kill -9 of the runner: the steps before train are reused, the train
//     script left running is stopped, train reruns from the local checkpoint;
//   - Ctrl-C: teardown (if: always()) deletes the stack; teardown `cleans`
//     provision, so the resume provisions a new stack and redoes what lived
//     on the old instance (which the test wipes), and train restores the
//     checkpoint from S3.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/state"
)

// TestUnetResume runs both scenarios at once, each with an AWS fake of its
// own so that the fake's call counts are the scenario's.
func TestUnetResume(t *testing.T) {
	e := newUnetE2E(t)
	source, md5 := e.putArchive(t, "mirror/"+task01+".tar", msdTask01(t, 3))
	t.Run("kill-9", func(t *testing.T) {
		t.Parallel()
		testResumeAfterKill(t, newResumeRun(t, e.withOwnAWS(t), "unet-resume-kill", source, md5))
	})
	t.Run("interrupt", func(t *testing.T) {
		t.Parallel()
		testResumeAfterInterrupt(t, newResumeRun(t, e.withOwnAWS(t), "unet-resume-interrupt", source, md5))
	})
}

// beforeTrain are the steps that succeed before train starts.
var beforeTrain = []string{"provision", "disk", "fetch", "pull-image", "preprocess"}

func testResumeAfterKill(t *testing.T, r *resumeRun) {
	p := r.startRun(t)
	run := r.waitTrainBlocked(t, p)
	orphan := r.blockedPid(t)
	if processGone(orphan) {
		t.Fatalf("the blocked training (pid %d) is not running", orphan)
	}
	before := r.tools(t)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done // reaped: the lease's holder is gone
	stale := r.read(t)
	if stale.Status != state.RunRunning || stale.Steps["train"].Status != state.StepRunning {
		t.Fatalf("after kill -9 the state says run %s, train %s; want both running", stale.Status, stale.Steps["train"].Status)
	}

	code, out := r.gpipe(t, "resume", "--state", r.stateURL, r.id)
	if code != 0 {
		t.Fatalf("gpipe resume exited %d, want 0:\n%s", code, out)
	}
	after := r.status(t)
	wantResumePlan(t, out, beforeTrain, []string{"train", "evaluate", "teardown"})
	wantAllSucceeded(t, after, out)
	// Reused means not run: no new attempt, no new call of their tools.
	for _, id := range beforeTrain {
		if got, want := len(after.Steps[id].Attempts), len(run.Steps[id].Attempts); got != want {
			t.Errorf("step %s has %d attempts after the resume, %d before", id, got, want)
		}
	}
	now := r.tools(t)
	if added := now.disk[len(before.disk):]; len(added) > 0 {
		t.Errorf("the resume called the disk tools again: %q", added)
	}
	for _, c := range now.docker[len(before.docker):] {
		if strings.HasPrefix(c, "docker pull") || strings.HasPrefix(c, "docker build") {
			t.Errorf("the resume called %q: pull-image and the image build are reused", c)
		}
	}
	if got := modes(now.runs[len(before.runs):]); !slices.Equal(got, []string{"evaluate", "train"}) {
		t.Errorf("container runs of the resume %q, want train and evaluate (preprocess is reused)", got)
	}

	// The train script the dead runner left blocked is stopped before the
	// new attempt starts, so two trainings never write the fold at once.
	if !processGone(orphan) {
		t.Errorf("the killed runner's training (pid %d) still runs after the resume", orphan)
	}
	if _, logs := r.gpipe(t, "logs", "--state", r.stateURL, r.id, "train"); !strings.Contains(logs, "stopped processes left by an earlier attempt of this step") {
		t.Errorf("train's log does not say it stopped the previous runner's processes:\n%s", logs)
	}

	fold := filepath.Join(r.data, "results", "01_2d", "fold_0")
	r.wantResumedFrom(t, now.runs[len(before.runs):], fold, "ckpt fold 0 epoch 0")
	r.wantEvaluatedBest(t, now.runs, fold)
	r.wantHistory(t, after)
	r.wantStacks(t, after, 1)
}

func testResumeAfterInterrupt(t *testing.T, r *resumeRun) {
	p := r.startRun(t)
	first := r.waitTrainBlocked(t, p)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	code, out := p.wait(t)
	if code != exitInterrupted {
		t.Fatalf("gpipe run exited %d after SIGINT, want %d:\n%s", code, exitInterrupted, out)
	}
	stopped := r.status(t)
	if stopped.Status != state.RunInterrupted {
		t.Errorf("run %s after SIGINT, want %s", stopped.Status, state.RunInterrupted)
	}
	wantSteps(t, stopped, out, map[string]state.StepStatus{"preprocess": state.StepSucceeded,
		"train": state.StepCancelled, "teardown": state.StepSucceeded})
	if st := stopped.Steps["evaluate"].Status; st == state.StepSucceeded || st == state.StepRunning {
		t.Errorf("evaluate %s after SIGINT during train", st)
	}
	oldStack := first.Steps["provision"].Outputs["stack_id"]
	if st := r.stackByID(t, oldStack); st.Status != "DELETE_COMPLETE" {
		t.Errorf("stack %s is %s after the interrupted run's teardown, want DELETE_COMPLETE", oldStack, st.Status)
	}
	// The interrupted script synced the fold on its way out: the epoch-0
	// checkpoint outlives the instance.
	prefix := "unet-brain/" + r.id + "/01_2d/fold_0/checkpoints/"
	if got, err := r.e.getObject(t, prefix+"last.ckpt"); err != nil || got != "ckpt fold 0 epoch 0\n" {
		t.Fatalf("s3://%s/%slast.ckpt after SIGINT: %q, %v; want the epoch-0 checkpoint", e2eResultsBucket, prefix, got, err)
	}

	r.freshInstance(t)
	before := r.tools(t)
	code, out = r.gpipe(t, "resume", "--state", r.stateURL, r.id)
	if code != 0 {
		t.Fatalf("gpipe resume exited %d, want 0:\n%s", code, out)
	}
	after := r.status(t)
	wantResumePlan(t, out, nil, []string{"provision", "disk", "fetch", "pull-image", "preprocess", "train", "evaluate", "teardown"})
	wantAllSucceeded(t, after, out)

	// A new stack, a new instance: everything that lived on it is redone.
	if got := after.Steps["provision"].Outputs["stack_id"]; got == "" || got == oldStack {
		t.Errorf("provision's stack_id after the resume %q, the deleted stack was %q: want a new stack", got, oldStack)
	}
	now := r.tools(t)
	disk := strings.Join(now.disk[len(before.disk):], "\n")
	for _, want := range []string{"mdadm --create", "mkfs.ext4", "mount -o noatime"} {
		if !strings.Contains(disk, want) {
			t.Errorf("prepare-disk did not run %q on the new instance:\n%s", want, disk)
		}
	}
	docker := strings.Join(now.docker[len(before.docker):], "\n")
	for _, want := range []string{"docker pull " + e2eImage, "docker build"} {
		if !strings.Contains(docker, want) {
			t.Errorf("the resume did not run %q on the new instance:\n%s", want, docker)
		}
	}
	if got := modes(now.runs[len(before.runs):]); !slices.Equal(got, []string{"evaluate", "preprocess", "train"}) {
		t.Errorf("container runs of the resume %q, want preprocess, train and evaluate", got)
	}
	if got := after.Steps["fetch"].Outputs["num_training"]; got != "3" {
		t.Errorf("fetch num_training %q after the resume, want 3", got)
	}
	if _, err := os.Stat(filepath.Join(r.data, task01, "dataset.json")); err != nil {
		t.Errorf("fetch did not extract the task again: %v", err)
	}

	// The workdir was wiped with the instance: the checkpoint came from S3.
	fold := filepath.Join(r.data, "results", "01_2d", "fold_0")
	if _, logs := r.gpipe(t, "logs", "--state", r.stateURL, r.id, "train"); !strings.Contains(logs, "looking for checkpoints in s3://"+e2eResultsBucket+"/unet-brain/"+r.id+"/01_2d/fold_0/checkpoints") {
		t.Errorf("train's log does not show the restore from S3:\n%s", logs)
	}
	r.wantResumedFrom(t, now.runs[len(before.runs):], fold, "ckpt fold 0 epoch 0")
	r.wantEvaluatedBest(t, now.runs, fold)
	r.wantHistory(t, after)
	r.wantStacks(t, after, 2)
}
