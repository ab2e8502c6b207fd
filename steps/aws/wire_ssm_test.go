package aws

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/aws/ssmhost"
	"github.com/gpipe/gpipe/steps/host"
)

const instance = "i-0feedfacecafe0001"

func (e *wireEnv) executor() host.Executor {
	e.t.Helper()
	ex, err := e.steps.SSMExecutor(pipeline.Host{Name: "gaudi", Address: "ssm:" + instance})
	if err != nil {
		e.t.Fatal(err)
	}
	return ex
}

func remoteScript(body string, env map[string]string) (host.Script, *syncBuf, map[string]string) {
	log, saved := &syncBuf{}, map[string]string{}
	return host.Script{StepID: "train", Body: body, Env: env, Log: log, Timeout: 3 * time.Hour, Resume: map[string]string{},
		SaveResume: func(_ context.Context, k, v string) error { saved[k] = v; return nil }}, log, saved
}

// TestWireSSMExec runs a script through the real SSM and CloudWatch Logs
// clients: JSON 1.1 requests with X-Amz-Target, the agent coming online,
// InvocationDoesNotExist right after SendCommand, throttled polls retried by
// the SDK, output tailed from the log stream in pages, outputs parsed.
func TestWireSSMExec(t *testing.T) {
	e := newWire(t, 0)
	e.runner()
	e.srv.SSM.AddInstance(instance, 2) // still booting for two polls
	for op, n := range map[string]int{"SSM.DescribeInstanceInformation": 1, "SSM.SendCommand": 1, "SSM.GetCommandInvocation": 2, "Logs.GetLogEvents": 2} {
		e.srv.Throttle(op, n)
	}
	body := `set -euo pipefail
for i in 1 2 3 4 5 6 7; do echo "epoch $i"; done
echo "warning on stderr" >&2
echo "A=$A"
echo dice=0.71 >>"$GPIPE_OUTPUT"
printf 'notes<<EOF\na\nb\nEOF\n' >>"$GPIPE_OUTPUT"
`
	s, log, saved := remoteScript(body, map[string]string{"A": "it's $HOME"})
	out, err := e.executor().Exec(t.Context(), s)
	if err != nil {
		t.Fatalf("Exec: %v\n%s", err, log)
	}
	if out["dice"] != "0.71" || out["notes"] != "a\nb" || len(out) != 2 {
		t.Errorf("outputs %q", out)
	}
	want := "epoch 1\nepoch 2\nepoch 3\nepoch 4\nepoch 5\nepoch 6\nepoch 7\nwarning on stderr\nA=it's $HOME\n"
	if !strings.Contains(log.String(), want) {
		t.Errorf("log lacks the script's output in order:\n%s", log)
	}
	if strings.Contains(log.String(), "gpipe-outputs") || strings.Contains(log.String(), "dice=") {
		t.Errorf("outputs leaked into the log:\n%s", log)
	}
	if e.srv.SSM.Sent() != 1 || saved[ssmhost.ResumeCommandID] == "" {
		t.Errorf("%d commands sent, saved %v", e.srv.SSM.Sent(), saved)
	}
	if n := e.srv.Calls("SSM.ListCommands"); n != 0 {
		t.Errorf("a throttled SendCommand (refused, not carried out) was looked up %d times", n)
	}
	if n := e.srv.Calls("SSM.GetCommandInvocation"); n < 5 {
		t.Errorf("%d GetCommandInvocation calls; want the hidden, throttled, in-progress and final ones", n)
	}
	stream := saved[ssmhost.ResumeCommandID] + "/" + instance + "/aws-runShellScript/stdout"
	if msgs := e.srv.Logs.Messages("/gpipe/ssm", stream); len(msgs) < 10 {
		t.Errorf("log stream %s: %q", stream, msgs)
	}
}

func TestWireSSMFailureExitCode(t *testing.T) {
	e := newWire(t, 0)
	e.runner()
	e.srv.SSM.AddInstance(instance, 0)
	s, log, _ := remoteScript("set -euo pipefail\necho boom\nexit 3\n", nil)
	_, err := e.executor().Exec(t.Context(), s)
	var ee *pipeline.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("err = %v, want exit status 3\n%s", err, log)
	}
	if !strings.Contains(log.String(), "boom\n") {
		t.Errorf("log:\n%s", log)
	}
}

