package cfn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gpipe/gpipe/steps/aws/template"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// Markets an instance can be bought in (provision-stack with.market).
const (
	MarketOnDemand = "on-demand"
	MarketSpot     = "spot"
)

// placement is one way of launching the stack's instance: a market, an
// instance type and a zone ("" when a subnet or the template decides).
type placement struct {
	market, typ, zone string
}

func (p placement) String() string {
	s := p.market + " " + p.typ
	if p.zone != "" {
		s += " in " + p.zone
	}
	return s
}

// placer walks the placements a provision-stack step may use, in the order it
// tries them: each market (spot, then on-demand when with.fallback says so),
// within it each instance type of with.instance_types in the user's order,
// within that each zone. Cheaper first, then the user's preference of type,
// then zones (which only move capacity, not price or performance).
//
// A capacity failure (EC2's InsufficientInstanceCapacity, or for spot
// SpotMaxPriceTooLow and the other spot-capacity codes) rules out that
// placement only; a vCPU-quota failure (VcpuLimitExceeded,
// MaxSpotInstanceCountExceeded) rules out the type in that market, since
// quotas are per region, not per zone.
type placer struct {
	auto     bool     // no zone and no subnet given: zones EC2 says offer each type
	zones    []string // the user's zones (availability_zones, or the one availability_zone); nil with auto or a subnet
	types    []string
	markets  []string
	maxPrice string
	// avoid is the zone where this step's previous instance was lost (a
	// spot interruption reclaims capacity there): its placements go last.
	avoid string

	cands  []placement // nil until planned
	cur    *placement  // the placement of the stack this Run created last
	failed map[placement]string
	quota  map[[2]string]bool // market, type
}

func newPlacer(c *provisionConfig) *placer {
	pl := &placer{auto: c.Zone == "" && len(c.Zones) == 0 && c.SubnetID == "", zones: c.Zones, types: c.types(),
		markets: []string{c.Market}, maxPrice: c.MaxPriceText,
		failed: map[placement]string{}, quota: map[[2]string]bool{}}
	if c.Zone != "" {
		pl.zones = []string{c.Zone}
	}
	if c.Fallback != "" {
		pl.markets = append(pl.markets, c.Fallback)
	}
	return pl
}

// plan lists the placements once the template's parameters are known: a
// template that cannot take a zone, type or market gets none chosen for it.
func (pl *placer) plan(ctx context.Context, cl *Clients, declared map[string]bool, log io.Writer) error {
	if len(pl.types) > 1 && !declared[template.ParamInstanceType] {
		return &param.Error{Type: TypeProvision, Key: "instance_types", Msg: "the template has no " + template.ParamInstanceType + " parameter to pass them in"}
	}
	for _, m := range pl.markets {
		if m == MarketSpot && !declared[template.ParamMarketType] {
			return &param.Error{Type: TypeProvision, Key: "market", Msg: "spot: the template has no " + template.ParamMarketType + " parameter to pass it in"}
		}
	}
	zonesOf := map[string][]string{}
	for _, typ := range pl.types {
		switch {
		case !declared[template.ParamAvailabilityZone] || !pl.auto && len(pl.zones) <= 1:
			// The template, the subnet or the user's one zone decides.
			zonesOf[typ] = []string{""}
			if declared[template.ParamAvailabilityZone] && len(pl.zones) == 1 {
				zonesOf[typ] = pl.zones
			}
		default:
			offered, err := offeringZones(ctx, cl.EC2, typ)
			if err != nil {
				return err
			}
			if pl.auto {
				zonesOf[typ] = offered
				break
			}
			for _, z := range pl.zones {
				if contains(offered, z) {
					zonesOf[typ] = append(zonesOf[typ], z)
				} else {
					fmt.Fprintf(log, "zone %s does not offer %s (EC2 offers it in %s): skipping it\n", z, typ, orNone(offered))
				}
			}
		}
	}
	var none []string
	for _, typ := range pl.types {
		if len(zonesOf[typ]) == 0 {
			none = append(none, typ)
		}
	}
	if len(none) == len(pl.types) {
		if pl.auto {
			return fmt.Errorf("no availability zone of region %s offers %s: choose another region", cl.Region, strings.Join(none, " or "))
		}
		return fmt.Errorf("none of the zones %s offers %s: choose others", strings.Join(pl.zones, ", "), strings.Join(none, " or "))
	}
	for _, m := range pl.markets {
		for _, typ := range pl.types {
			for _, z := range zonesOf[typ] {
				pl.cands = append(pl.cands, placement{m, typ, z})
			}
		}
	}
	if pl.avoid != "" {
		// Stable: the order among the other placements is the user's.
		slices.SortStableFunc(pl.cands, func(a, b placement) int {
			return cmp.Compare(boolInt(a.zone == pl.avoid), boolInt(b.zone == pl.avoid))
		})
		if len(pl.cands) > 1 && pl.cands[0].zone != pl.avoid {
			fmt.Fprintf(log, "zone %s lost this step's last instance: trying it last\n", pl.avoid)
		}
	}
	return nil
}

