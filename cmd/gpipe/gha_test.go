package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGitHubActionsFiles runs a failing pipeline as GitHub Actions would and
// checks the log, $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY against golden
// files, with times, durations and random heredoc delimiters normalised.
func TestGitHubActionsFiles(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/gha/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "spec.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	golden := goldenIn(t, mustAbs(t, "testdata/gha"))
	t.Chdir(dir)
	spec := "spec.yaml"
	outFile := filepath.Join(dir, "github_output")
	sumFile := filepath.Join(dir, "step_summary")
	env := map[string]string{
		"GITHUB_ACTIONS":      "true",
		"GITHUB_OUTPUT":       outFile,
		"GITHUB_STEP_SUMMARY": sumFile,
		"GITHUB_WORKSPACE":    dir,
	}
	getenv := func(k string) string { return env[k] }
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"run", "--run-id", "gh-1", "--state", "file://state", spec},
		nil, &stdout, &stderr, getenv)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr.String())
	}
	output, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	summary, err := os.ReadFile(sumFile)
	if err != nil {
		t.Fatal(err)
	}
	golden("log.golden", normalise(stdout.Bytes(), dir))
	golden("github_output.golden", normalise(output, dir))
	golden("step_summary.golden", normalise(summary, dir))
	for _, want := range []string{"::warning title=gpipe%3A run state on the runner::The run state is in file://state",
		"<details><summary>Last 20 log lines</summary>", "loss line 22", "token was ***", "**No resume:**"} {
		if !bytes.Contains(stdout.Bytes(), []byte(want)) && !bytes.Contains(summary, []byte(want)) {
			t.Errorf("neither the log nor the summary has %q", want)
		}
	}
	if bytes.Contains(summary, []byte("s3cr3t-value")) || bytes.Contains(summary, []byte("gpipe resume --state file://")) {
		t.Errorf("the summary shows the secret or a resume command that cannot work:\n%s", summary)
	}
	if bytes.Contains(stdout.Bytes(), []byte("token is s3cr3t-value")) &&
		!bytes.HasPrefix(stdout.Bytes(), []byte("::add-mask::s3cr3t-value\n")) {
		t.Error("the secret param is printed without being masked first")
	}
}

var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`), "<date>"},
	{regexp.MustCompile(`\b\d\d:\d\d:\d\d\b`), "<time>"},
	{regexp.MustCompile(`\b\d+(\.\d+)?(ms|µs|s|m)\b`), "<dur>"},
	{regexp.MustCompile(`ghadelimiter_[A-Za-z0-9_]+`), "<delim>"},
}

func normalise(b []byte, tmp string) []byte {
	b = bytes.ReplaceAll(b, []byte(tmp), []byte("<tmp>"))
	for _, n := range normalisers {
		b = n.re.ReplaceAll(b, []byte(n.with))
	}
	return b
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// goldenIn returns a checker of golden files in dir.
func goldenIn(t *testing.T, dir string) func(name string, got []byte) {
	return func(name string, got []byte) {
		t.Helper()
		checkGolden(t, filepath.Join(dir, name), got)
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	testtool.Golden(t, path, got, *update)
}

// TestGitHubActionsSpecAnnotations: spec errors become ::error annotations
// at their file, line and column, besides the plain report on stderr.
func TestGitHubActionsSpecAnnotations(t *testing.T) {
	dir := t.TempDir()
	bad := "version: 1\nname: bad\nsteps:\n  - id: a\n    type: shell\n    colour: blue\n    with: {run: \"true\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": dir}
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"validate", "bad.yaml"}, nil, &stdout, &stderr, func(k string) string { return env[k] })
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	want := "::error file=bad.yaml,line=6,col=5,"
	if !bytes.Contains(stdout.Bytes(), []byte(want)) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
	}
	if !bytes.Contains(stderr.Bytes(), []byte(`bad.yaml:6:5: unknown field "colour" in step "a"`)) {
		t.Errorf("stderr lacks the plain error:\n%s", stderr.String())
	}
}

// TestGitHubActionsDetachedLocalState: a run that detaches inside GitHub
// Actions with its state on the runner's disk says at the start that the state
// will be lost, and its summary explains detached and offers no resume
// command, only that resuming needs an S3 state.
func TestGitHubActionsDetachedLocalState(t *testing.T) {
	dir := t.TempDir()
	sp := "version: 1\nname: detachdemo\nsteps:\n  - id: wait\n    type: shell\n    with: {run: \"echo waiting; sleep 30\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(sp), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	sumFile := filepath.Join(dir, "step_summary")
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": sumFile, "GITHUB_WORKSPACE": dir}
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"run", "--run-id", "gh-2", "--detach-after", "500ms", "spec.yaml"},
		nil, &stdout, &stderr, func(k string) string { return env[k] })
	if code != exitDetached {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitDetached, stderr.String())
	}
	if !bytes.HasPrefix(stdout.Bytes(), []byte("::warning title=gpipe%3A run state on the runner::The run state is in file://.gpipe on this runner")) {
		t.Errorf("the log does not start with the local-state warning:\n%s", stdout.String())
	}
	summary, err := os.ReadFile(sumFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**Detached", "**No resume:**", "keep their state in S3"} {
		if !bytes.Contains(summary, []byte(want)) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	for _, s := range [][]byte{summary, stderr.Bytes()} {
		if bytes.Contains(s, []byte("gpipe resume --state")) || bytes.Contains(s, []byte("gpipe resume gh-2")) {
			t.Errorf("offers a resume command that cannot work:\n%s", s)
		}
	}
}
