package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gpipe/gpipe/pipeline/expr"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// biller is a step type that launches something billed by the hour and can
// say what before it runs (provision-stack).
type biller interface {
	Bill(with map[string]any, defaultRegion string) (cfn.Bill, error)
}

// charges prices the plan's billable steps that will run (a resume reuses
// the others), with the values a plan knows: params and matrix values.
func (a *App) charges(p *plan.Plan) ([]plan.Charge, error) {
	reg := a.registry()
	var out []plan.Charge
	for _, ps := range p.Steps {
		if ps.Action == plan.Reuse {
			continue
		}
		runner, ok := reg.Lookup(ps.Spec.Type)
		if !ok {
			continue
		}
		b, ok := runner.(biller)
		if !ok {
			continue
		}
		with, err := expr.Interpolate(ps.Spec.With, placeholderScope(p, ps))
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", ps.ID, err)
		}
		withMap, _ := with.(map[string]any)
		bill, err := b.Bill(withMap, a.defaultRegion())
		if err != nil {
			return nil, fmt.Errorf("price step %s: %w", ps.ID, err)
		}
		c := plan.Charge{Step: ps.ID, InstanceType: bill.InstanceType, Region: bill.Region,
			MaxLifetime: bill.MaxLifetime, IdleTimeout: bill.IdleTimeout,
			Timeout: ps.Spec.Timeout, ChainTimeout: p.ChainTimeout(ps.ID)}
		c.Market, c.SpotBasis, c.Fallback = bill.Market, bill.SpotBasis, bill.Fallback
		if bill.Priced {
			price, od, perHour := bill.PricePerHour, bill.OnDemandPerHour, max(bill.WorstPerHour, bill.PricePerHour)
			worst := perHour * bill.MaxLifetime.Hours()
			c.PricePerHour, c.OnDemandPerHour, c.WorstPerHour, c.WorstCaseUSD = &price, &od, &perHour, &worst
		}
		out = append(out, c)
	}
	return out, nil
}

// defaultRegion is the region the SDK would use when a step names none.
func (a *App) defaultRegion() string {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if v := a.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// interactive reports whether someone at a terminal can answer a question:
// stdin and stderr are terminals and this is not CI (CI, GITHUB_ACTIONS).
func (a *App) interactive() bool {
	if ci := a.Getenv("CI"); ci != "" && ci != "false" || a.inGitHubActions() {
		return false
	}
	term := a.Terminal
	if term == nil {
		term = isTerminal
	}
	return term(a.Stdin) && term(a.Stderr)
}

// errNotConfirmed: the user did not agree to start billable steps.
var errNotConfirmed = errors.New("run not started: the billable steps were not confirmed (--yes skips the question)")

// confirmCharges shows what the billable steps may cost and, on a terminal,
// asks before the run starts; --yes and non-interactive runs do not ask.
func (a *App) confirmCharges(charges []plan.Charge, yes bool) error {
	if len(charges) == 0 {
		return nil
	}
	if err := plan.WriteCharges(a.Stderr, charges); err != nil {
		return err
	}
	if yes || !a.interactive() {
		return nil
	}
	fmt.Fprint(a.Stderr, "Start the run? [y/N] ")
	line, err := bufio.NewReader(a.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}

// BudgetError says the run was stopped because its estimated instance cost
// was about to pass its budget.
type BudgetError struct {
	RunID    string
	Budget   float64
	Estimate float64 // the estimate when it stopped, in dollars
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("run %s stopped by its budget: estimated instance cost $%.2f, with the %s margin for "+
		"teardown and the next check it would pass the budget of $%.2f; cleanup steps ran",
		e.RunID, e.Estimate, budgetMargin, e.Budget)
}

// How often the budget is checked against the running estimate, and how much
// instance time beyond now a check reserves: until the next check, plus the
// few minutes a stack deletion takes.
const (
	budgetEvery  = 2 * time.Second
	budgetMargin = 5 * time.Minute
)

// overBudget reports whether run's estimated cost, projected budgetMargin
// ahead for the instances still up, would pass budget.
func overBudget(run *state.Run, budget float64, now time.Time, prices report.Pricer) (bool, float64) {
	c := report.Build(run, report.Options{Resources: aws.Resources{}, Pricer: prices, Now: func() time.Time { return now }}).Cost
	if c == nil || c.USD == nil {
		return false, 0
	}
	projected := *c.USD
	if c.Running {
		projected += c.PricePerHour * (budgetMargin + budgetEvery).Hours()
	}
	return projected > budget, *c.USD
}

// watchBudget checks the running estimate every budgetEvery and, before it
// would pass budget, cancels the run with a *BudgetError: running steps stop
// and cleanup steps (teardown) run, as after Ctrl-C.
func (a *App) watchBudget(ctx context.Context, stop context.CancelCauseFunc, j *state.Journal, budget float64, spot *aws.SpotPrices) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(budgetEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				// Spot price history is asked for at most every
				// aws.SpotPriceRefresh; between, the loaded one stands.
				run := j.Snapshot()
				prices, _ := a.runCosts(ctx, run, spot)
				prices.Cautious = true // without a spot price, the most it may be
				if over, usd := overBudget(run, budget, now, prices); over {
					stop(&BudgetError{RunID: j.RunID(), Budget: budget, Estimate: usd})
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
