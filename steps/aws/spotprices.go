package aws

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// SpotPriceAPI is the part of *ec2.Client spot pricing uses.
type SpotPriceAPI interface {
	DescribeSpotPriceHistory(ctx context.Context, in *ec2.DescribeSpotPriceHistoryInput, opts ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error)
}

// SpotPriceRefresh is how long a fetched price history stands before it is
// asked for again: a budget checks its estimate every few seconds, and spot
// prices move gradually, with long-term supply and demand, not minute by
// minute ("How Spot Instances work", AWS's Spot whitepaper), so one call
// per zone and type every five minutes is plenty.
const SpotPriceRefresh = 5 * time.Minute

// spotProducts are the product descriptions of the Linux instances gpipe's
// template launches (an Ubuntu AMI in a VPC). EC2 lists spot prices per
// product description; accounts without EC2-Classic see "Linux/UNIX", older
// ones the "(Amazon VPC)" variant too, at the same price.
var spotProducts = []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"}

// maxSpotPages bounds the pages of one history request: a zone and type
// change price a few times a day, 1,000 to a page.
const maxSpotPages = 10

// SpotPrices is EC2's spot price history (DescribeSpotPriceHistory) of the
// zones and instance types a run's spot instances ran in, fetched on demand
// and kept for SpotPriceRefresh.
type SpotPrices struct {
	// Client returns the EC2 client of a region.
	Client func(ctx context.Context, region string) (SpotPriceAPI, error)
	Now    func() time.Time

	mu   sync.Mutex
	hist map[spotKey]*spotHistory
}

type spotKey struct{ region, zone, typ string }

// spotHistory is what EC2 said of one zone and type: its price changes in
// time order, from before from to when it was fetched.
type spotHistory struct {
	fetched time.Time
	from    time.Time
	points  []spotPoint
	// err is why the last fetch failed; it is not tried again before
	// SpotPriceRefresh either (a policy without the action must not cost a
	// call every budget check). points are those of an earlier fetch.
	err error
}

type spotPoint struct {
	at  time.Time
	usd float64
}

// SpotPrices returns the spot price history of the regions the AWS steps
// reach, with their clients.
func (s *Steps) SpotPrices() *SpotPrices {
	return &SpotPrices{Client: func(ctx context.Context, region string) (SpotPriceAPI, error) {
		cfg, err := s.config(ctx, region)
		if err != nil {
			return nil, err
		}
		return ec2.NewFromConfig(cfg), nil
	}}
}

