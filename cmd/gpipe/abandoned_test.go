package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// writeRunState stores a run document as the file store lays it out, so a
// test can set up a run whose runner died at a chosen moment.
func writeRunState(t *testing.T, dir string, r *state.Run) {
	t.Helper()
	path := filepath.Join(dir, "runs", r.ID, "state.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// deadRun is a run whose runner on host gone-box (pid 99999) stopped
// renewing its lease, which expires at expires; its provision step made a
// stack that nothing deleted.
func deadRun(id string, expires time.Time) *state.Run {
	start := expires.Add(-time.Hour)
	end := start.Add(5 * time.Minute)
	return &state.Run{
		SchemaVersion: state.SchemaVersion, ID: id, Pipeline: "p", SpecFile: "spec.yaml", Status: state.RunRunning,
		Created: start, Updated: expires.Add(-30 * time.Second),
		Lease: &state.Lease{Owner: "gone-box/99999/x", Host: "gone-box", PID: 99999, Acquired: start,
			Renewed: expires.Add(-30 * time.Second), Expires: expires},
		Order: []string{"provision", "train"},
		Steps: map[string]*state.Step{
			"provision": {ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
				Attempts: []state.Attempt{{N: 1, Start: start, End: &end}},
				Outputs: map[string]string{"stack_name": "gpipe-x", "launch_time": start.Add(3 * time.Minute).Format(time.RFC3339),
					"instance_type": "dl1.24xlarge", "region": "us-east-1"}},
			"train": {ID: "train", Type: "shell", Status: state.StepRunning, Needs: []string{"provision"},
				Attempts: []state.Attempt{{N: 1, Start: end, Log: "train.1"}}},
		},
	}
}

// TestAbandonedRunViews: status, runs and report of a run whose lease ran
// out say it is abandoned, by whom, since when, and what to do.
func TestAbandonedRunViews(t *testing.T) {
	dir := t.TempDir()
	expired := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	writeRunState(t, dir, deadRun("dead-1", expired))
	getenv := func(string) string { return "" }
	since := "runner on gone-box pid 99999 gone since " + expired.Format("2006-01-02 15:04:05 UTC")
	for _, args := range [][]string{{"status"}, {"report"}, {"runs"}} {
		var out, errb bytes.Buffer
		argv := append(args, "--state", dir)
		if args[0] != "runs" {
			argv = append(argv, "dead-1")
		}
		if code := runMain(argv, nil, &out, &errb, getenv); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errb.String())
		}
		want := []string{"abandoned", "gpipe teardown"}
		if args[0] != "runs" {
			want = append(want, since, "gpipe resume --state "+dir+" dead-1", "still up")
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("gpipe %s does not say %q:\n%s", args[0], w, out.String())
			}
		}
		if strings.Contains(out.String(), "running (") || strings.Contains(out.String(), "status:   running") {
			t.Errorf("gpipe %s still calls it running:\n%s", args[0], out.String())
		}
	}
}

// TestLogsFollowNoticesExpiry: logs --follow of a run whose runner dies
// stops within seconds of the lease running out, saying why.
func TestLogsFollowNoticesExpiry(t *testing.T) {
	dir := t.TempDir()
	expires := time.Now().Add(1500 * time.Millisecond)
	writeRunState(t, dir, deadRun("dead-2", expires))
	var out, errb bytes.Buffer
	code := runMain([]string{"logs", "--follow", "--interval", "100ms", "--state", dir, "dead-2"},
		nil, &out, &errb, func(string) string { return "" })
	late := time.Since(expires)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if late < 0 || late > 3*time.Second {
		t.Errorf("logs --follow returned %v after the lease expired", late)
	}
	for _, w := range []string{"abandoned", "runner on gone-box pid 99999 gone since", "gpipe teardown", "gpipe resume"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("logs --follow does not say %q:\n%s", w, errb.String())
		}
	}
}

// TestCostOutputNamesAgree: the report reads the outputs the AWS steps write
// (pipeline may not import steps, so each side names them).
func TestCostOutputNamesAgree(t *testing.T) {
	if cfn.OutputLaunchTime != report.OutputLaunchTime || cfn.OutputDeletedAt != report.OutputDeletedAt {
		t.Errorf("cfn writes %q/%q, report reads %q/%q", cfn.OutputLaunchTime, cfn.OutputDeletedAt,
			report.OutputLaunchTime, report.OutputDeletedAt)
	}
}
