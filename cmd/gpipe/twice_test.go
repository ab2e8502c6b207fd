package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/file"
)

// twiceSpec is 8 parallel local steps. Each takes an exclusive flock on a
// file of its own and holds it for its whole life (fd 9 is inherited by its
// sleep): the kernel releases the lock only when every process holding it has
// exited, however it died. A copy of a step that starts while another copy is
// still alive therefore finds the lock taken and says so in "overlaps". Each
// copy also appends "STEP PID TOKEN" to "starts", so the test can check that
// every copy that ever ran carried a token the run state can find.
func twiceSpec(dir string, width int, sleep string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: twice\nconcurrency: %d\nsteps:\n", width)
	for i := range width {
		id := fmt.Sprintf("s%d", i)
		lock := filepath.Join(dir, "lock-"+id)
		fmt.Fprintf(&b, "  - id: %s\n    type: shell\n    with:\n      run: |\n", id)
		fmt.Fprintf(&b, "        exec 9>>'%s'\n", lock)
		fmt.Fprintf(&b, "        flock -n 9 || echo \"%s $$\" >> '%s'\n", id, filepath.Join(dir, "overlaps"))
		fmt.Fprintf(&b, "        echo \"%s $$ ${GPIPE_ATTEMPT_TOKEN:-none}\" >> '%s'\n", id, filepath.Join(dir, "starts"))
		fmt.Fprintf(&b, "        sleep %s\n", sleep)
	}
	return b.String()
}

