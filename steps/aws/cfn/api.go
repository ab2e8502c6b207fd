// Package cfn implements gpipe's CloudFormation control steps: provision-stack
// (create a training host stack idempotently, stream its events, turn its
// outputs into step outputs) and teardown (empty the buckets a stack owns,
// delete it, wait), plus the library functions behind `gpipe teardown` and
// `gpipe gc`.
//
// The SDK clients hide behind the narrow interfaces below, declared here where
// they are used, so tests substitute fakes that behave like the services
// (status transitions, rollbacks, throttling). Waiting is a polling loop of our
// own rather than the SDK's waiters: it must stream stack events while it waits
// and take an injected sleep, so tests never sleep for real.
package cfn

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// CloudFormation is the part of *cloudformation.Client gpipe uses.
type CloudFormation interface {
	CreateStack(ctx context.Context, in *cloudformation.CreateStackInput, opts ...func(*cloudformation.Options)) (*cloudformation.CreateStackOutput, error)
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, opts ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	DescribeStackEvents(ctx context.Context, in *cloudformation.DescribeStackEventsInput, opts ...func(*cloudformation.Options)) (*cloudformation.DescribeStackEventsOutput, error)
	DeleteStack(ctx context.Context, in *cloudformation.DeleteStackInput, opts ...func(*cloudformation.Options)) (*cloudformation.DeleteStackOutput, error)
	ListStackResources(ctx context.Context, in *cloudformation.ListStackResourcesInput, opts ...func(*cloudformation.Options)) (*cloudformation.ListStackResourcesOutput, error)
	GetTemplateSummary(ctx context.Context, in *cloudformation.GetTemplateSummaryInput, opts ...func(*cloudformation.Options)) (*cloudformation.GetTemplateSummaryOutput, error)
}

// S3 is what emptying a stack's buckets needs.
type S3 interface {
	ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, opts ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, opts ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
}

// EC2 is what resolving an AMI name, a subnet's VPC and the zones that
// offer an instance type needs.
type EC2 interface {
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, opts ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeInstanceTypeOfferings(ctx context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error)
}

// SSM is what reading an AMI id from a (public) SSM parameter needs.
type SSM interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Clients are the service clients of one region.
type Clients struct {
	CFN    CloudFormation
	S3     S3
	EC2    EC2
	SSM    SSM
	Region string
}

// ClientsFor returns the clients of a region ("" means the configured default).
// It is called only when a step runs, so that specs without AWS steps never
// load AWS configuration.
type ClientsFor func(ctx context.Context, region string) (*Clients, error)

// Clock lets tests replace time. Sleep returns ctx.Err() when ctx ends first.
type Clock struct {
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// RealClock uses the wall clock.
func RealClock() Clock {
	return Clock{Now: time.Now, Sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c Clock) withDefaults() Clock {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepCtx
	}
	return c
}

// backoff is a capped exponential delay between polls.
type backoff struct {
	next, max time.Duration
}

func newBackoff(first, max time.Duration) *backoff { return &backoff{next: first, max: max} }

func (b *backoff) wait(ctx context.Context, c Clock) error {
	d := b.next
	b.next = min(b.next*3/2, b.max)
	return c.Sleep(ctx, d)
}
