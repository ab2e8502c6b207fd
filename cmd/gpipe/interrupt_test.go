package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A second Ctrl-C stops at once: the running steps' process groups get
// SIGKILL without waiting out the 5 s grace that the first one gave them
// after SIGTERM. The step here ignores SIGTERM, as a training process busy
// writing a checkpoint may, so only SIGKILL ends it.
func TestSecondInterruptKillsStepsAtOnce(t *testing.T) {
	bin, err := exec.LookPath("gpipe")
	if err != nil {
		t.Fatalf("gpipe is not on $PATH (testscript.Main puts it there): %v", err)
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	spec := fmt.Sprintf(`version: 1
name: hard
steps:
  - id: stubborn
    type: shell
    with:
      run: |
        trap '' TERM
        sleep 60 &
        echo $! > '%s'
        wait
`, pidFile)
	if err := os.WriteFile(filepath.Join(dir, "hard.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "run", "--run-id", "hard", "hard.yaml")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"NO_COLOR=1", "GITHUB_ACTIONS=", "GPIPE_STATE=", "GORACE=atexit_sleep_ms=0"}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	pid, err := strconv.Atoi(strings.TrimSpace(waitFile(t, pidFile)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	second := time.Now()
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("gpipe still runs 10 s after the second interrupt:\n%s", out.String())
	}
	if d := time.Since(second); d > 3*time.Second {
		t.Errorf("gpipe exited %v after the second interrupt, want at once (the grace is 5 s):\n%s", d, out.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Errorf("gpipe: %v, want exit %d:\n%s", err, exitInterrupted, out.String())
	}
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(st), ") Z ") {
		t.Errorf("the step's child %d still runs after gpipe exited", pid)
	}
}

// waitFile waits for path to have content and returns it.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && bytes.HasSuffix(b, []byte("\n")) {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
	return ""
}
