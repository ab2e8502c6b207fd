package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// layered builds a dag.txt of n steps in layers of width w, each step after
// the first layer needing two steps of the layer before.
func layered(n, w int) string {
	var b strings.Builder
	b.WriteString("shell /bin/bash\nrun true && true\n")
	for i := range n {
		fmt.Fprintf(&b, "step s%d", i)
		if i >= w {
			fmt.Fprintf(&b, " s%d s%d", i-w, (i/w-1)*w+(i+1)%w)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestScheduleRespectsNeedsAndConcurrency(t *testing.T) {
	d, err := parse(layered(200, 7))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		done    = make([]bool, len(d.ids))
		running atomic.Int32
		peak    atomic.Int32
	)
	err = schedule(d, 3, func(i int) error {
		r := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
		}
		mu.Lock()
		for _, j := range d.needs[i] {
			if !done[j] {
				t.Errorf("%s started before its need %s finished", d.ids[i], d.ids[j])
			}
		}
		if done[i] {
			t.Errorf("%s ran twice", d.ids[i])
		}
		mu.Unlock()
		time.Sleep(50 * time.Microsecond)
		mu.Lock()
		done[i] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range done {
		if !ok {
			t.Errorf("%s never ran", d.ids[i])
		}
	}
	if p := peak.Load(); p > 3 {
		t.Errorf("%d steps ran at once, want at most 3", p)
	}
}

func TestScheduleStopsAfterAFailure(t *testing.T) {
	d, err := parse(layered(100, 4))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		ran = map[string]bool{}
	)
	boom := errors.New("boom")
	err = schedule(d, 2, func(i int) error {
		mu.Lock()
		ran[d.ids[i]] = true
		mu.Unlock()
		if d.ids[i] == "s10" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "step s10") {
		t.Fatalf("error %v, want step s10's", err)
	}
	for _, c := range d.dependents[10] {
		if ran[d.ids[c]] {
			t.Errorf("%s ran though its need s10 failed", d.ids[c])
		}
	}
	// s10 is in the third of 25 layers: the queue is dropped once it fails.
	if len(ran) >= 20 {
		t.Errorf("%d of 100 steps ran, want the run to stop after s10 failed", len(ran))
	}
}

func TestParseRejects(t *testing.T) {
	for _, text := range []string{
		"shell /bin/bash\nrun true\nstep a b\nstep b\n", // need on a later line
		"shell /bin/bash\nrun true\nstep a\nstep a\n",
		"shell /bin/bash\nstep a\n",
		"shell /bin/bash\nrun true\n",
		"shell /bin/bash\nrun true\nsteps a\n",
	} {
		if _, err := parse(text); err == nil {
			t.Errorf("parse accepted %q", text)
		}
	}
}

// TestFloorRunsBash runs the built command on a small DAG whose script
// appends to a file: every step execs bash, and a failing script makes floor
// exit 1.
func TestFloorRunsBash(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "floor")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "out")
	text := strings.Replace(layered(20, 4), "run true && true", "run echo x >>"+out, 1)
	spec := filepath.Join(dir, "dag.txt")
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(bin, "-j", "3", "-cpu", spec).CombinedOutput(); err != nil {
		t.Fatalf("floor: %v\n%s", err, msg)
	} else if !strings.Contains(string(msg), "µs/step") {
		t.Errorf("-cpu printed %q", msg)
	}
	if b, _ := os.ReadFile(out); strings.Count(string(b), "x\n") != 20 {
		t.Errorf("%d steps ran, want 20", strings.Count(string(b), "x\n"))
	}

	text = strings.Replace(layered(20, 4), "run true && true", "run exit 3", 1)
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	err := exec.Command(bin, spec).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("a failing step: %v, want exit status 1", err)
	}
}