// gated is a script that prints, waits until the test creates a file, then
// prints again and writes an output: a long training job in miniature.
func gated(t *testing.T) (body string, env map[string]string, open func()) {
	gate := filepath.Join(t.TempDir(), "gate")
	body = `set -euo pipefail
echo "before the gate"
while [ ! -e "$GATE" ]; do sleep 0.01; done
echo "after the gate"
echo k=v >>"$GPIPE_OUTPUT"
`
	return body, map[string]string{"GATE": gate}, func() {
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWireSSMInterruptCancelsCommand: an interrupt (ctx cancelled) stops the
// remote command with CancelCommand.
func TestWireSSMInterruptCancelsCommand(t *testing.T) {
	e := newWire(t, 0)
	e.runner()
	e.srv.SSM.AddInstance(instance, 0)
	body, env, _ := gated(t)
	ctx, cancel := context.WithCancel(t.Context())
	e.clock.setHook(func(n int) {
		if n == 4 {
			cancel()
		}
	})
	s, log, saved := remoteScript(body, env)
	// A broken interrupt must fail the test, not hang it: each wait has a
	// deadline, and failing runs the fake's cleanup, which kills the
	// command's processes.
	execDone := make(chan error, 1)
	go func() { _, err := e.executor().Exec(ctx, s); execDone <- err }()
	select {
	case err := <-execDone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v\n%s", err, log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Exec still running 30s after its context was cancelled\n%s", log)
	}
	id := saved[ssmhost.ResumeCommandID]
	waited := make(chan struct{})
	go func() { e.srv.SSM.Wait(id); close(waited) }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		t.Fatalf("command %s still %s 30s after the interrupt (%d CancelCommand calls)\n%s",
			id, e.srv.SSM.Status(id), e.srv.Calls("SSM.CancelCommand"), log)
	}
	if st := e.srv.SSM.Status(id); st != "Cancelled" || e.srv.Calls("SSM.CancelCommand") != 1 {
		t.Errorf("status %s after interrupt, %d CancelCommand calls\n%s", st, e.srv.Calls("SSM.CancelCommand"), log)
	}
}

// TestWireSSMReattachAfterKill: a runner dies (no request of it reaches AWS
// any more) while the command runs; a new runner given the saved command id
// reattaches, sees the command finish and reads its output, and never sends
// the command again.
func TestWireSSMReattachAfterKill(t *testing.T) {
	e := newWire(t, 0)
	e.runner()
	e.srv.SSM.AddInstance(instance, 0)
	body, env, open := gated(t)
	ctx, cancel := context.WithCancel(t.Context())
	net := e.net
	e.clock.setHook(func(n int) {
		if n == 3 {
			net.cut.Store(true) // kill -9
			cancel()
		}
	})
	s, log, saved := remoteScript(body, env)
	if _, err := e.executor().Exec(ctx, s); err == nil {
		t.Fatalf("the killed runner's Exec succeeded\n%s", log)
	}
	e.clock.setHook(nil)
	id := saved[ssmhost.ResumeCommandID]
	if st := e.srv.SSM.Status(id); st != "InProgress" || e.srv.Calls("SSM.CancelCommand") != 0 {
		t.Fatalf("command %s is %s after the runner died (%d cancels)", id, st, e.srv.Calls("SSM.CancelCommand"))
	}

	e.runner() // a new process
	open()
	s2, log2, _ := remoteScript(body, env)
	s2.Resume = saved
	out, err := e.executor().Exec(t.Context(), s2)
	if err != nil {
		t.Fatalf("reattach: %v\n%s", err, log2)
	}
	if out["k"] != "v" || e.srv.SSM.Sent() != 1 {
		t.Errorf("outputs %v, %d commands sent", out, e.srv.SSM.Sent())
	}
	if !strings.Contains(log2.String(), "reattaching to SSM command "+id) || !strings.Contains(log2.String(), "after the gate\n") {
		t.Errorf("log:\n%s", log2)
	}
}

// TestWireSSMLostSendResponse: SendCommand reached the service but its answer
// was lost (connection reset). SendCommand has no idempotency token, so a
// blind retry would start the training a second time on the same cards; the
// executor must find the command it sent instead.
func TestWireSSMLostSendResponse(t *testing.T) {
	e := newWire(t, 0)
	e.runner()
	e.srv.SSM.AddInstance(instance, 0)
	e.srv.LoseResponses("SSM.SendCommand", 1)
	s, log, saved := remoteScript("set -euo pipefail\necho k=v >>\"$GPIPE_OUTPUT\"\n", nil)
	out, err := e.executor().Exec(t.Context(), s)
	if err != nil {
		t.Fatalf("Exec: %v\n%s", err, log)
	}
	if e.srv.Calls("SSM.ListCommands") == 0 {
		t.Error("the lost command was not looked up")
	}
	if n := e.srv.SSM.Sent(); n != 1 || out["k"] != "v" || saved[ssmhost.ResumeCommandID] == "" {
		t.Errorf("%d commands started (want 1), outputs %v, saved %v\n%s", n, out, saved, log)
	}
}
