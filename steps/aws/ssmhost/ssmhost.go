// Package ssmhost runs host steps' scripts on EC2 instances with SSM Run
// Command (AWS-RunShellScript), for host addresses "ssm:<instance-id>".
//
// Output: GetCommandInvocation returns only the first 24,000 characters and
// only at the end, and the agent uploads S3 output (OutputS3BucketName) only
// when the command finishes, so polling S3 would show a multi-hour training
// run's log all at once at the end. CloudWatch Logs is the only channel the
// agent streams while the command runs, so the executor always enables
// CloudWatchOutputConfig and tails the command's stdout log stream with
// GetLogEvents; S3 output is added when a bucket is configured, as a durable
// archive that outlives the log group's retention. The wrapper merges the
// script's stderr into stdout so the one stream keeps lines in order.
//
// Outputs: the wrapper prints $GPIPE_OUTPUT between markers carrying a random
// nonce after the script ends, plus an end marker; the executor keeps that
// section out of the step log and parses it with host.ParseOutputs. The end
// marker also tells the tail that the log is complete (CloudWatch ingestion
// lags the command's status by seconds).
//
// Resume: the command id (and nonce) are saved with SaveResume right after
// SendCommand, so a new runner reattaches to a command still running rather
// than sending it again. Cancellation cancels the command (CancelCommand),
// except a detach (pipeline.ErrDetached as the context's cause: the runner is
// about to be killed by its CI job's time limit): then Exec returns a
// *pipeline.DetachedError and the command keeps running for a resume. A step
// that reruns instead (Script.Previous names an earlier runner's command)
// cancels that command first if it still runs (previous.go).
package ssmhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
)

// SSM is the part of *ssm.Client the executor uses.
type SSM interface {
	DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, opts ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
	SendCommand(ctx context.Context, in *ssm.SendCommandInput, opts ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, opts ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
	CancelCommand(ctx context.Context, in *ssm.CancelCommandInput, opts ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error)
	ListCommands(ctx context.Context, in *ssm.ListCommandsInput, opts ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
}

// Logs is the part of *cloudwatchlogs.Client the executor uses.
type Logs interface {
	GetLogEvents(ctx context.Context, in *cloudwatchlogs.GetLogEventsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error)
}

// Clients are the service clients the executor needs; loaded on first use.
type Clients struct {
	SSM  SSM
	Logs Logs
	EC2  EC2 // nil: a lost instance is told only by its interruption notice
}

// Options configure the executor.
type Options struct {
	// LogGroup receives command output (default /gpipe/ssm, which the built-in
	// template's instance role may write).
	LogGroup string
	// OutputBucket and OutputPrefix, when set, also archive output in S3.
	OutputBucket string
	OutputPrefix string
	// OnlineTimeout bounds the wait for the instance's SSM agent (default 20m:
	// a dl1 instance can take ten minutes to boot and register).
	OnlineTimeout time.Duration
	Now           func() time.Time
	Sleep         func(ctx context.Context, d time.Duration) error
	// Nonce makes the output markers unguessable; tests fix it.
	Nonce func() string
	// NoticeGrace bounds how long a step that got a spot interruption
	// notice may go on saving its work (default DefaultNoticeGrace).
	NoticeGrace time.Duration
}

// Resume keys the executor saves.
const (
	ResumeCommandID = "ssm_command_id"
	ResumeNonce     = "ssm_nonce"
)

// MaxExecutionTimeout is AWS-RunShellScript's executionTimeout limit (48 h).
const MaxExecutionTimeout = 172800 * time.Second

// Factory hands out an Executor per SSM host address.
type Factory struct {
	clients func(ctx context.Context) (*Clients, error)
	opt     Options
}

// NewFactory returns a Factory; clients is called on the first Exec only, so
// a run that never uses an SSM host never loads AWS configuration.
func NewFactory(clients func(ctx context.Context) (*Clients, error), opt Options) *Factory {
	if opt.LogGroup == "" {
		opt.LogGroup = "/gpipe/ssm"
	}
	if opt.OnlineTimeout == 0 {
		opt.OnlineTimeout = 20 * time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Sleep == nil {
		opt.Sleep = sleepCtx
	}
	if opt.Nonce == nil {
		opt.Nonce = randomNonce
	}
	if opt.NoticeGrace == 0 {
		opt.NoticeGrace = DefaultNoticeGrace
	}
	return &Factory{clients: clients, opt: opt}
}

// For returns the executor for an address "ssm:<instance-id>".
func (f *Factory) For(h pipeline.Host) (host.Executor, error) {
	id, ok := strings.CutPrefix(h.Address, "ssm:")
	if !ok || !strings.HasPrefix(id, "i-") || strings.ContainsAny(id, " /") {
		return nil, fmt.Errorf("host %s: address %q is not ssm:<instance-id>", h.Name, h.Address)
	}
	return &Executor{InstanceID: id, f: f, host: h}, nil
}

// Executor runs scripts on one instance.
type Executor struct {
	InstanceID string
	f          *Factory
	host       pipeline.Host
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

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isThrottle(err error) bool {
	switch apiCode(err) {
	case "ThrottlingException", "Throttling", "TooManyRequestsException":
		return true
	}
	return false
}

type backoff struct{ next, max time.Duration }

func (b *backoff) wait(ctx context.Context, sleep func(context.Context, time.Duration) error) error {
	d := b.next
	b.next = min(b.next*3/2, b.max)
	return sleep(ctx, d)
}
