package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/state"
)

// TestBriefBigRun: a run of many steps ends with a short summary: the steps
// that did not succeed, and a count of the rest.
func TestBriefBigRun(t *testing.T) {
	var steps []*state.Step
	for i := range 30 {
		steps = append(steps, &state.Step{ID: fmt.Sprintf("s%02d", i), Type: "shell", Status: state.StepSucceeded,
			Attempts: []state.Attempt{attempt(1, 0, 1, 0, "")}})
	}
	steps = append(steps, &state.Step{ID: "bad", Type: "shell", Status: state.StepFailed,
		Attempts: []state.Attempt{attempt(1, 1, 2, 1, "exit status 1")}})
	var buf bytes.Buffer
	if err := Brief(&buf, newRun("big", state.RunFailed, steps...), Options{Resources: testResources{}, KeyOutputs: fixtureKeys, Now: fixtureNow}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		"summary: run big failed after 2m (30 succeeded, 1 failed)",
		"  ✗ bad  1m  exit status 1",
		"  … and 30 more succeeded (gpipe status big lists them)",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("brief:\n%s\nwant:\n%s", buf.String(), strings.Join(want, "\n"))
	}
}
