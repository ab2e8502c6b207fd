package cfn

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

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
