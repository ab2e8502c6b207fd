package aws

import (
	"math"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
)

// spotUsage is a spot dl1.24xlarge's time in a zone, from a minutes to b
// minutes after wireBase.
func spotUsage(zone string, a, b float64) report.Usage {
	at := func(m float64) time.Time { return wireBase.Add(time.Duration(m * float64(time.Minute))) }
	return report.Usage{Step: "provision", InstanceType: "dl1.24xlarge", Region: "us-east-1", Start: at(a), End: at(b),
		Outputs: map[string]string{"market_type": "spot", "availability_zone": zone}}
}

// TestWireSpotPriceHistory: the cost of a spot instance is the time-weighted
// average of its zone's spot price history (DescribeSpotPriceHistory
// through the SDK against the fake, which serves it per the EC2 API
// Reference: the changes in the range plus the last one before it, most
// recent first, in pages), asked once per zone and type and then not again
// for SpotPriceRefresh.
func TestWireSpotPriceHistory(t *testing.T) {
	e := newWire(t, 0)
	ec2 := e.srv.EC2
	ec2.SpotPriceChange("dl1.24xlarge", "us-east-1a", wireBase.Add(-3*time.Hour), 4.00) // in effect at the start
	ec2.SpotPriceChange("dl1.24xlarge", "us-east-1a", wireBase.Add(-30*time.Minute), 3.00)
	ec2.SpotPriceChange("dl1.24xlarge", "us-east-1a", wireBase.Add(-4*time.Hour), 9.00) // superseded before the start
	ec2.SpotPriceChange("dl1.24xlarge", "us-east-1b", wireBase.Add(-2*time.Hour), 5.00)
	ec2.SpotPriceChange("trn1.32xlarge", "us-east-1a", wireBase.Add(-2*time.Hour), 7.00)
	sp := e.runner().SpotPrices()
	sp.Now = e.clock.Now
	usages := []report.Usage{spotUsage("us-east-1a", -60, 0), spotUsage("us-east-1a", -45, -15), spotUsage("us-east-1b", -60, 0)}
	if err := sp.Load(t.Context(), usages); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Calls("EC2.DescribeSpotPriceHistory"); n != 2 {
		t.Errorf("%d DescribeSpotPriceHistory calls, want one per zone", n)
	}
	for _, tt := range []struct {
		zone string
		a, b float64
		want float64
	}{
		{"us-east-1a", -60, 0, 3.50}, // half an hour at 4.00, half at 3.00
		{"us-east-1a", -45, -15, 3.50},
		{"us-east-1a", -20, -20, 3.00},
		{"us-east-1b", -60, 0, 5.00},
	} {
		u := spotUsage(tt.zone, tt.a, tt.b)
		got, ok := sp.Average(u.Region, tt.zone, u.InstanceType, u.Start, u.End)
		if !ok || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s %v..%v: %v %v, want %v", tt.zone, tt.a, tt.b, got, ok, tt.want)
		}
	}
	// Within SpotPriceRefresh nothing is asked again; after it, it is.
	e.clock.Sleep(t.Context(), SpotPriceRefresh-time.Second)
	_ = sp.Load(t.Context(), usages)
	if n := e.srv.Calls("EC2.DescribeSpotPriceHistory"); n != 2 {
		t.Errorf("asked again within %v: %d calls", SpotPriceRefresh, n)
	}
	e.clock.Sleep(t.Context(), 2*time.Second)
	_ = sp.Load(t.Context(), usages)
	if n := e.srv.Calls("EC2.DescribeSpotPriceHistory"); n != 4 {
		t.Errorf("not asked again after %v: %d calls", SpotPriceRefresh, n)
	}
	// A zone without history: Load says so, and the cost assumes a price.
	if err := sp.Load(t.Context(), []report.Usage{spotUsage("us-east-1c", -10, 0)}); err == nil || !strings.Contains(err.Error(), "no spot price") {
		t.Errorf("zone without history: %v", err)
	}
}

// TestWireSpotPriceHistoryPages: a history longer than a page is read to
// its end (NextToken).
func TestWireSpotPriceHistoryPages(t *testing.T) {
	e := newWire(t, 0)
	// One change a minute for 1,500 minutes: two pages of EC2's 1,000, newest
	// first. The oldest 500 minutes cost 4, the rest 1 and 2 in turn, so the
	// average tells whether the second page was read.
	for m := range 1500 {
		usd := float64(m%2) + 1
		if m < 500 {
			usd = 4
		}
		e.srv.EC2.SpotPriceChange("dl1.24xlarge", "us-east-1a", wireBase.Add(time.Duration(m-1500)*time.Minute), usd)
	}
	sp := e.runner().SpotPrices()
	sp.Now = e.clock.Now
	if err := sp.Load(t.Context(), []report.Usage{spotUsage("us-east-1a", -1500, 0)}); err != nil {
		t.Fatal(err)
	}
	// At least the two pages: the SDK may retry one after a transport error
	// (seen here once in ten runs: "use of closed network connection" while
	// reading a 1,000-item page from the fake), and a retry is not a page.
	if n := e.srv.Calls("EC2.DescribeSpotPriceHistory"); n < 2 {
		t.Errorf("%d calls, want 2 pages", n)
	}
	u := spotUsage("us-east-1a", -1500, 0)
	if got, _ := sp.Average(u.Region, "us-east-1a", u.InstanceType, u.Start, u.End); math.Abs(got-7.0/3) > 1e-9 {
		t.Errorf("average %v, want 7/3 (500 minutes at 4, 1,000 at 1 and 2 in turn)", got)
	}
}

