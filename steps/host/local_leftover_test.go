package host

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
)

// TestLocalHelperRunner is not a test: TestLocalResumeStopsGroupOfKilledRunner
// runs the test binary with it as a runner that it kills with SIGKILL while a
// step runs.
func TestLocalHelperRunner(t *testing.T) {
	dir := os.Getenv("GPIPE_TEST_RUNNER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	l := &Local{}
	_, err := l.Exec(context.Background(), Script{
		Body: "sleep 60 &\necho $! > " + Quote(filepath.Join(dir, "child.pid")) + "\nwait\n",
		NoteResume: func(key, value string) {
			_ = os.WriteFile(filepath.Join(dir, "note.tmp"), []byte(key+"="+value), 0o644)
			_ = os.Rename(filepath.Join(dir, "note.tmp"), filepath.Join(dir, "note"))
		},
	})
	t.Fatalf("Exec returned (%v); it should have been killed", err)
}

func TestLocalResumeStopsGroupOfKilledRunner(t *testing.T) {
	dir := t.TempDir()
	runner := exec.Command(os.Args[0], "-test.run=^TestLocalHelperRunner$", "-test.count=1")
	runner.Env = append(os.Environ(), "GPIPE_TEST_RUNNER_DIR="+dir)
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = runner.Process.Kill(); _ = runner.Wait() })
	note := waitRead(t, filepath.Join(dir, "note"))
	child, err := strconv.Atoi(strings.TrimSpace(waitRead(t, filepath.Join(dir, "child.pid"))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	key, value, _ := strings.Cut(note, "=")
	if key != resumeKeyPgroup {
		t.Fatalf("noted %q", note)
	}

	// The runner dies without a chance to stop its step.
	if err := runner.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = runner.Wait()
	if !runs(child) {
		t.Fatal("the step's child died with its runner; nothing left to test")
	}

	var log syncBuffer
	out, err := (&Local{}).Exec(t.Context(), Script{
		Body:   "echo \"ran=yes\" >> \"$GPIPE_OUTPUT\"\n",
		Log:    &log,
		Resume: map[string]string{key: value},
	})
	if err != nil || out["ran"] != "yes" {
		t.Fatalf("resumed Exec: %v, outputs %q", err, out)
	}
	if alive(child) {
		t.Errorf("child %d of the killed runner's step still runs after resume", child)
	}
	rec, _ := parsePgroupRecord(value)
	if got := log.String(); !strings.HasPrefix(got, "gpipe: stopped processes left by an earlier attempt of this step: pids ") ||
		!strings.Contains(got, " "+strconv.Itoa(child)+" ") || !strings.HasSuffix(got, " (process group "+strconv.Itoa(rec.Pgid)+")\n") {
		t.Errorf("log %q, want it to name child %d and group %d", got, child, rec.Pgid)
	}
}

// leftover starts a process group like a step's: a background sleep that
// records its pid, and a leader that waits for it unless exitLeader. It
// returns the leader and the sleep's pid.
func leftover(t *testing.T, token string, exitLeader bool) (*exec.Cmd, int) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	script := "sleep 60 &\necho $! > " + Quote(pidFile) + "\n"
	if !exitLeader {
		script += "wait\n"
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), tokenEnv+"="+token)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL); _ = cmd.Wait() })
	child, err := strconv.Atoi(strings.TrimSpace(waitRead(t, pidFile)))
	if err != nil {
		t.Fatal(err)
	}
	if exitLeader {
		_ = cmd.Wait()
	}
	return cmd, child
}

