package cfn

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// Poll intervals: a stack takes minutes, so a few seconds of lag is fine and
// keeps us far below DescribeStacks' rate limits.
const (
	firstPoll = 3 * time.Second
	maxPoll   = 20 * time.Second
)

// describe returns the stack, ErrStackNotFound, or another error. Throttling
// that outlasted the SDK's retries is retried here with backoff.
func describe(ctx context.Context, api CloudFormation, clock Clock, stack string) (*types.Stack, error) {
	b := newBackoff(firstPoll, maxPoll)
	for {
		out, err := api.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
		switch {
		case err == nil && len(out.Stacks) > 0:
			return &out.Stacks[0], nil
		case err == nil || isNotFound(err):
			return nil, fmt.Errorf("describe stack %s: %w", stack, ErrStackNotFound)
		case isThrottle(err):
			if err := b.wait(ctx, clock); err != nil {
				return nil, fmt.Errorf("describe stack %s: %w", stack, err)
			}
		default:
			return nil, fmt.Errorf("describe stack %s: %w", stack, err)
		}
	}
}

// eventStream prints a stack's new events as progress lines and remembers
// them in order, so the first failure can be found when the operation fails.
type eventStream struct {
	api   CloudFormation
	stack string // prefer the stack id: events of a deleted stack are found by id only
	log   io.Writer
	seen  map[string]bool
	since time.Time // events older than this belong to earlier operations
	all   []types.StackEvent
}

func newEventStream(api CloudFormation, stack string, log io.Writer, since time.Time) *eventStream {
	return &eventStream{api: api, stack: stack, log: log, seen: map[string]bool{}, since: since}
}

// mark makes the stack's current events history: it reads the newest page,
// remembers those events as seen, and takes the newest one's timestamp as the
// start of the next operation. The cut-off must come from the service's own
// timestamps: the runner's clock is seconds or minutes off AWS's, and a
// local cut-off then hides the events of the very operation it waits for
// (and with them the reason a deletion failed), or shows old ones as new.
func (s *eventStream) mark(ctx context.Context, fallback time.Time) {
	out, err := s.api.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(s.stack)})
	if err != nil || len(out.StackEvents) == 0 {
		s.since = fallback
		return
	}
	for _, ev := range out.StackEvents {
		s.seen[aws.ToString(ev.EventId)] = true
	}
	s.since = aws.ToTime(out.StackEvents[0].Timestamp)
}

// poll fetches events newer than the ones seen (DescribeStackEvents returns
// newest first) and prints them oldest first. Errors are not fatal to a wait:
// events are progress, the stack status is the truth.
func (s *eventStream) poll(ctx context.Context) {
	var fresh []types.StackEvent
	var token *string
	for page := 0; page < 10; page++ {
		out, err := s.api.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(s.stack), NextToken: token})
		if err != nil {
			if !isThrottle(err) && ctx.Err() == nil {
				fmt.Fprintf(s.log, "(stack events unavailable: %v)\n", err)
			}
			break
		}
		done := false
		for _, ev := range out.StackEvents {
			id := aws.ToString(ev.EventId)
			if s.seen[id] || (ev.Timestamp != nil && ev.Timestamp.Before(s.since)) {
				done = true
				break
			}
			fresh = append(fresh, ev)
		}
		if done || out.NextToken == nil {
			break
		}
		token = out.NextToken
	}
	for i := len(fresh) - 1; i >= 0; i-- {
		ev := fresh[i]
		s.seen[aws.ToString(ev.EventId)] = true
		s.all = append(s.all, ev)
		line := fmt.Sprintf("%s %s %s", aws.ToString(ev.LogicalResourceId), aws.ToString(ev.ResourceType), ev.ResourceStatus)
		if ev.Timestamp != nil {
			line = ev.Timestamp.UTC().Format("15:04:05") + " " + line
		}
		if r := aws.ToString(ev.ResourceStatusReason); r != "" {
			line += ": " + r
		}
		fmt.Fprintln(s.log, line)
	}
}

// firstFailure returns the earliest failed resource event of the operation;
// it names the root cause, while later ones say "Resource creation cancelled".
func (s *eventStream) firstFailure() *types.StackEvent {
	var fallback *types.StackEvent
	for i := range s.all {
		ev := &s.all[i]
		if !strings.HasSuffix(string(ev.ResourceStatus), "_FAILED") {
			continue
		}
		r := aws.ToString(ev.ResourceStatusReason)
		if aws.ToString(ev.LogicalResourceId) == aws.ToString(ev.StackName) || strings.Contains(r, "cancelled") {
			if fallback == nil {
				fallback = ev
			}
			continue
		}
		return ev
	}
	return fallback
}

func (s *eventStream) failure(st *types.Stack) *StackFailedError {
	e := &StackFailedError{Stack: s.stack, Status: string(st.StackStatus), Reason: aws.ToString(st.StackStatusReason)}
	if st.StackName != nil {
		e.Stack = *st.StackName
	}
	if ev := s.firstFailure(); ev != nil {
		e.Resource = aws.ToString(ev.LogicalResourceId)
		e.ResourceType = aws.ToString(ev.ResourceType)
		e.Reason = aws.ToString(ev.ResourceStatusReason)
	}
	e.Kind = classify(e.Reason)
	return e
}

// waitSettled polls until the stack leaves every *_IN_PROGRESS status,
// streaming events, and returns the settled stack. A stack that vanished
// (deleted) returns ErrStackNotFound.
func waitSettled(ctx context.Context, api CloudFormation, clock Clock, stack string, ev *eventStream) (*types.Stack, error) {
	b := newBackoff(firstPoll, maxPoll)
	for {
		st, err := describe(ctx, api, clock, stack)
		if err != nil {
			return nil, err
		}
		ev.poll(ctx)
		if !strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS") {
			return st, nil
		}
		if err := b.wait(ctx, clock); err != nil {
			return st, fmt.Errorf("wait for stack %s (%s): %w", stack, st.StackStatus, err)
		}
	}
}

func stackOutputs(st *types.Stack) map[string]string {
	out := map[string]string{}
	for _, o := range st.Outputs {
		out[snake(aws.ToString(o.OutputKey))] = aws.ToString(o.OutputValue)
	}
	out["stack_name"] = aws.ToString(st.StackName)
	out["stack_id"] = aws.ToString(st.StackId)
	return out
}

// snake turns an output key into a step output key: InstanceId → instance_id,
// PrivateIp → private_ip, SSMLogGroup → ssm_log_group.
func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		upper := c >= 'A' && c <= 'Z'
		if upper && i > 0 {
			prevLower := r[i-1] >= 'a' && r[i-1] <= 'z' || r[i-1] >= '0' && r[i-1] <= '9'
			nextLower := i+1 < len(r) && r[i+1] >= 'a' && r[i+1] <= 'z'
			if prevLower || (nextLower && r[i-1] >= 'A' && r[i-1] <= 'Z') {
				b.WriteByte('_')
			}
		}
		if upper {
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}
