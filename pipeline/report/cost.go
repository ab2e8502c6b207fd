package report

import (
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// DefaultInstanceType is the instance type the provision-stack step launches
// when the spec does not say (see the schema's default).
const DefaultInstanceType = "dl1.24xlarge"

// DefaultRegion is assumed when neither the step outputs nor the params name one.
const DefaultRegion = "us-east-1"

// PriceKey selects an on-demand price.
type PriceKey struct {
	InstanceType string
	Region       string
}

// Prices is an on-demand price table in US dollars per instance hour.
type Prices map[PriceKey]float64

// DefaultPrices returns documented estimates: AWS's published Linux
// on-demand list prices (rounded to the cent where the list has more digits;
// dl1.24xlarge is $13.10904/h in us-east-1). Prices change and differ by
// region and purchase option (spot, savings plans), so reports call the result
// an estimate; callers can pass their own table in Options.Prices.
func DefaultPrices() Prices {
	return Prices{
		{"dl1.24xlarge", "us-east-1"}:  13.11,
		{"dl1.24xlarge", "us-west-2"}:  13.11,
		{"dl2q.24xlarge", "us-west-2"}: 8.92,
		{"trn1.2xlarge", "us-east-1"}:  1.34,
		{"trn1.32xlarge", "us-east-1"}: 21.50,
		{"p4d.24xlarge", "us-east-1"}:  32.77,
		{"p3.2xlarge", "us-east-1"}:    3.06,
		{"g5.xlarge", "us-east-1"}:     1.006,
		{"g4dn.xlarge", "us-east-1"}:   0.526,
	}
}

// Cost is the estimated cost of the instance hours of a run: from the start
// of each provision-stack step to the end of the teardown after it, or to now
// while the instance still exists.
type Cost struct {
	InstanceType string  `json:"instance_type"`
	Region       string  `json:"region"`
	Hours        float64 `json:"hours"`
	// PricePerHour is 0 and USD is null when the price table has no entry.
	PricePerHour float64  `json:"price_per_hour_usd"`
	USD          *float64 `json:"estimated_usd"`
	// Running is true when an instance is still up (counted to now).
	Running bool `json:"running"`
}

// Step type names the cost estimate looks for.
const (
	provisionType = "provision-stack"
	teardownType  = "teardown"
)

// estimateCost finds provision-stack steps and the teardown steps downstream
// of them. It returns nil when the run provisioned nothing.
func estimateCost(run *state.Run, prices Prices, now time.Time) *Cost {
	var c *Cost
	for _, id := range stepOrder(run) {
		st := run.Steps[id]
		if st.Type != provisionType || len(st.Attempts) == 0 {
			continue
		}
		start := st.Attempts[0].Start
		end, running := instanceEnd(run, id, now)
		if c == nil {
			c = &Cost{
				InstanceType: pick(st.Outputs["instance_type"], run.Params["instance_type"], DefaultInstanceType),
				Region:       pick(st.Outputs["region"], run.Params["region"], DefaultRegion),
			}
		}
		if end.After(start) {
			c.Hours += end.Sub(start).Hours()
		}
		c.Running = c.Running || running
	}
	if c == nil {
		return nil
	}
	if p, ok := prices[PriceKey{c.InstanceType, c.Region}]; ok {
		c.PricePerHour = p
		usd := p * c.Hours
		c.USD = &usd
	}
	return c
}

// instanceEnd is when the stack that provision step id created went away: the
// end of a succeeded teardown downstream of it. A provision step that failed
// without any teardown is assumed to have rolled back at its own end. Anything
// else is still running, counted to now.
func instanceEnd(run *state.Run, id string, now time.Time) (time.Time, bool) {
	for _, tid := range stepOrder(run) {
		td := run.Steps[tid]
		if td.Type != teardownType || td.Status != state.StepSucceeded || !dependsOn(run, tid, id) {
			continue
		}
		if end := lastEnd(td); end != nil {
			return *end, false
		}
	}
	prov := run.Steps[id]
	if prov.Status == state.StepFailed {
		if end := lastEnd(prov); end != nil && !hasTeardown(run, id) {
			return *end, false
		}
	}
	return now, true
}

func hasTeardown(run *state.Run, id string) bool {
	for tid, td := range run.Steps {
		if td.Type == teardownType && dependsOn(run, tid, id) && len(td.Attempts) > 0 {
			return true
		}
	}
	return false
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

func pick(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
