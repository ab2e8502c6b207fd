package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/gpipe/gpipe/pipeline/report/console"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws"
)

// oneSpotPrice answers DescribeSpotPriceHistory with one price change, as
// EC2 does for a zone whose price has not changed in the range (the change
// before the start is the price in effect).
type oneSpotPrice struct {
	at    time.Time
	price string
	calls int
}

func (o *oneSpotPrice) DescribeSpotPriceHistory(_ context.Context, in *ec2.DescribeSpotPriceHistoryInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error) {
	o.calls++
	return &ec2.DescribeSpotPriceHistoryOutput{SpotPriceHistory: []ec2types.SpotPrice{{AvailabilityZone: in.AvailabilityZone,
		InstanceType: in.InstanceTypes[0], ProductDescription: "Linux/UNIX", SpotPrice: sdkaws.String(o.price), Timestamp: &o.at}}}, nil
}

// TestOverBudgetSpot: a budget counts a spot instance at its spot price
// history, asked at most every aws.SpotPriceRefresh; without history it
// counts the on-demand price, the most the instance may cost, rather than
// the assumed discount a report shows.
func TestOverBudgetSpot(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	end := t0.Add(2 * time.Minute)
	run := &state.Run{ID: "r", Status: state.RunRunning, Order: []string{"provision", "teardown"}, Steps: map[string]*state.Step{
		"provision": {ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
			Attempts: []state.Attempt{{N: 1, Start: t0, End: &end}},
			Outputs: map[string]string{"launch_time": t0.Format(time.RFC3339), "instance_type": "dl1.24xlarge", "region": "us-east-1",
				"market_type": "spot", "availability_zone": "us-east-1a"}},
		"teardown": {ID: "teardown", Type: "teardown", Status: state.StepPending, Needs: []string{"provision"}},
	}}
	hour := t0.Add(time.Hour)
	app := &App{Getenv: func(string) string { return "" }}

	// No history: $13.11 so far, and 5 min 2 s more at $13.11/h. EC2's
	// answer stands for aws.SpotPriceRefresh too: not asked again.
	bad := &oneSpotPrice{}
	none := &aws.SpotPrices{Client: func(context.Context, string) (aws.SpotPriceAPI, error) { return bad, nil },
		Now: func() time.Time { return hour }}
	prices, err := app.runCosts(t.Context(), run, none)
	if _, err2 := app.runCosts(t.Context(), run, none); err == nil || err2 == nil || bad.calls != 1 {
		t.Errorf("a history without prices: %v, then %v, after %d calls; want an error each time from one call", err, err2, bad.calls)
	}
	prices.Cautious = true
	if over, usd := overBudget(run, 14, hour, prices); !over || math.Abs(usd-13.11) > 1e-9 {
		t.Errorf("no history: over %v at $%v, want over at $13.11", over, usd)
	}

	// History: $3.93 an hour.
	api := &oneSpotPrice{at: t0.Add(-time.Hour), price: "3.930000"}
	now := hour
	sp := &aws.SpotPrices{Client: func(context.Context, string) (aws.SpotPriceAPI, error) { return api, nil }, Now: func() time.Time { return now }}
	for range 3 {
		prices, err = app.runCosts(t.Context(), run, sp)
		if err != nil {
			t.Fatal(err)
		}
		prices.Cautious = true
		want := 3.93 * now.Sub(t0).Hours()
		if over, usd := overBudget(run, 5, now, prices); over || math.Abs(usd-want) > 1e-9 {
			t.Errorf("history: over %v at $%v, want under at $%v", over, usd, want)
		}
		now = now.Add(2 * time.Second)
	}
	if api.calls != 1 {
		t.Errorf("%d DescribeSpotPriceHistory calls in 4 s, want 1 (every %v)", api.calls, aws.SpotPriceRefresh)
	}
}

