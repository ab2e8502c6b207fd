package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// killSpec is a layered DAG of n tiny shell steps, width of them per layer
// (so up to width run in parallel), each needing one or two steps of the
// layer before. A step first appends "ID RUNNER" to the ledger, so a step
// started before its needs were stored is seen, then sleeps a moment.
// $GPIPE_KILLTEST_RUNNER numbers the runner processes the test starts (steps
// inherit it), so the ledger says which runner ran which step how often.
func killSpec(rng *rand.Rand, n, width int, ledger string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: kill9\nconcurrency: %d\nsteps:\n", width)
	for i := range n {
		fmt.Fprintf(&b, "  - id: s%03d\n    type: shell\n", i)
		if layer := i / width; layer > 0 {
			prev := (layer - 1) * width
			a, c := prev+rng.IntN(width), prev+rng.IntN(width)
			if a == c {
				fmt.Fprintf(&b, "    needs: [s%03d]\n", a)
			} else {
				fmt.Fprintf(&b, "    needs: [s%03d, s%03d]\n", a, c)
			}
		}
		fmt.Fprintf(&b, "    with: {run: \"echo \\\"s%03d $GPIPE_KILLTEST_RUNNER\\\" >> '%s'; sleep 0.02\"}\n", i, ledger)
	}
	return b.String()
}

// killRun is one run of the kill test and what the test saw of it.
type killRun struct {
	id     string
	ledger string
	// firstSeen[step] is the ledger of the step when state first said it
	// succeeded: from then on it must never change.
	firstSeen map[string][]int
	runners   []int // numbers of the runners that drove it, in order
	killed    map[int]bool
	created   bool // a runner got as far as storing the run
	done      bool
}

// TestS3KillResume kills the runner of a 200-step run with SIGKILL at random
// moments, 20 times, resuming after each kill (a new run once one
// completes). After every kill the state loads (`gpipe status --json`); a
// step that state records as succeeded never runs again; no step ran whose
// needs are not recorded succeeded; at the end every
// run completes and each step ran once, plus at most once more per runner
// that was killed before it recorded the step's success.
func TestS3KillResume(t *testing.T) {
	h := newS3Harness(t)
	seed := testtool.Seed(t, "GPIPE_KILL_SEED")
	rng := rand.New(rand.NewPCG(seed, 9))
	const steps, width, rounds = 200, 8, 20

	var runs []*killRun
	var cur *killRun
	for round := range rounds {
		var args []string
		if cur == nil || cur.done {
			cur = &killRun{
				id: fmt.Sprintf("kill-%d", len(runs)), ledger: h.path(fmt.Sprintf("ledger-%d", len(runs))),
				firstSeen: map[string][]int{}, killed: map[int]bool{},
			}
			runs = append(runs, cur)
			h.writeFile(cur.id+".yaml", killSpec(rng, steps, width, cur.ledger))
		}
		if !cur.created {
			args = []string{"run", "--run-id", cur.id, cur.id + ".yaml"}
		} else {
			args = []string{"resume", cur.id}
		}
		after := time.Duration(50+rng.IntN(751)) * time.Millisecond
		killed, r := h.runAndKill(round+1, args, after)
		cur.runners = append(cur.runners, round+1)
		if killed {
			cur.killed[round+1] = true
		} else if r.code != 0 {
			t.Fatalf("round %d: finished before the kill, but not cleanly:\n%s", round, r)
		}
		if !cur.created {
			if st := h.gpipe("status", cur.id); killed && st.code != 0 && strings.Contains(st.stderr, "no run "+cur.id) {
				t.Logf("round %d: run killed after %v, before it stored %s", round, after, cur.id)
				continue
			}
			cur.created = true
		}
		run := h.status(cur.id)
		ledger := readLedger(t, cur.ledger)
		t.Logf("round %d: %s %s, killed=%v after %v: %d/%d steps succeeded in state, run %s",
			round, args[0], cur.id, killed, after, countSucceeded(run), steps, run.Status)
		cur.check(t, run, ledger)
		cur.done = run.Status == state.RunSucceeded
	}
	if !cur.done {
		// Under heavy load every kill of the last run can land before its
		// runner stored it; then the last runner starts it rather than resumes.
		args := []string{"resume", cur.id}
		if !cur.created {
			args = []string{"run", "--run-id", cur.id, cur.id + ".yaml"}
		}
		_, r := h.runAndKill(rounds+1, args, time.Minute)
		if r.code != 0 {
			t.Fatalf("final resume: %s", r)
		}
		cur.runners = append(cur.runners, rounds+1)
		run := h.status(cur.id)
		cur.check(t, run, readLedger(t, cur.ledger))
		cur.done = run.Status == state.RunSucceeded
	}
	for _, kr := range runs {
		run := h.status(kr.id)
		if run.Status != state.RunSucceeded || countSucceeded(run) != steps {
			t.Errorf("run %s: status %s, %d/%d steps succeeded", kr.id, run.Status, countSucceeded(run), steps)
		}
		kr.checkFinal(t, readLedger(t, kr.ledger), steps)
	}
	t.Logf("%d runs, %d kills", len(runs), func() (n int) {
		for _, kr := range runs {
			n += len(kr.killed)
		}
		return n
	}())
}

