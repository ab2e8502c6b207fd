package plan

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gpipe/gpipe/internal/duration"
)

// Charge is what a billable step (one that starts an instance) may cost, as
// `gpipe plan` and `gpipe run` show it before anything starts. The step types
// that know prices fill it in (steps/aws); the plan only shows it.
type Charge struct {
	Step         string `json:"step"`
	InstanceType string `json:"instance_type"`
	Region       string `json:"region,omitempty"`
	// PricePerHour is the expected price, nil when no price is known. For a
	// spot market it is an estimate (SpotBasis says how it was made) and
	// OnDemandPerHour is the on-demand price it saves against.
	PricePerHour    *float64 `json:"price_per_hour_usd"`
	Market          string   `json:"market,omitempty"`
	OnDemandPerHour *float64 `json:"on_demand_price_per_hour_usd,omitempty"`
	SpotBasis       string   `json:"spot_price_basis,omitempty"`
	// Fallback is the market the step may fall back to; WorstPerHour the
	// most an hour may cost whatever it falls back to.
	Fallback     string   `json:"fallback,omitempty"`
	WorstPerHour *float64 `json:"worst_case_price_per_hour_usd,omitempty"`
	// MaxLifetime bounds the instance's life whatever happens: it shuts
	// itself down then. IdleTimeout: it shuts down once no step has run on
	// it this long (0: off).
	MaxLifetime time.Duration `json:"-"`
	IdleTimeout time.Duration `json:"-"`
	// Timeout is the billable step's own; ChainTimeout the sum of the
	// timeouts along the longest chain of steps after it, 0 when a step on
	// that chain has none (unbounded).
	Timeout      time.Duration `json:"-"`
	ChainTimeout time.Duration `json:"-"`
	// WorstCaseUSD is MaxLifetime hours at WorstPerHour (else at
	// PricePerHour); nil without a price.
	WorstCaseUSD *float64 `json:"worst_case_usd"`

	// The durations in JSON, in seconds.
	MaxLifetimeSeconds  float64 `json:"max_lifetime_seconds"`
	IdleTimeoutSeconds  float64 `json:"idle_timeout_seconds"`
	TimeoutSeconds      float64 `json:"timeout_seconds"`
	ChainTimeoutSeconds float64 `json:"chain_timeout_seconds"`
}

// SetCharges records what the plan's billable steps may cost, for Render.
func (p *Plan) SetCharges(cs []Charge) {
	p.charges = make([]Charge, len(cs))
	for i, c := range cs {
		c.MaxLifetimeSeconds = c.MaxLifetime.Seconds()
		c.IdleTimeoutSeconds = c.IdleTimeout.Seconds()
		c.TimeoutSeconds = c.Timeout.Seconds()
		c.ChainTimeoutSeconds = c.ChainTimeout.Seconds()
		p.charges[i] = c
	}
}

// Charges returns what SetCharges recorded.
func (p *Plan) Charges() []Charge { return p.charges }

// ChainTimeout is the sum of the step timeouts along the longest chain of
// steps downstream of id (id itself excluded), 0 when a step on some chain
// has no timeout: then nothing bounds the chain but the instance's own guards.
func (p *Plan) ChainTimeout(id string) time.Duration {
	down := map[string]bool{}
	for _, d := range p.graph.Descendants(id) {
		down[d] = true
	}
	longest := map[string]time.Duration{} // chain ending at the step
	var worst time.Duration
	for _, s := range p.Steps { // topological order
		if !down[s.ID] {
			continue
		}
		t := s.Spec.Timeout
		if t <= 0 {
			return 0
		}
		var before time.Duration
		for _, n := range s.Needs {
			before = max(before, longest[n])
		}
		longest[s.ID] = before + t
		worst = max(worst, longest[s.ID])
	}
	return worst
}

// WriteCharges prints charges for a terminal, one line per billable step.
func WriteCharges(w io.Writer, cs []Charge) error {
	if len(cs) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("\nBillable steps (list prices, estimates):\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "  %s: %s", c.Step, c.InstanceType)
		if c.Region != "" {
			fmt.Fprintf(&b, " in %s", c.Region)
		}
		switch {
		case c.PricePerHour == nil:
			b.WriteString(" (no price known)")
		case c.Market == "spot":
			fmt.Fprintf(&b, " spot at ~$%.2f/h (%s", *c.PricePerHour, c.SpotBasis)
			if c.OnDemandPerHour != nil {
				fmt.Fprintf(&b, "; on-demand $%.2f/h", *c.OnDemandPerHour)
			}
			b.WriteString(")")
			if c.Fallback != "" {
				fmt.Fprintf(&b, ", falls back to %s", c.Fallback)
			}
		default:
			fmt.Fprintf(&b, " at $%.2f/h", *c.PricePerHour)
		}
		fmt.Fprintf(&b, "; max_lifetime %s", duration.Format(c.MaxLifetime))
		if c.IdleTimeout > 0 {
			fmt.Fprintf(&b, ", idle_timeout %s", duration.Format(c.IdleTimeout))
		} else {
			b.WriteString(", no idle_timeout")
		}
		if c.Timeout > 0 {
			fmt.Fprintf(&b, ", timeout %s", duration.Format(c.Timeout))
		} else {
			b.WriteString(", no timeout")
		}
		if c.ChainTimeout > 0 {
			fmt.Fprintf(&b, ", steps after it time out within %s", duration.Format(c.ChainTimeout))
		} else {
			b.WriteString(", a step after it has no timeout")
		}
		if c.WorstCaseUSD != nil {
			fmt.Fprintf(&b, "\n    worst case $%.2f (the instance runs its whole max_lifetime", *c.WorstCaseUSD)
			if c.WorstPerHour != nil && (c.PricePerHour == nil || *c.WorstPerHour != *c.PricePerHour) {
				fmt.Fprintf(&b, " at $%.2f/h, the most it may be charged", *c.WorstPerHour)
			}
			b.WriteString(")")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
