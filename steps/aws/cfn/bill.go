package cfn

import (
	"fmt"
	"time"
)

// Bill is what a provision-stack step will be billed for, known before it
// runs: `gpipe plan` and `gpipe run` show it, and budgets use its price.
type Bill struct {
	InstanceType string // the first type provision tries
	Region       string
	// PricePerHour is the expected price of InstanceType: on demand, or for
	// spot the estimate SpotBasis describes.
	PricePerHour float64
	Priced       bool // false: no price known for the type in the region
	Market       string
	// OnDemandPerHour is InstanceType's on-demand price (what spot saves
	// against); SpotBasis says where a spot price came from.
	OnDemandPerHour float64
	SpotBasis       string
	// WorstPerHour is the most an hour can cost whatever provision falls
	// back to: the dearest listed type, at the on-demand price unless a spot
	// max_price without fallback caps it.
	WorstPerHour float64
	// Fallback names what provision may fall back to ("on-demand"), for the
	// plan to say why the worst case is not the spot price.
	Fallback    string
	MaxLifetime time.Duration
	IdleTimeout time.Duration
}

// Bill reads the step's with values (expressions resolved) the way Run does;
// region falls back to defaultRegion (the SDK's configured one) when with
// has none.
func (p *Provision) Bill(with map[string]any, defaultRegion string) (Bill, error) {
	b := Bill{}
	c, err := decodeProvisionWith(with)
	if err != nil {
		return b, err
	}
	pl := newPlacer(c)
	b.InstanceType, b.Market = pl.types[0], pl.markets[0]
	if len(pl.markets) > 1 {
		b.Fallback = pl.markets[1]
	}
	b.Region = c.Region
	if b.Region == "" {
		b.Region = defaultRegion
	}
	b.MaxLifetime, b.IdleTimeout = c.MaxLifetime, c.IdleTimeout
	if p.Prices == nil {
		return b, nil
	}
	b.OnDemandPerHour, b.Priced = p.Prices(b.InstanceType, b.Region)
	if !b.Priced {
		return b, nil
	}
	b.PricePerHour = b.OnDemandPerHour
	if b.Market == MarketSpot {
		switch {
		case c.SpotPrice > 0:
			b.PricePerHour, b.SpotBasis = c.SpotPrice, "with.spot_price"
		default:
			b.PricePerHour = b.OnDemandPerHour * (1 - p.SpotDiscount)
			b.SpotBasis = fmt.Sprintf("on-demand less a typical %.0f%% spot discount", p.SpotDiscount*100)
		}
	}
	// The worst hour: any listed type, at what EC2 may charge for it. A spot
	// instance never costs more than its maximum price (default: on demand).
	for _, typ := range pl.types {
		od, ok := p.Prices(typ, b.Region)
		if !ok {
			b.Priced = false // a type without a price makes the worst case unknown
			return b, nil
		}
		worst := od
		if b.Market == MarketSpot && b.Fallback == "" && c.MaxPrice > 0 {
			worst = c.MaxPrice
		}
		b.WorstPerHour = max(b.WorstPerHour, worst)
	}
	return b, nil
}
