package ssmhost

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/gpipe/gpipe/internal/testtool"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func setup(f *fakeSSM, onSleep func(n int)) (host.Executor, *[]time.Duration) {
	f.logs = &fakeLogs{streams: map[string][]string{}}
	var mu sync.Mutex
	var slept []time.Duration
	fac := NewFactory(func(context.Context) (*Clients, error) { return &Clients{SSM: f, Logs: f.logs, EC2: f.ec2}, nil }, Options{
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Unix(0, 0).Add(sum(slept)) },
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			slept = append(slept, d)
			n := len(slept)
			mu.Unlock()
			if onSleep != nil {
				onSleep(n)
			}
			return ctx.Err()
		},
	})
	ex, err := fac.For(pipeline.Host{Name: "gaudi", Address: "ssm:i-0abc"})
	if err != nil {
		panic(err)
	}
	return ex, &slept
}

func sum(ds []time.Duration) (t time.Duration) {
	for _, d := range ds {
		t += d
	}
	return t
}

func script(log *syncBuf, saved map[string]string) host.Script {
	return host.Script{StepID: "train", Body: "set -euo pipefail\necho hi\n", Env: map[string]string{"A": "x y"}, Log: log,
		Timeout: 3 * time.Hour, Resume: map[string]string{},
		SaveResume: func(_ context.Context, k, v string) error { saved[k] = v; return nil }}
}

func TestExecSuccessStreamsAndParsesOutputs(t *testing.T) {
	f := &fakeSSM{offlineFor: 2, runFor: 4, status: types.CommandInvocationStatusSuccess,
		stdout: []string{"epoch 1", "epoch 2", "epoch 3"}, outputs: "dice=0.71\nnotes<<EOF\na\nb\nEOF"}
	ex, _ := setup(f, nil)
	log, saved := &syncBuf{}, map[string]string{}
	out, err := ex.Exec(context.Background(), script(log, saved))
	if err != nil {
		t.Fatalf("Exec: %v\n%s", err, log)
	}
	if out["dice"] != "0.71" || out["notes"] != "a\nb" {
		t.Errorf("outputs %v", out)
	}
	for _, l := range []string{"epoch 1", "epoch 3"} {
		if !strings.Contains(log.String(), l+"\n") {
			t.Errorf("log lacks %q:\n%s", l, log)
		}
	}
	if strings.Contains(log.String(), "dice=") || strings.Contains(log.String(), "gpipe-outputs") {
		t.Errorf("outputs leaked into the log:\n%s", log)
	}
	if saved[ResumeCommandID] != "cmd-1" || saved[ResumeNonce] == "" {
		t.Errorf("saved %v", saved)
	}
	in := f.sent[0]
	if got := in.Parameters["executionTimeout"][0]; got != "10800" {
		t.Errorf("executionTimeout %s", got)
	}
	if !in.CloudWatchOutputConfig.CloudWatchOutputEnabled || *in.CloudWatchOutputConfig.CloudWatchLogGroupName != "/gpipe/ssm" {
		t.Errorf("cloudwatch config %+v", in.CloudWatchOutputConfig)
	}
}

func TestExecFailureExitCode(t *testing.T) {
	f := &fakeSSM{runFor: 1, status: types.CommandInvocationStatusFailed, code: 3, stdout: []string{"boom"}}
	ex, _ := setup(f, nil)
	_, err := ex.Exec(context.Background(), script(&syncBuf{}, map[string]string{}))
	var ee *pipeline.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("err = %v", err)
	}
}

func TestExecStatuses(t *testing.T) {
	for _, tc := range []struct {
		status  types.CommandInvocationStatus
		details string
		code    int // 0: not an ExitError
		want    string
	}{
		{types.CommandInvocationStatusTimedOut, "DeliveryTimedOut", 124, "timed out"},
		{types.CommandInvocationStatusFailed, "ExecutionTimedOut", 124, "execution timeout"},
		{types.CommandInvocationStatusFailed, "Execution Timed Out", 124, "execution timeout"},
		{types.CommandInvocationStatusCancelled, "Cancelled", 0, "cancelled"},
		{"Undeliverable", "Undeliverable", 0, "Undeliverable"},
		{"Terminated", "Terminated", 0, "terminated"},
	} {
		f := &fakeSSM{runFor: 1, status: tc.status, details: tc.details, code: -1}
		ex, _ := setup(f, nil)
		_, err := ex.Exec(context.Background(), script(&syncBuf{}, map[string]string{}))
		var ee *pipeline.ExitError
		if errors.As(err, &ee) != (tc.code != 0) || (tc.code != 0 && ee.Code != tc.code) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s/%s: err = %v", tc.status, tc.details, err)
		}
	}
}

