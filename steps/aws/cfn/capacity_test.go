package cfn

import (
	"strings"
	"testing"
)

// TestPlacerRejectsContradictions: settings that cannot mean anything get an
// error naming the with key, before any stack exists.
func TestPlacerRejectsContradictions(t *testing.T) {
	for want, with := range map[string]map[string]any{
		"with.market":                    {"market": "reserved"},
		"with.fallback: on-demand falls": {"fallback": "on-demand"},
		"with.fallback: \"spot\"":        {"market": "spot", "fallback": "spot"},
		"with.max_price applies to spot": {"max_price": "3"},
		"with.max_price: \"cheap\"":      {"market": "spot", "max_price": "cheap"},
		"set one, not both":              {"availability_zone": "us-east-1a", "availability_zones": []any{"us-east-1b"}},
		"with.subnet_id fixes the zone":  {"subnet_id": "subnet-1", "availability_zones": []any{"us-east-1b"}},
		"with.instance_type and":         {"instance_type": "dl1.24xlarge", "instance_types": []any{"trn1.32xlarge"}},
		"listed twice":                   {"instance_types": []any{"a", "a"}},
		"with.availability_zones[1]":     {"availability_zones": []any{"us-east-1a", 3}},
	} {
		_, err := newPlacer(with)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err = %v, want %q", with, err, want)
		}
	}
	pl, err := newPlacer(map[string]any{"market": "spot", "fallback": "on-demand", "max_price": "4.5", "instance_types": "a, b"})
	if err != nil || strings.Join(pl.markets, ",") != "spot,on-demand" || strings.Join(pl.types, ",") != "a,b" || pl.maxPrice != "4.5" {
		t.Errorf("placer %+v, %v", pl, err)
	}
}