// next is the first placement not ruled out.
func (pl *placer) next() (placement, bool) {
	for _, c := range pl.cands {
		if pl.failed[c] == "" && !pl.quota[[2]string{c.market, c.typ}] {
			return c, true
		}
	}
	return placement{}, false
}

// params sets the template parameters of a placement.
func (pl *placer) params(c placement, params map[string]string, declared map[string]bool) {
	if declared[template.ParamInstanceType] {
		params[template.ParamInstanceType] = c.typ
	}
	if c.zone != "" {
		params[template.ParamAvailabilityZone] = c.zone
	}
	if declared[template.ParamMarketType] {
		params[template.ParamMarketType] = c.market
		if c.market == MarketSpot && pl.maxPrice != "" {
			params[template.ParamSpotMaxPrice] = pl.maxPrice
		}
	}
}

// afterFailure rules out what a failed creation of this Run says cannot
// launch and returns the next placement to try; ok is false when the failure
// is of another kind, or nothing is left (then fail says what was tried).
func (pl *placer) afterFailure(fail *StackFailedError) (tried, next placement, ok bool) {
	if pl.cur == nil {
		return placement{}, placement{}, false
	}
	tried = *pl.cur
	switch {
	case errors.Is(fail, ErrQuotaExceeded):
		pl.quota[[2]string{tried.market, tried.typ}] = true
		pl.failed[tried] = "vCPU quota"
	case errors.Is(fail, ErrInsufficientCapacity), errors.Is(fail, ErrSpotUnavailable):
		pl.failed[tried] = "no capacity"
		if errors.Is(fail, ErrSpotUnavailable) {
			pl.failed[tried] = "spot unavailable"
		}
	default:
		return tried, placement{}, false
	}
	next, ok = pl.next()
	if !ok && len(pl.failed) > 1 {
		// Say what else was tried; a failure on the first try speaks for itself.
		fail.Reason += "; every placement was tried: " + pl.summary()
	}
	return tried, next, ok
}

// summary lists what was tried and why each failed.
func (pl *placer) summary() string {
	var parts []string
	for _, c := range pl.cands {
		why := pl.failed[c]
		if why == "" && pl.quota[[2]string{c.market, c.typ}] {
			why = "skipped: vCPU quota of the type"
		}
		if why != "" {
			parts = append(parts, c.String()+" ("+why+")")
		}
	}
	return strings.Join(parts, ", ")
}

// why says in a log line why a placement is left behind.
func why(fail *StackFailedError) string {
	switch {
	case errors.Is(fail, ErrQuotaExceeded):
		return "the account's vCPU quota for it is used up"
	case errors.Is(fail, ErrSpotUnavailable):
		return "no spot instance at that price or capacity"
	}
	return "no capacity for it there now"
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "no zone"
	}
	return strings.Join(l, ", ")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
