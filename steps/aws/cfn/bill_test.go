package cfn

import (
	"math"
	"strings"
	"testing"
)

// TestBillSpot: a spot step's expected price is an estimate (spot_price, or
// the on-demand price less the typical discount), its worst hour what EC2 may
// charge: on demand when it can fall back or has no max_price, the max_price
// otherwise, for the dearest listed type.
func TestBillSpot(t *testing.T) {
	prices := map[string]float64{"dl1.24xlarge": 13.11, "trn1.32xlarge": 21.50}
	p := &Provision{SpotDiscount: 0.5, Prices: func(typ, _ string) (float64, bool) { v, ok := prices[typ]; return v, ok }}
	for _, c := range []struct {
		with          map[string]any
		price, worst  float64
		basis, market string
	}{
		{map[string]any{}, 13.11, 13.11, "", "on-demand"},
		{map[string]any{"market": "spot"}, 6.555, 13.11, "on-demand less a typical 50% spot discount", "spot"},
		{map[string]any{"market": "spot", "spot_price": "4.2"}, 4.2, 13.11, "with.spot_price", "spot"},
		{map[string]any{"market": "spot", "max_price": "5"}, 6.555, 5, "on-demand less a typical 50% spot discount", "spot"},
		{map[string]any{"market": "spot", "max_price": "5", "fallback": "on-demand"}, 6.555, 13.11, "on-demand less a typical 50% spot discount", "spot"},
		{map[string]any{"market": "spot", "instance_types": []any{"dl1.24xlarge", "trn1.32xlarge"}}, 6.555, 21.50, "on-demand less a typical 50% spot discount", "spot"},
	} {
		b, err := p.Bill(c.with, "us-east-1")
		if err != nil {
			t.Fatalf("%v: %v", c.with, err)
		}
		if !b.Priced || math.Abs(b.PricePerHour-c.price) > 1e-9 || b.WorstPerHour != c.worst || b.SpotBasis != c.basis ||
			b.Market != c.market || b.OnDemandPerHour != 13.11 || b.InstanceType != "dl1.24xlarge" {
			t.Errorf("%v: %+v", c.with, b)
		}
	}
	if b, err := p.Bill(map[string]any{"market": "spot", "fallback": "on-demand"}, ""); err != nil || b.Fallback != "on-demand" {
		t.Errorf("fallback %+v %v", b, err)
	}
	if b, _ := p.Bill(map[string]any{"instance_types": []any{"dl1.24xlarge", "x9.huge"}}, ""); b.Priced {
		t.Errorf("a type without a price leaves the worst case known: %+v", b)
	}
	for want, with := range map[string]map[string]any{
		"with.spot_price: estimates spot":              {"spot_price": "3"},
		"with.spot_price: want a number, got \"soon\"": {"market": "spot", "spot_price": "soon"},
		"with.fallback": {"fallback": "on-demand"},
	} {
		if _, err := p.Bill(with, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err %v, want %q", with, err, want)
		}
	}
}