// TestJobSummaryListsHostLosses: inside GitHub Actions the job summary a
// run ends with lists its host losses and prices its spot instances; when
// AWS cannot be asked for spot prices the summary still comes, with the
// price assumed and labelled so, and stderr says why.
func TestJobSummaryListsHostLosses(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	at := func(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }
	attempt := func(n int, a, b float64, err string) state.Attempt {
		end := at(b)
		return state.Attempt{N: n, Start: at(a), End: &end, Error: err}
	}
	machine := func(id, zone string, launch float64) map[string]string {
		return map[string]string{"host": "ssm:" + id, "instance_id": id, "instance_type": "dl1.24xlarge", "region": "us-east-1",
			"market_type": "spot", "availability_zone": zone, "launch_time": at(launch).Format(time.RFC3339)}
	}
	cause := "host box (ssm:i-1) lost in us-east-1a: spot interruption notice from instance metadata"
	run := &state.Run{ID: "s1", Pipeline: "spot", Status: state.RunSucceeded, Created: t0, Order: []string{"provision", "train", "teardown"},
		Steps: map[string]*state.Step{
			"provision": {ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
				Attempts: []state.Attempt{attempt(1, 0, 4, ""), attempt(2, 31, 35, "")}, Outputs: machine("i-2", "us-east-1b", 34)},
			"train": {ID: "train", Type: "shell", Status: state.StepSucceeded, Needs: []string{"provision"},
				Attempts: []state.Attempt{attempt(1, 5, 30, cause), attempt(2, 36, 100, "")}},
			"teardown": {ID: "teardown", Type: "teardown", Status: state.StepSucceeded, Needs: []string{"provision", "train"},
				Attempts: []state.Attempt{attempt(1, 100, 104, "")}, Outputs: map[string]string{"deleted_at": at(103).Format(time.RFC3339)}},
		},
		HostLosses: []state.HostLoss{{Step: "train", Attempt: 1, Host: "box", Address: "ssm:i-1", Zone: "us-east-1a", Time: at(30), Start: at(5),
			Cause: cause, Rerun: []string{"provision", "train"}, Providers: map[string]map[string]string{"provision": machine("i-1", "us-east-1a", 3)}}},
	}
	sumFile := filepath.Join(t.TempDir(), "step_summary")
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": sumFile}
	var stdout, stderr bytes.Buffer
	app := &App{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] },
		aws: aws.New(aws.Options{LoadConfig: func(context.Context, string) (sdkaws.Config, error) {
			return sdkaws.Config{}, errors.New("no AWS in this test")
		}})}
	r := &runReporter{app: app, console: console.NewPlain(&stdout), runID: "s1", storeURL: "s3://state/gpipe", github: true}
	r.Finish(run, nil)
	b, err := os.ReadFile(sumFile)
	if err != nil {
		t.Fatal(err)
	}
	summary := string(b)
	for _, want := range []string{
		"**Host losses:** 1 host loss, up to 31m lost.",
		"| `train` (attempt 1) | box (ssm:i-1, us-east-1a) | 2026-05-01 10:30:00 UTC | host box (ssm:i-1) lost in us-east-1a: spot interruption notice from instance metadata | up to 31m lost (the attempt had run 25m; it ran again 6m later) | ran again: provision, train |",
		"**Estimated instance cost:** 2 instances, 1h36m in all ≈ **$7.54** against $20.98 on demand, saved ≈ **$13.44** (64%), an estimate:",
		"- provision: dl1.24xlarge spot in us-east-1a from 10:03:00 UTC, 27m at $6.55/h (assumed: 50% of on-demand, no spot price history) ≈ $0.00, $5.90 on demand; lost under a running step; interrupted by EC2 in its first hour: not charged",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("the job summary lacks\n%s\n%s", want, summary)
		}
	}
	if !strings.Contains(stderr.String(), "no AWS in this test; the estimate assumes spot prices where it has none") {
		t.Errorf("stderr does not say why spot prices are assumed:\n%s", stderr.String())
	}
}
