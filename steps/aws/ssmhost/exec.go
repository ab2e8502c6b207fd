package ssmhost

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
)

// Exec runs s on the instance and returns its $GPIPE_OUTPUT pairs.
func (e *Executor) Exec(ctx context.Context, s host.Script) (map[string]string, error) {
	opt := e.f.opt
	cl, err := e.f.clients(ctx)
	if err != nil {
		return nil, err
	}
	log := s.Log
	if log == nil {
		log = io.Discard
	}
	cmdID, nonce := s.Resume[ResumeCommandID], s.Resume[ResumeNonce]
	if cmdID != "" && nonce != "" {
		fmt.Fprintf(log, "reattaching to SSM command %s on %s\n", cmdID, e.InstanceID)
	} else {
		if prev := s.Previous[ResumeCommandID]; prev != "" {
			if err := e.stopPrevious(ctx, cl.SSM, prev, log); err != nil {
				return nil, err
			}
		}
		if err := e.waitOnline(ctx, cl.SSM, log); err != nil {
			return nil, err
		}
		if ctx.Err() != nil { // nothing sent yet: a resume starts afresh
			return nil, fmt.Errorf("send command to %s: %w", e.InstanceID, context.Cause(ctx))
		}
		nonce = opt.Nonce()
		if cmdID, err = e.sendAndSave(ctx, cl.SSM, s, nonce, log); err != nil {
			return nil, err
		}
	}
	if detaching(ctx) {
		return nil, e.detached(cmdID)
	}
	t := &tail{api: cl.Logs, group: opt.LogGroup, stream: cmdID + "/" + e.InstanceID + "/aws-runShellScript/stdout",
		log: log, begin: beginMarker(nonce), end: endMarker(nonce), lost: lostMarker(nonce)}
	inv, err := e.poll(ctx, cl, cmdID, t)
	if err != nil {
		return nil, err
	}
	e.drain(ctx, t, inv)
	if inv.Status != types.CommandInvocationStatusSuccess && t.notice != "" {
		// The notice reached the log only with the rest of it, after the
		// command's status said it ended (CloudWatch delivers output after
		// the agent reports the end): the step stopped because its host
		// goes away, as when poll sees the notice first.
		fmt.Fprintf(log, "the step ended (%s) after a spot interruption notice\n", inv.Status)
		return nil, e.lost(e.zone(ctx, cl.EC2), fmt.Errorf("spot interruption notice from instance metadata: %s", t.notice))
	}
	if inv.Status != types.CommandInvocationStatusSuccess {
		// A script killed by its instance's shutdown fails like any other.
		if err := e.instanceGone(ctx, cl.EC2, log); err != nil {
			return nil, err
		}
	}
	return e.result(inv, t, log)
}

func (e *Executor) waitOnline(ctx context.Context, api SSM, log io.Writer) error {
	opt := e.f.opt
	deadline := opt.Now().Add(opt.OnlineTimeout)
	b := &backoff{next: 2 * time.Second, max: 30 * time.Second}
	said := false
	for {
		out, err := api.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
			Filters: []types.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{e.InstanceID}}},
		})
		status := "not registered"
		switch {
		case err == nil && len(out.InstanceInformationList) > 0:
			status = string(out.InstanceInformationList[0].PingStatus)
			if out.InstanceInformationList[0].PingStatus == types.PingStatusOnline {
				return nil
			}
		case err != nil && !isThrottle(err):
			return fmt.Errorf("describe SSM instance %s: %w", e.InstanceID, err)
		}
		if !opt.Now().Before(deadline) {
			return fmt.Errorf("instance %s: SSM agent not online after %s (status: %s): check that the instance is running, "+
				"has the AmazonSSMManagedInstanceCore role and outbound internet (or SSM VPC endpoints)", e.InstanceID, opt.OnlineTimeout, status)
		}
		if !said {
			fmt.Fprintf(log, "waiting for the SSM agent on %s (%s)\n", e.InstanceID, status)
			said = true
		}
		if err := b.wait(ctx, opt.Sleep); err != nil {
			return fmt.Errorf("wait for SSM agent on %s: %w", e.InstanceID, err)
		}
	}
}