func (s *SpotPrices) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Load fetches the history of every spot usage's zone and instance type
// that is not known, older than SpotPriceRefresh, or does not reach back to
// the usage's start. It returns the first error; the histories it could not
// fetch stay unknown and the cost estimate assumes a price for them.
func (s *SpotPrices) Load(ctx context.Context, usages []report.Usage) error {
	now := s.now()
	want := map[spotKey]time.Time{}
	for _, u := range usages {
		if u.Outputs[outputMarket] != cfn.MarketSpot || u.Outputs[outputZone] == "" {
			continue
		}
		k := spotKey{u.Region, u.Outputs[outputZone], u.InstanceType}
		if from, ok := want[k]; !ok || u.Start.Before(from) {
			want[k] = u.Start
		}
	}
	keys := make([]spotKey, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	var first error
	for _, k := range keys {
		from := want[k]
		s.mu.Lock()
		h := s.hist[k]
		s.mu.Unlock()
		if h == nil || now.Sub(h.fetched) >= SpotPriceRefresh || from.Before(h.from) {
			nh := &spotHistory{fetched: now, from: from}
			points, err := s.fetch(ctx, k, from, now)
			switch {
			case err == nil:
				nh.points = points
			case ctx.Err() != nil:
				// Cut short by the caller, not refused by EC2: the next
				// Load tries again.
				return fmt.Errorf("spot price history of %s in %s: %w", k.typ, k.zone, err)
			default:
				nh.err = fmt.Errorf("spot price history of %s in %s: %w", k.typ, k.zone, err)
				if h != nil {
					nh.points = h.points
				}
			}
			s.mu.Lock()
			if s.hist == nil {
				s.hist = map[spotKey]*spotHistory{}
			}
			s.hist[k] = nh
			s.mu.Unlock()
			h = nh
		}
		if h.err != nil && first == nil {
			first = h.err
		}
	}
	return first
}

// fetch asks EC2 for a zone's price changes from from to to. With a start
// and end time EC2 also returns the last change before the start, the price
// in effect at the start (EC2 API Reference, DescribeSpotPriceHistory).
func (s *SpotPrices) fetch(ctx context.Context, k spotKey, from, to time.Time) ([]spotPoint, error) {
	api, err := s.Client(ctx, k.region)
	if err != nil {
		return nil, err
	}
	in := &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes:       []ec2types.InstanceType{ec2types.InstanceType(k.typ)},
		AvailabilityZone:    sdkaws.String(k.zone),
		ProductDescriptions: spotProducts,
		StartTime:           sdkaws.Time(from),
		EndTime:             sdkaws.Time(to),
	}
	var points []spotPoint
	for page := 0; page < maxSpotPages; page++ {
		out, err := api.DescribeSpotPriceHistory(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, p := range out.SpotPriceHistory {
			if p.Timestamp == nil || sdkaws.ToString(p.AvailabilityZone) != k.zone || string(p.InstanceType) != k.typ {
				continue
			}
			usd, err := strconv.ParseFloat(sdkaws.ToString(p.SpotPrice), 64)
			if err != nil || usd < 0 {
				return nil, fmt.Errorf("spot price %q: not a price", sdkaws.ToString(p.SpotPrice))
			}
			points = append(points, spotPoint{*p.Timestamp, usd})
		}
		if sdkaws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(points) == 0 {
		return nil, fmt.Errorf("EC2 lists no spot price for %s in %s", k.typ, k.zone)
	}
	sort.Slice(points, func(i, j int) bool { return points[i].at.Before(points[j].at) })
	return points, nil
}

// Average is the time-weighted spot price of an instance type in a zone
// from start to end: each price counts for as long as it was in effect
// (the price in effect is the last change before a moment; before the
// first change known, that first price). ok is false when no history of
// the zone and type was loaded.
func (s *SpotPrices) Average(region, zone, typ string, start, end time.Time) (float64, bool) {
	s.mu.Lock()
	h := s.hist[spotKey{region, zone, typ}]
	s.mu.Unlock()
	if h == nil || len(h.points) == 0 {
		return 0, false
	}
	at := func(t time.Time) float64 {
		v := h.points[0].usd
		for _, p := range h.points {
			if p.at.After(t) {
				break
			}
			v = p.usd
		}
		return v
	}
	if !end.After(start) {
		return at(start), true
	}
	var sum float64
	cur := start
	for _, p := range h.points {
		if !p.at.After(cur) {
			continue
		}
		if !p.at.Before(end) {
			break
		}
		sum += at(cur) * p.at.Sub(cur).Seconds()
		cur = p.at
	}
	sum += at(cur) * end.Sub(cur).Seconds()
	return sum / end.Sub(start).Seconds(), true
}

// Outputs of provision-stack that say how its instance was bought and
// where it ran (the built-in template's MarketType and AvailabilityZone).
const (
	outputMarket = "market_type"
	outputZone   = "availability_zone"
)

// ec2Interrupted says whether a lost instance was interrupted by EC2
// rather than stopped or terminated by someone: EC2's state reason for a
// shutdown a user started is Client.UserInitiatedShutdown (EC2 API
// Reference, StateReason); a spot interruption notice or
// Server.SpotInstanceTermination is EC2's.
func ec2Interrupted(cause string) bool {
	return !strings.Contains(cause, "Client.UserInitiated")
}
