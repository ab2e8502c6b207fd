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
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	if processAlive(cmd.Process.Pid) {
		t.Fatalf("exited and reaped pid %d is reported alive", cmd.Process.Pid)
	}
}
