package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// gatedSpec has a billable step behind a step that fails, so a run that
// starts never reaches AWS; gate.ran says whether the run started.
const gatedSpec = `version: 1
name: gated
steps:
  - id: gate
    type: shell
    with: {run: "echo x >> gate.ran; exit 1"}
  - id: provision
    type: provision-stack
    needs: [gate]
    with: {region: us-east-1, instance_type: dl1.24xlarge, max_lifetime: 2h}
`

// TestRunAsksBeforeBillableSteps: on a terminal, run shows the bill and asks;
// no answer or "n" starts nothing (no run state either); "y" and --yes start
// the run, and CI or GitHub Actions never ask.
func TestRunAsksBeforeBillableSteps(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		tty     bool
		answer  string
		started bool
		asked   bool
	}{
		{"declined", nil, nil, true, "n\n", false, true},
		{"no answer", nil, nil, true, "", false, true},
		{"accepted", nil, nil, true, "yes\n", true, true},
		{"--yes", []string{"--yes"}, nil, true, "", true, false},
		{"not a terminal", nil, nil, false, "", true, false},
		{"CI", nil, map[string]string{"CI": "true"}, true, "", true, false},
		{"GitHub Actions", nil, map[string]string{"GITHUB_ACTIONS": "true"}, true, "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			if err := os.WriteFile("spec.yaml", []byte(gatedSpec), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			app := &App{Stdin: strings.NewReader(tt.answer), Stdout: &stdout, Stderr: &stderr,
				Getenv: func(k string) string { return tt.env[k] }, Hard: context.Background(),
				Terminal: func(any) bool { return tt.tty }}
			args := append(append([]string{"run", "--run-id", "r1", "--state", "st"}, tt.args...), "spec.yaml")
			err := app.Main(context.Background(), args)
			_, statErr := os.Stat("gate.ran")
			if started := statErr == nil; started != tt.started {
				t.Fatalf("started %v, want %v (err %v)\n%s", started, tt.started, err, stderr.String())
			}
			if asked := strings.Contains(stderr.String(), "Start the run? [y/N]"); asked != tt.asked {
				t.Errorf("asked %v, want %v:\n%s", asked, tt.asked, stderr.String())
			}
			if !strings.Contains(stderr.String(), "provision: dl1.24xlarge in us-east-1 at $13.11/h") ||
				!strings.Contains(stderr.String(), "worst case $26.22") {
				t.Errorf("the bill is not shown:\n%s", stderr.String())
			}
			if !tt.started {
				if !errors.Is(err, errNotConfirmed) || exitCode(err) != exitFailed {
					t.Errorf("err %v (exit %d), want not confirmed, exit 1", err, exitCode(err))
				}
				if _, err := os.Stat(filepath.Join("st", "runs", "r1", "state.json")); err == nil {
					t.Error("a declined run left a run state")
				}
			}
		})
	}
}

// TestOverBudget: the budget check projects the instances still up a margin
// ahead, so the teardown still fits; a finished instance is not projected.
func TestOverBudget(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	end := t0.Add(2 * time.Minute)
	run := &state.Run{ID: "r", Status: state.RunRunning, Order: []string{"provision", "teardown"}, Steps: map[string]*state.Step{
		"provision": {ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
			Attempts: []state.Attempt{{N: 1, Start: t0, End: &end}},
			Outputs:  map[string]string{"launch_time": t0.Format(time.RFC3339), "instance_type": "dl1.24xlarge", "region": "us-east-1"}},
		"teardown": {ID: "teardown", Type: "teardown", Status: state.StepPending, Needs: []string{"provision"}},
	}}
	hour := t0.Add(time.Hour) // $13.11 so far; 5 min 2 s more is $1.10
	for _, tt := range []struct {
		budget float64
		over   bool
	}{{20, false}, {14.3, false}, {14.1, true}, {13, true}} {
		over, usd := overBudget(run, tt.budget, hour, awsPrices())
		if over != tt.over || usd < 13.10 || usd > 13.12 {
			t.Errorf("budget $%.2f: over %v at $%.4f, want over %v at $13.11", tt.budget, over, usd, tt.over)
		}
	}
	// Torn down at the hour: $13.11 spent, nothing more to come.
	done := t0.Add(time.Hour)
	run.Steps["teardown"].Status = state.StepSucceeded
	run.Steps["teardown"].Attempts = []state.Attempt{{N: 1, Start: done, End: &done}}
	if over, _ := overBudget(run, 13.2, t0.Add(3*time.Hour), awsPrices()); over {
		t.Error("a deleted instance is still projected")
	}
}
