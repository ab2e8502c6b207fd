package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/gpipe/gpipe/internal/duration"
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
// provisioned instance started running to when its stack was deleted (or
// the instance was lost under a running step), or to now while the stack
// still exists.
type Cost struct {
	// InstanceType and Region are the first instance's (the provision
	// step's when none ran).
	InstanceType string  `json:"instance_type"`
	Region       string  `json:"region"`
	Hours        float64 `json:"hours"`
	// PricePerHour is what the instances still up cost an hour together,
	// else the last instance's price; 0 and USD null when no price is known.
	PricePerHour float64  `json:"price_per_hour_usd"`
	USD          *float64 `json:"estimated_usd"`
	// OnDemandUSD is what the same hours cost on demand; SavedUSD what the
	// run saved against it (spot), null when nothing was saved or a price
	// is unknown.
	OnDemandUSD *float64 `json:"on_demand_usd"`
	SavedUSD    *float64 `json:"saved_usd"`
	// Running is true when a stack still exists (its instance counted to now).
	Running bool `json:"running"`
	// Instances are the machines the estimate adds up, in launch order.
	Instances []InstanceCost `json:"instances"`

	duration time.Duration
}

// InstanceCost is one machine of a run's cost estimate.
type InstanceCost struct {
	Step         string    `json:"step"`
	InstanceType string    `json:"instance_type"`
	Region       string    `json:"region"`
	Zone         string    `json:"zone,omitempty"`
	Market       string    `json:"market,omitempty"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Hours        float64   `json:"hours"`
	Running      bool      `json:"running"`
	// Lost: the machine was lost under a running step (a host loss) at End.
	Lost         bool     `json:"lost"`
	PricePerHour float64  `json:"price_per_hour_usd"`
	PriceBasis   string   `json:"price_basis,omitempty"`
	USD          *float64 `json:"estimated_usd"`
	OnDemandUSD  *float64 `json:"on_demand_usd"`
	Note         string   `json:"note,omitempty"`

	duration time.Duration
}

// basisOnDemand is the price basis of a Pricer without UsagePricer.
const basisOnDemand = "on-demand list price"

// estimateCost adds up the instance time of the run's machines (Usages).
// It returns nil when the run has no provision step. A provision step that
// never reported an instance (it failed, or was never started) costs
// nothing: with no launch time there is no instance to count.
func estimateCost(run *state.Run, opt Options) *Cost {
	res := opt.Resources
	if res == nil {
		return nil
	}
	var c *Cost
	for _, id := range stepOrder(run) {
		if st := run.Steps[id]; res.Provisions(st.Type) {
			c = &Cost{Instances: []InstanceCost{}}
			c.InstanceType, c.Region = res.Instance(run, st)
			break
		}
	}
	if c == nil {
		return nil
	}
	usd, od := 0.0, 0.0
	usdKnown, odKnown := opt.Pricer != nil, opt.Pricer != nil
	for i, u := range Usages(run, opt) {
		ic := priceUsage(u, opt.Pricer)
		if i == 0 {
			c.InstanceType, c.Region = ic.InstanceType, ic.Region
		}
		c.duration += ic.duration
		c.Running = c.Running || ic.Running
		if ic.USD == nil {
			usdKnown = false
		} else {
			usd += *ic.USD
		}
		if ic.OnDemandUSD == nil {
			odKnown = false
		} else {
			od += *ic.OnDemandUSD
		}
		c.Instances = append(c.Instances, ic)
	}
	c.Hours = c.duration.Hours()
	if !usdKnown {
		return c
	}
	c.USD = &usd
	// The hourly price a budget projects forward: the machines still up,
	// else (for the sentence) the last one.
	for _, ic := range c.Instances {
		if ic.Running {
			c.PricePerHour += ic.PricePerHour
		}
	}
	if n := len(c.Instances); c.PricePerHour == 0 && n > 0 {
		c.PricePerHour = c.Instances[n-1].PricePerHour
	} else if n == 0 {
		c.PricePerHour, _ = opt.Pricer.HourlyPrice(c.InstanceType, c.Region)
	}
	if odKnown {
		c.OnDemandUSD = &od
		if saved := od - usd; saved >= 0.005 {
			c.SavedUSD = &saved
		}
	}
	return c
}

// priceUsage prices one usage: by the pricer's UsagePricer, else at its
// on-demand HourlyPrice.
func priceUsage(u Usage, prices Pricer) InstanceCost {
	ic := InstanceCost{Step: u.Step, InstanceType: u.InstanceType, Region: u.Region, Start: u.Start, End: u.End,
		Running: u.Running, Lost: u.Lost != nil, duration: u.End.Sub(u.Start)}
	ic.Hours = ic.duration.Hours()
	if prices == nil {
		return ic
	}
	if up, ok := prices.(UsagePricer); ok {
		if p, ok := up.PriceUsage(u); ok {
			usd := p.USD
			ic.Market, ic.Zone, ic.PricePerHour, ic.PriceBasis, ic.USD, ic.OnDemandUSD, ic.Note =
				p.Market, p.Zone, p.PricePerHour, p.Basis, &usd, p.OnDemandUSD, p.Note
		}
		return ic
	}
	if p, ok := prices.HourlyPrice(u.InstanceType, u.Region); ok {
		usd := p * ic.Hours
		ic.PricePerHour, ic.PriceBasis, ic.USD, ic.OnDemandUSD = p, basisOnDemand, &usd, &usd
	}
	return ic
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
// ("**" in Markdown, "" in a terminal). A run of several machines, or of
// one not priced on demand, gets its total here and a line per machine
// from instanceLines.
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
	if !c.simple() {
		return manySentence(c, strong)
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

// simple: at most one machine, priced at the on-demand list price with no
// billing rule applied; one sentence says it all.
func (c *Cost) simple() bool {
	if len(c.Instances) > 1 {
		return false
	}
	for _, ic := range c.Instances {
		if ic.Note != "" || ic.Lost || ic.PriceBasis != "" && ic.PriceBasis != basisOnDemand {
			return false
		}
	}
	return true
}

// manySentence is the total of a run with several machines (host losses
// replaced some) or spot prices, against what on demand would have cost.
func manySentence(c *Cost, strong string) string {
	var b strings.Builder
	n := len(c.Instances)
	word := "instances"
	if n == 1 {
		word = "instance"
	}
	fmt.Fprintf(&b, "%d %s, %s in all", n, word, formatDuration(c.duration))
	if c.USD != nil {
		fmt.Fprintf(&b, " ≈ %s%s%s", strong, dollars(*c.USD), strong)
		if od := c.OnDemandUSD; od != nil {
			fmt.Fprintf(&b, " against %s on demand", dollars(*od))
			if sv := c.SavedUSD; sv != nil && *od > 0 {
				fmt.Fprintf(&b, ", saved ≈ %s%s%s (%.0f%%)", strong, dollars(*sv), strong, *sv / *od * 100)
			}
		}
		b.WriteString(", an estimate")
	} else {
		b.WriteString(" (no price known for some of them)")
	}
	if c.Running {
		b.WriteString("; still up: a stack has not been deleted, counted to now")
	}
	b.WriteString(":")
	return b.String()
}

// instanceLines are the machines of a cost that is not simple, one line
// each; none for a simple one.
func instanceLines(c *Cost) []string {
	if c.simple() {
		return nil
	}
	lines := make([]string, 0, len(c.Instances))
	for _, ic := range c.Instances {
		lines = append(lines, instanceLine(ic))
	}
	return lines
}

// instanceLine says what one machine ran and cost: "provision: dl1.24xlarge
// spot in us-east-1a from 09:00:00 UTC, 4m0s at $3.93/h (spot price history)
// ≈ $0.26; lost under a running step".
func instanceLine(ic InstanceCost) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", ic.Step, ic.InstanceType)
	if ic.Market != "" {
		b.WriteString(" " + ic.Market)
	}
	where := ic.Zone
	if where == "" {
		where = ic.Region
	}
	fmt.Fprintf(&b, " in %s from %s, %s", where, ic.Start.UTC().Format("15:04:05 UTC"), duration.Format(ic.duration))
	if ic.USD != nil {
		fmt.Fprintf(&b, " at $%.2f/h", ic.PricePerHour)
		if ic.PriceBasis != "" {
			fmt.Fprintf(&b, " (%s)", ic.PriceBasis)
		}
		fmt.Fprintf(&b, " ≈ %s", dollars(*ic.USD))
		if od := ic.OnDemandUSD; od != nil && *od-*ic.USD >= 0.005 {
			fmt.Fprintf(&b, ", %s on demand", dollars(*od))
		}
	} else {
		b.WriteString(" (no price known)")
	}
	if ic.Lost {
		b.WriteString("; lost under a running step")
	}
	if ic.Running {
		b.WriteString("; still up")
	}
	if ic.Note != "" {
		b.WriteString("; " + ic.Note)
	}
	return b.String()
}

// dollars prints an amount to the cent; a positive amount under half a
// cent reads "less than $0.01", not "$0.00" as if it were free.
func dollars(usd float64) string {
	if usd > 0 && usd < 0.005 {
		return "less than $0.01"
	}
	return fmt.Sprintf("$%.2f", usd)
}