// TestCostsPriceUsage: on-demand instances at the list price; spot ones at
// their zone's history, else at the assumed discount, labelled so; a spot
// instance EC2 interrupted in its first hour costs nothing (EC2 User
// Guide, "Billing for interrupted Spot Instances"), one interrupted later
// or stopped by its user is charged for the time it ran.
func TestCostsPriceUsage(t *testing.T) {
	e := newWire(t, 0)
	e.srv.EC2.SpotPriceChange("dl1.24xlarge", "us-east-1a", wireBase.Add(-3*time.Hour), 3.93)
	sp := e.runner().SpotPrices()
	sp.Now = e.clock.Now
	costs := NewCosts(sp)
	lost := func(u report.Usage, cause string) report.Usage {
		u.Lost = &state.HostLoss{Cause: cause}
		return u
	}
	onDemand := spotUsage("us-east-1a", -90, 0)
	onDemand.Outputs = map[string]string{"market_type": "on-demand", "availability_zone": "us-east-1a"}
	notice := "host box (ssm:i-1) lost in us-east-1a: spot interruption notice"
	tests := []struct {
		name  string
		u     report.Usage
		usd   float64
		basis string
		note  string
	}{
		{"on demand", onDemand, 13.11 * 1.5, "on-demand list price", ""},
		{"spot, history", spotUsage("us-east-1a", -90, 0), 3.93 * 1.5, "EC2 spot price history", ""},
		{"spot, no history", spotUsage("us-east-1b", -90, 0), 13.11 * 0.5 * 1.5, "assumed: 50% of on-demand, no spot price history", ""},
		{"interrupted in the first hour", lost(spotUsage("us-east-1a", -59, 0), notice), 0, "EC2 spot price history", "interrupted by EC2 in its first hour: not charged"},
		{"interrupted later", lost(spotUsage("us-east-1a", -90, 0), notice), 3.93 * 1.5, "EC2 spot price history", ""},
		{"terminated by its user", lost(spotUsage("us-east-1a", -30, 0), "instance i-1 is terminated (Client.UserInitiatedShutdown: User initiated shutdown)"),
			3.93 * 0.5, "EC2 spot price history", ""},
	}
	var all []report.Usage
	for _, tt := range tests {
		all = append(all, tt.u)
	}
	_ = sp.Load(t.Context(), all) // us-east-1b has no history
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := costs.PriceUsage(tt.u)
			if !ok || math.Abs(p.USD-tt.usd) > 1e-9 || p.Basis != tt.basis || p.Note != tt.note {
				t.Errorf("got %+v %v, want $%v (%s) %q", p, ok, tt.usd, tt.basis, tt.note)
			}
			if od := 13.11 * tt.u.End.Sub(tt.u.Start).Hours(); p.OnDemandUSD == nil || math.Abs(*p.OnDemandUSD-od) > 1e-9 {
				t.Errorf("on demand %v, want %v", p.OnDemandUSD, od)
			}
		})
	}
	// A budget assumes nothing: without history a spot hour may cost what
	// an on-demand one does.
	costs.Cautious = true
	if p, _ := costs.PriceUsage(spotUsage("us-east-1b", -90, 0)); math.Abs(p.USD-13.11*1.5) > 1e-9 || !strings.HasPrefix(p.Basis, "on-demand price") {
		t.Errorf("cautious, no history: %+v", p)
	}
	if p, _ := costs.PriceUsage(spotUsage("us-east-1a", -90, 0)); math.Abs(p.USD-3.93*1.5) > 1e-9 {
		t.Errorf("cautious, history: %+v", p)
	}
}

// TestWireSpotPriceHistoryRefuses: the fake answers DescribeSpotPriceHistory
// requests EC2 refuses as EC2 does (EC2 API Reference,
// DescribeSpotPriceHistory: MaxResults 1–1000, the documented filter
// names), and with a start and end time lists the price in effect at the
// start too.
func TestWireSpotPriceHistoryRefuses(t *testing.T) {
	e := newWire(t, 0)
	e.srv.EC2.SpotPriceChange("dl1.24xlarge", "us-east-1a", wireBase.Add(-2*time.Hour), 4.00)
	e.srv.EC2.SpotPriceChange("dl1.24xlarge", "us-east-1a", wireBase.Add(-time.Hour), 3.00)
	e.srv.EC2.SpotPriceChange("dl1.24xlarge", "us-east-1a", wireBase.Add(-10*time.Minute), 5.00)
	cl, err := e.runner().Clients(t.Context(), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	api := cl.EC2.(SpotPriceAPI)
	start, end := wireBase.Add(-90*time.Minute), wireBase.Add(-30*time.Minute)
	out, err := api.DescribeSpotPriceHistory(t.Context(), &ec2.DescribeSpotPriceHistoryInput{StartTime: &start, EndTime: &end})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range out.SpotPriceHistory {
		got = append(got, sdkaws.ToString(p.SpotPrice)+"@"+p.Timestamp.Sub(wireBase).String())
	}
	if want := "3.000000@-1h0m0s 4.000000@-2h0m0s"; strings.Join(got, " ") != want {
		t.Errorf("history %v, want %s (in range, then the price in effect at the start)", got, want)
	}
	for name, in := range map[string]*ec2.DescribeSpotPriceHistoryInput{
		"MaxResults 0": {MaxResults: sdkaws.Int32(0)},
		"bogus filter": {Filters: []ec2types.Filter{{Name: sdkaws.String("bogus"), Values: []string{"x"}}}},
	} {
		if _, err := api.DescribeSpotPriceHistory(t.Context(), in); err == nil || !strings.Contains(err.Error(), "InvalidParameterValue") {
			t.Errorf("%s: %v, want InvalidParameterValue", name, err)
		}
	}
}
