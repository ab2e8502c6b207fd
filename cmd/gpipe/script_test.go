package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"gpipe": func() {
			os.Exit(runMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
		},
	})
}

// TestScripts runs the CLI scripts in testdata/script: each is a txtar archive
// of commands and files (see testscript's documentation).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("..", "..", "testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("NO_COLOR", "1")
			env.Setenv("GITHUB_ACTIONS", "")
			env.Setenv("GPIPE_STATE", "")
			env.Setenv("REPO", repoRoot(t))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile": cmdWaitFile,
			"exitcode": cmdExitCode,
			"pidgone":  cmdPidGone,
			"nosecret": cmdNoSecret,
		},
	})
}

func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitfile PATH [SECONDS]: wait until PATH exists (a step reached a point).
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfile path [seconds]")
	}
	limit := 30 * time.Second
	if len(args) == 2 {
		s, err := strconv.Atoi(args[1])
		ts.Check(err)
		limit = time.Duration(s) * time.Second
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("%s did not appear within %v", args[0], limit)
}

// pidgone FILE: the process whose pid FILE holds has stopped (a zombie counts
// as stopped), within a few seconds; with !, it runs now.
func cmdPidGone(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: pidgone file")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(ts.ReadFile(args[0])))
	ts.Check(err)
	runs := func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		return len(f) > 0 && f[0] != "Z" && f[0] != "X"
	}
	if neg {
		if !runs() {
			ts.Fatalf("process %d from %s is not running", pid, args[0])
		}
		return
	}
	for deadline := time.Now().Add(5 * time.Second); runs(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			ts.Fatalf("process %d from %s still runs", pid, args[0])
		}
	}
}

// exitcode N PROG ARGS...: run PROG and require exit code N; stdout and stderr
// are kept for the stdout/stderr commands as exec keeps them.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N prog args...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Dir = ts.Getenv("WORK")
	var env []string
	for _, kv := range []string{"PATH", "HOME", "TMPDIR", "NO_COLOR", "GITHUB_ACTIONS", "GPIPE_STATE", "REPO", "WORK", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY",
		"GPIPE_SECRET_TOKEN", "GPIPE_SECRET_PIN"} {
		env = append(env, kv+"="+ts.Getenv(kv))
	}
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("run %s: %v", args[1], err)
	}
	ts.Logf("[stdout]\n%s[stderr]\n%s", stdout.String(), stderr.String())
	// Keep the output for the following stdout/stderr assertions.
	ts.Check(os.WriteFile(ts.MkAbs(".exitcode.stdout"), []byte(stdout.String()), 0o644))
	ts.Check(os.WriteFile(ts.MkAbs(".exitcode.stderr"), []byte(stderr.String()), 0o644))
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// nosecret VALUE PATH...: no file at or under the PATHs (each must exist)
// contains VALUE; at least one file is read, so the check cannot pass on
// nothing.
func cmdNoSecret(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: nosecret value path...")
	}
	files := 0
	for _, root := range args[1:] {
		err := filepath.WalkDir(ts.MkAbs(root), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			if strings.Contains(string(b), args[0]) {
				ts.Fatalf("%s contains the secret %q", path, args[0])
			}
			return nil
		})
		ts.Check(err)
	}
	if files == 0 {
		ts.Fatalf("nosecret: no files under %v", args[1:])
	}
	ts.Logf("nosecret: %d files checked", files)
}
