package main

// Helpers of unet_resume_test.go.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store"
)

// resumeRun is a unetRun whose training blocks at its first checkpoint.
type resumeRun struct {
	*unetRun
	source, md5 string
	gate        string // FAKE_TRAIN_GATE: never created while the test runs
}

// withOwnAWS returns the fixture with an AWS fake of its own (same S3).
func (e *unetE2E) withOwnAWS(t *testing.T) *unetE2E {
	t.Helper()
	own := *e
	own.aws = awsfake.New(t, awsfake.Options{AccessKey: e.s3.AccessKey, SecretKey: e.s3.SecretKey})
	addUbuntuImage(own.aws, "ami-0e2e0000000000002")
	return &own
}

func newResumeRun(t *testing.T, e *unetE2E, id, source, md5 string) *resumeRun {
	t.Helper()
	r := &resumeRun{source: source, md5: md5}
	r.unetRun = e.newRun(t, id, "FAKE_WANT_HPUS=8")
	r.gate = filepath.Join(r.dir, "gate")
	r.env = append(r.env, "FAKE_TRAIN_GATE="+r.gate)
	// Whatever the test left blocked (it failed early) goes on and ends.
	t.Cleanup(func() { _ = os.WriteFile(r.gate, nil, 0o644) })
	return r
}

// proc is a gpipe process the test signals.
type proc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{} // closed once cmd is waited for
	err  error
}

func (r *resumeRun) startRun(t *testing.T) *proc {
	t.Helper()
	args := []string{"run", "--state", r.stateURL, "--run-id", r.id,
		"-p", "results_bucket=" + e2eResultsBucket, "-p", "host=local", "-p", "data_dir=" + r.data,
		"-p", "msd_source=" + r.source, "-p", "msd_md5=" + r.md5}
	spec := filepath.Join(r.e.repo, "specs", "unet-brain.yaml")
	r.underPolicy(t, args, spec)
	cmd := exec.Command(r.e.gpipe, append(args, spec)...)
	cmd.Dir, cmd.Env = r.dir, r.env
	p := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	// Steps outlive a killed gpipe and hold its output pipe: without a
	// delay, waiting for gpipe would wait for them too.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gpipe: %v", err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code and output, failing after a minute.
func (p *proc) wait(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatal("gpipe did not exit within a minute")
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		t.Fatalf("gpipe: %v\n%s", p.err, p.out.String())
	}
	return p.cmd.ProcessState.ExitCode(), p.out.String()
}

// waitTrainBlocked waits until the training blocks at its first checkpoint
// and the state durably says where train's process group runs (what a resume
// needs to stop it), and returns that state.
func (r *resumeRun) waitTrainBlocked(t *testing.T, p *proc) *state.Run {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("gpipe exited before train blocked:\n%s", p.out.String())
		default:
		}
		if _, err := os.Stat(filepath.Join(r.fake, "train-blocked")); err == nil {
			run := r.read(t)
			// "local_pgroup" is steps/host's resume key of a local step.
			if tr := run.Steps["train"]; tr != nil && tr.Status == state.StepRunning && tr.Resume["local_pgroup"] != "" {
				return run
			}
		}
		if time.Now().After(deadline) {
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Fatalf("train did not block at its first checkpoint within 45 s:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// read loads the run's state without gpipe (cheap enough to poll).
func (r *resumeRun) read(t *testing.T) *state.Run {
	t.Helper()
	st, err := store.Open(t.Context(), r.stateURL)
	if err != nil {
		t.Fatal(err)
	}
	run, err := state.Read(t.Context(), st, r.id)
	if err != nil {
		t.Fatalf("read run %s: %v", r.id, err)
	}
	return run
}

func (r *resumeRun) blockedPid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.fake, "train-blocked"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("train-blocked: %v", err)
	}
	return pid
}

// processGone: no such process, or a zombie nobody reaped yet.
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH)
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// toolCalls is what the fakes have recorded so far.
type toolCalls struct {
	disk, docker []string   // call logs of the disk tools and of docker
	runs         [][]string // argv of each docker run, oldest first
}

func (r *resumeRun) tools(t *testing.T) toolCalls {
	t.Helper()
	lines := func(name string) []string {
		b, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	// dockerRuns globs, which sorts; the names start with the time in ns.
	return toolCalls{disk: lines(filepath.Join(r.disk, "calls")), docker: lines(filepath.Join(r.fake, "calls")), runs: r.dockerRuns(t)}
}

func modes(runs [][]string) []string {
	var m []string
	for _, argv := range runs {
		m = append(m, mode(argv))
	}
	slices.Sort(m)
	return m
}

// freshInstance makes the machine look like the new instance of a new stack:
// an empty data disk (no dataset, no workdir, no checkpoints), unformatted
// and unmounted; docker's data and ~/.cache back on the root volume; no
// images. The fakes' call logs stay.
func (r *resumeRun) freshInstance(t *testing.T) {
	t.Helper()
	for _, p := range []string{r.data, r.moveRoot, filepath.Join(r.dir, "dev", "md"), filepath.Join(r.disk, "mounted"),
		filepath.Join(r.disk, "fs"), filepath.Join(r.fake, "images"), filepath.Join(r.fake, "pulled")} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(r.moveRoot, "var/lib/docker/image/db"), "docker data")
	writeFile(t, filepath.Join(r.moveRoot, r.home, ".cache/pip/wheel"), "wheel")
	r.bootDocker(t)
}

// wantResumePlan checks the plan `gpipe resume` printed.
func wantResumePlan(t *testing.T, out string, reuse, rerun []string) {
	t.Helper()
	actions := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && (f[1] == "reuse" || f[1] == "rerun") {
			actions[f[0]] = f[1]
		}
	}
	for want, ids := range map[string][]string{"reuse": reuse, "rerun": rerun} {
		for _, id := range ids {
			if actions[id] != want {
				t.Errorf("resume plan: step %s %q, want %s\n%s", id, actions[id], want, out)
			}
		}
	}
}

