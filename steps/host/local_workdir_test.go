package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Local removes the output directories that dead runners left under its temp
// directory, and only those: not one whose runner lives (its lock is held),
// not one a step process of a dead runner still writes into, not one a
// runner is making right now, and nothing that is not a gpipe work directory.
func TestLocalRemovesDirectoriesOfDeadRunners(t *testing.T) {
	tmp := t.TempDir()
	old := time.Now().Add(-2 * newDirAge)
	mk := func(name string, lock bool) string {
		t.Helper()
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "outputs-1"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(dir, workDirLck), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dead := mk(workDirPrefix+"dead", true)
	deadNew := mk(newDirPrefix+"dead", false) // killed between MkdirTemp and its lock
	live := mk(workDirPrefix+"live", true)
	used := mk(workDirPrefix+"used", true)
	fresh := mk(newDirPrefix+"fresh", false)
	if err := os.Chtimes(fresh, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	legacy := mk("gpipe-123456", false)
	other := mk("not-gpipe", true)

	// A live runner holds its lock (flock locks are per open file, so this
	// one conflicts with the sweeper's even in one process).
	lf, err := os.Open(filepath.Join(live, workDirLck))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	// A dead runner's step still runs, writing into its directory.
	step := exec.Command("sleep", "60")
	step.Env = append(os.Environ(), "GPIPE_OUTPUT="+filepath.Join(used, "outputs-1"))
	if err := step.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = step.Process.Kill(); _ = step.Wait() }()

	l := &Local{TempDir: tmp}
	if _, err := l.Exec(t.Context(), Script{Body: "true\n"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dead, deadNew} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s of a dead runner is still there", filepath.Base(d))
		}
	}
	for _, d := range []string{live, used, fresh, legacy, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(d), err)
		}
	}
	if during, _ := filepath.Glob(filepath.Join(tmp, workDirPrefix+"*")); len(during) != 3 { // live, used and the executor's own
		t.Errorf("work directories while the executor lives: %q", during)
	}

	// Once the step is gone, closing an executor also removes what it
	// could not remove when it started.
	_ = step.Process.Kill()
	_ = step.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, workDirPrefix+"*"))
	if len(left) != 1 || left[0] != live {
		t.Errorf("after Close: %q, want only the live runner's", left)
	}
}
