// Package aws wires gpipe's AWS step types to the SDK: provision-stack and
// teardown (package cfn), the SSM host executor (package ssmhost) and the
// built-in template (package template). AWS configuration is loaded lazily,
// on the first AWS call, so a spec without AWS steps or hosts never needs
// credentials; internal/awsconfig decides region, endpoint, path style,
// timeouts and retries.
package aws

import (
	"context"
	"sync"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/gpipe/gpipe/internal/awsconfig"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/aws/cfn"
	"github.com/gpipe/gpipe/steps/aws/ssmhost"
	"github.com/gpipe/gpipe/steps/aws/template"
	"github.com/gpipe/gpipe/steps/host"
)

// Options configure the AWS steps.
type Options struct {
	// LoadConfig loads the SDK configuration for a region ("" = default).
	// nil uses awsconfig.Load (tests put a fake's configuration here).
	LoadConfig func(ctx context.Context, region string) (sdkaws.Config, error)
	// Getenv reads gpipe's own variables (GPIPE_AWS_RESPONSE_TIMEOUT,
	// GPIPE_S3_PATH_STYLE); nil means os.Getenv.
	Getenv func(string) string
	// SSM configures the SSM host (log group, S3 output archive, timeouts).
	SSM ssmhost.Options
	// Clock replaces time in the control steps' waits (tests).
	Clock cfn.Clock
}

// Steps holds the lazily created clients, one set per region.
type Steps struct {
	opt     Options
	mu      sync.Mutex
	configs map[string]sdkaws.Config
	ssm     *ssmhost.Factory
}

// New returns the AWS steps. Nothing is loaded until a step runs.
func New(opt Options) *Steps {
	if opt.LoadConfig == nil {
		opt.LoadConfig = func(ctx context.Context, region string) (sdkaws.Config, error) {
			return awsconfig.Load(ctx, awsconfig.Options{Region: region, Getenv: opt.Getenv})
		}
	}
	s := &Steps{opt: opt, configs: map[string]sdkaws.Config{}}
	s.ssm = ssmhost.NewFactory(func(ctx context.Context) (*ssmhost.Clients, error) {
		cfg, err := s.config(ctx, "")
		if err != nil {
			return nil, err
		}
		return &ssmhost.Clients{SSM: ssm.NewFromConfig(cfg), Logs: cloudwatchlogs.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg)}, nil
	}, opt.SSM)
	return s
}

func (s *Steps) config(ctx context.Context, region string) (sdkaws.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg, ok := s.configs[region]; ok {
		return cfg, nil
	}
	cfg, err := s.opt.LoadConfig(ctx, region)
	if err != nil {
		return sdkaws.Config{}, err // awsconfig says "load AWS configuration"
	}
	s.configs[region] = cfg
	return cfg, nil
}

// Clients returns the CloudFormation, S3 and EC2 clients of a region; the
// lead's `gpipe teardown` and `gpipe gc` use them with cfn.Teardown and
// cfn.ListGpipeStacks.
func (s *Steps) Clients(ctx context.Context, region string) (*cfn.Clients, error) {
	cfg, err := s.config(ctx, region)
	if err != nil {
		return nil, err
	}
	s3c := s3.NewFromConfig(cfg, awsconfig.S3Options(s.opt.Getenv))
	return &cfn.Clients{CFN: cloudformation.NewFromConfig(cfg), S3: s3c, EC2: ec2.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg),
		Region: cfg.Region}, nil
}

// ProvisionStack is the provision-stack step type.
func (s *Steps) ProvisionStack() pipeline.Runner {
	return &cfn.Provision{Clients: s.Clients, Clock: s.opt.Clock, Prices: DefaultPrices().HourlyPrice,
		SpotDiscount: TypicalSpotDiscount}
}

// Teardown is the teardown step type.
func (s *Steps) Teardown() pipeline.Runner {
	return &cfn.TeardownStep{Clients: s.Clients, Clock: s.opt.Clock}
}

// SSMExecutor returns the executor for an "ssm:<instance-id>" host.
func (s *Steps) SSMExecutor(h pipeline.Host) (host.Executor, error) {
	return s.ssm.For(h)
}

// Template returns the built-in CloudFormation template (`gpipe template`).
func Template() []byte { return template.Template() }