func TestExecReattachesOnResume(t *testing.T) {
	f := &fakeSSM{runFor: 6, status: types.CommandInvocationStatusSuccess, stdout: []string{"step"}, outputs: "k=v"}
	ctx, cancel := context.WithCancel(context.Background())
	ex, _ := setup(f, func(n int) {
		if n == 3 {
			cancel() // the runner dies mid-command
		}
	})
	saved := map[string]string{}
	if _, err := ex.Exec(ctx, script(&syncBuf{}, saved)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if f.cancelled != 1 {
		t.Errorf("CancelCommand called %d times", f.cancelled)
	}
	// A real kill -9 would not cancel: undo that and resume with the saved ids.
	f.status = types.CommandInvocationStatusSuccess
	ex2, _ := setup(f, nil)
	s := script(&syncBuf{}, map[string]string{})
	s.Resume = saved
	out, err := ex2.Exec(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.sent) != 1 {
		t.Errorf("resume sent the command again (%d sends)", len(f.sent))
	}
	if out["k"] != "v" {
		t.Errorf("outputs %v", out)
	}
}

func TestExecFallsBackToTruncatedInvocationOutput(t *testing.T) {
	f := &fakeSSM{runFor: 1, status: types.CommandInvocationStatusSuccess, noCloudLogs: true, outputs: "k=v"}
	for range 3000 {
		f.stdout = append(f.stdout, "a long line of training output")
	}
	ex, _ := setup(f, nil)
	log := &syncBuf{}
	_, err := ex.Exec(context.Background(), script(log, map[string]string{}))
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(log.String(), "24,000") {
		t.Errorf("no truncation note:\n%.300s", log)
	}
	// Short output survives the fallback whole.
	f = &fakeSSM{runFor: 1, status: types.CommandInvocationStatusSuccess, noCloudLogs: true, stdout: []string{"x"}, outputs: "k=v"}
	ex, _ = setup(f, nil)
	log = &syncBuf{}
	out, err := ex.Exec(context.Background(), script(log, map[string]string{}))
	if err != nil || out["k"] != "v" {
		t.Fatalf("out %v err %v", out, err)
	}
	// The wrapper's line break before the outputs marker is not the script's.
	if !strings.HasSuffix(log.String(), "\nx\n") {
		t.Errorf("log %q should end with the script's last line", log)
	}
}

func TestExecAgentNeverOnline(t *testing.T) {
	f := &fakeSSM{offlineFor: 1 << 30}
	ex, _ := setup(f, nil)
	_, err := ex.Exec(context.Background(), script(&syncBuf{}, map[string]string{}))
	if err == nil || !strings.Contains(err.Error(), "not online") || len(f.sent) != 0 {
		t.Fatalf("err = %v, sends %d", err, len(f.sent))
	}
}

func TestForRejectsBadAddress(t *testing.T) {
	fac := NewFactory(nil, Options{})
	for _, a := range []string{"local", "ssm:", "ssm:host", "ssm:i-1 x"} {
		if _, err := fac.For(pipeline.Host{Name: "h", Address: a}); err == nil {
			t.Errorf("%q accepted", a)
		}
	}
}

// TestWrapperMarksStepRunning: while the step runs, a marker named by a
// live process, the wrapper's, exists (the idle watchdog's sign of a running
// step); when it ends, the marker is gone.
func TestWrapperMarksStepRunning(t *testing.T) {
	markers := t.TempDir()
	w := wrap(host.Script{StepID: "s", Body: "for f in \"$M\"/*; do if kill -0 \"${f##*/}\"; then echo marked; fi; done\n",
		Env: map[string]string{"M": markers}}, "n0nce")
	line := "gpipe_markers=" + StepMarkerDir + "\n"
	if !strings.Contains(w, line) {
		t.Fatalf("wrapper does not set the marker folder:\n%s", w)
	}
	w = strings.Replace(w, line, "gpipe_markers="+markers+"\n", 1)
	out, err := exec.Command("sh", "-c", w).Output()
	if err != nil {
		t.Fatalf("wrapper: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "|marked\n") {
		t.Errorf("no marker while the step ran: %q", out)
	}
	if left, _ := os.ReadDir(markers); len(left) != 0 {
		t.Errorf("markers left after the step: %v", left)
	}
}

// TestWrapperRunsLocally runs the wrapper with sh, as the agent does, and
// checks the markers, the exit code and the environment; shellcheck checks it
// (SC2016 excluded: values are single-quoted precisely so they do not expand).
func TestWrapperRunsLocally(t *testing.T) {
	w := wrap(host.Script{StepID: "s", Body: "set -euo pipefail\necho \"$A\"\necho out=1 >>\"$GPIPE_OUTPUT\"\necho err >&2\nexit 7\n",
		Env: map[string]string{"A": "it's $HOME"}}, "n0nce")
	cmd := exec.Command("sh", "-c", w)
	got, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("exit: %v", err)
	}
	// Every line of the step's is relayed behind the prefix; the wrapper's
	// own lines are not.
	want := "|it's $HOME\n|err\n\n::gpipe-outputs-n0nce::\n|out=1\n\n::gpipe-end-n0nce::\n"
	if string(got) != want {
		t.Errorf("output %q, want %q", got, want)
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		testtool.Unavailable(t, "shellcheck missing: "+testtool.ShellcheckInstall)
	}
	p := filepath.Join(t.TempDir(), "w.sh")
	if err := os.WriteFile(p, []byte(w), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sc, "-s", "sh", "-e", "SC2016", p).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
