package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// Pricer knows on-demand instance prices in US dollars per hour. What prices
// are and where they come from is the AWS steps' knowledge (steps/aws); the
// command wires it in through Options.Pricer.
type Pricer interface {
	HourlyPrice(instanceType, region string) (usd float64, ok bool)
}

// Outputs of a provision step and of a teardown step that the estimate reads.
// The AWS steps write them (steps/aws/cfn).
const (
	// OutputLaunchTime is when the provisioned instance started running
	// (RFC 3339): its EC2 launch time, else the stack's CREATE_COMPLETE time.
	OutputLaunchTime = "launch_time"
	// OutputDeletedAt is when a teardown saw the stack deleted (RFC 3339).
	OutputDeletedAt = "deleted_at"
)

// Cost is the estimated cost of the instance hours of a run: from when each
// provisioned instance started running to when its stack was deleted, or to
// now while the stack still exists.
type Cost struct {
	InstanceType string  `json:"instance_type"`
	Region       string  `json:"region"`
	Hours        float64 `json:"hours"`
	// PricePerHour is 0 and USD is null when no price is known.
	PricePerHour float64  `json:"price_per_hour_usd"`
	USD          *float64 `json:"estimated_usd"`
	// Running is true when a stack still exists (its instance counted to now).
	Running bool `json:"running"`

	duration time.Duration
}

// estimateCost adds up the instance time of the run's provision steps.
// It returns nil when the run has none. A provision step that never reported
// an instance (it failed, or was never started) costs nothing: with no
// launch time there is no instance to count.
func estimateCost(run *state.Run, res Resources, prices Pricer, now time.Time) *Cost {
	if res == nil {
		return nil
	}
	var c *Cost
	for _, id := range stepOrder(run) {
		st := run.Steps[id]
		if !res.Provisions(st.Type) {
			continue
		}
		if c == nil {
			c = &Cost{}
			c.InstanceType, c.Region = res.Instance(run, st)
		}
		start, ok := launched(st)
		if !ok {
			continue
		}
		end, up := released(run, res, id, now)
		if end.After(start) {
			c.duration += end.Sub(start)
		}
		c.Running = c.Running || up
	}
	if c == nil {
		return nil
	}
	c.Hours = c.duration.Hours()
	if prices != nil {
		if p, ok := prices.HourlyPrice(c.InstanceType, c.Region); ok {
			c.PricePerHour = p
			usd := p * c.Hours
			c.USD = &usd
		}
	}
	return c
}

// launched is when a provision step's instance started running: its
// launch_time output, else (a state written before gpipe recorded it, or a
// template without one) the end of its successful attempt, which is no
// earlier than the launch.
func launched(st *state.Step) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, st.Outputs[OutputLaunchTime]); err == nil {
		return t, true
	}
	if st.Status == state.StepSucceeded {
		if end := lastEnd(st); end != nil {
			return *end, true
		}
	}
	return time.Time{}, false
}

// released is when the stack provision step id made was deleted: by `gpipe
// teardown` (Step.Released), or by a succeeded teardown step downstream of it
// (its deleted_at output, else its end). Otherwise the stack still exists and
// is counted to now.
func released(run *state.Run, res Resources, id string, now time.Time) (time.Time, bool) {
	if r := run.Steps[id].Released; r != nil {
		return *r, false
	}
	for _, tid := range stepOrder(run) {
		td := run.Steps[tid]
		if !res.Releases(td.Type) || td.Status != state.StepSucceeded || !dependsOn(run, tid, id) {
			continue
		}
		if t, err := time.Parse(time.RFC3339, td.Outputs[OutputDeletedAt]); err == nil {
			return t, false
		}
		if end := lastEnd(td); end != nil {
			return *end, false
		}
	}
	return now, true
}

// holdsResources lists the provision steps of a run whose stacks may still
// exist: the step made (or began making) a stack and nothing deleted it.
func holdsResources(run *state.Run, res Resources) []string {
	if res == nil {
		return nil
	}
	var ids []string
	for _, id := range stepOrder(run) {
		st := run.Steps[id]
		if !res.Provisions(st.Type) || !res.Made(st) {
			continue
		}
		if _, up := released(run, res, id, time.Time{}); up {
			ids = append(ids, id)
		}
	}
	return ids
}

// dependsOn reports whether step a is downstream of step b.
func dependsOn(run *state.Run, a, b string) bool {
	seen := map[string]bool{}
	stack := []string{a}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		st := run.Steps[cur]
		if st == nil {
			continue
		}
		for _, n := range st.Needs {
			if n == b {
				return true
			}
			if !seen[n] {
				seen[n] = true
				stack = append(stack, n)
			}
		}
	}
	return false
}

func lastEnd(st *state.Step) *time.Time {
	if len(st.Attempts) == 0 {
		return nil
	}
	return st.Attempts[len(st.Attempts)-1].End
}

// costSentence says what a Cost means in one line; strong wraps the total
// ("**" in Markdown, "" in a terminal).
func costSentence(c *Cost, strong string) string {
	var b strings.Builder
	if c.duration <= 0 && !c.Running {
		fmt.Fprintf(&b, "no instance ran (%s in %s)", c.InstanceType, c.Region)
		if c.USD != nil {
			fmt.Fprintf(&b, ": %s$0.00%s", strong, strong)
		}
		fmt.Fprintf(&b, ".")
		return b.String()
	}
	fmt.Fprintf(&b, "%s of %s in %s", formatDuration(c.duration), c.InstanceType, c.Region)
	if c.USD != nil {
		if usd := *c.USD; usd < 0.005 {
			// Rounded to cents it would read $0.00, as if it were free.
			fmt.Fprintf(&b, " at $%.2f/h: %sless than $0.01%s (on-demand list price, an estimate)", c.PricePerHour, strong, strong)
		} else {
			fmt.Fprintf(&b, " at $%.2f/h ≈ %s$%.2f%s (on-demand list price, an estimate)", c.PricePerHour, strong, usd, strong)
		}
	} else {
		fmt.Fprintf(&b, " (no price known for this instance type and region)")
	}
	if c.Running {
		fmt.Fprintf(&b, "; still up: its stack has not been deleted, counted to now")
	}
	fmt.Fprintf(&b, ".")
	return b.String()
}