func TestLocalStopsLeftoversOnlyWhenProvablyOurs(t *testing.T) {
	m := (&Local{}).machine()
	if !m.ok {
		testtool.Unavailable(t, "no /proc: Local notes nothing here")
	}
	for _, tc := range []struct {
		name       string
		exitLeader bool
		edit       func(r *pgroupRecord)
		stop       bool
	}{
		{"leader alive, start matches", false, func(*pgroupRecord) {}, true},
		{"leader alive, start differs: pid reused", false, func(r *pgroupRecord) { r.Start++ }, false},
		{"leader alive, start differs, token matches", false, func(r *pgroupRecord) { r.Start-- }, false},
		{"leader exited, token matches", true, func(*pgroupRecord) {}, true},
		{"leader exited, token differs", true, func(r *pgroupRecord) { r.Token = "other" }, false},
		{"leader exited, no token", true, func(r *pgroupRecord) { r.Token = "" }, false},
		{"another host", false, func(r *pgroupRecord) { r.Host += "-other" }, false},
		{"an earlier boot", false, func(r *pgroupRecord) { r.Boot = "000000000000" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := newToken()
			leader, child := leftover(t, token, tc.exitLeader)
			rec := pgroupRecord{Host: m.host, Boot: m.boot, Pgid: leader.Process.Pid, Token: token}
			if !tc.exitLeader {
				st, err := readProcStat(rec.Pgid)
				if err != nil {
					t.Fatal(err)
				}
				rec.Start = st.start
			}
			tc.edit(&rec)
			var log syncBuffer
			_, err := (&Local{}).Exec(t.Context(), Script{
				Body: "true\n", Log: &log, Resume: map[string]string{resumeKeyPgroup: rec.String()},
			})
			if err != nil {
				t.Fatal(err)
			}
			// Exec has returned: whatever it was going to kill is dead or
			// a zombie by now, so one look suffices either way.
			if gone := !runs(child); gone != tc.stop {
				t.Errorf("leftover child stopped: %v, want %v", gone, tc.stop)
			}
			if said := strings.Contains(log.String(), "stopped processes left by an earlier attempt"); said != tc.stop {
				t.Errorf("log %q", log.String())
			}
		})
	}
}

func TestLocalNotesItsProcessGroup(t *testing.T) {
	m := (&Local{}).machine()
	if !m.ok {
		testtool.Unavailable(t, "no /proc: Local notes nothing here")
	}
	var notes []string
	// Only a script that runs for longer than noteGroupAfter is noted.
	out, err := (&Local{}).Exec(t.Context(), Script{
		Body: "echo \"pgid=$(ps -o pgid= $$ | tr -d ' ')\" >> \"$GPIPE_OUTPUT\"\necho \"token=$" + tokenEnv + "\" >> \"$GPIPE_OUTPUT\"\n" +
			"sleep " + strconv.FormatFloat((5*noteGroupAfter).Seconds(), 'f', 3, 64) + "\n",
		NoteResume: func(key, value string) {
			notes = append(notes, key+"="+value)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 {
		t.Fatalf("notes %q, want one", notes)
	}
	rec, err := parsePgroupRecord(strings.TrimPrefix(notes[0], resumeKeyPgroup+"="))
	if err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(rec.Pgid) != out["pgid"] || rec.Token != out["token"] || rec.Token == "" ||
		rec.Host != m.host || rec.Boot != m.boot || rec.Start == 0 {
		t.Errorf("noted %+v; the script saw %q", rec, out)
	}

	// Without NoteResume nothing marks the environment.
	out, err = (&Local{}).Exec(t.Context(), Script{Body: "echo \"token=${" + tokenEnv + ":-}\" >> \"$GPIPE_OUTPUT\"\n"})
	if err != nil || out["token"] != "" {
		t.Errorf("without NoteResume: %v, %q", err, out)
	}
}

func TestParsePgroupRecord(t *testing.T) {
	want := pgroupRecord{Host: "build-1", Boot: "39e47ab595d0", Pgid: 4242, Start: 123456, Token: "x1y2"}
	got, err := parsePgroupRecord(want.String())
	if err != nil || got != want {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "h:b:1:2", "h:b:x:2:t", "h:b:1:2:t", "h:b:42:-1:t"} {
		if _, err := parsePgroupRecord(bad); err == nil {
			t.Errorf("parsePgroupRecord(%q) succeeded", bad)
		}
	}
}

// runs reports whether pid runs now, a zombie counting as stopped.
func runs(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.state != 'Z' && st.state != 'X'
}

// waitRead waits for path to exist and returns its content.
func waitRead(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
	return ""
}
