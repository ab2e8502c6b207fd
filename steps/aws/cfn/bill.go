package cfn

import (
	"time"
)

// Bill is what a provision-stack step will be billed for, known before it
// runs: `gpipe plan` and `gpipe run` show it, and budgets use its price.
type Bill struct {
	InstanceType string
	Region       string
	PricePerHour float64
	Priced       bool // false: no price known for the type in the region
	MaxLifetime  time.Duration
	IdleTimeout  time.Duration
}

// Bill reads the step's with values (expressions resolved) the way Run does;
// region falls back to defaultRegion (the SDK's configured one) when with
// has none.
func (p *Provision) Bill(with map[string]any, defaultRegion string) (Bill, error) {
	b := Bill{}
	var err error
	if b.InstanceType, err = str(with, "instance_type"); err != nil {
		return b, err
	}
	if b.InstanceType == "" {
		b.InstanceType = DefaultInstanceType
	}
	if b.Region, err = str(with, "region"); err != nil {
		return b, err
	}
	if b.Region == "" {
		b.Region = defaultRegion
	}
	if b.MaxLifetime, err = duration(with, "max_lifetime", DefaultMaxLifetime); err != nil {
		return b, err
	}
	if b.IdleTimeout, err = duration(with, "idle_timeout", DefaultIdleTimeout); err != nil {
		return b, err
	}
	if p.Prices != nil {
		b.PricePerHour, b.Priced = p.Prices(b.InstanceType, b.Region)
	}
	return b, nil
}
