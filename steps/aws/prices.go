package aws

// Prices are on-demand prices of the instance types gpipe's specs launch, in
// US dollars per instance hour. They implement report.Pricer (and plan
// bills), so that what AWS charges stays with the AWS steps.
type Prices map[PriceKey]float64

// PriceKey selects an on-demand price.
type PriceKey struct {
	InstanceType string
	Region       string
}

// HourlyPrice returns the price of an instance type in a region, if known.
func (p Prices) HourlyPrice(instanceType, region string) (float64, bool) {
	v, ok := p[PriceKey{instanceType, region}]
	return v, ok
}

// DefaultPrices returns AWS's published Linux on-demand list prices (rounded
// to the cent where the list has more digits; dl1.24xlarge is $13.10904/h in
// us-east-1). Prices change and differ by region and purchase option (spot,
// savings plans), so reports call the result an estimate.
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

// TypicalSpotDiscount is what the cost estimate assumes a spot instance saves
// against on demand when a step gives no spot_price. Spot prices move with
// supply and demand, hourly and per zone; AWS documents savings of "up to
// 90%" (EC2 User Guide, "Spot Instances") and publishes per-type averages in
// its Spot Instance Advisor. gpipe assumes half, a conservative middle:
// estimates only, and the plan's worst case never relies on it.
const TypicalSpotDiscount = 0.5