// TestKilledRunnerNeverLeavesASecondCopy kills `gpipe run`/`gpipe resume` of
// 8 parallel 3 s steps with SIGKILL at random moments 5-300 ms after it
// started up, many rounds in a row, each round resuming what the last one left:
// the steps of a killed runner outlive it (each has a process group of its
// own), and a resume must stop every one of them before starting that step
// again, including those started an instant before the kill. Nothing
// between rounds stops them but gpipe itself. It then asserts that no two
// copies of a step were ever alive together (see twiceSpec), that every copy
// that ran carried a token whose runner part is in the state, and that no
// attempt number was used twice.
//
// GPIPE_TWICE_SEED replays a seed; GPIPE_TWICE_ROUNDS changes the number of
// rounds (default 30).
func TestKilledRunnerNeverLeavesASecondCopy(t *testing.T) {
	testtool.Find(t, "flock", "sudo apt-get install -y util-linux")
	bin, err := exec.LookPath("gpipe")
	if err != nil {
		t.Fatalf("gpipe is not on $PATH (testscript.Main puts it there): %v", err)
	}
	seed := testtool.Seed(t, "GPIPE_TWICE_SEED")
	rounds := 30
	if s := os.Getenv("GPIPE_TWICE_ROUNDS"); s != "" {
		if rounds, err = strconv.Atoi(s); err != nil {
			t.Fatalf("GPIPE_TWICE_ROUNDS: %v", err)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 10))

	dir := t.TempDir()
	const width, runID = 8, "twice"
	if err := os.WriteFile(filepath.Join(dir, "twice.yaml"), []byte(twiceSpec(dir, width, "3")), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("GPIPE_TWICE_TEST=%d", os.Getpid())
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + tmp,
		"NO_COLOR=1", "GITHUB_ACTIONS=", "GPIPE_STATE=", "GORACE=atexit_sleep_ms=0", tag,
	}
	t.Cleanup(func() { killTagged(t, tag) })
	gpipe := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir, cmd.Env, cmd.WaitDelay = dir, env, 5*time.Second
		return cmd
	}
	created := func() bool {
		_, err := os.Stat(filepath.Join(dir, ".gpipe", "runs", runID, "state.json"))
		return err == nil
	}

	// A race-instrumented gpipe takes a good part of 300 ms just to start;
	// the kills fall 5-300 ms after that, where the steps start.
	begin := time.Now()
	if out, err := gpipe(t.Context(), "validate", "twice.yaml").CombinedOutput(); err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	startup := time.Since(begin)
	t.Logf("gpipe validate takes %v; kills fall that long plus 5-300 ms after gpipe starts", startup.Round(time.Millisecond))
	kills, tmpFiles, workDirs := 0, 0, 0
	for round := range rounds {
		args := []string{"resume", runID}
		if !created() {
			args = []string{"run", "--run-id", runID, "twice.yaml"}
		}
		after := startup + time.Duration(5+rng.IntN(296))*time.Millisecond
		cmd := gpipe(t.Context(), args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			t.Fatalf("round %d: gpipe %s ended before the kill after %v (%v):\n%s", round, args[0], after, err, out.String())
		case <-time.After(after):
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		kills++
		tmpFiles += len(glob(t, filepath.Join(dir, ".gpipe", "runs", runID, ".*.tmp-*")))
		workDirs = len(glob(t, filepath.Join(tmp, "gpipe-work-*")))
		if strings.Contains(out.String(), "WARNING: DATA RACE") {
			t.Errorf("round %d: the race detector found a race in gpipe:\n%s", round, out.String())
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	final := gpipe(ctx, "resume", runID)
	out, err := final.CombinedOutput()
	if err != nil {
		t.Fatalf("final resume: %v\n%s", err, out)
	}
	t.Logf("%d runners killed, then a resume completed the run", kills)
	// What killed runners leave besides processes: temporary state files
	// (removed by the next save of the run) and work directories (removed
	// by the next runner once no process of theirs is left).
	t.Logf("after the kills: %d temporary state files seen in all, %d work directories after the last", tmpFiles, workDirs)
	if left := glob(t, filepath.Join(dir, ".gpipe", "runs", runID, ".*.tmp-*")); len(left) > 0 {
		t.Errorf("temporary state files left after the final resume: %q", left)
	}
	if left := glob(t, filepath.Join(tmp, "gpipe-work-*")); len(left) > 0 {
		// A dead runner's directory stays while a process of its still
		// writes there (a killed runner's step that nothing reran, ending
		// on its own); the next runner removes it once that process is gone.
		users := processesWritingTo(left)
		if len(users) == 0 {
			t.Errorf("work directories left after the final resume, no process writes there: %q", left)
		} else {
			t.Logf("work directories %q still written to after the final resume by %v; waiting for them, then one more runner", left, users)
			deadline := time.Now().Add(15 * time.Second)
			for len(processesWritingTo(left)) > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if err := os.WriteFile(filepath.Join(dir, "sweep.yaml"), []byte("version: 1\nname: sweep\nsteps:\n  - {id: a, type: shell, with: {run: \"true\"}}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := gpipe(ctx, "run", "sweep.yaml").CombinedOutput(); err != nil {
				t.Fatalf("sweeping run: %v\n%s", err, out)
			}
			if left := glob(t, filepath.Join(tmp, "gpipe-work-*")); len(left) > 0 {
				t.Errorf("work directories left after the next runner, their writers gone: %q", left)
			}
		}
	}

	if b, err := os.ReadFile(filepath.Join(dir, "overlaps")); err == nil && len(b) > 0 {
		t.Errorf("a copy of a step started while another copy of it was alive (step, pid):\n%s", b)
	}
	// Through the store: state.json is a snapshot the journal beside it may amend.
	run, err := state.Read(t.Context(), file.New(filepath.Join(dir, ".gpipe")), runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != state.RunSucceeded {
		t.Errorf("run status %s, want succeeded", run.Status)
	}
	for id, st := range run.Steps {
		seen := map[int]bool{}
		for _, a := range st.Attempts {
			if seen[a.N] {
				t.Errorf("step %s: attempt number %d used twice: %+v", id, a.N, st.Attempts)
			}
			seen[a.N] = true
		}
	}
	runners := map[string]bool{}
	for _, r := range run.Runners {
		runners[r] = true
	}
	starts := readStarts(t, filepath.Join(dir, "starts"))
	for _, s := range starts {
		// What lets a resume find any copy: its token's runner part is
		// in the state, whenever its runner died.
		r, rest, _ := strings.Cut(s.token, "/")
		if step, _, _ := strings.Cut(rest, "/"); !runners[r] || step != s.step {
			t.Errorf("step %s ran as pid %d with attempt token %q, whose runner is not among the state's runners %q", s.step, s.pid, s.token, run.Runners)
		}
	}
	t.Logf("%d copies of %d steps started in all", len(starts), width)
}

type startLine struct {
	step  string
	pid   int
	token string
}

func readStarts(t *testing.T, path string) []startLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []startLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s startLine
		if _, err := fmt.Sscan(sc.Text(), &s.step, &s.pid, &s.token); err != nil {
			t.Fatalf("starts line %q: %v", sc.Text(), err)
		}
		out = append(out, s)
	}
	return out
}

// killTagged stops what the test's runners left: every process whose
// environment has tag.
func killTagged(t *testing.T, tag string) {
	own := syscall.Getpgrp()
	for range 100 {
		found := 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
			if err != nil || !bytes.Contains(append([]byte{0}, b...), []byte("\x00"+tag+"\x00")) {
				continue
			}
			if pgid, err := syscall.Getpgid(pid); err == nil && pgid != own {
				found++
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
		}
		if found == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("processes with %s still running after repeated SIGKILL", tag)
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// processesWritingTo lists the live processes whose $GPIPE_OUTPUT lies in
// one of dirs, as pid and command line.
func processesWritingTo(dirs []string) []string {
	var users []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			v, ok := bytes.CutPrefix(kv, []byte("GPIPE_OUTPUT="))
			if ok && slices.Contains(dirs, filepath.Dir(string(v))) {
				cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				users = append(users, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
	}
	return users
}
