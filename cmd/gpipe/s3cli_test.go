package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// lockedBuffer collects a running process's output for polling.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tourSpec: hello (an output, a line of log), slow (prints a line, then waits
// for a gate file, so the run is in progress for as long as the test needs),
// and flaky, which fails the first time.
func tourSpec(dir string) string {
	return fmt.Sprintf(`version: 1
name: tour
steps:
  - id: hello
    type: shell
    with:
      run: |
        echo hello from S3
        echo greeting=hi >> "$GPIPE_OUTPUT"
        echo "hello 1" >> '%[1]s/ledger'
  - id: slow
    type: shell
    needs: [hello]
    with:
      run: |
        echo tick 1
        while [ ! -e '%[1]s/gate' ]; do sleep 0.05; done
        echo tick 2
  - id: flaky
    type: shell
    needs: [slow]
    with:
      run: |
        echo "flaky 1" >> '%[1]s/ledger'
        if [ ! -e '%[1]s/flaky-once' ]; then touch '%[1]s/flaky-once'; echo failing once; exit 1; fi
        echo recovered
`, dir)
}

// TestS3Tour walks through the commands that read a run, all on S3 state:
// while a run is in progress, `logs --follow` on it shows the lines its
// steps printed (logs reach S3 while steps run), `runs` and `status` show it
// running; after it fails, `logs` prints a step's log, `resume` reruns only
// the failed step, and `runs`/`status` show it succeeded.
func TestS3Tour(t *testing.T) {
	h := newS3Harness(t)
	h.writeFile("tour.yaml", tourSpec(h.dir))

	run := h.command(t.Context(), h.env, "run", "--run-id", "tour", "tour.yaml")
	var runOut, runErr lockedBuffer
	run.Stdout, run.Stderr = &runOut, &runErr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Process.Kill() //nolint:errcheck // in case the test fails before the run ends
	runDone := make(chan error, 1)
	go func() { runDone <- run.Wait() }()

	// Wait until the run exists, then follow its logs from another process.
	waitFor(t, 30*time.Second, "run tour is stored", func() bool { return h.gpipe("status", "tour").code == 0 })
	follow := h.command(t.Context(), h.env, "logs", "--follow", "--interval", "100ms", "tour")
	var followOut, followErr lockedBuffer
	follow.Stdout, follow.Stderr = &followOut, &followErr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer follow.Process.Kill() //nolint:errcheck // as above
	followDone := make(chan error, 1)
	go func() { followDone <- follow.Wait() }()

	waitFor(t, 30*time.Second, "logs --follow shows slow's first line", func() bool {
		select {
		case err := <-followDone:
			t.Fatalf("logs --follow ended early (%v):\n%s%s", err, followOut.String(), followErr.String())
		default:
		}
		return strings.Contains(followOut.String(), "[slow] tick 1\n")
	})
	if !strings.Contains(followOut.String(), "[hello] hello from S3\n") {
		t.Errorf("logs --follow misses hello's line:\n%s", followOut.String())
	}
	select {
	case err := <-runDone:
		t.Fatalf("the run ended (%v) before the gate opened:\n%s%s", err, runOut.String(), runErr.String())
	default:
	}
	if out := h.must("runs").stdout; !strings.Contains(out, "tour") || !strings.Contains(out, "running") {
		t.Errorf("runs does not show tour running:\n%s", out)
	}
	if out := h.must("status", "tour").stdout; !containsLine(out, "slow", "running") || !containsLine(out, "hello", "succeeded") {
		t.Errorf("status does not show hello succeeded and slow running:\n%s", out)
	}

	h.writeFile("gate", "")
	select {
	case <-runDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end after the gate opened")
	}
	if code := run.ProcessState.ExitCode(); code != exitFailed {
		t.Fatalf("run exited %d, want %d (flaky fails once):\n%s%s", code, exitFailed, runOut.String(), runErr.String())
	}
	select {
	case err := <-followDone:
		if err != nil {
			t.Fatalf("logs --follow: %v\n%s", err, followErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("logs --follow did not stop when the run ended")
	}
	for _, want := range []string{"[slow] tick 2\n", "[flaky] failing once\n"} {
		if !strings.Contains(followOut.String(), want) {
			t.Errorf("logs --follow misses %q:\n%s", want, followOut.String())
		}
	}
	if out := h.must("logs", "tour", "slow").stdout; out != "[slow] tick 1\n[slow] tick 2\n" {
		t.Errorf("logs tour slow:\n%s", out)
	}
	if r := h.must("status", "--json", "tour"); !strings.Contains(r.stdout, `"status": "failed"`) {
		t.Errorf("status --json after the failure:\n%s", r.stdout)
	}

	res := h.must("resume", "tour")
	for _, step := range []string{"hello", "slow"} {
		if !containsLine(res.stderr, step, "reuse") {
			t.Errorf("resume does not say it reuses %s:\n%s", step, res)
		}
	}
	if !containsLine(res.stderr, "flaky", "rerun") {
		t.Errorf("resume does not say it reruns flaky:\n%s", res)
	}
	st := h.status("tour")
	if st.Status != state.RunSucceeded || st.Steps["hello"].Outputs["greeting"] != "hi" {
		t.Errorf("after resume: status %s, hello outputs %v", st.Status, st.Steps["hello"].Outputs)
	}
	if got := readLedger(t, h.path("ledger")); fmt.Sprint(got) != "map[flaky:[1 1] hello:[1]]" {
		t.Errorf("steps ran %v, want hello once and flaky twice", got)
	}
	if out := h.must("logs", "tour", "flaky").stdout; out != "[flaky#1] failing once\n[flaky#2] recovered\n" {
		t.Errorf("logs tour flaky:\n%s", out)
	}
	if out := h.must("runs").stdout; !containsLine(out, "tour", "succeeded") {
		t.Errorf("runs after resume:\n%s", out)
	}
}

// containsLine reports whether some line of out holds all the words.
func containsLine(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}
