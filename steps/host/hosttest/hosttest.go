// Package hosttest is the behaviour every host.Executor must show, as one test
// suite: the local host and the SSM host (against the AWS wire fake) both run
// it, so host step types and the engine can rely on the same contract
// whatever machine a script runs on.
//
// Contract checked here:
//   - Outputs: key=value lines and heredoc values (key<<DELIM ... DELIM)
//     written to $GPIPE_OUTPUT come back from Exec; an empty file gives no
//     outputs; empty lines inside a heredoc value are kept. Script.Env
//     reaches the script literally (no expansion). stdout and stderr reach
//     Script.Log in order, blank lines included; outputs never do.
//   - Exit codes: a script that exits non-zero returns a *pipeline.ExitError
//     with its status (128+n for a script killed by signal n).
//   - Cancellation: cancelling the context ends Exec promptly with an error
//     that is context.Canceled, and stops the script's whole process group,
//     children that ignore SIGTERM included.
//   - Timeouts: a context deadline (the engine's step timeout) does the same.
//     Hosts that enforce Script.Timeout themselves (Host.ScriptTimeout) also
//     stop a script that outlives it without a context deadline and report
//     exit status 124.
//   - Detach (pipeline.ErrDetached as the context's cause): a host that can
//     reattach (Host.Reattach) saves resume data, leaves the script running,
//     returns a *pipeline.DetachedError, and a later Exec handed that data as
//     Script.Resume reattaches to the same run of the script (it never runs
//     twice) and returns its outputs. A host that cannot reattach stops the
//     script as on any cancellation: nothing may run on unattended.
//   - Leftovers (Host.Leftover): an attempt handed the resume data of a dead
//     runner's attempt (Script.Previous) stops what that attempt left running
//     before the script runs.
//
// Scripts run where the test runs (the SSM fake runs commands on this
// machine), so the suite watches processes through pid files in a temporary
// folder it passes in Script.Env.
package hosttest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
)

// Host describes the executor under test and what it can do beyond the
// common contract.
type Host struct {
	// New returns an executor as a fresh runner builds it; the suite calls it
	// again to stand for a new runner after a detach.
	New func(t *testing.T) host.Executor
	// Reattach: the host can leave a script running when the runner detaches
	// and reattach to it later. Only a remote host can: a local script lives
	// in the runner's own machine and process tree, so Local stops it.
	Reattach bool
	// ScriptTimeout: the host enforces Script.Timeout on its own, so the
	// limit holds even when no runner watches (SSM's executionTimeout).
	// Local leaves the timeout to the engine's context deadline: its script
	// cannot outlive a runner that still holds its process group.
	ScriptTimeout bool
	// Leftover, when not nil, starts body with env as an attempt of a runner
	// that was killed with SIGKILL left it running, and returns the resume
	// data that runner had noted. Nil: the host has no such leftovers to stop.
	Leftover func(t *testing.T, body string, env map[string]string) map[string]string
}

// Run runs the suite.
func Run(t *testing.T, h Host) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Host)
	}{
		{"Outputs", testOutputs},
		{"EmptyOutputs", testEmptyOutputs},
		{"ExitCodes", testExitCodes},
		{"Cancel", testCancel},
		{"ContextTimeout", testContextTimeout},
		{"ScriptTimeout", testScriptTimeout},
		{"Detach", testDetach},
		{"Leftovers", testLeftovers},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// Log is a concurrency-safe step log.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }

// String returns what was written so far.
func (l *Log) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// resumeSaver keeps what Exec saves, as the engine keeps it in the run state.
type resumeSaver struct {
	mu sync.Mutex
	m  map[string]string
}

func (r *resumeSaver) save(_ context.Context, k, v string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[k] = v
	return nil
}

func (r *resumeSaver) note(k, v string) { _ = r.save(context.Background(), k, v) }

func (r *resumeSaver) data() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.m)
}

func script(body string, env map[string]string) (host.Script, *Log, *resumeSaver) {
	log, rs := &Log{}, &resumeSaver{m: map[string]string{}}
	return host.Script{StepID: "conformance", Body: body, Env: env, Log: log, Resume: map[string]string{},
		SaveResume: rs.save, NoteResume: rs.note}, log, rs
}

