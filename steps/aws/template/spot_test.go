package template

import (
	"strings"
	"testing"
)

// chooseIf replaces every Fn::If on one of the given conditions by the branch
// the condition's value selects (AWS::NoValue drops the key or item), so the
// provider schema validates what CloudFormation would send, not an intrinsic
// the validator lets through unchecked.
func chooseIf(v any, conds map[string]bool) (any, bool) {
	switch v := v.(type) {
	case map[string]any:
		if l, ok := v["Fn::If"].([]any); ok && len(v) == 1 && len(l) == 3 {
			if c, known := conds[l[0].(string)]; known {
				if c {
					return chooseIf(l[1], conds)
				}
				return chooseIf(l[2], conds)
			}
		}
		if r, ok := v["Ref"]; ok && len(v) == 1 && r == "AWS::NoValue" {
			return nil, false
		}
		out := map[string]any{}
		for k, x := range v {
			if y, keep := chooseIf(x, conds); keep {
				out[k] = y
			}
		}
		return out, true
	case []any:
		var out []any
		for _, x := range v {
			if y, keep := chooseIf(x, conds); keep {
				out = append(out, y)
			}
		}
		return out, true
	}
	return v, true
}

// TestSpotLaunchTemplate: with MarketType spot the launch template asks for a
// one-time spot instance that terminates on interruption (the only
// combination gpipe's re-provisioning expects), with and without a maximum
// price; on demand it carries no market options. Each variant passes the
// AWS::EC2::LaunchTemplate provider schema.
func TestSpotLaunchTemplate(t *testing.T) {
	for _, c := range []struct {
		spot, price bool
	}{{false, false}, {true, false}, {true, true}} {
		doc := loadTemplate(t, Template())
		chosen, _ := chooseIf(doc, map[string]bool{"IsSpot": c.spot, "HasSpotMaxPrice": c.price})
		doc = chosen.(map[string]any)
		for _, e := range validateTemplate(t, doc) {
			t.Errorf("spot %v, max price %v: %s", c.spot, c.price, e)
		}
		ltd := props(doc["Resources"].(map[string]any), "LaunchTemplate")["LaunchTemplateData"].(map[string]any)
		mo, has := ltd["InstanceMarketOptions"].(map[string]any)
		if has != c.spot {
			t.Fatalf("spot %v: InstanceMarketOptions %v", c.spot, ltd["InstanceMarketOptions"])
		}
		if !c.spot {
			continue
		}
		so := mo["SpotOptions"].(map[string]any)
		if mo["MarketType"] != "spot" || so["SpotInstanceType"] != "one-time" || so["InstanceInterruptionBehavior"] != "terminate" {
			t.Errorf("market options %v", mo)
		}
		if _, ok := so["MaxPrice"]; ok != c.price {
			t.Errorf("max price %v: SpotOptions %v", c.price, so)
		}
	}
	params := loadTemplate(t, Template())["Parameters"].(map[string]any)
	if d := params[ParamMarketType].(map[string]any)["Default"]; d != "on-demand" {
		t.Errorf("MarketType default %v, want on-demand", d)
	}
}

// TestSpotSchemaCatchesMistakes: the schema check of the chosen branch is
// real: a persistent request or an unknown option is reported.
func TestSpotSchemaCatchesMistakes(t *testing.T) {
	for want, mutate := range map[string]func(so map[string]any){
		"SpotInstanceType": func(so map[string]any) { so["SpotInstanceType"] = "once" },
		"SpotPrice":        func(so map[string]any) { so["SpotPrice"] = "1.0" },
	} {
		doc := loadTemplate(t, Template())
		chosen, _ := chooseIf(doc, map[string]bool{"IsSpot": true, "HasSpotMaxPrice": true})
		doc = chosen.(map[string]any)
		ltd := props(doc["Resources"].(map[string]any), "LaunchTemplate")["LaunchTemplateData"].(map[string]any)
		mutate(ltd["InstanceMarketOptions"].(map[string]any)["SpotOptions"].(map[string]any))
		errs := strings.Join(validateTemplate(t, doc), "\n")
		if !strings.Contains(errs, want) {
			t.Errorf("%s mutated: errors %q do not name it", want, errs)
		}
	}
}