// sendAndSave sends the script and saves the command id, shielded from a
// detach (see shieldDetach); other cancellations still cut it short.
func (e *Executor) sendAndSave(ctx context.Context, api SSM, s host.Script, nonce string, log io.Writer) (string, error) {
	sctx, stop := shieldDetach(ctx)
	defer stop()
	cmdID, err := e.send(sctx, api, s, nonce)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "sent SSM command %s to %s\n", cmdID, e.InstanceID)
	if s.SaveResume != nil {
		// Saved before anything else can fail, so a runner that dies from
		// here on is resumed by reattaching, never by sending again.
		if err := s.SaveResume(sctx, ResumeCommandID, cmdID); err != nil {
			return "", fmt.Errorf("save command id %s: %w", cmdID, err)
		}
		if err := s.SaveResume(sctx, ResumeNonce, nonce); err != nil {
			return "", fmt.Errorf("save command nonce: %w", err)
		}
	}
	return cmdID, nil
}

// poll waits for the invocation to finish, tailing its output meanwhile.
// InvocationDoesNotExist right after SendCommand is normal: the invocation
// appears a moment later. On cancellation the command is cancelled too,
// except when the runner detaches: then it keeps running for a resume to
// reattach to.
func (e *Executor) poll(ctx context.Context, cl *Clients, cmdID string, t *tail) (*ssm.GetCommandInvocationOutput, error) {
	opt := e.f.opt
	api := cl.SSM
	b := &backoff{next: time.Second, max: 15 * time.Second}
	missing := 0
	checked := opt.Now()
	var notice *graceful // set once the step got a spot interruption notice
	for {
		inv, err := api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(cmdID), InstanceId: aws.String(e.InstanceID)})
		switch {
		case err == nil:
			switch inv.Status {
			case types.CommandInvocationStatusPending, types.CommandInvocationStatusInProgress,
				types.CommandInvocationStatusDelayed, types.CommandInvocationStatusCancelling:
			default:
				if notice != nil {
					e.drain(ctx, t, inv)
					fmt.Fprintf(t.log, "the step ended (%s) %s after the interruption notice\n", inv.Status, opt.Now().Sub(notice.at).Round(time.Second))
					return nil, notice.err
				}
				return inv, nil
			}
		case apiCode(err) == "InvocationDoesNotExist" && missing < 30:
			missing++
		case isThrottle(err):
		case ctx.Err() != nil:
		default:
			return nil, fmt.Errorf("get command %s on %s: %w", cmdID, e.InstanceID, err)
		}
		t.pump(ctx)
		if t.notice != "" && notice == nil {
			// The instance has two minutes left: the step's host is lost,
			// and the step may use them to save its work (lost.go).
			notice = &graceful{at: opt.Now(),
				err: e.lost(e.zone(ctx, cl.EC2), fmt.Errorf("spot interruption notice from instance metadata: %s", t.notice))}
			fmt.Fprintf(t.log, "spot interruption notice for %s (%s): the step has up to %s to save its work ($%s)\n",
				e.InstanceID, t.notice, opt.NoticeGrace, NoticeEnv)
			b = &backoff{next: time.Second, max: 2 * time.Second} // its end matters now
		}
		if notice != nil {
			if opt.Now().Sub(notice.at) >= opt.NoticeGrace {
				fmt.Fprintf(t.log, "the step still runs %s after the interruption notice; leaving it to the instance's end\n", opt.NoticeGrace)
				return nil, notice.err
			}
			if err := e.instanceGone(ctx, cl.EC2, t.log); err != nil {
				return nil, notice.err
			}
		}
		if now := opt.Now(); now.Sub(checked) >= instanceCheckEvery {
			checked = now
			if err := e.instanceGone(ctx, cl.EC2, t.log); err != nil {
				return nil, err
			}
		}
		if err := b.wait(ctx, opt.Sleep); err != nil {
			if detaching(ctx) {
				fmt.Fprintf(t.log, "detaching: SSM command %s keeps running on %s; resume the run to reattach\n", cmdID, e.InstanceID)
				return nil, e.detached(cmdID)
			}
			e.cancel(ctx, api, cmdID, t.log)
			return nil, fmt.Errorf("command %s on %s: %w", cmdID, e.InstanceID, err)
		}
	}
}

