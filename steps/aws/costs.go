package aws

import (
	"fmt"
	"time"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// Costs prices a run's instance time for reports and budgets: on-demand
// instances at the list price, spot instances at their zone's spot price
// history, or, when EC2 gave none, at an assumed discount that reports
// call an assumption. It implements report.Pricer and report.UsagePricer.
type Costs struct {
	OnDemand Prices
	// Spot is the loaded spot price history; nil assumes every spot price.
	Spot *SpotPrices
	// AssumedSpotDiscount is the fraction of the on-demand price a spot
	// instance without price history is assumed to save.
	AssumedSpotDiscount float64
	// Cautious takes a spot price it would have to assume as the on-demand
	// price, the most a spot instance costs without a max_price: a budget
	// must not undercount.
	Cautious bool
}

// NewCosts prices with the default list prices, spot's history and the
// typical discount.
func NewCosts(spot *SpotPrices) Costs {
	return Costs{OnDemand: DefaultPrices(), Spot: spot, AssumedSpotDiscount: TypicalSpotDiscount}
}

// HourlyPrice is the on-demand price.
func (c Costs) HourlyPrice(instanceType, region string) (float64, bool) {
	return c.OnDemand.HourlyPrice(instanceType, region)
}

// Price bases, as reports say them.
const (
	basisOnDemand = "on-demand list price"
	basisHistory  = "EC2 spot price history"
)

// PriceUsage prices one instance's time. A spot instance that EC2
// interrupted in its first hour is not charged: "If Amazon EC2 interrupts
// your Spot Instance in the first hour, before a full hour of running
// time, you're not charged for the partial hour used" (EC2 User Guide,
// "Billing for interrupted Spot Instances", for Linux); interrupted later
// it is charged for the seconds it ran, like any other.
func (c Costs) PriceUsage(u report.Usage) (report.UsagePrice, bool) {
	od, odOK := c.OnDemand.HourlyPrice(u.InstanceType, u.Region)
	hours := u.End.Sub(u.Start).Hours()
	p := report.UsagePrice{Market: u.Outputs[outputMarket], Zone: u.Outputs[outputZone]}
	if odOK {
		usd := od * hours
		p.OnDemandUSD = &usd
	}
	if p.Market != cfn.MarketSpot {
		if !odOK {
			return p, false
		}
		p.PricePerHour, p.Basis, p.USD = od, basisOnDemand, od*hours
		return p, true
	}
	switch avg, ok := c.history(u); {
	case ok:
		p.PricePerHour, p.Basis = avg, basisHistory
	case odOK && c.Cautious:
		p.PricePerHour, p.Basis = od, "on-demand price, the most it may cost: no spot price history"
	case odOK:
		p.PricePerHour = od * (1 - c.AssumedSpotDiscount)
		p.Basis = fmt.Sprintf("assumed: %.0f%% of on-demand, no spot price history", (1-c.AssumedSpotDiscount)*100)
	default:
		return p, false
	}
	p.USD = p.PricePerHour * hours
	if u.Lost != nil && ec2Interrupted(u.Lost.Cause) && u.End.Sub(u.Start) < time.Hour {
		p.USD, p.Note = 0, "interrupted by EC2 in its first hour: not charged"
	}
	return p, true
}

// history is the usage's average spot price, from the loaded history of
// its zone.
func (c Costs) history(u report.Usage) (float64, bool) {
	zone := u.Outputs[outputZone]
	if c.Spot == nil || zone == "" {
		return 0, false
	}
	return c.Spot.Average(u.Region, zone, u.InstanceType, u.Start, u.End)
}
