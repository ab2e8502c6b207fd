package ssmhost

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// previousWait bounds the wait for a cancelled earlier command to end on
// this instance; the agent reports a cancel within seconds.
const previousWait = time.Minute

// stopPrevious cancels the command an earlier runner's attempt of this step
// sent (Script.Previous: the step reruns after --from, an edit, a cleanup or
// a host loss, rather than reattaching), when it still runs: two copies of a
// step must never run side by side on one instance (two trainings on the
// same cards and checkpoints). On this instance it waits for the command to
// end; on another one (a lost host's) the cancel is enough. A command SSM
// cannot describe or cancel is noted in the log and left alone.
func (e *Executor) stopPrevious(ctx context.Context, api SSM, cmdID string, log io.Writer) error {
	c, err := e.command(ctx, api, cmdID)
	if err != nil || c == nil || !commandRunning(c.Status) {
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(log, "look up SSM command %s of an earlier attempt: %v\n", cmdID, err)
		}
		return context.Cause(ctx)
	}
	if _, err := api.CancelCommand(ctx, &ssm.CancelCommandInput{CommandId: aws.String(cmdID)}); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		fmt.Fprintf(log, "cancel SSM command %s of an earlier attempt: %v\n", cmdID, err)
		return nil
	}
	fmt.Fprintf(log, "cancelled SSM command %s of an earlier attempt, still running on %s\n", cmdID, strings.Join(c.InstanceIds, ", "))
	if !slices.Contains(c.InstanceIds, e.InstanceID) {
		return nil
	}
	opt := e.f.opt
	deadline := opt.Now().Add(previousWait)
	b := &backoff{next: time.Second, max: 5 * time.Second}
	for opt.Now().Before(deadline) {
		if err := b.wait(ctx, opt.Sleep); err != nil {
			return fmt.Errorf("wait for SSM command %s to stop: %w", cmdID, context.Cause(ctx))
		}
		if c, err := e.command(ctx, api, cmdID); err == nil && (c == nil || !commandRunning(c.Status)) {
			return nil
		}
	}
	fmt.Fprintf(log, "SSM command %s still shows as running %s after its cancel; going on\n", cmdID, previousWait)
	return nil
}

// command describes one command (nil when SSM lists none by that id).
func (e *Executor) command(ctx context.Context, api SSM, cmdID string) (*types.Command, error) {
	out, err := api.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(cmdID)})
	if err != nil {
		return nil, err
	}
	for i := range out.Commands {
		if aws.ToString(out.Commands[i].CommandId) == cmdID {
			return &out.Commands[i], nil
		}
	}
	return nil, nil
}

func commandRunning(s types.CommandStatus) bool {
	switch s {
	case types.CommandStatusPending, types.CommandStatusInProgress, types.CommandStatusCancelling:
		return true
	}
	return false
}