// graceful is a step that got a spot interruption notice: lost since at,
// and followed until it ends or the grace runs out.
type graceful struct {
	at  time.Time
	err error
}

// cancel stops the remote command. ctx is already done, so the call runs on a
// context that keeps its values but not its cancellation, bounded in time.
func (e *Executor) cancel(ctx context.Context, api SSM, cmdID string, log io.Writer) {
	cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer stop()
	if _, err := api.CancelCommand(cctx, &ssm.CancelCommandInput{CommandId: aws.String(cmdID), InstanceIds: []string{e.InstanceID}}); err != nil {
		fmt.Fprintf(log, "cancel SSM command %s: %v\n", cmdID, err)
		return
	}
	fmt.Fprintf(log, "cancelled SSM command %s\n", cmdID)
}

// drain reads what CloudWatch has not delivered yet: ingestion lags the
// command's status, so poll until the end marker shows up, for a bounded time.
func (e *Executor) drain(ctx context.Context, t *tail, inv *ssm.GetCommandInvocationOutput) {
	b := &backoff{next: time.Second, max: 5 * time.Second}
	for i := 0; i < 12 && !t.ended; i++ {
		t.pump(ctx)
		if t.ended {
			return
		}
		if inv.Status != types.CommandInvocationStatusSuccess && inv.Status != types.CommandInvocationStatusFailed && i >= 2 {
			return // killed, timed out or never delivered: there may be no end marker
		}
		if b.wait(ctx, e.f.opt.Sleep) != nil {
			return
		}
	}
}

func (e *Executor) result(inv *ssm.GetCommandInvocationOutput, t *tail, log io.Writer) (map[string]string, error) {
	if !t.ended {
		// No complete CloudWatch log (group not writable, agent too old):
		// fall back to the invocation's own copy, which is cut at 24,000
		// characters, and say so.
		if content := aws.ToString(inv.StandardOutputContent); content != "" {
			w := log
			if t.fed > 0 {
				w = io.Discard // already shown from CloudWatch; read it for the outputs only
			} else {
				fmt.Fprintf(log, "(no CloudWatch log in %s; output below is from GetCommandInvocation, which keeps only the first 24,000 characters)\n", t.group)
			}
			ft := &tail{log: w, begin: t.begin, end: t.end}
			ft.feed(content)
			ft.flush()
			t = ft
		}
	}
	if se := aws.ToString(inv.StandardErrorContent); se != "" && inv.Status != types.CommandInvocationStatusSuccess {
		fmt.Fprintf(log, "%s\n", strings.TrimRight(se, "\n"))
	}
	// The API documents details with spaces ("Execution Timed Out") and
	// returns them without; accept both.
	details := strings.ReplaceAll(aws.ToString(inv.StatusDetails), " ", "")
	switch inv.Status {
	case types.CommandInvocationStatusSuccess:
		if !t.ended {
			return nil, fmt.Errorf("command %s on %s succeeded but its outputs were not found in its output (truncated?)", aws.ToString(inv.CommandId), e.InstanceID)
		}
		out, err := host.ParseOutputs(strings.NewReader(t.outputs.String()))
		if err != nil {
			return nil, fmt.Errorf("outputs of step on %s: %w", e.InstanceID, err)
		}
		return out, nil
	case types.CommandInvocationStatusFailed:
		if details == "ExecutionTimedOut" {
			return nil, &pipeline.ExitError{Code: 124, Err: fmt.Errorf("command %s on %s hit its execution timeout", aws.ToString(inv.CommandId), e.InstanceID)}
		}
		code := int(inv.ResponseCode)
		if code <= 0 {
			code = 1
		}
		return nil, &pipeline.ExitError{Code: code}
	case types.CommandInvocationStatusTimedOut:
		return nil, &pipeline.ExitError{Code: 124, Err: fmt.Errorf("command %s on %s timed out (%s)", aws.ToString(inv.CommandId), e.InstanceID, details)}
	case types.CommandInvocationStatusCancelled:
		return nil, fmt.Errorf("command %s on %s was cancelled (%s)", aws.ToString(inv.CommandId), e.InstanceID, details)
	}
	// Undeliverable, Terminated, DeliveryTimedOut, ...: the script never ran
	// to the end on a reachable instance.
	return nil, fmt.Errorf("command %s on %s: %s (%s): the instance stopped, was terminated or lost its SSM agent",
		aws.ToString(inv.CommandId), e.InstanceID, inv.Status, details)
}

