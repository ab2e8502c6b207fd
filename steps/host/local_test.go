package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLocalOutputsEnvAndLog(t *testing.T) {
	var log syncBuffer
	l := &Local{BaseEnv: []string{"PATH=" + os.Getenv("PATH"), "FROM_RUNNER=r"}}
	out, err := l.Exec(context.Background(), Script{
		Body: "set -eo pipefail\necho hello\necho oops >&2\necho \"greeting=$GREETING $FROM_RUNNER\" >> \"$GPIPE_OUTPUT\"\n" +
			"{ echo 'multi<<EOF'; echo a; echo b; echo EOF; } >> \"$GPIPE_OUTPUT\"\n",
		Env: map[string]string{"GREETING": "hi there"},
		Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["greeting"] != "hi there r" || out["multi"] != "a\nb" {
		t.Errorf("outputs = %q", out)
	}
	if got := log.String(); got != "hello\noops\n" {
		t.Errorf("log = %q", got)
	}
}

// bash starts with its full path as argv[0]: with a bare name it would
// search $PATH for itself on every step (a stat per entry, strace shows
// them). $BASH must still name bash.
func TestLocalBashArgv0IsItsPath(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/PID/cmdline")
	}
	l := &Local{BaseEnv: []string{"PATH=" + os.Getenv("PATH")}}
	defer l.Close()
	out, err := l.Exec(context.Background(), Script{
		Body: "{ printf 'argv0='; tr '\\0' '\\n' </proc/$$/cmdline | head -n 1; echo \"bash=$BASH\"; } >>\"$GPIPE_OUTPUT\"\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	if out["argv0"] != want {
		t.Errorf("argv[0] = %q, want %q", out["argv0"], want)
	}
	if !filepath.IsAbs(out["bash"]) {
		t.Errorf("$BASH = %q, want an absolute path", out["bash"])
	}
}

// The output file is the script's to create: a step that writes none leaves
// no file behind, and each step gets a name of its own.
func TestLocalOutputFileCreatedByFirstWrite(t *testing.T) {
	l := &Local{TempDir: t.TempDir()}
	defer l.Close()
	seen := map[string]bool{}
	for i := range 3 {
		var log syncBuffer
		body := "[ ! -e \"$GPIPE_OUTPUT\" ] || { echo exists; exit 3; }\necho \"$GPIPE_OUTPUT\"\n"
		if i == 1 {
			body += "echo n=1 >>\"$GPIPE_OUTPUT\"\n"
		}
		out, err := l.Exec(context.Background(), Script{Body: body, Log: &log})
		if err != nil {
			t.Fatalf("step %d: %v (log %q)", i, err, log.String())
		}
		if want := map[bool]int{true: 1}[i == 1]; len(out) != want {
			t.Errorf("step %d: outputs %q", i, out)
		}
		path := strings.TrimSpace(log.String())
		if seen[path] {
			t.Errorf("step %d: output path %s reused", i, path)
		}
		seen[path] = true
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("step %d: output file left behind: %v", i, err)
		}
	}
}

// The environment follows exec.Cmd's rule: a later entry of a name wins, in
// its own place.
func TestDedupEnv(t *testing.T) {
	got := dedupEnv([]string{"A=1", "B=2", "junk", "A=3", "", "=C:=x", "C=4", "=C:=y", "B=5"})
	want := []string{"junk", "A=3", "C=4", "=C:=y", "B=5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dedupEnv = %q, want %q", got, want)
	}
	var log syncBuffer
	l := &Local{BaseEnv: []string{"PATH=" + os.Getenv("PATH"), "X=base"}}
	if _, err := l.Exec(t.Context(), Script{Body: "echo \"$X\"; env | grep -c '^X='", Env: map[string]string{"X": "step"}, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if got := log.String(); got != "step\n1\n" {
		t.Errorf("a step's variable over the runner's: log %q, want step and one X", got)
	}
}

func TestLocalExitCode(t *testing.T) {
	l := &Local{}
	_, err := l.Exec(context.Background(), Script{Body: "exit 7"})
	var ee *pipeline.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("err = %v, want exit status 7", err)
	}
}

func TestLocalCancelKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	l := &Local{Grace: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// The child ignores SIGTERM, so only the group SIGKILL after the grace stops it.
		_, err := l.Exec(ctx, Script{Body: "bash -c 'trap \"\" TERM; sleep 60' &\necho $! > " + Quote(pidFile) + "\nwait\n"})
		done <- err
	}()
	var pid int
	for i := 0; i < 200 && pid == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if pid == 0 {
		t.Fatal("child never started")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	if alive(pid) {
		t.Errorf("child %d still alive after cancel", pid)
	}
}

// alive reports whether pid runs; a zombie waiting for its reaper has stopped.
func alive(pid int) bool {
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func TestLocalBackgroundChildDoesNotHoldStep(t *testing.T) {
	l := &Local{}
	start := time.Now()
	_, err := l.Exec(context.Background(), Script{Body: "sleep 30 &\necho started\n"})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Exec waited %v for a background child", d)
	}
}

func TestParseOutputsErrors(t *testing.T) {
	for _, in := range []string{"novalue\n", "k<<EOF\nunterminated\n", "=v\n"} {
		if _, err := ParseOutputs(strings.NewReader(in)); err == nil {
			t.Errorf("ParseOutputs(%q) succeeded", in)
		}
	}
}

// A process that left the step's process group (setsid, a daemon) is out of
// reach of the group kill but still holds the log pipe; the step must end
// when its script did, not when that process closes its output.
func TestLocalEscapedChildDoesNotHoldStep(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "escaped.pid")
	l := &Local{}
	done := make(chan error, 1)
	go func() {
		_, err := l.Exec(t.Context(), Script{Body: "setsid bash -c 'echo $$ > \"$0\"; exec sleep 30' " + Quote(pidFile) + " &\nwhile [ ! -s " + Quote(pidFile) + " ]; do sleep 0.01; done\necho started\n"})
		done <- err
	}()
	t.Cleanup(func() {
		b, _ := os.ReadFile(pidFile)
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec still waiting 10s after its script exited, for a process outside its group")
	}
}

// A second interrupt (Local.Hard closed) cuts the grace period short: the
// script's group gets SIGKILL at once, whether Hard closes during the grace
// or was closed before the cancel (a cleanup step stopped by it).
func TestLocalHardKillsAtOnce(t *testing.T) {
	for _, before := range []bool{false, true} {
		t.Run(fmt.Sprintf("hard before cancel %v", before), func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "child.pid")
			hard := make(chan struct{})
			l := &Local{Grace: time.Minute, Hard: hard}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				// The whole group ignores SIGTERM: only SIGKILL stops it.
				_, err := l.Exec(ctx, Script{Body: "trap '' TERM\nsleep 60 &\necho $! > " + Quote(pidFile) + "\nwait\n"})
				done <- err
			}()
			pid, err := strconv.Atoi(strings.TrimSpace(waitRead(t, pidFile)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			if before {
				close(hard)
			}
			cancel()
			if !before {
				time.Sleep(100 * time.Millisecond)
				close(hard)
			}
			start := time.Now()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Exec still waits out the grace period after Hard closed")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Exec returned %v after Hard closed", d)
			}
			if alive(pid) {
				t.Errorf("child %d still alive", pid)
			}
		})
	}
}

