package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

func TestSummaryGolden(t *testing.T) {
	formats := map[string]func(io.Writer, *state.Run, Options) error{
		"md": Markdown, "json": JSON, "txt": Table,
	}
	runs := fixtures()
	names := make([]string, 0, len(runs))
	for n := range runs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		for ext, f := range formats {
			t.Run(name+"."+ext, func(t *testing.T) {
				opt := Options{StateURL: "s3://ml-state/gpipe", Now: fixtureNow}
				if name == "local" {
					opt.StateURL = "file://my state"
				}
				var buf bytes.Buffer
				if err := f(&buf, runs[name], opt); err != nil {
					t.Fatal(err)
				}
				golden(t, "summary/"+name+"."+ext, buf.Bytes())
			})
		}
	}
}

func TestCost(t *testing.T) {
	runs := fixtures()
	tests := []struct {
		run          string
		instanceType string
		region       string
		hours        float64
		usd          float64 // -1: no price
		running      bool
	}{
		// provision start (0) to teardown end (168.25 min)
		{"succeeded", "dl1.24xlarge", "us-east-1", 168.25 / 60, 13.11 * 168.25 / 60, false},
		// instance type from outputs, region from the default; teardown ends at 36
		{"failed", "p4d.24xlarge", "us-east-1", 36.0 / 60, 32.77 * 36 / 60, false},
		// teardown pending: counted to now (94 min)
		{"running", "dl1.24xlarge", "us-west-2", 94.0 / 60, 13.11 * 94 / 60, true},
	}
	for _, tt := range tests {
		t.Run(tt.run, func(t *testing.T) {
			c := Build(runs[tt.run], Options{Now: fixtureNow}).Cost
			if c == nil {
				t.Fatal("no cost")
			}
			if c.InstanceType != tt.instanceType || c.Region != tt.region || c.Running != tt.running {
				t.Errorf("cost = %+v, want %s in %s running=%v", c, tt.instanceType, tt.region, tt.running)
			}
			if math.Abs(c.Hours-tt.hours) > 1e-9 {
				t.Errorf("hours = %v, want %v", c.Hours, tt.hours)
			}
			if c.USD == nil || math.Abs(*c.USD-tt.usd) > 1e-9 {
				t.Errorf("usd = %v, want %v", c.USD, tt.usd)
			}
		})
	}
	if c := Build(runs["local"], Options{}).Cost; c != nil {
		t.Errorf("local run has cost %+v, want none", c)
	}
}

func TestCostUnknownPriceAndRollback(t *testing.T) {
	run := newRun("r", state.RunFailed,
		&state.Step{ID: "provision", Type: "provision-stack", Status: state.StepFailed,
			Attempts: []state.Attempt{attempt(1, 0, 30, 1, "CREATE_FAILED")},
			Outputs:  map[string]string{"instance_type": "x9.huge"}},
	)
	c := Build(run, Options{Now: fixtureNow}).Cost
	if c == nil || c.USD != nil || c.Running || math.Abs(c.Hours-0.5) > 1e-9 {
		t.Fatalf("cost = %+v, want 0.5 h, no price, not running (stack rolled back)", c)
	}
	var buf bytes.Buffer
	if err := Table(&buf, run, Options{Now: fixtureNow}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("no price known")) {
		t.Errorf("table does not say the price is unknown:\n%s", buf.String())
	}
}

func TestJSONFieldsStable(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, fixtures()["running"], Options{Now: fixtureNow}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"run_id", "pipeline", "status", "steps", "outputs", "cost", "resume_command", "graph"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON summary lacks %q", k)
		}
	}
	steps := doc["steps"].([]any)
	train := steps[1].(map[string]any)
	// A running step counts to now: 94 - 4 minutes.
	if got := train["duration_seconds"].(float64); got != (90 * time.Minute).Seconds() {
		t.Errorf("running step duration = %v s, want %v", got, (90 * time.Minute).Seconds())
	}
}

func TestResumeCommand(t *testing.T) {
	tests := []struct{ url, id, want string }{
		{"", "r1", "gpipe resume r1"},
		{"s3://b/p", "gh-123", "gpipe resume --state s3://b/p gh-123"},
		{"file://my state", "r1", "gpipe resume --state 'file://my state' r1"},
		{"/tmp/it's", "r1", `gpipe resume --state '/tmp/it'\''s' r1`},
	}
	for _, tt := range tests {
		if got := ResumeCommand(tt.url, tt.id); got != tt.want {
			t.Errorf("ResumeCommand(%q, %q) = %q, want %q", tt.url, tt.id, got, tt.want)
		}
	}
}

func TestMarkdownLargeGraphLeftOut(t *testing.T) {
	var steps []*state.Step
	for i := range 300 {
		st := &state.Step{ID: fmt.Sprintf("s%03d", i), Type: "shell", Status: state.StepSucceeded}
		if i >= 2 {
			st.Needs = []string{fmt.Sprintf("s%03d", i-1), fmt.Sprintf("s%03d", i-2)}
		}
		steps = append(steps, st)
	}
	var buf bytes.Buffer
	if err := Markdown(&buf, newRun("big", state.RunSucceeded, steps...), Options{Now: fixtureNow}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "```mermaid") || !strings.Contains(buf.String(), "300 steps and 596 edges") {
		t.Errorf("large graph not replaced by a note:\n%.600s", buf.String())
	}
}
