//go:build unix

package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// spotPrice1a is the spot price wantSpotCost gives dl1.24xlarge in
// us-east-1a; us-east-1b gets no history, so its instance is priced at the
// assumed discount.
const spotPrice1a = 3.93

// wantSpotCost checks what a run interrupted twice (runSpotInterrupted)
// reports: the end-of-run summary lists both losses, and `gpipe report`
// and `gpipe status` price the three instances — the two lost ones, which
// EC2 interrupted within their first hour, at nothing, the last one at its
// zone's spot price history (DescribeSpotPriceHistory of the fake) — and
// say what on demand would have cost and what spot saved.
func wantSpotCost(t *testing.T, c *awsCLI, res gpipeResult) {
	t.Helper()
	if !strings.Contains(res.stderr, "losses: 2 host losses") || !strings.Contains(res.stderr, "train (attempt 1) lost host box") {
		t.Errorf("the end-of-run summary does not list the host losses:\n%s", res.stderr)
	}
	c.aws.EC2.SpotPriceChange("dl1.24xlarge", "us-east-1a", time.Now().Add(-time.Hour), spotPrice1a)

	rep := c.gpipeCmd(t, "report", "--state", c.stateURL, "--format", "json", "s1")
	if rep.code != 0 {
		t.Fatalf("report: %s", rep)
	}
	var doc struct {
		HostLosses []struct {
			Step            string   `json:"step"`
			Zone            string   `json:"zone"`
			Rerun           []string `json:"rerun"`
			TimeLostSeconds float64  `json:"time_lost_seconds"`
		} `json:"host_losses"`
		Cost struct {
			Hours       float64  `json:"hours"`
			USD         *float64 `json:"estimated_usd"`
			OnDemandUSD *float64 `json:"on_demand_usd"`
			SavedUSD    *float64 `json:"saved_usd"`
			Instances   []struct {
				Zone     string   `json:"zone"`
				Market   string   `json:"market"`
				Hours    float64  `json:"hours"`
				Lost     bool     `json:"lost"`
				Price    float64  `json:"price_per_hour_usd"`
				Basis    string   `json:"price_basis"`
				USD      *float64 `json:"estimated_usd"`
				OnDemand *float64 `json:"on_demand_usd"`
				Note     string   `json:"note"`
			} `json:"instances"`
		} `json:"cost"`
	}
	if err := json.Unmarshal([]byte(rep.stdout), &doc); err != nil {
		t.Fatalf("report json: %v\n%s", err, rep.stdout)
	}
	if len(doc.HostLosses) != 2 || doc.HostLosses[0].Zone != "us-east-1a" || doc.HostLosses[1].Zone != "us-east-1b" ||
		doc.HostLosses[0].TimeLostSeconds <= 0 || strings.Join(doc.HostLosses[1].Rerun, ",") != "provision,prepare,train" {
		t.Errorf("host losses %+v", doc.HostLosses)
	}
	cost := doc.Cost
	if len(cost.Instances) != 3 {
		t.Fatalf("cost of %d instances, want 3: %+v", len(cost.Instances), cost)
	}
	var usd, od float64
	for i, ic := range cost.Instances {
		if ic.USD == nil || ic.OnDemand == nil || ic.Market != "spot" {
			t.Fatalf("instance %d: %+v", i, ic)
		}
		usd, od = usd+*ic.USD, od+*ic.OnDemand
		if math.Abs(*ic.OnDemand-13.11*ic.Hours) > 1e-9 {
			t.Errorf("instance %d: on demand $%v for %v h", i, *ic.OnDemand, ic.Hours)
		}
	}
	lost1, lost2, last := cost.Instances[0], cost.Instances[1], cost.Instances[2]
	if !lost1.Lost || !lost2.Lost || last.Lost || *lost1.USD != 0 || *lost2.USD != 0 ||
		lost1.Note != "interrupted by EC2 in its first hour: not charged" || lost2.Note != lost1.Note {
		t.Errorf("the lost instances, interrupted in their first hour, are charged: %+v %+v", lost1, lost2)
	}
	if lost1.Basis != "EC2 spot price history" || lost2.Zone != "us-east-1b" || !strings.HasPrefix(lost2.Basis, "assumed: 50% of on-demand") {
		t.Errorf("price bases %q (%s), %q (%s)", lost1.Basis, lost1.Zone, lost2.Basis, lost2.Zone)
	}
	if last.Zone != "us-east-1a" || last.Basis != "EC2 spot price history" || math.Abs(*last.USD-spotPrice1a*last.Hours) > 1e-9 {
		t.Errorf("the last instance: %+v, want $%v/h from the history", last, spotPrice1a)
	}
	if cost.USD == nil || cost.OnDemandUSD == nil || cost.SavedUSD == nil || math.Abs(*cost.USD-usd) > 1e-9 ||
		math.Abs(*cost.OnDemandUSD-od) > 1e-9 || math.Abs(*cost.SavedUSD-(od-usd)) > 1e-9 {
		t.Fatalf("totals: spot %v, on demand %v, saved %v; instances add up to $%v and $%v", cost.USD, cost.OnDemandUSD, cost.SavedUSD, usd, od)
	}
	t.Logf("3 instances, %.4f h: spot $%.4f against $%.4f on demand, saved $%.4f", cost.Hours, *cost.USD, *cost.OnDemandUSD, *cost.SavedUSD)

	st := c.gpipeCmd(t, "status", "--state", c.stateURL, "s1")
	for _, want := range []string{"losses: 2 host losses", "3 instances", "against $", "on demand, saved", "(EC2 spot price history)",
		"interrupted by EC2 in its first hour: not charged"} {
		if !strings.Contains(st.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
}
