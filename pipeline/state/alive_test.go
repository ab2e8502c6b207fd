//go:build unix

package state

import (
	"os"
	"os/exec"
	"testing"
)

func TestProcessAlive(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Fatal("this process is reported gone")
	}
	// pid 1 exists but usually belongs to root: EPERM must count as alive.
	if !processAlive(1) {
		t.Fatal("pid 1 is reported gone")
	}
	// The test binary itself, running no tests, exits at once wherever the
	// test runs (no "true" needed on PATH).
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatalf("run the test binary: %v", err)
	}
	if processAlive(cmd.Process.Pid) {
		t.Fatalf("exited and reaped pid %d is reported alive", cmd.Process.Pid)
	}
}
