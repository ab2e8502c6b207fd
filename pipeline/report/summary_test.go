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
		"md": Markdown, "json": JSON, "txt": Table, "brief": Brief,
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
				opt := Options{Resources: testResources{}, KeyOutputs: fixtureKeys, StateURL: "s3://ml-state/gpipe", Now: fixtureNow, Pricer: fixturePrices()}
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
		// No launch_time recorded (an older state): from the provision's
		// end (6.5 min), no earlier than the launch, to the teardown's end
		// (168.25 min).
		{"succeeded", "dl1.24xlarge", "us-east-1", (168.25 - 6.5) / 60, 13.11 * (168.25 - 6.5) / 60, false},
		// instance type from outputs, region from the default; 5 to 36
		{"failed", "p4d.24xlarge", "us-east-1", 31.0 / 60, 32.77 * 31 / 60, false},
		// teardown pending: counted to now (94 min) from the provision's end (4)
		{"running", "dl1.24xlarge", "us-west-2", 90.0 / 60, 13.11 * 90 / 60, true},
		// launch_time 3; the runner died, the instance did not: still up to now
		{"abandoned", "dl1.24xlarge", "us-east-1", 91.0 / 60, 13.11 * 91 / 60, true},
	}
	for _, tt := range tests {
		t.Run(tt.run, func(t *testing.T) {
			c := Build(runs[tt.run], Options{Resources: testResources{}, KeyOutputs: fixtureKeys, Now: fixtureNow, Pricer: fixturePrices()}).Cost
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
	if c := Build(runs["local"], Options{Resources: testResources{}, KeyOutputs: fixtureKeys}).Cost; c != nil {
		t.Errorf("local run has cost %+v, want none", c)
	}
}

func TestCostUnknownPrice(t *testing.T) {
	run := newRun("r", state.RunSucceeded,
		&state.Step{ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
			Attempts: []state.Attempt{attempt(1, 0, 30, 0, "")},
			Outputs:  map[string]string{"instance_type": "x9.huge", "launch_time": at(10).Format(time.RFC3339)}},
	)
	c := Build(run, Options{Resources: testResources{}, KeyOutputs: fixtureKeys, Now: fixtureNow, Pricer: fixturePrices()}).Cost
	if c == nil || c.USD != nil || !c.Running || math.Abs(c.Hours-84.0/60) > 1e-9 {
		t.Fatalf("cost = %+v, want 84 min from the launch, no price, still up", c)
	}
	var buf bytes.Buffer
	if err := Table(&buf, run, Options{Resources: testResources{}, KeyOutputs: fixtureKeys, Now: fixtureNow}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("no price known")) {
		t.Errorf("table does not say the price is unknown:\n%s", buf.String())
	}
}

// TestCostFromRealLifetimes: the estimate counts the instance from its
// launch to its stack's deletion, not step timestamps.
func TestCostFromRealLifetimes(t *testing.T) {
	prov := func(status state.StepStatus, out map[string]string) *state.Step {
		return &state.Step{ID: "provision", Type: "provision-stack", Status: status,
			Attempts: []state.Attempt{attempt(1, 0, 30, 0, "")}, Outputs: out}
	}
	teardown := func(status state.StepStatus, out map[string]string) *state.Step {
		return &state.Step{ID: "teardown", Type: "teardown", Status: status, Needs: []string{"provision"},
			Attempts: []state.Attempt{attempt(1, 60, 75, 0, "")}, Outputs: out}
	}
	launch := map[string]string{"launch_time": at(12).Format(time.RFC3339)}
	tests := []struct {
		name    string
		run     *state.Run
		minutes float64
		up      bool
		says    string
	}{
		{"a provision that created nothing costs nothing",
			newRun("r", state.RunFailed, prov(state.StepFailed, nil), teardown(state.StepSucceeded, nil)),
			0, false, "no instance ran (dl1.24xlarge in us-east-1): $0.00."},
		{"launch to deleted_at",
			newRun("r", state.RunSucceeded, prov(state.StepSucceeded, launch),
				teardown(state.StepSucceeded, map[string]string{"deleted_at": at(70).Format(time.RFC3339)})),
			58, false, "58m of dl1.24xlarge in us-east-1 at $13.11/h ≈ $12.67"},
		{"a failed teardown leaves it up",
			newRun("r", state.RunFailed, prov(state.StepSucceeded, launch), teardown(state.StepFailed, nil)),
			82, true, "still up"},
		{"gpipe teardown released it",
			func() *state.Run {
				r := newRun("r", state.RunInterrupted, prov(state.StepSucceeded, launch), teardown(state.StepPending, nil))
				r.Steps["provision"].Released = ptr(at(40))
				return r
			}(),
			28, false, "28m of"},
		{"seconds are not a round number",
			newRun("r", state.RunSucceeded, prov(state.StepSucceeded, launch),
				teardown(state.StepSucceeded, map[string]string{"deleted_at": at(12.001).Format(time.RFC3339Nano)})),
			0.001, false, "60ms of dl1.24xlarge in us-east-1 at $13.11/h: less than $0.01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Build(tt.run, Options{Resources: testResources{}, KeyOutputs: fixtureKeys, Now: fixtureNow, Pricer: fixturePrices()}).Cost
			if c == nil {
				t.Fatal("no cost")
			}
			if math.Abs(c.Hours*60-tt.minutes) > 1e-6 || c.Running != tt.up {
				t.Errorf("cost = %.4f min, up %v; want %v min, up %v", c.Hours*60, c.Running, tt.minutes, tt.up)
			}
			if got := costSentence(c, ""); !strings.Contains(got, tt.says) {
				t.Errorf("cost says %q, want it to contain %q", got, tt.says)
			}
		})
	}
	// Sub-cent amounts: "$0.03 for 0.00 hours" was the old way of saying 8 s.
	c := &Cost{InstanceType: "dl1.24xlarge", Region: "us-east-1", duration: 8 * time.Second, PricePerHour: 13.11,
		USD: ptr(13.11 * 8 / 3600)}
	if got := costSentence(c, ""); !strings.Contains(got, "8s of dl1.24xlarge") || !strings.Contains(got, "≈ $0.03") {
		t.Errorf("8 s: %q", got)
	}
	c.duration, c.USD = time.Second/2, ptr(13.11/7200)
	if got := costSentence(c, ""); !strings.Contains(got, "500ms of") || !strings.Contains(got, "less than $0.01") {
		t.Errorf("half a second: %q", got)
	}
}

// TestAbandoned: a run whose lease expired is not "running": every view says
// who drove it, since when, and what to do.
func TestAbandoned(t *testing.T) {
	run := fixtures()["abandoned"]
	opt := Options{Resources: testResources{}, KeyOutputs: fixtureKeys, StateURL: "s3://ml-state/gpipe", Now: fixtureNow}
	s := Build(run, opt)
	if s.Status != RunAbandoned || s.Abandoned == nil {
		t.Fatalf("status %s, abandoned %+v", s.Status, s.Abandoned)
	}
	want := "runner on ml-box pid 4242 gone since 2026-03-14 10:00:30 UTC"
	if got := s.Abandoned.Line(); got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	if got := strings.Join(s.Abandoned.Holding, ","); got != "provision" {
		t.Errorf("holding %q", got)
	}
	// The running step stopped being watched with its runner.
	if got := s.Steps[1].DurationSeconds; got != (56*time.Minute + 30*time.Second).Seconds() {
		t.Errorf("train duration %v s", got)
	}
	for name, f := range map[string]func(io.Writer, *state.Run, Options) error{"md": Markdown, "txt": Table, "json": JSON} {
		var buf bytes.Buffer
		if err := f(&buf, run, opt); err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{want, "gpipe resume --state s3://ml-state/gpipe unet-brain-20260314T090000Z-dead",
			"gpipe teardown --state s3://ml-state/gpipe unet-brain-20260314T090000Z-dead"} {
			if name == "json" {
				w = strings.TrimPrefix(w, want) // JSON has the parts, not the sentence
			}
			if w != "" && !strings.Contains(buf.String(), w) {
				t.Errorf("%s does not say %q:\n%s", name, w, buf.String())
			}
		}
	}
	// Torn down with gpipe teardown: nothing to tear down any more.
	run.Steps["provision"].Released = ptr(at(70))
	if a := Abandonment(run, "", fixtureNow(), testResources{}); a == nil || len(a.Holding) != 0 || strings.Contains(a.Todo(), "teardown") {
		t.Errorf("after teardown: %+v", a)
	}
	// A live lease is not abandoned; nor is a finished run.
	if a := Abandonment(fixtures()["running"], "", fixtureNow(), testResources{}); a != nil {
		t.Errorf("running run abandoned: %+v", a)
	}
	if a := Abandonment(fixtures()["succeeded"], "", fixtureNow(), testResources{}); a != nil {
		t.Errorf("succeeded run abandoned: %+v", a)
	}
}

// TestDurationSkipsIdleGap: a run resumed a day after its runner died did not
// run for a day.
func TestDurationSkipsIdleGap(t *testing.T) {
	run := newRun("r", state.RunSucceeded,
		&state.Step{ID: "a", Type: "shell", Status: state.StepSucceeded,
			Attempts: []state.Attempt{{N: 1, Start: at(0)}, attempt(2, 1440, 1450, 0, "")}},
		&state.Step{ID: "b", Type: "shell", Status: state.StepSucceeded,
			Attempts: []state.Attempt{attempt(1, 1445, 1460, 0, "")}},
	)
	s := Build(run, Options{Resources: testResources{}, KeyOutputs: fixtureKeys, Now: fixtureNow})
	if s.duration != 20*time.Minute {
		t.Errorf("run duration %v, want 20m (1440 to 1460)", s.duration)
	}
	if s.Steps[0].duration != 10*time.Minute {
		t.Errorf("step a %v, want 10m", s.Steps[0].duration)
	}
}

func TestJSONFieldsStable(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, fixtures()["running"], Options{Resources: testResources{}, KeyOutputs: fixtureKeys, Now: fixtureNow}); err != nil {
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
	if err := Markdown(&buf, newRun("big", state.RunSucceeded, steps...), Options{Resources: testResources{}, KeyOutputs: fixtureKeys, Now: fixtureNow}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "```mermaid") || !strings.Contains(buf.String(), "300 steps and 596 edges") {
		t.Errorf("large graph not replaced by a note:\n%.600s", buf.String())
	}
}

// TestCostOfLostInstances: each machine a host loss replaced counts from its
// launch to the loss, with the price its provision step's outputs had then
// (state.HostLoss.Providers), not the replacement's; a loss that was not
// replaced leaves the step's outputs naming the lost machine, which counts
// once, to the loss.
func TestCostOfLostInstances(t *testing.T) {
	opt := Options{Resources: testResources{}, Now: fixtureNow, Pricer: fixturePrices()}
	c := Build(interruptedFixture(), opt).Cost
	if len(c.Instances) != 3 {
		t.Fatalf("instances %+v", c.Instances)
	}
	wantMin := []float64{67, 15.5, 90.5}
	wantUSD := []float64{3.93 * 67 / 60, 0, 3.93 * 90.5 / 60}
	for i, ic := range c.Instances {
		if math.Abs(ic.Hours*60-wantMin[i]) > 1e-9 || ic.USD == nil || math.Abs(*ic.USD-wantUSD[i]) > 1e-9 || ic.Lost != (i < 2) {
			t.Errorf("instance %d: %+v, want %v min, $%v", i, ic, wantMin[i], wantUSD[i])
		}
	}
	od := 13.11 * (67 + 15.5 + 90.5) / 60
	if c.OnDemandUSD == nil || math.Abs(*c.OnDemandUSD-od) > 1e-9 || c.SavedUSD == nil || math.Abs(*c.SavedUSD-(od-*c.USD)) > 1e-9 {
		t.Errorf("on demand %v, saved %v; want %v", c.OnDemandUSD, c.SavedUSD, od)
	}

	// The second loss was not replaced (max_host_losses: 1): provision's
	// outputs still name instance 2, lost at minute 90; teardown deleted
	// its stack at 185, but the instance was gone.
	r := interruptedFixture()
	r.Status = state.RunFailed
	r.Steps["provision"].Outputs = r.HostLosses[1].Providers["provision"]
	r.Steps["provision"].Attempts = r.Steps["provision"].Attempts[:2]
	r.Steps["train"].Attempts = r.Steps["train"].Attempts[:2]
	r.Steps["train"].Status = state.StepFailed
	r.HostLosses[1].Rerun, r.HostLosses[1].Failed = nil, "not replaced: this is host loss 2 and max_host_losses is 1"
	s := Build(r, opt)
	if c := s.Cost; len(c.Instances) != 2 || c.Instances[1].End != at(90) || c.Running {
		t.Errorf("instances %+v", c.Instances)
	}
	if l := s.HostLosses[1]; l.ReplacedAfterSeconds != nil || l.TimeLostSeconds != 13*60 {
		t.Errorf("loss not replaced: %+v", l)
	}
	var buf bytes.Buffer
	if err := Table(&buf, r, opt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "not replaced: this is host loss 2") {
		t.Errorf("status does not say the loss was not replaced:\n%s", buf.String())
	}
}
