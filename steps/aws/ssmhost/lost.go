package ssmhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/gpipe/gpipe/pipeline"
)

// EC2 is the part of *ec2.Client the executor uses to tell a lost instance
// from a failed script.
type EC2 interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// A running command learns that its instance goes away in one of two ways:
//
//   - The wrapper polls instance metadata for a spot interruption notice
//     (spot/instance-action, IMDSv2; EC2 User Guide "Spot Instance
//     interruption notices": 404 until EC2 decides to interrupt, then
//     {"action": "terminate", "time": ...} two minutes ahead, and AWS
//     recommends checking every 5 seconds), writes the notice to the file
//     $GPIPE_INTERRUPT_NOTICE names (absent until then: a step that can
//     save its work, such as train-unet syncing its checkpoints to S3,
//     watches for it) and prints lostMarker with the notice. The step is
//     lost from then on; the executor keeps relaying its output while it
//     winds down, for at most NoticeGrace (90 s of the two minutes, the
//     rest for the runner to see the end), until the command ends or EC2
//     says the instance is going, and then returns the loss, so the
//     replacement starts from what the step saved.
//   - The instance's state (DescribeInstances), checked every
//     instanceCheckEvery while the command runs and whenever it ends other
//     than in success: shutting-down, terminated, stopping or stopped. An
//     invocation on an instance that vanished does not end on its own: its
//     agent, which would report the end, is gone, so it stays InProgress
//     until the command expires, then reads TimedOut/DeliveryTimedOut (SSM
//     API Reference, Command.ExpiresAfter: "If a command expires, it
//     changes status to DeliveryTimedOut for all invocations that have the
//     status InProgress, Pending, or Delayed"); waiting for that could take
//     the step's whole timeout.
const instanceCheckEvery = time.Minute

func lostMarker(nonce string) string { return "::gpipe-lost-" + nonce + "::" }

// IMDSEndpointEnv overrides the instance metadata endpoint the wrapper polls
// (tests; the real one is link-local).
const IMDSEndpointEnv = "GPIPE_IMDS_ENDPOINT"

// NoticeEnv names the file the wrapper creates, holding the
// spot/instance-action document, when an interruption notice arrives.
const NoticeEnv = "GPIPE_INTERRUPT_NOTICE"

// DefaultNoticeGrace is how long a step that got an interruption notice may
// go on to save its work: EC2 terminates the instance two minutes after the
// notice (EC2 User Guide, "Spot Instance interruption notices"), and the last
// 30 s are left for the runner to see the end and the upload to settle.
const DefaultNoticeGrace = 90 * time.Second

// IMDSPollEnv overrides the seconds between the wrapper's metadata polls
// (tests; AWS recommends 5).
const IMDSPollEnv = "GPIPE_IMDS_POLL"

// spotWatch is the wrapper's part that polls for an interruption notice. It
// runs in the background next to the step and prints nothing until a notice
// appears; without curl it does nothing.
func spotWatch(nonce string) string {
	var b strings.Builder
	b.WriteString("gpipe_imds=\"${" + IMDSEndpointEnv + ":-http://169.254.169.254}\"\n")
	b.WriteString("gpipe_watch() {\n")
	b.WriteString("  command -v curl >/dev/null 2>&1 || return 0\n")
	b.WriteString("  while :; do\n")
	b.WriteString("    gpipe_tok=$(curl -sf -m 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \"$gpipe_imds/latest/api/token\" 2>/dev/null) || gpipe_tok=\n")
	b.WriteString("    if gpipe_act=$(curl -sf -m 2 -H \"X-aws-ec2-metadata-token: $gpipe_tok\" \"$gpipe_imds/latest/meta-data/spot/instance-action\" 2>/dev/null); then\n")
	// The file appears whole (written aside, then renamed) before the
	// runner hears of the notice.
	b.WriteString("      printf '%s\\n' \"$gpipe_act\" >\"$" + NoticeEnv + ".new\" && mv -f \"$" + NoticeEnv + ".new\" \"$" + NoticeEnv + "\"\n")
	fmt.Fprintf(&b, "      printf '\\n%%s %%s\\n' '%s' \"$gpipe_act\"\n", lostMarker(nonce))
	b.WriteString("      return 0\n")
	b.WriteString("    fi\n")
	// Nothing but the loop itself holds the command's output open: killing
	// it must end the stream at once (the agent waits for it to close).
	b.WriteString("    sleep \"${" + IMDSPollEnv + ":-5}\" >/dev/null 2>&1\n")
	b.WriteString("  done\n")
	b.WriteString("}\n")
	b.WriteString("gpipe_watch &\n")
	b.WriteString("gpipe_watcher=$!\n")
	return b.String()
}

// stopWatch ends the watcher before the wrapper prints its markers, so no
// notice lands among the outputs.
const stopWatch = "kill \"$gpipe_watcher\" 2>/dev/null; wait \"$gpipe_watcher\" 2>/dev/null\n"

// lost is a *pipeline.HostLostError for this executor's host.
func (e *Executor) lost(zone string, cause error) error {
	return &pipeline.HostLostError{Host: e.host, Zone: zone, Cause: cause}
}

// instanceGone asks EC2 whether the instance is going or gone; it returns
// a *pipeline.HostLostError then, nil when it runs (or EC2 cannot say:
// the command's own outcome stands).
func (e *Executor) instanceGone(ctx context.Context, api EC2, log io.Writer) error {
	in, err := e.describe(ctx, api)
	switch {
	case apiCode(err) == "InvalidInstanceID.NotFound":
		// Terminated instances stay listed for about an hour; after that
		// the id is unknown.
		return e.lost("", fmt.Errorf("EC2 no longer knows instance %s", e.InstanceID))
	case err != nil:
		if ctx.Err() == nil {
			fmt.Fprintf(log, "describe instance %s: %v\n", e.InstanceID, err)
		}
		return nil
	case in == nil || in.State == nil:
		return nil
	}
	switch in.State.Name {
	case ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameTerminated,
		ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameStopped:
		why := "instance " + e.InstanceID + " is " + string(in.State.Name)
		if in.StateReason != nil && aws.ToString(in.StateReason.Message) != "" {
			why += " (" + aws.ToString(in.StateReason.Message) + ")"
		}
		return e.lost(zoneOf(in), errors.New(why))
	}
	return nil
}

// zone is the instance's availability zone, "" when EC2 cannot say.
func (e *Executor) zone(ctx context.Context, api EC2) string {
	in, err := e.describe(ctx, api)
	if err != nil {
		return ""
	}
	return zoneOf(in)
}

func zoneOf(in *ec2types.Instance) string {
	if in == nil || in.Placement == nil {
		return ""
	}
	return aws.ToString(in.Placement.AvailabilityZone)
}

// describe returns the instance as EC2 describes it; nil, nil without an
// EC2 client or when EC2 lists no such instance.
func (e *Executor) describe(ctx context.Context, api EC2) (*ec2types.Instance, error) {
	if api == nil {
		return nil, nil
	}
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{e.InstanceID}})
	if err != nil {
		return nil, err
	}
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == e.InstanceID {
				return &r.Instances[i], nil
			}
		}
	}
	return nil, nil
}