// tail follows the command's stdout log stream. Lines go to the step log until
// the outputs marker; the outputs section is kept apart.
type tail struct {
	api        Logs
	group      string
	stream     string
	token      *string
	log        io.Writer
	begin, end string
	partial    string
	inOutputs  bool
	blanks     int // empty lines not yet written to log
	ended      bool
	outputs    strings.Builder
	fed        int    // characters consumed, for the GetCommandInvocation fallback
	lost       string // the wrapper's marker of a spot interruption notice (lost.go)
	notice     string // the notice, once seen
}

func (t *tail) pump(ctx context.Context) {
	for page := 0; page < 50 && !t.ended; page++ {
		out, err := t.api.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(t.group), LogStreamName: aws.String(t.stream),
			StartFromHead: aws.Bool(true), NextToken: t.token})
		if err != nil {
			// ResourceNotFoundException: the agent has not created the stream
			// yet. Anything else: try again at the next poll.
			return
		}
		for _, ev := range out.Events {
			t.feed(aws.ToString(ev.Message))
			if !strings.HasSuffix(aws.ToString(ev.Message), "\n") {
				t.feed("\n") // the agent splits output into events at line ends and drops the newline
			}
		}
		same := aws.ToString(out.NextForwardToken) == aws.ToString(t.token)
		t.token = out.NextForwardToken
		if same || len(out.Events) == 0 {
			return
		}
	}
}

func (t *tail) feed(s string) {
	t.fed += len(s)
	t.partial += s
	for {
		line, rest, ok := strings.Cut(t.partial, "\n")
		if !ok {
			return
		}
		t.partial = rest
		t.line(line)
	}
}

func (t *tail) flush() {
	if t.partial != "" {
		t.line(t.partial)
		t.partial = ""
	}
}

func (t *tail) line(line string) {
	if rest, ok := strings.CutPrefix(line, linePrefix); ok && !t.ended {
		// The step's own line (wrap.go), blank ones included.
		if t.inOutputs {
			t.outputs.WriteString(rest + "\n")
			return
		}
		t.blanks = 0 // blank lines without the prefix are the wrapper's
		fmt.Fprintln(t.log, rest)
		return
	}
	// Unprefixed: the wrapper's markers and blank lines, or every line of
	// a command an older wrapper started (a resume reattaching to it).
	switch {
	case t.ended:
	case line == t.begin:
		t.inOutputs = true
		t.blanks = 0 // the wrapper's own line break before the marker
	case line == t.end:
		t.ended = true
	case t.lost != "" && strings.HasPrefix(line, t.lost):
		t.blanks = max(0, t.blanks-1) // the wrapper's line break before the marker
		t.notice = strings.TrimSpace(strings.TrimPrefix(line, t.lost))
		if t.notice == "" {
			t.notice = "(empty)"
		}
	case t.inOutputs:
		t.outputs.WriteString(line + "\n")
	case line == "":
		// Held back: the wrapper prints an empty line before the outputs
		// marker (to end a last line without a newline), which is not the
		// script's.
		t.blanks++
	default:
		for ; t.blanks > 0; t.blanks-- {
			fmt.Fprintln(t.log)
		}
		fmt.Fprintln(t.log, line)
	}
}