func wantAllSucceeded(t *testing.T, run *state.Run, out string) {
	t.Helper()
	if run.Status != state.RunSucceeded {
		t.Errorf("run %s after the resume, want %s", run.Status, state.RunSucceeded)
	}
	want := map[string]state.StepStatus{}
	for _, id := range append(slices.Clone(beforeTrain), "train", "evaluate", "teardown") {
		want[id] = state.StepSucceeded
	}
	wantSteps(t, run, out, want)
}

// wantResumedFrom checks that the resumed training got --ckpt_path of the
// fold's last checkpoint with --resume_training, and that the checkpoint
// held what the stopped training had written.
func (r *resumeRun) wantResumedFrom(t *testing.T, runs [][]string, fold, content string) {
	t.Helper()
	last := filepath.Join(fold, "checkpoints", "last.ckpt")
	var trains int
	for _, argv := range runs {
		if mode(argv) != "train" {
			continue
		}
		trains++
		if got := argAfter(argv, "--ckpt_path"); got != last || !slices.Contains(argv, "--resume_training") {
			t.Errorf("resumed train: --ckpt_path %q, --resume_training %v; want %s and true: %q", got,
				slices.Contains(argv, "--resume_training"), last, argv)
		}
	}
	if trains != 1 {
		t.Errorf("%d trainings in the resume, want 1", trains)
	}
	if got, err := os.ReadFile(filepath.Join(r.fake, "resumed")); err != nil || string(got) != last+": "+content+"\n" {
		t.Errorf("the fake's resumed trainings: %q, %v; want one from %s holding %q", got, err, last, content)
	}
}

// wantEvaluatedBest checks that evaluate got the best checkpoint of the
// finished training, not the one the stopped training had left.
func (r *resumeRun) wantEvaluatedBest(t *testing.T, runs [][]string, fold string) {
	t.Helper()
	best := filepath.Join(fold, "checkpoints", "epoch=2-step=30.ckpt")
	for _, argv := range runs {
		if mode(argv) == "evaluate" {
			if got := argAfter(argv, "--ckpt_path"); got != best {
				t.Errorf("evaluate --ckpt_path %q, want %s", got, best)
			}
		}
	}
}

// wantHistory checks that the training's history survived the resume. The
// stopped attempt logged epoch 0; the resumed main.py truncated logs.json and
// logged epoch 2 (it logs every second epoch): the outputs cover both, and
// each attempt's log is in S3 under its own name.
func (r *resumeRun) wantHistory(t *testing.T, run *state.Run) {
	t.Helper()
	out := run.Steps["train"].Outputs
	for k, v := range map[string]string{"epochs": "3", "best_mean_dice": "63.5", "best_epoch": "2", "best_dice_l1": "70"} {
		if out[k] != v {
			t.Errorf("train output %s = %q, want %q", k, out[k], v)
		}
	}
	prefix := "unet-brain/" + r.id + "/01_2d/fold_0/"
	for name, want := range map[string]string{"logs-attempt-1.json": `"step": 0`, "logs-attempt-2.json": `"step": 2`} {
		got, err := r.e.getObject(t, prefix+name)
		if err != nil || strings.Count(got, "DLLL ") != 1 || !strings.Contains(got, want) {
			t.Errorf("s3://%s/%s%s (%v), want the one record %s:\n%s", e2eResultsBucket, prefix, name, err, want, got)
		}
	}
	if got, err := r.e.getObject(t, prefix+"logs.json"); err == nil {
		t.Errorf("s3://%s/%slogs.json exists (%q): only the attempts' logs are kept", e2eResultsBucket, prefix, got)
	}
}

// stackByID returns the fake's stack with that id.
func (r *resumeRun) stackByID(t *testing.T, id string) awsfake.StackInfo {
	t.Helper()
	for _, st := range r.e.aws.CFN.Stacks() {
		if st.ID == id {
			return st
		}
	}
	t.Fatalf("the fake AWS has no stack %q", id)
	return awsfake.StackInfo{}
}

// wantStacks checks that the run created n stacks, each deleted exactly once,
// and that the last teardown deleted the last provision's stack.
func (r *resumeRun) wantStacks(t *testing.T, run *state.Run, n int) {
	t.Helper()
	var ids []string
	for _, st := range r.e.aws.CFN.Stacks() {
		if st.Tags["gpipe:run-id"] != r.id {
			t.Errorf("stack %s of another run %q", st.Name, st.Tags["gpipe:run-id"])
		}
		if st.Status != "DELETE_COMPLETE" {
			t.Errorf("stack %s (%s) is %s, want DELETE_COMPLETE", st.Name, st.ID, st.Status)
		}
		ids = append(ids, st.ID)
	}
	if len(ids) != n {
		t.Errorf("stacks %q, want %d", ids, n)
	}
	for op, want := range map[string]int{"CloudFormation.CreateStack": n, "CloudFormation.DeleteStack": n} {
		if got := r.e.aws.Calls(op); got != want {
			t.Errorf("%s called %d times, want %d", op, got, want)
		}
	}
	if len(ids) > 0 && run.Steps["provision"].Outputs["stack_id"] != ids[len(ids)-1] {
		t.Errorf("provision's stack_id %q, want the last stack %s", run.Steps["provision"].Outputs["stack_id"], ids[len(ids)-1])
	}
	if got, want := run.Steps["teardown"].Outputs["deleted"], run.Steps["provision"].Outputs["stack_name"]; got != want {
		t.Errorf("teardown deleted %q, want provision's stack %q", got, want)
	}
}
