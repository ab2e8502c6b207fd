package train

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
)

var update = flag.Bool("update", false, "rewrite golden files")

// shellcheck runs shellcheck on a rendered script.
func shellcheck(t *testing.T, script string) {
	t.Helper()
	sc := testtool.Shellcheck(t)
	// SC2016 (single quotes keep $ and ` literal) is the point of host.Quote.
	cmd := exec.Command(sc, "--shell=bash", "--severity=style", "--exclude=SC2016", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// golden compares got with testdata/<name>, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	testtool.Golden(t, filepath.Join("testdata", name), []byte(got), *update)
}

// bashExec runs scripts with local bash the way a host executor does:
// GPIPE_OUTPUT points at a fresh file whose key=value lines are returned.
type bashExec struct{}

func (bashExec) Exec(ctx context.Context, s host.Script) (map[string]string, error) {
	dir, err := os.MkdirTemp("", "gpipe-out")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	outFile := filepath.Join(dir, "output")
	if err := os.WriteFile(outFile, nil, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", s.Body)
	cmd.Env = append(os.Environ(), "GPIPE_OUTPUT="+outFile)
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, &pipeline.ExitError{Code: ee.ExitCode()}
		}
		return nil, err
	}
	f, err := os.Open(outFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return host.ParseOutputs(f)
}

type localExecutors struct{}

func (localExecutors) For(h pipeline.Host) (host.Executor, error) {
	if h.Address != "local" && h.Address != "" {
		return nil, fmt.Errorf("test executors: no host %q", h.Address)
	}
	return bashExec{}, nil
}

// syncBuf is a log writer safe for the script's concurrent stdout/stderr.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeEnv puts the fake container runtime and AWS CLI in place.
type fakeEnv struct {
	Dir, S3 string
	Env     map[string]string
}

func newFakeEnv(t *testing.T) *fakeEnv {
	t.Helper()
	bin, err := filepath.Abs("testdata/fakebin")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEnv{Dir: t.TempDir(), S3: t.TempDir()}
	f.Env = map[string]string{
		"GPIPE_CONTAINER_RUNTIME": filepath.Join(bin, "docker"),
		"GPIPE_AWS_CLI":           filepath.Join(bin, "aws"),
		"FAKE_DIR":                f.Dir,
		"FAKE_S3":                 f.S3,
	}
	return f
}

// runs returns the argv of every `docker run` so far, in order.
func (f *fakeEnv) runs(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	for i := 0; ; i++ {
		b, err := os.ReadFile(filepath.Join(f.Dir, "runs", fmt.Sprint(i)))
		if os.IsNotExist(err) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"))
	}
}

func stepRun(typ, id string, with map[string]any, env map[string]string, log *syncBuf) *pipeline.StepRun {
	return &pipeline.StepRun{
		RunID: "unet-brain-20250101T000000Z-abcd", StepID: id, Type: typ, Attempt: 1,
		With: with, Env: env, Host: pipeline.Host{Name: "local", Address: "local"}, Log: log,
	}
}

// argAfter returns the value following flag in argv.
func argAfter(argv []string, flag string) string {
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

func hasArg(argv []string, a string) bool {
	for _, x := range argv {
		if x == a {
			return true
		}
	}
	return false
}
