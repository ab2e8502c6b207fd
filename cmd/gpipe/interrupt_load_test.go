package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/engine"
)

// bigValidSpec is a valid spec of n shell steps in a chain, about 180 bytes
// a step; 10,000 steps take most of a second to load.
func bigValidSpec(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: big\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: s%d\n    type: shell\n    with: {run: echo %d}\n", i, i)
		if i > 0 {
			fmt.Fprintf(&b, "    needs: [s%d]\n", i-1)
		}
	}
	return b.String()
}

// TestValidateStopsOnSIGINT: validate of many big specs stops at Ctrl-C
// with exit 130, instead of loading the rest.
func TestValidateStopsOnSIGINT(t *testing.T) {
	gpipe, err := exec.LookPath("gpipe")
	if err != nil {
		t.Fatalf("gpipe is not on PATH (testscript.Main puts the test binary there): %v", err)
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(spec, []byte(bigValidSpec(10_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"validate"}
	for range 40 {
		args = append(args, spec)
	}
	cmd := exec.Command(gpipe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	firstLine := &lineSignal{line: make(chan string, 1)}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = firstLine, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	select {
	case l := <-firstLine.line:
		if !strings.Contains(l, "valid (10000 steps)") {
			t.Fatalf("first line %q", l)
		}
	case err := <-done:
		t.Fatalf("validate ended (%v) before printing a line; stderr:\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("validate printed no line within 60s")
	}
	sent := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
			t.Fatalf("exit: %v, want %d; stderr:\n%s", err, exitInterrupted, stderr.String())
		}
		if took := time.Since(sent); took > 3*time.Second {
			t.Errorf("stopped %v after SIGINT", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("validate still runs 15s after SIGINT; stderr:\n%s", stderr.String())
	}
}

// lineSignal is a writer that sends the first line written to it. Only
// the writer's goroutine touches buf and sent; line is never reassigned, as
// the test reads it concurrently.
type lineSignal struct {
	buf  []byte
	sent bool
	line chan string
}

func (w *lineSignal) Write(p []byte) (int, error) {
	if w.sent {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := strings.IndexByte(string(w.buf), '\n'); i >= 0 {
		w.line <- string(w.buf[:i])
		w.sent = true
	}
	return len(p), nil
}

// TestPlanStopsWhenInterrupted: plan (and so resume, run) load the spec under
// the command's context; an interrupt during loading ends with exit 130.
func TestPlanStopsWhenInterrupted(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(spec, []byte(bigValidSpec(10_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(fmt.Errorf("%w by interrupt", engine.ErrInterrupted))
	var stdout, stderr strings.Builder
	a := &App{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Hard: context.Background(), signals: &signalRoute{}}
	err := a.Main(ctx, []string{"plan", spec})
	if code := exitCode(err); code != exitInterrupted {
		t.Fatalf("exit %d (%v), want %d", code, err, exitInterrupted)
	}
	if stdout.Len() > 0 {
		t.Errorf("printed a plan:\n%.300s", stdout.String())
	}
}
