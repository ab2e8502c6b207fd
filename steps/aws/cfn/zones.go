package cfn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/gpipe/gpipe/steps/aws/template"
)

// zones chooses the availability zone of a created subnet when the step
// names neither a zone nor a subnet. Only some zones of a region offer an
// accelerator type (dl1.24xlarge: a few of us-east-1's six), and one that
// offers it may have no capacity at the moment: EC2 then fails the instance
// with InsufficientInstanceCapacity and the next offered zone is tried.
type zones struct {
	auto    bool     // no zone and no subnet given: gpipe chooses
	offered []string // zones offering the instance type, sorted; nil until asked
	failed  map[string]bool
	typ     string
}

func newZones(with map[string]any) (*zones, error) {
	zone, err := str(with, "availability_zone")
	if err != nil {
		return nil, err
	}
	subnet, err := str(with, "subnet_id")
	if err != nil {
		return nil, err
	}
	typ, err := str(with, "instance_type")
	if err != nil {
		return nil, err
	}
	if typ == "" {
		typ = "dl1.24xlarge"
	}
	return &zones{auto: zone == "" && subnet == "", failed: map[string]bool{}, typ: typ}, nil
}

// pick returns the first offered zone that has not failed for capacity.
func (z *zones) pick(ctx context.Context, cl *Clients, typ string) (string, error) {
	if typ != "" {
		z.typ = typ
	}
	if z.offered == nil {
		offered, err := offeringZones(ctx, cl.EC2, z.typ)
		if err != nil {
			return "", err
		}
		if len(offered) == 0 {
			return "", fmt.Errorf("no availability zone of region %s offers %s: choose another region", cl.Region, z.typ)
		}
		z.offered = offered
	}
	for _, o := range z.offered {
		if !z.failed[o] {
			return o, nil
		}
	}
	return "", fmt.Errorf("every zone of region %s that offers %s (%s) had no capacity for it: retry later or choose another region",
		cl.Region, z.typ, strings.Join(z.offered, ", "))
}

// afterFailure decides what a failed creation means for the zone choice: a
// capacity failure in a zone gpipe chose marks that zone and returns the
// next one to try ("" when the failure is of another kind, the zone was the
// user's, or no zone is left; the caller then reports the failure).
func (z *zones) afterFailure(ctx context.Context, cl *Clients, st *types.Stack, fail *StackFailedError) (string, error) {
	zone := stackParam(st, template.ParamAvailabilityZone)
	if !z.auto || zone == "" || !errors.Is(fail, ErrInsufficientCapacity) {
		return "", nil
	}
	z.failed[zone] = true
	next, err := z.pick(ctx, cl, "")
	if err != nil {
		// No zone left: the capacity failure is the error to report, with
		// what was tried.
		fail.Reason += "; " + err.Error()
		return "", nil
	}
	return next, nil
}

// offeringZones asks EC2 which zones of the region offer the instance type
// (the documented way: DescribeInstanceTypeOfferings with location type
// availability-zone and an instance-type filter).
func offeringZones(ctx context.Context, api EC2, typ string) ([]string, error) {
	in := &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: []string{typ}}},
	}
	var out []string
	for {
		page, err := api.DescribeInstanceTypeOfferings(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("describe zones offering %s: %w", typ, err)
		}
		for _, o := range page.InstanceTypeOfferings {
			if string(o.InstanceType) == typ {
				out = append(out, aws.ToString(o.Location))
			}
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	sort.Strings(out)
	return out, nil
}

func stackParam(st *types.Stack, key string) string {
	for _, p := range st.Parameters {
		if aws.ToString(p.ParameterKey) == key {
			return aws.ToString(p.ParameterValue)
		}
	}
	return ""
}

// bucketOf accepts a bucket name or an s3:// URL inside a bucket (the
// specs pass their dataset's URL) and returns the bucket.
func bucketOf(v string) (string, error) {
	if !strings.Contains(v, "://") {
		return v, nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", fmt.Errorf("%q: want a bucket name or s3://bucket/key", v)
	}
	return u.Host, nil
}

// BucketName is the bucket of a data_bucket value: the name itself, or the
// bucket of an s3:// URL (a value that is neither is returned unchanged, for
// the step to reject when it runs).
func BucketName(v string) string {
	if b, err := bucketOf(v); err == nil {
		return b
	}
	return v
}
