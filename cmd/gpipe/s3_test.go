package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// The tests in s3*_test.go run the real gpipe binary (this test binary,
// re-executed as "gpipe" through testscript.Main's $PATH entry, so it is
// race-instrumented when the tests are) as a subprocess against a real
// versitygw, with --state s3://BUCKET/runs.

// s3Harness is one versitygw, one bucket and one working directory.
type s3Harness struct {
	t     *testing.T
	srv   *testtool.S3Server
	bin   string
	dir   string // working directory of every gpipe process
	state string // --state URL
	env   []string
}

const s3Bucket = "gpipe-test"

func newS3Harness(t *testing.T) *s3Harness {
	t.Helper()
	srv := testtool.Versitygw(t)
	srv.Bucket(t, s3Bucket)
	bin, err := exec.LookPath("gpipe")
	if err != nil {
		t.Fatalf("gpipe is not on $PATH (testscript.Main puts it there): %v", err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"NO_COLOR=1", "GITHUB_ACTIONS=", "GPIPE_STATE=",
		// A race-instrumented gpipe otherwise sleeps a second at exit.
		"GORACE=atexit_sleep_ms=0",
		// The developer's own AWS profiles must not steer the SDK.
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
	return &s3Harness{
		t: t, srv: srv, bin: bin, dir: t.TempDir(),
		state: "s3://" + s3Bucket + "/runs",
		env:   append(env, srv.Env()...),
	}
}

// withEndpoint returns the environment with the S3 endpoint replaced (a
// fault proxy in front of the server).
func (h *s3Harness) withEndpoint(endpoint string) []string {
	var env []string
	for _, kv := range h.env {
		if !strings.HasPrefix(kv, "AWS_ENDPOINT_URL_S3=") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ENDPOINT_URL_S3="+endpoint)
}

// path is a file in the working directory.
func (h *s3Harness) path(name string) string { return filepath.Join(h.dir, name) }

func (h *s3Harness) writeFile(name, content string) {
	h.t.Helper()
	if err := os.WriteFile(h.path(name), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// command prepares gpipe ARGS with --state added after the subcommand.
func (h *s3Harness) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	full := append([]string{args[0], "--state", h.state}, args[1:]...)
	cmd := exec.CommandContext(ctx, h.bin, full...)
	cmd.Dir = h.dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// result is a finished gpipe process.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("gpipe %s: exit %d\n[stdout]\n%s[stderr]\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// gpipe runs gpipe to the end (at most a minute) and returns its outcome.
func (h *s3Harness) gpipe(args ...string) result {
	h.t.Helper()
	return h.gpipeEnv(h.env, args...)
}

func (h *s3Harness) gpipeEnv(env []string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), time.Minute)
	defer cancel()
	cmd := h.command(ctx, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return finish(h.t, cmd, args, cmd.Run(), &stdout, &stderr)
}

func finish(t *testing.T, cmd *exec.Cmd, args []string, err error, stdout, stderr *bytes.Buffer) result {
	t.Helper()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		t.Errorf("the race detector found a race in gpipe:\n%s", r)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("gpipe %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// must runs gpipe and fails the test unless it exits 0.
func (h *s3Harness) must(args ...string) result {
	h.t.Helper()
	r := h.gpipe(args...)
	if r.code != 0 {
		h.t.Fatalf("%s", r)
	}
	return r
}

// status reads a run's state with `gpipe status --json`, failing the test if
// it does not load.
func (h *s3Harness) status(runID string) *state.Run {
	h.t.Helper()
	r := h.must("status", "--json", runID)
	var run state.Run
	if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
		h.t.Fatalf("status --json %s is not a run: %v\n%s", runID, err, r)
	}
	return &run
}

// s3Client talks to the server directly, to read and plant state objects.
func (h *s3Harness) s3Client() *s3sdk.Client {
	return s3sdk.New(s3sdk.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(h.srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(h.srv.AccessKey, h.srv.SecretKey, ""),
	})
}

// stateKey is the object holding a run's state document.
func stateKey(runID string) string { return "runs/" + runID + "/state.json" }

func (h *s3Harness) getObject(key string) (body []byte, etag string) {
	h.t.Helper()
	out, err := h.s3Client().GetObject(h.t.Context(), &s3sdk.GetObjectInput{Bucket: aws.String(s3Bucket), Key: &key})
	if err != nil {
		h.t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(out.Body); err != nil {
		h.t.Fatalf("get %s: %v", key, err)
	}
	return b.Bytes(), aws.ToString(out.ETag)
}

func (h *s3Harness) putObject(key string, body []byte) {
	h.t.Helper()
	_, err := h.s3Client().PutObject(h.t.Context(), &s3sdk.PutObjectInput{
		Bucket: aws.String(s3Bucket), Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		h.t.Fatalf("put %s: %v", key, err)
	}
}

// ledger reads a file of "STEP PID" lines that steps append to, as a map from
// step to the pids of the runners that ran it, in order.
func readLedger(t *testing.T, path string) map[string][]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string][]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var step string
		var pid int
		if _, err := fmt.Sscanf(line, "%s %d", &step, &pid); err != nil {
			t.Fatalf("ledger %s: bad line %q", path, line)
		}
		out[step] = append(out[step], pid)
	}
	return out
}

// waitFor polls cond every 20ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
