package ssmhost

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/gpipe/gpipe/steps/host"
)

// send starts the script on the instance at most once. SendCommand has no
// idempotency token, so the SDK's own retries are off for it: when a request
// may have reached SSM without its answer reaching us (a 5xx, a reset
// connection, a timeout), a blind retry would start a second copy of a
// training job on the same cards. Instead the command is looked up by the
// nonce in its comment, and sent again only when SSM has no such command.
// Rejections (4xx) are final except throttling, which SSM did not act on.
func (e *Executor) send(ctx context.Context, api SSM, s host.Script, nonce string) (string, error) {
	opt := e.f.opt
	timeout := s.Timeout
	if timeout <= 0 || timeout > MaxExecutionTimeout {
		timeout = MaxExecutionTimeout
	}
	in := &ssm.SendCommandInput{
		DocumentName: aws.String("AWS-RunShellScript"),
		InstanceIds:  []string{e.InstanceID},
		Comment:      aws.String(comment(nonce, s.StepID)),
		Parameters: map[string][]string{
			"commands":         {wrap(s, nonce)},
			"executionTimeout": {strconv.Itoa(int(timeout.Seconds()))},
		},
		CloudWatchOutputConfig: &types.CloudWatchOutputConfig{CloudWatchOutputEnabled: true, CloudWatchLogGroupName: aws.String(opt.LogGroup)},
	}
	if opt.OutputBucket != "" {
		in.OutputS3BucketName = aws.String(opt.OutputBucket)
		if opt.OutputPrefix != "" {
			in.OutputS3KeyPrefix = aws.String(opt.OutputPrefix)
		}
	}
	// ListCommands' InvokedAfter compares with SSM's clock, not ours.
	since := opt.Now().Add(-15 * time.Minute)
	b := &backoff{next: time.Second, max: 15 * time.Second}
	var err error
	for try := 0; try < 8; try++ {
		if try > 0 {
			if werr := b.wait(ctx, opt.Sleep); werr != nil {
				return "", fmt.Errorf("send command to %s: %w (after %v)", e.InstanceID, werr, err)
			}
		}
		var out *ssm.SendCommandOutput
		out, err = api.SendCommand(ctx, in, func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			return aws.ToString(out.Command.CommandId), nil
		}
		if ctx.Err() != nil {
			break
		}
		if rejected(err) {
			if isThrottle(err) {
				continue
			}
			return "", fmt.Errorf("send command to %s: %w", e.InstanceID, err)
		}
		// Maybe sent: look for it (a few times: a new command takes a moment
		// to be listed) before sending again.
		for look := 0; look < 3; look++ {
			id, lerr := e.findSent(ctx, api, nonce, since)
			if id != "" {
				return id, nil
			}
			if lerr != nil && !isThrottle(lerr) {
				return "", fmt.Errorf("send command to %s: %w; and finding out whether it was sent failed: %v", e.InstanceID, err, lerr)
			}
			if werr := b.wait(ctx, opt.Sleep); werr != nil {
				return "", fmt.Errorf("send command to %s: %w (after %v)", e.InstanceID, werr, err)
			}
		}
	}
	return "", fmt.Errorf("send command to %s: %w", e.InstanceID, err)
}

// comment carries the nonce, so a command whose SendCommand answer was lost
// can be found; Comment holds at most 100 characters.
func comment(nonce, stepID string) string { return trim("gpipe "+nonce+" "+stepID, 100) }

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// rejected reports an error SSM answered with a client error: the request
// was refused, not carried out.
func rejected(err error) bool {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	return errors.As(err, &ae) && errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500
}

// findSent returns the id of the command sent to the instance with this
// nonce, or "".
func (e *Executor) findSent(ctx context.Context, api SSM, nonce string, since time.Time) (string, error) {
	in := &ssm.ListCommandsInput{InstanceId: aws.String(e.InstanceID), Filters: []types.CommandFilter{
		{Key: types.CommandFilterKeyInvokedAfter, Value: aws.String(since.UTC().Format(time.RFC3339))},
	}}
	for {
		out, err := api.ListCommands(ctx, in)
		if err != nil {
			return "", fmt.Errorf("list commands on %s: %w", e.InstanceID, err)
		}
		for _, c := range out.Commands {
			if strings.Contains(aws.ToString(c.Comment), nonce) {
				return aws.ToString(c.CommandId), nil
			}
		}
		if out.NextToken == nil {
			return "", nil
		}
		in.NextToken = out.NextToken
	}
}
