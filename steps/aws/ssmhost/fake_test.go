package ssmhost

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// fakeSSM behaves like Run Command on one instance: the agent comes online
// after a few polls, an invocation does not exist for the first poll after
// SendCommand, runs for a few polls while its output lines reach the log
// stream, then ends with the scripted status.
type fakeSSM struct {
	mu          sync.Mutex
	offlineFor  int // DescribeInstanceInformation polls before Online
	sent        []*ssm.SendCommandInput
	cancelled   int
	runFor      int // GetCommandInvocation polls in progress
	status      types.CommandInvocationStatus
	details     string
	code        int32
	stdout      []string // lines the script prints (before the wrapper's markers)
	outputs     string   // $GPIPE_OUTPUT content
	polls       int
	logs        *fakeLogs
	noCloudLogs bool
	notice      string // a spot interruption notice the wrapper prints after stdout
	early       bool   // stdout and the notice are in the log from the first poll on
	// lagged: nothing reaches the log stream before the invocation reads
	// ended. The agent streams output to CloudWatch Logs on its own
	// schedule (Systems Manager User Guide, "Configuring Amazon CloudWatch
	// Logs for Run Command"), so its status may say ended first.
	lagged bool
	ec2    EC2
}

func apiErr(code string) error { return &smithy.GenericAPIError{Code: code, Message: code} }

func (f *fakeSSM) DescribeInstanceInformation(_ context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.offlineFor > 0 {
		f.offlineFor--
		return &ssm.DescribeInstanceInformationOutput{}, nil
	}
	return &ssm.DescribeInstanceInformationOutput{InstanceInformationList: []types.InstanceInformation{
		{InstanceId: aws.String(in.Filters[0].Values[0]), PingStatus: types.PingStatusOnline}}}, nil
}

func (f *fakeSSM) SendCommand(_ context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, in)
	f.polls = 0
	return &ssm.SendCommandOutput{Command: &types.Command{CommandId: aws.String(fmt.Sprintf("cmd-%d", len(f.sent)))}}, nil
}

// nonce extracts the marker nonce from the wrapped script, as the remote
// shell would print it.
func (f *fakeSSM) nonce() string {
	w := f.sent[len(f.sent)-1].Parameters["commands"][0]
	i := strings.Index(w, "::gpipe-outputs-")
	return strings.TrimSuffix(w[i+len("::gpipe-outputs-"):][:24], "::")
}

func (f *fakeSSM) fullStdout() []string {
	n := f.nonce()
	lines := append([]string(nil), f.stdout...)
	if f.notice != "" {
		lines = append(lines, "", "::gpipe-lost-"+n+":: "+f.notice)
	}
	lines = append(lines, "", "::gpipe-outputs-"+n+"::")
	lines = append(lines, strings.Split(f.outputs, "\n")...)
	return append(lines, "", "::gpipe-end-"+n+"::")
}

func (f *fakeSSM) GetCommandInvocation(_ context.Context, in *ssm.GetCommandInvocationInput, _ ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	if f.polls == 1 {
		return nil, apiErr("InvocationDoesNotExist")
	}
	lines := f.fullStdout()
	if f.status != types.CommandInvocationStatusSuccess && f.status != types.CommandInvocationStatusFailed {
		lines = f.stdout // killed: no markers
	}
	out := &ssm.GetCommandInvocationOutput{CommandId: in.CommandId, InstanceId: in.InstanceId, Status: types.CommandInvocationStatusInProgress, ResponseCode: -1}
	// Output reaches CloudWatch line by line while the command runs.
	shown := min(len(lines), (f.polls-1)*len(lines)/max(1, f.runFor))
	if f.early && f.polls-1 < f.runFor {
		lines = append(f.stdout, "", "::gpipe-lost-"+f.nonce()+":: "+f.notice)
		shown = len(lines)
	}
	if f.lagged && f.polls-1 < f.runFor {
		shown = 0
	}
	if !f.noCloudLogs {
		f.logs.set(aws.ToString(in.CommandId)+"/"+aws.ToString(in.InstanceId)+"/aws-runShellScript/stdout", lines[:shown])
	}
	if f.polls-1 < f.runFor {
		return out, nil
	}
	out.Status, out.ResponseCode = f.status, f.code
	out.StatusDetails = aws.String(f.details)
	if f.details == "" {
		out.StatusDetails = aws.String(string(f.status))
	}
	// GetCommandInvocation keeps only the first 24,000 characters.
	full := strings.Join(lines, "\n") + "\n"
	out.StandardOutputContent = aws.String(full[:min(len(full), 24000)])
	return out, nil
}

func (f *fakeSSM) ListCommands(_ context.Context, in *ssm.ListCommandsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &ssm.ListCommandsOutput{}
	for i, c := range f.sent {
		if c.InstanceIds[0] == aws.ToString(in.InstanceId) {
			out.Commands = append(out.Commands, types.Command{CommandId: aws.String(fmt.Sprintf("cmd-%d", i+1)), Comment: c.Comment})
		}
	}
	return out, nil
}

func (f *fakeSSM) CancelCommand(_ context.Context, _ *ssm.CancelCommandInput, _ ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled++
	f.status = types.CommandInvocationStatusCancelled
	return &ssm.CancelCommandOutput{}, nil
}

// fakeLogs serves log streams one event per line, two events per page, with
// forward tokens that stay put at the end of the stream as CloudWatch's do.
type fakeLogs struct {
	mu      sync.Mutex
	streams map[string][]string
	calls   int
}

func (l *fakeLogs) set(stream string, lines []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streams[stream] = lines
}

func (l *fakeLogs) GetLogEvents(_ context.Context, in *cloudwatchlogs.GetLogEventsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	lines, ok := l.streams[aws.ToString(in.LogStreamName)]
	if !ok {
		return nil, apiErr("ResourceNotFoundException")
	}
	start := 0
	if in.NextToken != nil {
		fmt.Sscanf(*in.NextToken, "f/%d", &start)
	}
	end := min(start+2, len(lines))
	out := &cloudwatchlogs.GetLogEventsOutput{NextForwardToken: aws.String(fmt.Sprintf("f/%d", end))}
	for _, s := range lines[start:end] {
		out.Events = append(out.Events, cwtypes.OutputLogEvent{Message: aws.String(s)})
	}
	return out, nil
}