// A script that closes its output and runs on is still awaited: the end of
// its output is not its end (Exec reads the pipe until it closes, then waits
// for bash), whether it closes it at once or after running a while.
func TestLocalScriptThatClosesItsOutputIsAwaited(t *testing.T) {
	for _, after := range []string{"0", "0.1"} {
		t.Run("after "+after+"s", func(t *testing.T) {
			var log syncBuffer
			l := &Local{}
			out, err := l.Exec(t.Context(), Script{
				Body: "echo before\nsleep " + after + "\nexec >&- 2>&-\nsleep 0.3\necho k=v >> \"$GPIPE_OUTPUT\"\nexit 3\n",
				Log:  &log,
			})
			var xe *pipeline.ExitError
			if !errors.As(err, &xe) || xe.Code != 3 {
				t.Fatalf("Exec = %v, %v; want exit status 3", out, err)
			}
			if got := log.String(); got != "before\n" {
				t.Errorf("log = %q", got)
			}
			out, err = l.Exec(t.Context(), Script{Body: "sleep " + after + "\nexec >&- 2>&-\nsleep 0.3\necho k=v >> \"$GPIPE_OUTPUT\"\n"})
			if err != nil || out["k"] != "v" {
				t.Errorf("Exec = %v, %v; want k=v", out, err)
			}
		})
	}
}

// env takes the base once and deduplicates only when a name repeats; the
// result is what deduplicating everything gives (exec.Cmd's rule).
func TestEnvSameAsDedupOfAll(t *testing.T) {
	for _, tc := range []struct {
		name  string
		base  []string
		extra map[string]string
		token string
	}{
		{"no repeats", []string{"PATH=/bin", "HOME=/h"}, map[string]string{"B": "1", "A": "2"}, "r/s/1"},
		{"repeats in base", []string{"A=1", "B=2", "A=3"}, nil, ""},
		{"step over base", []string{"X=base", "Y=y"}, map[string]string{"X": "step"}, "r/s/1"},
		{"step sets the output", []string{"P=p"}, map[string]string{"GPIPE_OUTPUT": "/x"}, ""},
		{"base has the output and token", []string{"GPIPE_OUTPUT=/old", tokenEnv + "=old", "Z=z"}, nil, "r/s/2"},
		{"step sets the token", []string{"P=p"}, map[string]string{tokenEnv: "mine"}, "r/s/3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &Local{BaseEnv: tc.base}
			var all []string
			all = append(all, tc.base...)
			keys := slices.Sorted(maps.Keys(tc.extra))
			for _, k := range keys {
				all = append(all, k+"="+tc.extra[k])
			}
			if tc.token != "" {
				all = append(all, tokenEnv+"="+tc.token)
			}
			want := dedupEnv(append(all, "GPIPE_OUTPUT=/out"))
			for range 2 { // the second call uses the cached base
				if got := l.env(tc.extra, "/out", tc.token); !slices.Equal(got, want) {
					t.Fatalf("env = %q, want %q", got, want)
				}
			}
		})
	}
}
