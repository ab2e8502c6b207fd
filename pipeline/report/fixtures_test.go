package report

import (
	"fmt"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// t0 is when every fixture run starts.
var t0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// at is a moment m minutes after t0.
func at(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }

func ptr[T any](v T) *T { return &v }

// attempt is a finished attempt from minute a to minute b.
func attempt(n int, a, b float64, code int, errMsg string) state.Attempt {
	return state.Attempt{N: n, Start: at(a), End: ptr(at(b)), ExitCode: ptr(code), Error: errMsg}
}

func newRun(id string, status state.RunStatus, steps ...*state.Step) *state.Run {
	r := &state.Run{
		SchemaVersion: state.SchemaVersion, ID: id, Pipeline: "unet-brain", SpecFile: "specs/unet-brain.yaml",
		Status: status, Created: t0, Updated: at(200), Steps: map[string]*state.Step{},
		Params: map[string]string{"task": "01"},
	}
	for _, st := range steps {
		r.Steps[st.ID] = st
		r.Order = append(r.Order, st.ID)
	}
	return r
}

// fixtures are the runs every summary format is checked against.
func fixtures() map[string]*state.Run {
	return map[string]*state.Run{
		"succeeded": newRun("unet-brain-20260314T090000Z-a1b2", state.RunSucceeded,
			&state.Step{ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
				Attempts: []state.Attempt{attempt(1, 0, 6.5, 0, "")},
				Outputs: map[string]string{"instance_id": "i-0123456789abcdef0", "stack_name": "gpipe-a1b2",
					"instance_type": "dl1.24xlarge", "region": "us-east-1"}},
			&state.Step{ID: "fetch-msd", Type: "fetch-msd", Status: state.StepSucceeded, Needs: []string{"provision"},
				Attempts: []state.Attempt{attempt(1, 6.5, 20, 0, "")},
				Outputs:  map[string]string{"path": "/data/Task01_BrainTumour"}},
			&state.Step{ID: "train-fold-0", Type: "train-unet", Status: state.StepSucceeded, Needs: []string{"fetch-msd"},
				Attempts: []state.Attempt{attempt(1, 20, 25, 1, "synStatus 26"), attempt(2, 25.5, 150, 0, "")},
				Outputs:  map[string]string{"ckpt": "/results/fold0/last.ckpt"}},
			&state.Step{ID: "train-fold-1", Type: "train-unet", Status: state.StepSucceeded, Needs: []string{"fetch-msd"},
				Attempts: []state.Attempt{attempt(1, 20, 148, 0, "")},
				Outputs:  map[string]string{"ckpt": "/results/fold1/last.ckpt"}},
			&state.Step{ID: "evaluate", Type: "evaluate", Status: state.StepSucceeded,
				Needs:    []string{"train-fold-0", "train-fold-1"},
				Attempts: []state.Attempt{attempt(1, 150, 162, 0, "")},
				Outputs:  map[string]string{"mean_dice": "0.7412", "report": "s3://results/a1b2/eval.json"}},
			&state.Step{ID: "teardown", Type: "teardown", Status: state.StepSucceeded,
				Needs:    []string{"provision", "evaluate"},
				Attempts: []state.Attempt{attempt(1, 162, 168.25, 0, "")}},
		),
		"failed": newRun("unet-brain-20260314T090000Z-c3d4", state.RunFailed,
			&state.Step{ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
				Attempts: []state.Attempt{attempt(1, 0, 5, 0, "")},
				Outputs:  map[string]string{"instance_id": "i-0fedcba9876543210", "instance_type": "p4d.24xlarge"}},
			&state.Step{ID: "train", Type: "train-unet", Status: state.StepFailed, Needs: []string{"provision"},
				Attempts: []state.Attempt{attempt(1, 5, 9, 1, "exit status 1"),
					attempt(2, 10, 30, 137, "exit status 137: killed |OOM| <rank 3>\nsecond line")}},
			&state.Step{ID: "lint", Type: "shell", Status: state.StepCancelled, Needs: []string{"provision"},
				Attempts: []state.Attempt{attempt(1, 5, 30, -1, "context canceled")}, Reason: "cancelled after train failed"},
			&state.Step{ID: "evaluate", Type: "evaluate", Status: state.StepSkipped, Needs: []string{"train"},
				Reason: "upstream train failed"},
			&state.Step{ID: "teardown", Type: "teardown", Status: state.StepSucceeded, Needs: []string{"provision", "evaluate"},
				Attempts: []state.Attempt{attempt(1, 30, 36, 0, "")}},
		),
		"running": leased(newRun("unet-brain-20260314T090000Z-e5f6", state.RunRunning,
			&state.Step{ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
				Attempts: []state.Attempt{attempt(1, 0, 4, 0, "")},
				Outputs:  map[string]string{"instance_id": "i-0aaaabbbbccccdddd", "region": "us-west-2"}},
			&state.Step{ID: "train", Type: "train-unet", Status: state.StepRunning, Needs: []string{"provision"},
				Attempts: []state.Attempt{{N: 1, Start: at(4), Log: "train.1"}}},
			&state.Step{ID: "teardown", Type: "teardown", Status: state.StepPending, Needs: []string{"provision", "train"}},
		), at(94.3)),
		// The runner of a run like "running" died at minute 60 (its lease
		// ran out 30 s later); the instance is still up.
		"abandoned": leased(newRun("unet-brain-20260314T090000Z-dead", state.RunRunning,
			&state.Step{ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
				Attempts: []state.Attempt{attempt(1, 0, 4, 0, "")},
				Outputs: map[string]string{"instance_id": "i-0aaaabbbbccccdddd", "region": "us-east-1",
					"stack_name": "gpipe-dead-provision", "launch_time": at(3).Format(time.RFC3339)}},
			&state.Step{ID: "train", Type: "train-unet", Status: state.StepRunning, Needs: []string{"provision"},
				Attempts: []state.Attempt{{N: 1, Start: at(4), Log: "train.1"}}},
			&state.Step{ID: "teardown", Type: "teardown", Status: state.StepPending, Needs: []string{"provision", "train"}},
		), at(60.5)),
		"interrupted": interruptedFixture(),
		// Local pipeline with step ids and outputs that could break Markdown
		// or Mermaid if they were not escaped.
		"local": func() *state.Run {
			r := newRun("quickstart-20260314T090000Z-0001", state.RunSucceeded,
				&state.Step{ID: "end", Type: "shell", Status: state.StepSucceeded,
					Attempts: []state.Attempt{attempt(1, 0, 0.005, 0, "")},
					Outputs:  map[string]string{"greeting": "hello | world", "z": "9", "a": "`1`", "m": "2"}},
				&state.Step{ID: "graph", Type: "shell", Status: state.StepSucceeded, Needs: []string{"end"},
					Attempts: []state.Attempt{attempt(1, 0.01, 0.5, 0, "")}},
				&state.Step{ID: "class_def-1", Type: "shell", Status: state.StepSucceeded, Needs: []string{"end", "graph"},
					Attempts: []state.Attempt{attempt(1, 0.5, 0.51, 0, "")}},
			)
			r.Pipeline = "quick*start"
			r.SpecFile = "specs/quickstart.yaml"
			r.Params = nil
			return r
		}(),
	}
}

// leased gives r the lease of a runner on host ml-box, pid 4242, that
// expires at expires.
func leased(r *state.Run, expires time.Time) *state.Run {
	r.Lease = &state.Lease{Owner: "ml-box/4242/ab", Host: "ml-box", PID: 4242, Acquired: t0,
		Renewed: expires.Add(-30 * time.Second), Expires: expires}
	return r
}

// interruptedFixture is a spot run whose training lost its host twice
// (max_host_losses: 2): the first instance (us-east-1a) after 67 minutes,
// the second (us-east-1b) after 15.5; each time provision, prepare and
// train ran again, and the third instance finished the training.
func interruptedFixture() *state.Run {
	inst := func(n int, zone string, launch float64) map[string]string {
		return map[string]string{"instance_id": fmt.Sprintf("i-000000000000000%d", n), "host": fmt.Sprintf("ssm:i-000000000000000%d", n),
			"stack_name": "gpipe-spot-provision", "instance_type": "dl1.24xlarge", "region": "us-east-1",
			"availability_zone": zone, "market_type": "spot", "launch_time": at(launch).Format(time.RFC3339)}
	}
	lostErr := func(n int, zone string) string {
		return fmt.Sprintf("host box (ssm:i-000000000000000%d) lost in %s: spot interruption notice: terminate at 2026-03-14T10:12:00Z", n, zone)
	}
	r := newRun("unet-brain-20260314T090000Z-spot", state.RunSucceeded,
		&state.Step{ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
			Attempts: []state.Attempt{attempt(1, 0, 4, 0, ""), attempt(2, 71, 75, 0, ""), attempt(3, 91, 95, 0, "")},
			Outputs:  inst(3, "us-east-1a", 94.5)},
		&state.Step{ID: "prepare", Type: "prepare-disk", Status: state.StepSucceeded, Needs: []string{"provision"},
			Attempts: []state.Attempt{attempt(1, 4, 6, 0, ""), attempt(2, 75, 77, 0, ""), attempt(3, 95, 97, 0, "")}},
		&state.Step{ID: "train", Type: "train-unet", Status: state.StepSucceeded, Needs: []string{"prepare"},
			Attempts: []state.Attempt{attempt(1, 6, 70, -1, lostErr(1, "us-east-1a")), attempt(2, 77, 90, -1, lostErr(2, "us-east-1b")),
				attempt(3, 97, 180, 0, "")},
			Outputs: map[string]string{"ckpt": "s3://results/spot/last.ckpt"}},
		&state.Step{ID: "teardown", Type: "teardown", Status: state.StepSucceeded, Needs: []string{"provision", "train"},
			Attempts: []state.Attempt{attempt(1, 180, 186, 0, "")},
			Outputs:  map[string]string{"deleted_at": at(185).Format(time.RFC3339)}},
	)
	r.HostLosses = []state.HostLoss{
		{Step: "train", Attempt: 1, Host: "box", Address: "ssm:i-0000000000000001", Zone: "us-east-1a", Time: at(70), Start: at(6),
			Cause: lostErr(1, "us-east-1a"), Rerun: []string{"provision", "prepare", "train"},
			Providers: map[string]map[string]string{"provision": inst(1, "us-east-1a", 3)}},
		{Step: "train", Attempt: 2, Host: "box", Address: "ssm:i-0000000000000002", Zone: "us-east-1b", Time: at(90), Start: at(77),
			Cause: lostErr(2, "us-east-1b"), Rerun: []string{"provision", "prepare", "train"},
			Providers: map[string]map[string]string{"provision": inst(2, "us-east-1b", 74.5)}},
	}
	return r
}

// testPrices is a price table for tests, in dollars per hour: on-demand
// prices, and spot prices by instance type and zone.
type testPrices map[[2]string]float64

func (p testPrices) HourlyPrice(instanceType, region string) (float64, bool) {
	v, ok := p[[2]string{instanceType, region}]
	return v, ok
}

// PriceUsage prices spot instances (market_type spot) at the zone's spot
// price, else half the on-demand price, and not at all when lost in their
// first hour, as steps/aws does; the rest on demand.
func (p testPrices) PriceUsage(u Usage) (UsagePrice, bool) {
	od, ok := p.HourlyPrice(u.InstanceType, u.Region)
	if !ok {
		return UsagePrice{}, false
	}
	h := u.End.Sub(u.Start).Hours()
	odUSD := od * h
	if u.Outputs["market_type"] != "spot" {
		return UsagePrice{PricePerHour: od, Basis: basisOnDemand, USD: odUSD, OnDemandUSD: &odUSD}, true
	}
	zone := u.Outputs["availability_zone"]
	up := UsagePrice{Market: "spot", Zone: zone, OnDemandUSD: &odUSD}
	if v, ok := p[[2]string{u.InstanceType, zone}]; ok {
		up.PricePerHour, up.Basis = v, "spot price history"
	} else {
		up.PricePerHour, up.Basis = od/2, "assumed: 50% of on-demand, no spot price history"
	}
	up.USD = up.PricePerHour * h
	if u.Lost != nil && h < 1 {
		up.USD, up.Note = 0, "interrupted in its first hour: not charged"
	}
	return up, true
}

// fixturePrices are AWS's on-demand list prices of the fixtures' instances.
func fixturePrices() testPrices {
	return testPrices{
		{"dl1.24xlarge", "us-east-1"}:  13.11,
		{"dl1.24xlarge", "us-west-2"}:  13.11,
		{"p4d.24xlarge", "us-east-1"}:  32.77,
		{"dl1.24xlarge", "us-east-1a"}: 3.93,
	}
}

// fixtureNow is "now" for summaries: the running fixture counts to it.
func fixtureNow() time.Time { return at(94) }

// testResources is what the AWS steps tell a report (steps/aws.Resources),
// restated for the fixtures: a provision-stack step makes a stack a teardown
// step deletes.
type testResources struct{}

func (testResources) Provisions(t string) bool { return t == "provision-stack" }
func (testResources) Releases(t string) bool   { return t == "teardown" }
func (testResources) Made(st *state.Step) bool {
	return st.Status == state.StepSucceeded || st.Resume["stack_name"] != "" || st.Outputs["stack_name"] != ""
}
func (testResources) Instance(run *state.Run, st *state.Step) (string, string) {
	first := func(vals ...string) string {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return ""
	}
	return first(st.Outputs["instance_type"], run.Params["instance_type"], "dl1.24xlarge"),
		first(st.Outputs["region"], run.Params["region"], "us-east-1")
}
func (testResources) Name(out map[string]string) string { return out["stack_name"] }

// fixtureKeys are the key outputs the step types declare (steps.Registry.KeyOutputs).
var fixtureKeys = []string{"mean_dice", "instance_id", "stack_name", "ckpt"}
