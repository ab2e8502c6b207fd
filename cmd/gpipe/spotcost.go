package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws"
)

// costLoadTimeout bounds the wait for spot price history before a report:
// without it (no credentials, no network) the report still comes, with
// spot prices assumed and labelled so.
const costLoadTimeout = 10 * time.Second

// runCosts prices a run's instance time for a report: on-demand instances at
// the list price, spot instances at EC2's spot price history of their
// zones, loaded now. Only a run with spot instances asks AWS anything; what
// cannot be loaded is assumed (the report says so), and the error says why.
func (a *App) runCosts(ctx context.Context, run *state.Run, sp *aws.SpotPrices) (aws.Costs, error) {
	if run == nil {
		return aws.NewCosts(nil), nil
	}
	if sp == nil {
		sp = a.cloud().SpotPrices()
	}
	ctx, cancel := context.WithTimeout(ctx, costLoadTimeout)
	defer cancel()
	err := sp.Load(ctx, report.Usages(run, report.Options{Resources: aws.Resources{}}))
	return aws.NewCosts(sp), err
}

// reportCosts is runCosts for a command that shows a report: a history it
// could not load is a note on stderr, not a failure.
func (a *App) reportCosts(ctx context.Context, run *state.Run) report.Pricer {
	p, err := a.runCosts(ctx, run, nil)
	if err != nil {
		fmt.Fprintf(a.Stderr, "gpipe: %v; the estimate assumes spot prices where it has none\n", err)
	}
	return p
}

// awsPrices price without asking AWS: on-demand list prices, and spot at
// the assumed discount.
func awsPrices() report.Pricer { return aws.NewCosts(nil) }
