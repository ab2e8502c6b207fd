package cfn

import (
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
)

// TestPlacerRejectsContradictions: settings that cannot mean anything get an
// error naming the with key, before any stack exists.
func TestPlacerRejectsContradictions(t *testing.T) {
	for want, with := range map[string]map[string]any{
		"provision-stack: with.market: \"reserved\" is not one of":                      {"market": "reserved"},
		"provision-stack: with.fallback: on-demand falls":                               {"fallback": "on-demand"},
		"provision-stack: with.fallback: \"spot\"":                                      {"market": "spot", "fallback": "spot"},
		"provision-stack: with.max_price: applies to spot":                              {"max_price": "3"},
		"provision-stack: with.max_price: want a number, got \"cheap\"":                 {"market": "spot", "max_price": "cheap"},
		"with.availability_zones: with.availability_zone is set too: set one, not both": {"availability_zone": "us-east-1a", "availability_zones": []any{"us-east-1b"}},
		"with.subnet_id: fixes the zone":                                                {"subnet_id": "subnet-1", "availability_zones": []any{"us-east-1b"}},
		"with.instance_types: with.instance_type is set too":                            {"instance_type": "dl1.24xlarge", "instance_types": []any{"trn1.32xlarge"}},
		"with.instance_types: \"a\" is listed twice":                                    {"instance_types": []any{"a", "a"}},
		"with.availability_zones[1]":                                                    {"availability_zones": []any{"us-east-1a", 3}},
		"with.root_volume_gib: 4 is outside 8..16384":                                   {"root_volume_gib": "4"},
		"with.idle_timeout: \"soon\": want a duration":                                  {"idle_timeout": "soon"},
		"with.data_bucket: \"http://b/k\": want a bucket name or s3://bucket/key":       {"data_bucket": "http://b/k"},
		"with.tags.team: want a string":                                                 {"tags": map[string]any{"team": []any{"a"}}},
		"with.colour: unknown parameter":                                                {"colour": "red"},
	} {
		_, err := decodeProvisionWith(with)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err = %v, want %q", with, err, want)
		}
		if !pipeline.IsPermanent(err) {
			t.Errorf("%v: %v is not permanent", with, err)
		}
	}
	c, err := decodeProvisionWith(map[string]any{"market": "spot", "fallback": "on-demand", "max_price": "4.5", "instance_types": "a, b"})
	if err != nil {
		t.Fatal(err)
	}
	pl := newPlacer(c)
	if strings.Join(pl.markets, ",") != "spot,on-demand" || strings.Join(pl.types, ",") != "a,b" || pl.maxPrice != "4.5" {
		t.Errorf("placer %+v", pl)
	}
}