func testOutputs(t *testing.T, h Host) {
	body := `set -euo pipefail
echo hello
echo
echo oops >&2
echo "greeting=$GREETING" >>"$GPIPE_OUTPUT"
echo "eq=a=b" >>"$GPIPE_OUTPUT"
echo "empty=" >>"$GPIPE_OUTPUT"
printf 'multi<<EOF\na\n\nb\nEOF\n' >>"$GPIPE_OUTPUT"
`
	// The empty lines matter over SSM: outputs and log travel in the
	// CloudWatch log stream, which has no empty events.
	s, log, _ := script(body, map[string]string{"GREETING": `it's "$HOME" & $(x)`})
	out, err := h.New(t).Exec(t.Context(), s)
	if err != nil {
		t.Fatalf("Exec: %v\n%s", err, log)
	}
	want := map[string]string{"greeting": `it's "$HOME" & $(x)`, "eq": "a=b", "empty": "", "multi": "a\n\nb"}
	if len(out) != len(want) {
		t.Errorf("outputs %q, want %q", out, want)
	}
	for k, v := range want {
		if got, ok := out[k]; !ok || got != v {
			t.Errorf("output %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	l := log.String()
	if i, j := strings.Index(l, "hello\n\n"), strings.Index(l, "oops\n"); i < 0 || j < i {
		t.Errorf("log lacks stdout (with its blank line) then stderr:\n%q", l)
	}
	if strings.Contains(l, "greeting=") || strings.Contains(l, "EOF") {
		t.Errorf("outputs leaked into the log:\n%s", l)
	}
}

func testEmptyOutputs(t *testing.T, h Host) {
	s, log, _ := script("set -euo pipefail\necho nothing to say\n", nil)
	out, err := h.New(t).Exec(t.Context(), s)
	if err != nil || len(out) != 0 {
		t.Fatalf("Exec: outputs %q, err %v\n%s", out, err, log)
	}
}

func testExitCodes(t *testing.T, h Host) {
	for _, tc := range []struct {
		body string
		code int
	}{
		{"echo before; exit 3", 3},
		{"set -e; false; echo unreachable", 1},
		{"exit 7", 7},
		{"kill -TERM $$", 128 + int(syscall.SIGTERM)},
	} {
		s, log, _ := script(tc.body+"\n", nil)
		_, err := h.New(t).Exec(t.Context(), s)
		var ee *pipeline.ExitError
		if !errors.As(err, &ee) || ee.Code != tc.code {
			t.Errorf("%q: err = %v, want exit status %d\n%s", tc.body, err, tc.code, log)
		}
		if strings.HasPrefix(tc.body, "echo before") && !strings.Contains(log.String(), "before\n") {
			t.Errorf("%q: log lost what the script printed before failing:\n%s", tc.body, log)
		}
	}
}

// running is a script that starts a child ignoring SIGTERM, records its pid
// and waits; gate, when created, lets the script end and write an output.
// Each run appends a line to the runs file.
type running struct {
	dir  string
	body string
	env  map[string]string
}

func newRunning(t *testing.T) *running {
	dir := t.TempDir()
	body := `set -euo pipefail
echo run >>"$HT_DIR/runs"
bash -c 'trap "" TERM; while [ ! -e "$HT_DIR/gate" ]; do sleep 0.05; done' &
echo $! >"$HT_DIR/child.pid"
echo started
wait
echo k=v >>"$GPIPE_OUTPUT"
`
	r := &running{dir: dir, body: body, env: map[string]string{"HT_DIR": dir}}
	t.Cleanup(func() {
		if pid := r.pidNow(); pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return r
}

func (r *running) pidNow() int {
	b, _ := os.ReadFile(filepath.Join(r.dir, "child.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// child waits for the script's child to start and returns its pid.
func (r *running) child(t *testing.T) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if pid := r.pidNow(); pid > 1 {
			return pid
		}
	}
	t.Fatal("the script's child never started")
	return 0
}

func (r *running) open(t *testing.T) {
	if err := os.WriteFile(filepath.Join(r.dir, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *running) runs() int {
	b, _ := os.ReadFile(filepath.Join(r.dir, "runs"))
	return strings.Count(string(b), "run\n")
}

// execAsync runs Exec in the background; the result arrives on the channel.
func execAsync(ctx context.Context, ex host.Executor, s host.Script) <-chan error {
	done := make(chan error, 1)
	go func() { _, err := ex.Exec(ctx, s); done <- err }()
	return done
}

func await(t *testing.T, done <-chan error, log *Log) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("Exec still running 30s after it should have ended\n%s", log)
	}
	return nil
}

func testCancel(t *testing.T, h Host) {
	r := newRunning(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, log, _ := script(r.body, r.env)
	done := execAsync(ctx, h.New(t), s)
	child := r.child(t)
	cancel()
	if err := await(t, done, log); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if Alive(child) {
		t.Errorf("child %d (ignores SIGTERM) still runs after the cancel", child)
	}
}

func testContextTimeout(t *testing.T, h Host) {
	r := newRunning(t)
	cause := errors.New("step timed out")
	// As the engine bounds a step: a deadline on the attempt's context. It
	// leaves the script ample time to start its child first.
	ctx, cancel := context.WithTimeoutCause(t.Context(), 3*time.Second, cause)
	defer cancel()
	s, log, _ := script(r.body, r.env)
	done := execAsync(ctx, h.New(t), s)
	child := r.child(t)
	err := await(t, done, log)
	if !errors.Is(err, cause) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the deadline's cause or context.DeadlineExceeded", err)
	}
	if Alive(child) {
		t.Errorf("child %d still runs after the deadline", child)
	}
}

func testScriptTimeout(t *testing.T, h Host) {
	if !h.ScriptTimeout {
		t.Skip("the host leaves timeouts to the context (see Host.ScriptTimeout)")
	}
	r := newRunning(t)
	s, log, _ := script(r.body, r.env)
	s.Timeout = time.Second
	done := execAsync(t.Context(), h.New(t), s)
	child := r.child(t)
	err := await(t, done, log)
	var ee *pipeline.ExitError
	if !errors.As(err, &ee) || ee.Code != 124 {
		t.Errorf("err = %v, want exit status 124", err)
	}
	if Alive(child) {
		t.Errorf("child %d still runs after the script's timeout", child)
	}
}

func testDetach(t *testing.T, h Host) {
	r := newRunning(t)
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	s, log, saved := script(r.body, r.env)
	done := execAsync(ctx, h.New(t), s)
	child := r.child(t)
	cancel(pipeline.ErrDetached)
	err := await(t, done, log)
	if !h.Reattach {
		if err == nil || errors.As(err, new(*pipeline.DetachedError)) {
			t.Errorf("err = %v; a host that cannot reattach must not report its script as left running", err)
		}
		if Alive(child) {
			t.Errorf("child %d runs on after a detach, and nothing can reattach to it", child)
		}
		return
	}
	if !errors.As(err, new(*pipeline.DetachedError)) {
		t.Fatalf("err = %v, want a *pipeline.DetachedError", err)
	}
	if !Alive(child) {
		t.Fatalf("child %d stopped on a detach; it should keep running for a resume", child)
	}
	resume := saved.data()
	if len(resume) == 0 {
		t.Fatal("no resume data saved")
	}
	r.open(t)
	s2, log2, _ := script(r.body, r.env)
	s2.Resume = resume
	out, err := h.New(t).Exec(t.Context(), s2)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, log2)
	}
	if out["k"] != "v" {
		t.Errorf("resume: outputs %q, want k=v", out)
	}
	if n := r.runs(); n != 1 {
		t.Errorf("the script ran %d times; a resume must reattach, not run it again", n)
	}
}

func testLeftovers(t *testing.T, h Host) {
	if h.Leftover == nil {
		t.Skip("the host leaves nothing behind to stop (see Host.Leftover)")
	}
	r := newRunning(t)
	previous := h.Leftover(t, r.body, r.env)
	child := r.child(t)
	s, log, _ := script("echo \"ran=yes\" >>\"$GPIPE_OUTPUT\"\n", nil)
	s.Previous = previous
	out, err := h.New(t).Exec(t.Context(), s)
	if err != nil || out["ran"] != "yes" {
		t.Fatalf("Exec: outputs %q, err %v\n%s", out, err, log)
	}
	if Alive(child) {
		t.Errorf("child %d of the dead runner's attempt still runs", child)
	}
}

// Alive reports whether pid runs, waiting up to two seconds for it to stop;
// a zombie waiting for its reaper has stopped.
func Alive(pid int) bool {
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 0 && f[0] == "Z" {
				return false
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