func countSucceeded(r *state.Run) int {
	n := 0
	for _, s := range r.Steps {
		if s.Status == state.StepSucceeded {
			n++
		}
	}
	return n
}

// check compares the state loaded after a round with the ledger: a step
// once seen succeeded stays succeeded and its ledger never changes, and no
// step ran before its needs' successes were stored.
func (kr *killRun) check(t *testing.T, run *state.Run, ledger map[string][]int) {
	t.Helper()
	for id, seen := range kr.firstSeen {
		if s := run.Steps[id]; s == nil || s.Status != state.StepSucceeded {
			t.Errorf("run %s: step %s was recorded succeeded, now %v", kr.id, id, s)
		}
		if fmt.Sprint(ledger[id]) != fmt.Sprint(seen) {
			t.Errorf("run %s: step %s recorded succeeded after runs by %v, but ran again: now %v (runners %v)",
				kr.id, id, seen, ledger[id], kr.runners)
		}
	}
	for id, s := range run.Steps {
		// A step starts only once its needs' successes are durable, so any
		// step that ran (by the ledger or the state) has them in the state.
		if len(s.Attempts) > 0 || len(ledger[id]) > 0 {
			for _, need := range s.Needs {
				if ns := run.Steps[need]; ns == nil || ns.Status != state.StepSucceeded {
					t.Errorf("run %s: step %s ran (runners %v, %d attempts recorded) but its need %s is not recorded succeeded: %+v",
						kr.id, id, ledger[id], len(s.Attempts), need, ns)
				}
			}
		}
		if s.Status != state.StepSucceeded || kr.firstSeen[id] != nil {
			continue
		}
		if len(ledger[id]) == 0 {
			t.Errorf("run %s: step %s recorded succeeded but never ran", kr.id, id)
		}
		kr.firstSeen[id] = ledger[id]
	}
}

// checkFinal: every step ran, at most once per runner, and only the last of
// its runs may be by a runner that was not killed.
func (kr *killRun) checkFinal(t *testing.T, ledger map[string][]int, steps int) {
	t.Helper()
	reruns := 0
	defer func() {
		t.Logf("run %s: %d steps ran more than once (killed before their success was recorded)", kr.id, reruns)
	}()
	runner := map[int]bool{}
	for _, p := range kr.runners {
		runner[p] = true
	}
	for i := range steps {
		id := fmt.Sprintf("s%03d", i)
		pids := ledger[id]
		if len(pids) == 0 {
			t.Errorf("run %s: step %s never ran", kr.id, id)
			continue
		}
		if len(pids) > 1 {
			reruns++
		}
		seen := map[int]bool{}
		for k, p := range pids {
			if !runner[p] {
				t.Errorf("run %s: step %s ran under runner %d, not one of the runners %v", kr.id, id, p, kr.runners)
			}
			if seen[p] {
				t.Errorf("run %s: step %s ran twice under runner %d: %v", kr.id, id, p, pids)
			}
			seen[p] = true
			if k < len(pids)-1 && !kr.killed[p] {
				t.Errorf("run %s: step %s ran again after runner %d finished it: %v", kr.id, id, p, pids)
			}
		}
	}
}

// runAndKill starts gpipe ARGS as runner number n and SIGKILLs it after the
// given time (see runKillWhen).
func (h *s3Harness) runAndKill(n int, args []string, after time.Duration) (killed bool, r result) {
	h.t.Helper()
	now := make(chan struct{})
	timer := time.AfterFunc(after, func() { close(now) })
	defer timer.Stop()
	return h.runKillWhen(h.env, n, args, now)
}

// runKillWhen starts gpipe ARGS as runner number n and SIGKILLs it when now
// is closed, then the steps it left behind (the local host puts each step's
// bash in its own process group, so they outlive the runner). killed is false
// when gpipe exited by itself first.
func (h *s3Harness) runKillWhen(env []string, n int, args []string, now <-chan struct{}) (killed bool, r result) {
	h.t.Helper()
	tag := fmt.Sprintf("%s=%d", runnerVar, n)
	cmd := h.command(h.t.Context(), append(env[:len(env):len(env)], tag), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return false, finish(h.t, cmd, args, err, &stdout, &stderr)
	case <-now:
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err := <-exited
	r = finish(h.t, cmd, args, err, &stdout, &stderr)
	killOrphans(h.t, tag)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return true, r
	}
	return false, r // it exited between the trigger and the signal
}

const runnerVar = "GPIPE_KILLTEST_RUNNER"

// killOrphans kills the process groups of processes whose environment holds
// tag (steps inherit their runner's environment) until none is left. Without
// /proc it does nothing: the orphans then finish by themselves in
// milliseconds, which the ledger checks tolerate as reruns.
func killOrphans(t *testing.T, tag string) {
	own := syscall.Getpgrp()
	for range 100 {
		found := 0
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
			if err != nil || !bytes.Contains(append([]byte{0}, env...), []byte("\x00"+tag+"\x00")) {
				continue
			}
			pgid, err := syscall.Getpgid(pid)
			if err != nil || pgid == own {
				continue
			}
			found++
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		if found == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("processes with %s still running after repeated SIGKILL", tag)
}
