package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// raceSpec: step a, then step b, which fails the first time and, once
// resumed, records which runner ran it and waits for a release file, so the
// runner driving the resume is still holding the run when the other gives up.
func raceSpec(dir string) string {
	return fmt.Sprintf(`version: 1
name: race
steps:
  - id: a
    type: shell
    with: {run: "echo \"a $%[2]s\" >> '%[1]s/ledger'"}
  - id: b
    type: shell
    needs: [a]
    with:
      run: |
        if [ ! -e '%[1]s/failed-once' ]; then touch '%[1]s/failed-once'; exit 1; fi
        echo "b $%[2]s" >> '%[1]s/ledger'
        touch '%[1]s/started'
        while [ ! -e '%[1]s/release' ]; do sleep 0.02; done
`, dir, runnerVar)
}

// TestS3ConcurrentResume starts two `gpipe resume` of one run at the same
// moment, three times: exactly one drives the run; the other exits 3 and
// says which runner holds it (host, pid) and since when.
func TestS3ConcurrentResume(t *testing.T) {
	h := newS3Harness(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	since := regexp.MustCompile(`since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	for round := range 3 {
		dir := h.path(fmt.Sprintf("round-%d", round))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("race-%d", round)
		h.writeFile(id+".yaml", raceSpec(dir))
		first := append(h.env[:len(h.env):len(h.env)], runnerVar+"=9")
		if r := h.gpipeEnv(first, "run", "--run-id", id, id+".yaml"); r.code != 1 {
			t.Fatalf("first run should fail at b: %s", r)
		}

		type proc struct {
			pid            int
			done           chan result
			stdout, stderr bytes.Buffer
		}
		var procs [2]*proc
		for i := range procs {
			p := &proc{done: make(chan result, 1)}
			env := append(h.env[:len(h.env):len(h.env)], fmt.Sprintf("%s=%d", runnerVar, i))
			cmd := h.command(t.Context(), env, "resume", id)
			cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
			procs[i] = p
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill() //nolint:errcheck // in case the test failed before it ended
			p.pid = cmd.Process.Pid
			go func() { p.done <- finish(t, cmd, []string{"resume", id}, cmd.Wait(), &p.stdout, &p.stderr) }()
		}
		// The loser must give up on its own while the winner waits in b.
		var loser, winner int
		select {
		case r := <-procs[0].done:
			loser, winner = 0, 1
			procs[0].done <- r
		case r := <-procs[1].done:
			loser, winner = 1, 0
			procs[1].done <- r
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: neither resume gave up within 30s", round)
		}
		lr := <-procs[loser].done
		if lr.code != exitHeld {
			t.Fatalf("round %d: the losing resume exited %d, want %d:\n%s", round, lr.code, exitHeld, lr)
		}
		for _, want := range []string{"run " + id, "host " + host, fmt.Sprintf("pid %d", procs[winner].pid)} {
			if !strings.Contains(lr.stderr, want) {
				t.Errorf("round %d: the loser does not say %q:\n%s", round, want, lr)
			}
		}
		if !since.MatchString(lr.stderr) {
			t.Errorf("round %d: the loser does not say since when the run is held:\n%s", round, lr)
		}
		waitFor(t, 30*time.Second, "the winner starts b", func() bool {
			_, err := os.Stat(filepath.Join(dir, "started"))
			return err == nil
		})
		select {
		case r := <-procs[winner].done:
			t.Fatalf("round %d: the winner ended before it was released:\n%s", round, r)
		default:
		}
		h.writeFile(filepath.Join(filepath.Base(dir), "release"), "")
		select {
		case wr := <-procs[winner].done:
			if wr.code != 0 {
				t.Fatalf("round %d: the driving resume failed:\n%s", round, wr)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the winner did not finish after release", round)
		}
		ledger := readLedger(t, filepath.Join(dir, "ledger"))
		if fmt.Sprint(ledger["a"]) != "[9]" {
			t.Errorf("round %d: a was rerun by a resume: %v", round, ledger["a"])
		}
		if fmt.Sprint(ledger["b"]) != fmt.Sprintf("[%d]", winner) {
			t.Errorf("round %d: b ran under runners %v, want only the winner %d", round, ledger["b"], winner)
		}
		if run := h.status(id); run.Status != state.RunSucceeded || run.Lease != nil {
			t.Errorf("round %d: run ended %s with lease %+v", round, run.Status, run.Lease)
		}
	}
}

// TestS3FlakyEndpoint runs a pipeline with gpipe talking to S3 through a
// proxy that answers a share of requests with 500, 503 SlowDown, a reset
// connection (before or after the server handled it) or a slow answer. The
// run completes, or stops with an error naming the run; then, with the
// faults off, the state loads, every step it records as succeeded ran, logs
// hold each line once, and a resume completes the run without rerunning
// what had succeeded.
func TestS3FlakyEndpoint(t *testing.T) {
	h := newS3Harness(t)
	seed := testtool.Seed(t, "GPIPE_FAULT_SEED")
	proxy := testtool.NewFaultProxy(t, h.srv.Endpoint, 0.2, seed)
	flaky := append(h.withEndpoint(proxy.URL), runnerVar+"=1")
	const steps, width = 60, 6
	ledger := h.path("ledger")
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: flaky\nconcurrency: %d\nsteps:\n", width)
	for i := range steps {
		fmt.Fprintf(&b, "  - id: s%02d\n    type: shell\n", i)
		if i >= width {
			fmt.Fprintf(&b, "    needs: [s%02d]\n", i-width)
		}
		fmt.Fprintf(&b, "    with: {run: \"echo one; echo two; echo three; echo s%02d $%s >> '%s'\"}\n", i, runnerVar, ledger)
	}
	h.writeFile("flaky.yaml", b.String())

	start := time.Now()
	r := h.gpipeEnv(flaky, "run", "--run-id", "flaky", "flaky.yaml")
	t.Logf("through the flaky proxy: exit %d after %v; faults %v; %d requests reached the server", r.code, time.Since(start).Round(time.Millisecond), proxy.Faults(), proxy.Requests())
	if r.code != 0 && (!regexp.MustCompile(`(?m)^gpipe: .*run flaky`).MatchString(r.stderr) ||
		strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ")) {
		t.Errorf("the run stopped without a clear error (a line \"gpipe: ... run flaky ...\"):\n%s", r)
	}
	if n := len(proxy.Faults()); n < 3 {
		t.Errorf("only %d kinds of fault were injected: %v", n, proxy.Faults())
	}
	proxy.SetEnabled(false)

	run := h.status("flaky")
	before := map[string][]int{}
	got := readLedger(t, ledger)
	for id, s := range run.Steps {
		if s.Status != state.StepSucceeded {
			continue
		}
		if len(got[id]) == 0 {
			t.Errorf("step %s is recorded succeeded but never ran", id)
		}
		before[id] = got[id]
	}
	if run.Status != state.RunSucceeded {
		t.Logf("run stopped as %s with %d/%d steps succeeded; resuming", run.Status, len(before), steps)
		if r := h.gpipeEnv(append(flaky, runnerVar+"=2"), "resume", "flaky"); r.code != 0 {
			t.Fatalf("resume after the faults: %s", r)
		}
		run = h.status("flaky")
	}
	got = readLedger(t, ledger)
	logs := h.must("logs", "flaky").stdout
	for i := range steps {
		id := fmt.Sprintf("s%02d", i)
		s := run.Steps[id]
		if s == nil || s.Status != state.StepSucceeded {
			t.Errorf("step %s did not succeed: %+v", id, s)
			continue
		}
		if b, ok := before[id]; ok && len(got[id]) != len(b) {
			t.Errorf("step %s had succeeded but ran again: %v", id, got[id])
		}
		if len(s.Attempts) == 1 {
			want := fmt.Sprintf("[%[1]s] one\n[%[1]s] two\n[%[1]s] three\n", id)
			if n := strings.Count(logs, want); n != 1 {
				t.Errorf("logs hold %s's lines %d times, want once:\n%s", id, n, logs)
			}
		}
	}
	if run.Status != state.RunSucceeded || run.Lease != nil {
		t.Errorf("run ended %s with lease %+v", run.Status, run.Lease)
	}
}

// TestS3BadStateObject plants a truncated, an empty, a non-JSON and a newer
// (schema_version 99) state object: status, status --json, logs and resume
// fail with an error that says what is wrong, runs lists the run as
// unreadable, and the object is byte for byte the same afterwards.
func TestS3BadStateObject(t *testing.T) {
	h := newS3Harness(t)
	h.writeFile("ok.yaml", "version: 1\nname: ok\nsteps:\n  - id: a\n    type: shell\n    with: {run: echo hi}\n")
	h.must("run", "--run-id", "good", "ok.yaml")
	good, _ := h.getObject(stateKey("good"))
	cases := []struct {
		name, doc, want string
	}{
		{"truncated", string(good[:len(good)/2]), "unreadable"},
		{"empty", "", "unreadable"},
		{"garbage", "\x00\xffnot json", "unreadable"},
		{"newer", strings.Replace(strings.Replace(string(good), `"schema_version":1`, `"schema_version":99,"from_the_future":{"x":1}`, 1),
			`"id":"good"`, `"id":"newer"`, 1), "newer gpipe (state schema 99"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := *h
			h.t = t
			if c.name == "newer" && !strings.Contains(c.doc, `"schema_version":99`) {
				t.Fatalf("could not make a newer document from %s", good)
			}
			// The run's other objects are there; only its state is bad.
			h.putObject("runs/"+c.name+"/spec.yaml", []byte("version: 1\nname: ok\nsteps: []\n"))
			h.putObject(stateKey(c.name), []byte(c.doc))
			_, etag := h.getObject(stateKey(c.name))
			for _, args := range [][]string{
				{"status", c.name}, {"status", "--json", c.name}, {"logs", c.name},
				{"resume", c.name}, {"resume", "--force", c.name}, {"resume", "--plan", c.name},
			} {
				r := h.gpipe(args...)
				if r.code == 0 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "run "+c.name) ||
					strings.Contains(r.stderr, "panic") {
					t.Errorf("want a non-zero exit saying %q about run %s:\n%s", c.want, c.name, r)
				}
			}
			runs := h.must("runs").stdout
			if !regexp.MustCompile(`(?m)^` + c.name + `\s.*` + regexp.QuoteMeta(c.want)).MatchString(runs) {
				t.Errorf("runs does not list %s as %q:\n%s", c.name, c.want, runs)
			}
			if body, tag := h.getObject(stateKey(c.name)); string(body) != c.doc || tag != etag {
				t.Errorf("the state object was changed: %q (etag %s), was %q (etag %s)", body, tag, c.doc, etag)
			}
		})
	}
}
