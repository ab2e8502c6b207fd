package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
)

// startTokened runs script under bash in a process group of its own with
// tokenEnv=token, as a step of a runner that then died, and returns the pid
// the script wrote to $PIDFILE.
func startTokened(t *testing.T, token, script string) int {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), tokenEnv+"="+token, "PIDFILE="+pidFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	pid, err := strconv.Atoi(strings.TrimSpace(waitRead(t, pidFile)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// A runner killed between starting a step and noting its process group
// leaves nothing but the attempt's token (durable before the start) to find
// the step by. Exec stops every process whose token starts with one of
// Leftovers: a group whose leader waits, one whose leader has exited, and one
// that left its group with setsid; a process of another step is left alone,
// even one whose id starts like this step's.
func TestLocalStopsLeftoversByToken(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		testtool.Unavailable(t, "no /proc: Local cannot find processes by token here")
	}
	waiting := startTokened(t, "r1/s/1", "sleep 60 & echo $! > \"$PIDFILE\"; wait")
	leaderless := startTokened(t, "r2/s/1", "sleep 60 & echo $! > \"$PIDFILE\"")
	escaped := startTokened(t, "r1/s/2", "setsid sleep 60 & echo $! > \"$PIDFILE\"; wait")
	other := startTokened(t, "r1/st/1", "sleep 60 & echo $! > \"$PIDFILE\"; wait")
	for _, pid := range []int{waiting, leaderless, escaped, other} {
		if !runs(pid) {
			t.Fatalf("leftover %d is not running; nothing to test", pid)
		}
	}

	var log syncBuffer
	out, err := (&Local{}).Exec(t.Context(), Script{
		Body:      "echo \"token=$" + tokenEnv + "\" >> \"$GPIPE_OUTPUT\"\n",
		Log:       &log,
		Token:     "r3/s/1",
		Leftovers: []string{"r1/s/", "r2/s/", "r3/s/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["token"] != "r3/s/1" {
		t.Errorf("the script saw %s=%q, want the attempt's token r3/s/1", tokenEnv, out["token"])
	}
	for name, pid := range map[string]int{"waiting": waiting, "leaderless": leaderless, "escaped": escaped} {
		if runs(pid) {
			t.Errorf("%s leftover %d still runs after Exec", name, pid)
		}
		if !strings.Contains(log.String(), " "+strconv.Itoa(pid)) {
			t.Errorf("log %q does not name %s leftover %d", log.String(), name, pid)
		}
	}
	if !runs(other) {
		t.Errorf("process %d of another step was stopped", other)
	}
}

// A retry by the same runner stops what the attempt before it left running
// outside its process group (the group itself died with that attempt).
func TestLocalRetryStopsEscapeeOfEarlierAttempt(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		testtool.Unavailable(t, "no /proc: Local cannot find processes by token here")
	}
	l := &Local{}
	pidFile := filepath.Join(t.TempDir(), "pid")
	if _, err := l.Exec(t.Context(), Script{
		// The pid file is written from inside the new session, so once
		// it is there the escapee is out of the group that dies with
		// the attempt.
		Body: "setsid bash -c 'echo $$ > \"$PIDFILE\"; exec sleep 60' </dev/null >/dev/null 2>&1 &\n" +
			"while [ ! -s \"$PIDFILE\" ]; do sleep 0.01; done\n",
		Env:   map[string]string{"PIDFILE": pidFile},
		Token: "r/s/1", Leftovers: []string{"r/s/"},
	}); err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(waitRead(t, pidFile)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !runs(pid) {
		t.Fatal("the escapee did not outlive its attempt; nothing to test")
	}
	var log syncBuffer
	if _, err := l.Exec(t.Context(), Script{Body: "true\n", Log: &log, Token: "r/s/2", Leftovers: []string{"r/s/"}}); err != nil {
		t.Fatal(err)
	}
	if runs(pid) {
		t.Errorf("escapee %d of attempt 1 still runs after attempt 2 started; log %q", pid, log.String())
	}
}
