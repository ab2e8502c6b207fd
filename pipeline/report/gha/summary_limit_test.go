package gha

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
)

// hugeRun has 20,000 steps with long outputs: its summary is several MiB.
func hugeRun() *state.Run {
	run := sampleRun()
	for i := range 20_000 {
		id := fmt.Sprintf("step-%05d", i)
		run.Order = append(run.Order, id)
		run.Steps[id] = &state.Step{ID: id, Type: "shell", Status: state.StepFailed,
			Attempts: []state.Attempt{{N: 1, Error: strings.Repeat("x", 200)}},
			Outputs:  map[string]string{"out": strings.Repeat("y", 200)}}
	}
	return run
}

// TestStepSummaryStaysUnderGitHubLimit: GitHub refuses a step summary over
// 1 MiB, so gpipe cuts its own, counting what the step wrote before, and says
// it did.
func TestStepSummaryStaysUnderGitHubLimit(t *testing.T) {
	run := hugeRun()
	var full bytes.Buffer
	if err := report.Markdown(&full, run, report.Options{}); err != nil {
		t.Fatal(err)
	}
	if full.Len() <= MaxStepSummary {
		t.Fatalf("test run's summary is only %d bytes; make it bigger", full.Len())
	}
	for _, before := range []int{0, 300_000} {
		path := filepath.Join(t.TempDir(), "summary")
		if err := os.WriteFile(path, bytes.Repeat([]byte("e\n"), before/2), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := StepSummary(path, run, report.Options{}); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > MaxStepSummary {
			t.Errorf("with %d bytes written before: summary file is %d bytes, more than %d", before, len(got), MaxStepSummary)
		}
		if len(got) < MaxStepSummary-4096 {
			t.Errorf("with %d bytes written before: summary file is %d bytes, far below the limit", before, len(got))
		}
		if !strings.HasSuffix(string(got), "`gpipe report gh-12345` prints it whole._\n") {
			t.Errorf("cut summary does not end with the note: %q", got[len(got)-200:])
		}
		if !bytes.HasPrefix(got[before:], full.Bytes()[:1000]) {
			t.Error("cut summary does not start like the full one")
		}
	}
}

func TestTruncateSummaryClosesCodeBlock(t *testing.T) {
	md := []byte("# run\n```mermaid\n" + strings.Repeat("a --> b\n", 1000) + "```\n")
	got := string(truncateSummary(md, 2000, "r1"))
	if len(got) > 2000 {
		t.Fatalf("%d bytes, more than 2000", len(got))
	}
	if !strings.Contains(got, "a --> b\n```\n\n_Summary cut") {
		t.Errorf("open code block not closed before the note:\n%s", got)
	}
	if got := truncateSummary(md, int64(len(md)), "r1"); !bytes.Equal(got, md) {
		t.Error("a summary that fits was changed")
	}
}

// A cut inside a failing step's log block closes its longer fence (not at a
// log line of three backticks) and its <details>, so the note is not folded
// away or shown as code.
func TestTruncateSummaryClosesLogBlock(t *testing.T) {
	md := []byte("- `train`: exit 1\n\n  <details><summary>Last 20 log lines</summary>\n\n  ````text\n  ```\n" +
		strings.Repeat("  epoch\n", 1000) + "  ````\n\n  </details>\n")
	got := string(truncateSummary(md, 2000, "r1"))
	if len(got) > 2000 {
		t.Fatalf("%d bytes, more than 2000", len(got))
	}
	if !strings.Contains(got, "  epoch\n````\n\n</details>\n\n_Summary cut") {
		t.Errorf("open log block not closed before the note:\n%s", got)
	}
}
