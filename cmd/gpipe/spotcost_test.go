package main

import (
	"context"
	"math"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

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

	// No history: $13.11 so far, and 5 min 2 s more at $13.11/h.
	none := &aws.SpotPrices{Client: func(context.Context, string) (aws.SpotPriceAPI, error) { return &oneSpotPrice{}, nil },
		Now: func() time.Time { return hour }}
	prices, err := app.runCosts(t.Context(), run, none)
	if err == nil {
		t.Error("a history without prices is no error")
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
