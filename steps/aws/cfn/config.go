package cfn

import (
	"time"

	"github.com/gpipe/gpipe/steps/internal/param"
)

// Step type names.
const (
	TypeProvision = "provision-stack"
	TypeTeardown  = "teardown"
)

// provisionConfig is the decoded `with` of a provision-stack step. Run,
// Bill and the placer read nothing else, and Run decodes all of it before
// its first AWS call, so a bad value fails at once and permanently.
type provisionConfig struct {
	Region, StackName, Template string
	InstanceType                string   // with.instance_type, or its default
	InstanceTypes               []string // with.instance_types; nil: InstanceType only
	Zone                        string
	Zones                       []string
	SubnetID                    string
	Market                      string
	Fallback                    string  // "" or MarketOnDemand
	MaxPrice                    float64 // 0: none (EC2's default, the on-demand price)
	MaxPriceText                string  // as written, for the template
	SpotPrice                   float64 // 0: none (estimate from SpotDiscount)
	RootVolumeGiB               int
	MaxLifetime, IdleTimeout    time.Duration
	DataBucket                  string // a bucket name (an s3:// URL is reduced to its bucket)
	ResultsBucket               string
	ResultsKMSKey               string
	AMI, AMIOwner               string
	Parameters                  map[string]string
	ParameterKeys               []string // sorted
	Tags                        map[string]string
	TagKeys                     []string // sorted
}

// decodeProvisionWith decodes a provision-stack step's with.
func decodeProvisionWith(with map[string]any) (*provisionConfig, error) {
	return param.Decode(TypeProvision, with, decodeProvision)
}

func decodeProvision(p *param.Reader) *provisionConfig {
	c := &provisionConfig{
		Region:        p.String("region", ""),
		StackName:     p.String("stack_name", ""),
		Template:      p.String("template", ""),
		InstanceType:  p.String("instance_type", DefaultInstanceType),
		InstanceTypes: p.Names("instance_types"),
		Zone:          p.String("availability_zone", ""),
		Zones:         p.Names("availability_zones"),
		SubnetID:      p.String("subnet_id", ""),
		Market:        p.OneOf("market", MarketOnDemand, MarketOnDemand, MarketSpot),
		Fallback:      p.OneOf("fallback", "", MarketOnDemand),
		RootVolumeGiB: p.Int("root_volume_gib", 200, 8, 16384),
		MaxLifetime:   p.Duration("max_lifetime", DefaultMaxLifetime),
		IdleTimeout:   p.Duration("idle_timeout", DefaultIdleTimeout),
		DataBucket:    p.String("data_bucket", ""),
		ResultsBucket: p.String("results_bucket", ""),
		ResultsKMSKey: p.String("results_kms_key", ""),
		AMI:           p.String("ami", DefaultAMI),
		AMIOwner:      p.String("ami_owner", DefaultAMIOwner),
	}
	c.MaxPrice, c.MaxPriceText = p.Positive("max_price")
	c.SpotPrice, _ = p.Positive("spot_price")
	c.Parameters, c.ParameterKeys = p.StringMap("parameters")
	c.Tags, c.TagKeys = p.StringMap("tags")

	if b, err := bucketOf(c.DataBucket); err != nil {
		p.Fail("data_bucket", "%v", err)
	} else {
		c.DataBucket = b
	}
	switch {
	case c.Zone != "" && len(c.Zones) > 0:
		p.Fail("availability_zones", "with.availability_zone is set too: set one, not both")
	case c.SubnetID != "" && (c.Zone != "" || len(c.Zones) > 0):
		p.Fail("subnet_id", "fixes the zone: drop with.availability_zone(s)")
	}
	if p.Has("instance_type") && len(c.InstanceTypes) > 0 {
		p.Fail("instance_types", "with.instance_type is set too: set one, not both")
	}
	if c.Fallback == MarketOnDemand && c.Market != MarketSpot {
		p.Fail("fallback", "on-demand falls back from spot: set market: spot")
	}
	if c.MaxPrice > 0 && c.Market != MarketSpot {
		p.Fail("max_price", "applies to spot instances: set market: spot")
	}
	if c.SpotPrice > 0 && c.Market != MarketSpot {
		p.Fail("spot_price", "estimates spot instances: set market: spot")
	}
	return c
}

// types are the instance types to try, in order.
func (c *provisionConfig) types() []string {
	if len(c.InstanceTypes) > 0 {
		return c.InstanceTypes
	}
	return []string{c.InstanceType}
}

// teardownConfig is the decoded `with` of a teardown step.
type teardownConfig struct {
	Region       string
	Stack        string // "": every stack of the run
	EmptyBuckets bool
}

func decodeTeardown(p *param.Reader) teardownConfig {
	return teardownConfig{
		Region:       p.String("region", ""),
		Stack:        p.String("stack", ""),
		EmptyBuckets: p.Bool("empty_buckets", true),
	}
}

// DescribeWith implements the steps' parameter description (see
// steps/internal/param): what provision-stack's decoder declares about each
// key of with, and the error it returns for with.
func (p *Provision) DescribeWith(with map[string]any) ([]param.Decl, error) {
	return param.Describe(TypeProvision, with, decodeProvision)
}

// DescribeWith: as Provision's, for teardown.
func (t *TeardownStep) DescribeWith(with map[string]any) ([]param.Decl, error) {
	return param.Describe(TypeTeardown, with, decodeTeardown)
}
