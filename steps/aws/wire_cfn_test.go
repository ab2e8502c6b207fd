package aws

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

const wireRun = "unet-20260301T120000Z-ab12"

// TestWireProvisionAndTeardown drives provision-stack and teardown through
// the real CloudFormation and EC2 clients: query-protocol requests, XML
// responses, SigV4, the SDK's retries of throttled calls, stack status
// transitions and events, outputs, and deletion to "does not exist".
func TestWireProvisionAndTeardown(t *testing.T) {
	e := newWire(t, -3*time.Second)
	steps := e.runner()
	e.srv.Throttle("CloudFormation.DescribeStacks", 2) // absorbed by the SDK's retryer
	e.srv.Throttle("CloudFormation.CreateStack", 1)    // a retried create must not make two stacks
	e.srv.Throttle("EC2.DescribeImages", 1)            // EC2 throttles with 503 RequestLimitExceeded
	e.srv.Throttle("SSM.GetParameter", 1)              // SSM with 400 ThrottlingException
	e.srv.Throttle("CloudFormation.DescribeStackEvents", 1)
	sr, log, saved := stepRun(wireRun, "provision", map[string]any{"root_volume_gib": "300", "max_lifetime": "6h",
		"results_bucket": "my-results", "tags": map[string]any{"team": "ml"}})
	res, err := steps.ProvisionStack().Run(t.Context(), sr)
	if err != nil {
		t.Fatalf("provision: %v\n%s", err, log)
	}
	name := cfn.StackName(wireRun, "provision")
	out := res.Outputs
	if !regexp.MustCompile(`^i-0[0-9a-f]{16}$`).MatchString(out["instance_id"]) || out["host"] != "ssm:"+out["instance_id"] ||
		out["availability_zone"] != "us-east-1a" || out["region"] != "us-east-1" || out["stack_name"] != name ||
		out["results_bucket"] != "my-results" || out["ssm_log_group"] != "/gpipe/ssm" || out["private_ip"] == "" {
		t.Errorf("outputs %v", out)
	}
	if !strings.HasPrefix(out["stack_id"], "arn:aws:cloudformation:us-east-1:") || saved[cfn.ResumeStackID] != out["stack_id"] {
		t.Errorf("stack id %q, saved %v", out["stack_id"], saved)
	}
	creates := e.srv.CFN.Creates()
	if len(creates) != 1 || e.srv.Calls("CloudFormation.CreateStack") != 2 {
		t.Fatalf("%d stacks from %d CreateStack requests", len(creates), e.srv.Calls("CloudFormation.CreateStack"))
	}
	f := creates[0]
	params := map[string]string{}
	for i := 1; f.Get("Parameters.member."+itoa(i)+".ParameterKey") != ""; i++ {
		params[f.Get("Parameters.member."+itoa(i)+".ParameterKey")] = f.Get("Parameters.member." + itoa(i) + ".ParameterValue")
	}
	// No ami: Canonical's Ubuntu 22.04, from its SSM public parameter.
	for k, v := range map[string]string{"ImageId": "ami-0ddd", "RootDeviceName": "/dev/sda1", "RootVolumeGiB": "300",
		"MaxLifetimeMinutes": "360", "ResultsBucket": "my-results", "RunId": wireRun, "InstanceType": "dl1.24xlarge"} {
		if params[k] != v {
			t.Errorf("parameter %s = %q, want %q", k, params[k], v)
		}
	}
	if f.Get("Capabilities.member.1") != "CAPABILITY_IAM" || f.Get("ClientRequestToken") == "" || f.Get("TimeoutInMinutes") == "" {
		t.Errorf("create request %v", f)
	}
	if info := e.srv.CFN.Stacks()[0]; info.Tags["gpipe:run-id"] != wireRun || info.Tags["team"] != "ml" || info.Status != "CREATE_COMPLETE" {
		t.Errorf("stack %+v", info)
	}
	for _, want := range []string{"AMI ami-0ddd (root device /dev/sda1)",
		`AMI ami-0ddd is "ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20250601" (SSM parameter /aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp3/ami-id)`,
		"Instance AWS::EC2::Instance CREATE_IN_PROGRESS",
		"Instance AWS::EC2::Instance CREATE_COMPLETE", name + " AWS::CloudFormation::Stack CREATE_COMPLETE"} {
		if n := strings.Count(log.String(), want+"\n"); n != 1 {
			t.Errorf("log has %q %d times, want once:\n%s", want, n, log)
		}
	}
	if n := e.srv.Calls("CloudFormation.DescribeStacks"); n < 5 {
		t.Errorf("%d DescribeStacks calls: the throttled ones were not retried?", n)
	}

	// Teardown deletes it and waits until a describe by name says it does not exist.
	tsr, tlog, _ := stepRun(wireRun, "teardown", map[string]any{"stack": name})
	if _, err := steps.Teardown().Run(t.Context(), tsr); err != nil {
		t.Fatalf("teardown: %v\n%s", err, tlog)
	}
	if st := e.srv.CFN.Stacks()[0].Status; st != "DELETE_COMPLETE" {
		t.Errorf("status after teardown %s", st)
	}
	if !strings.Contains(tlog.String(), "Instance AWS::EC2::Instance DELETE_COMPLETE") || !strings.Contains(tlog.String(), "stack "+name+" deleted") {
		t.Errorf("delete events not streamed:\n%s", tlog)
	}
	tsr, tlog, _ = stepRun(wireRun, "teardown", map[string]any{"stack": name})
	if _, err := steps.Teardown().Run(t.Context(), tsr); err != nil || !strings.Contains(tlog.String(), "does not exist") {
		t.Fatalf("second teardown: %v\n%s", err, tlog)
	}
	if n := e.loads.Load(); n != 1 {
		t.Errorf("configuration loaded %d times, want once per region", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestWireRollbackThenRetry: the root cause comes from the rollback's
// events; the next attempt deletes the ROLLBACK_COMPLETE stack and creates a
// new one with a new request token.
func TestWireRollbackThenRetry(t *testing.T) {
	e := newWire(t, 2*time.Second)
	steps := e.runner()
	quota := "You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit. (Service: Ec2, Status Code: 400, Request ID: 1)"
	e.srv.CFN.FailNextCreate(awsfake.Failure{Resource: "Instance", Reason: quota})
	sr, log, _ := stepRun(wireRun, "provision", map[string]any{"ami": "ami-0aaa"})
	_, err := steps.ProvisionStack().Run(t.Context(), sr)
	var fe *cfn.StackFailedError
	if !errors.As(err, &fe) || !errors.Is(err, cfn.ErrQuotaExceeded) {
		t.Fatalf("err = %v, want a quota StackFailedError\n%s", err, log)
	}
	if fe.Resource != "Instance" || fe.ResourceType != "AWS::EC2::Instance" || fe.Reason != quota || fe.Status != "ROLLBACK_COMPLETE" {
		t.Errorf("failure %+v", fe)
	}
	sr, log, _ = stepRun(wireRun, "provision", map[string]any{"ami": "ami-0aaa"})
	sr.Attempt = 2
	res, err := steps.ProvisionStack().Run(t.Context(), sr)
	if err != nil {
		t.Fatalf("retry: %v\n%s", err, log)
	}
	stacks := e.srv.CFN.Stacks()
	if len(stacks) != 2 || stacks[0].Status != "DELETE_COMPLETE" || stacks[1].Status != "CREATE_COMPLETE" || res.Outputs["stack_id"] != stacks[1].ID {
		t.Errorf("stacks %+v, outputs %v", stacks, res.Outputs)
	}
	c := e.srv.CFN.Creates()
	if c[0].Get("ClientRequestToken") == c[1].Get("ClientRequestToken") {
		t.Error("the retry reused the request token of the failed stack")
	}
}

// TestWireThrottlingOutlastsSDKRetries: when the SDK's retryer gives up on a
// throttled DescribeStacks, the wait keeps polling with its own backoff.
func TestWireThrottlingOutlastsSDKRetries(t *testing.T) {
	e := newWire(t, 0)
	steps := e.runner()
	sr, log, _ := stepRun(wireRun, "provision", map[string]any{"ami": "ami-0aaa"})
	e.srv.Throttle("CloudFormation.DescribeStacks", 9) // more than MaxAttempts (4), twice
	// The SDK retries a CreateStack whose answer was lost with the same
	// ClientRequestToken, which CloudFormation recognises: still one stack.
	e.srv.LoseResponses("CloudFormation.CreateStack", 1)
	if _, err := steps.ProvisionStack().Run(t.Context(), sr); err != nil {
		t.Fatalf("provision: %v\n%s", err, log)
	}
	if n, calls := len(e.srv.CFN.Stacks()), e.srv.Calls("CloudFormation.CreateStack"); n != 1 || calls != 2 {
		t.Errorf("%d stacks from %d CreateStack requests, want 1 from 2", n, calls)
	}
	if len(e.clock.Slept()) == 0 {
		t.Error("no backoff after the SDK gave up")
	}
}

// TestWireInterruptDuringCreate: Ctrl-C while CREATE_IN_PROGRESS leaves the
// stack to teardown, which deletes it (cancelling the creation).
func TestWireInterruptDuringCreate(t *testing.T) {
	e := newWire(t, 0)
	steps := e.runner()
	e.srv.CFN.CreateWaits = 20
	ctx, cancel := context.WithCancel(t.Context())
	e.clock.setHook(func(int) { cancel() })
	sr, _, _ := stepRun(wireRun, "provision", map[string]any{"ami": "ami-0aaa"})
	res, err := steps.ProvisionStack().Run(ctx, sr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	e.clock.setHook(nil)
	if st := e.srv.CFN.Stacks()[0].Status; st != "CREATE_IN_PROGRESS" {
		t.Fatalf("status %s", st)
	}
	tsr, tlog, _ := stepRun(wireRun, "teardown", map[string]any{"stack": res.Outputs["stack_name"]})
	if _, err := steps.Teardown().Run(t.Context(), tsr); err != nil {
		t.Fatalf("teardown: %v\n%s", err, tlog)
	}
	if st := e.srv.CFN.Stacks()[0].Status; st != "DELETE_COMPLETE" {
		t.Errorf("status %s after teardown:\n%s", st, tlog)
	}
	if !strings.Contains(tlog.String(), "Resource creation cancelled") {
		t.Errorf("cancelled creation not in the log:\n%s", tlog)
	}
	if strings.Contains(tlog.String(), "Resource creation Initiated") {
		t.Errorf("teardown printed the creation's events as its own:\n%s", tlog)
	}
}

// TestWireDeleteFailedReasonWithSkewedClock: when AWS's clock is behind the
// runner's, the events of the deletion must still be read, or the reason a
// deletion failed is lost.
func TestWireDeleteFailedReasonWithSkewedClock(t *testing.T) {
	for _, skew := range []time.Duration{-2 * time.Minute, 0, 2 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			e := newWire(t, skew)
			steps := e.runner()
			sr, log, _ := stepRun(wireRun, "provision", map[string]any{"ami": "ami-0aaa"})
			res, err := steps.ProvisionStack().Run(t.Context(), sr)
			if err != nil {
				t.Fatalf("provision: %v\n%s", err, log)
			}
			reason := "resource sg-0123 has a dependent object (Service: Ec2, Status Code: 400)"
			e.srv.CFN.FailDeletes(&awsfake.Failure{Resource: "SecurityGroup", Reason: reason})
			tsr, tlog, _ := stepRun(wireRun, "teardown", map[string]any{"stack": res.Outputs["stack_name"]})
			_, err = steps.Teardown().Run(t.Context(), tsr)
			var fe *cfn.StackFailedError
			if !errors.As(err, &fe) || fe.Status != "DELETE_FAILED" || fe.Resource != "SecurityGroup" || !strings.Contains(err.Error(), reason) {
				t.Fatalf("err = %v, want DELETE_FAILED naming SecurityGroup\n%s", err, tlog)
			}
			if !strings.Contains(tlog.String(), "SecurityGroup AWS::EC2::SecurityGroup DELETE_FAILED") {
				t.Errorf("delete events not streamed:\n%s", tlog)
			}
		})
	}
}

// TestWireTeardownByRunTag: teardown with no stack finds the run's stacks by
// tag through a paginated DescribeStacks.
func TestWireTeardownByRunTag(t *testing.T) {
	e := newWire(t, 0)
	steps := e.runner()
	for _, id := range []string{"a", "b", "c", "d"} {
		sr, log, _ := stepRun("run-"+id, "provision", map[string]any{"ami": "ami-0aaa"})
		if _, err := steps.ProvisionStack().Run(t.Context(), sr); err != nil {
			t.Fatalf("provision %s: %v\n%s", id, err, log)
		}
	}
	tsr, tlog, _ := stepRun("run-d", "teardown", map[string]any{"stack": ""})
	res, err := steps.Teardown().Run(t.Context(), tsr)
	if err != nil || res.Outputs["deleted"] != cfn.StackName("run-d", "provision") {
		t.Fatalf("teardown: %v %v\n%s", err, res.Outputs, tlog)
	}
	for _, st := range e.srv.CFN.Stacks() {
		if want := map[bool]string{true: "DELETE_COMPLETE", false: "CREATE_COMPLETE"}[st.Tags["gpipe:run-id"] == "run-d"]; st.Status != want {
			t.Errorf("stack %s: %s, want %s", st.Name, st.Status, want)
		}
	}
}

// TestWireTeardownWaitsOutRollback: DeleteStack is refused while a rollback
// runs ("cannot be deleted while in status ROLLBACK_IN_PROGRESS"); teardown
// waits for the rollback to finish, then deletes.
func TestWireTeardownWaitsOutRollback(t *testing.T) {
	e := newWire(t, 0)
	steps := e.runner()
	e.srv.CFN.RollbackWaits = 6
	e.srv.CFN.FailNextCreate(awsfake.Failure{Resource: "Instance", Reason: "InsufficientInstanceCapacity"})
	ctx, cancel := context.WithCancel(t.Context())
	e.clock.setHook(func(int) {
		if st := e.srv.CFN.Stacks(); len(st) == 1 && st[0].Status == "ROLLBACK_IN_PROGRESS" {
			cancel()
		}
	})
	sr, _, _ := stepRun(wireRun, "provision", map[string]any{"ami": "ami-0aaa"})
	res, err := steps.ProvisionStack().Run(ctx, sr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled during the rollback", err)
	}
	e.clock.setHook(nil)
	tsr, tlog, _ := stepRun(wireRun, "teardown", map[string]any{"stack": res.Outputs["stack_name"]})
	if _, err := steps.Teardown().Run(t.Context(), tsr); err != nil {
		t.Fatalf("teardown: %v\n%s", err, tlog)
	}
	if st := e.srv.CFN.Stacks()[0].Status; st != "DELETE_COMPLETE" {
		t.Errorf("status %s\n%s", st, tlog)
	}
	if !strings.Contains(tlog.String(), "ROLLBACK_COMPLETE") {
		t.Errorf("the rollback's end was not shown:\n%s", tlog)
	}
}

// TestWireResumeReportsFailureItWatched: a resumed provision attaches to the
// creation its predecessor started; when that creation fails, the failure is
// reported, not hidden behind a silent delete and a second creation.
func TestWireResumeReportsFailureItWatched(t *testing.T) {
	e := newWire(t, 0)
	steps := e.runner()
	e.srv.CFN.CreateWaits = 6
	e.srv.CFN.FailNextCreate(awsfake.Failure{Resource: "Instance", Reason: "We currently do not have sufficient dl1.24xlarge capacity in the Availability Zone you requested (us-east-1a)."})
	ctx, cancel := context.WithCancel(t.Context())
	e.clock.setHook(func(int) { cancel() }) // the first runner dies while the stack is created
	// The user's zone: a capacity failure there is reported, not answered
	// with another zone.
	with := map[string]any{"ami": "ami-0aaa", "availability_zone": "us-east-1a"}
	sr, _, saved := stepRun(wireRun, "provision", with)
	if _, err := steps.ProvisionStack().Run(ctx, sr); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	e.clock.setHook(nil)
	steps = e.runner()
	sr, log, _ := stepRun(wireRun, "provision", with)
	sr.Attempt, sr.Resume = 2, saved
	_, err := steps.ProvisionStack().Run(t.Context(), sr)
	if !errors.Is(err, cfn.ErrInsufficientCapacity) {
		t.Fatalf("err = %v, want the capacity failure\n%s", err, log)
	}
	if n := len(e.srv.CFN.Creates()); n != 1 {
		t.Errorf("%d stacks created, want 1", n)
	}
}

// TestWireZoneWithoutCapacity: EC2 offers dl1.24xlarge in two zones and the
// first has no capacity; the instance fails as EC2 reports it, the stack
// rolls back, and provision-stack deletes it and creates the stack in the
// other zone, saying so.
func TestWireZoneWithoutCapacity(t *testing.T) {
	e := newWire(t, 0)
	steps := e.runner()
	e.srv.EC2.Offer("dl1.24xlarge", "us-east-1c", "us-east-1f")
	e.srv.EC2.NoCapacity("us-east-1c")
	sr, log, _ := stepRun(wireRun, "provision", map[string]any{"ami": "ami-0aaa"})
	res, err := steps.ProvisionStack().Run(t.Context(), sr)
	if err != nil {
		t.Fatalf("provision: %v\n%s", err, log)
	}
	stacks := e.srv.CFN.Stacks()
	if len(stacks) != 2 || stacks[0].Status != "DELETE_COMPLETE" || stacks[1].Status != "CREATE_COMPLETE" {
		t.Fatalf("stacks %+v\n%s", stacks, log)
	}
	if res.Outputs["availability_zone"] != "us-east-1f" {
		t.Errorf("zone %q, want us-east-1f", res.Outputs["availability_zone"])
	}
	for _, want := range []string{"Instance AWS::EC2::Instance CREATE_FAILED: We currently do not have sufficient dl1.24xlarge capacity in the Availability Zone you requested (us-east-1c)",
		"ROLLBACK_COMPLETE", "on-demand dl1.24xlarge in us-east-1c: no capacity for it there now", "trying on-demand dl1.24xlarge in us-east-1f"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if n := e.srv.Calls("EC2.DescribeInstanceTypeOfferings"); n != 1 {
		t.Errorf("%d DescribeInstanceTypeOfferings calls, want 1", n)
	}
}

// with.ami picks the image: an id as is, a name pattern among ami_owner's
// images (Habana's base AMI is a Marketplace image), any SSM parameter. A
// wrong choice fails before CreateStack, naming what was asked for.
func TestWireAMIChoices(t *testing.T) {
	e := newWire(t, 0)
	steps := e.runner()
	e.srv.SSM.SetParameter("/my/ami", "ami-0aaa")
	for i, c := range []struct {
		with     map[string]any
		id, root string
		wantErr  string
	}{
		{map[string]any{"ami": "ami-0aaa"}, "ami-0aaa", "/dev/sda1", ""},
		{map[string]any{"ami": "habanalabs-base-ubuntu22.04-1.21.0-*", "ami_owner": "aws-marketplace"}, "ami-0eee", "/dev/xvda", ""},
		{map[string]any{"ami": "resolve:ssm:/my/ami"}, "ami-0aaa", "/dev/sda1", ""},
		// The old default: Amazon owns no Habana base image of 1.21.
		{map[string]any{"ami": "habanalabs-base-ubuntu22.04-1.21.0-*"}, "", "", "no available AMI owned by amazon matches"},
		{map[string]any{"ami": "resolve:ssm:/not/there"}, "", "", "read AMI id from SSM parameter /not/there"},
		{map[string]any{"ami": "ami-0fff"}, "", "", `describe images "ami-0fff"`},
	} {
		creates := len(e.srv.CFN.Creates())
		sr, log, _ := stepRun(fmt.Sprintf("ami-choice-%d", i), "provision", c.with)
		_, err := steps.ProvisionStack().Run(t.Context(), sr)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ami %v: err = %v, want %q\n%s", c.with, err, c.wantErr, log)
			}
			if len(e.srv.CFN.Creates()) != creates {
				t.Errorf("ami %v: a stack was created", c.with)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ami %v: %v\n%s", c.with, err, log)
		}
		f := e.srv.CFN.Creates()[creates]
		got := map[string]string{}
		for i := 1; f.Get("Parameters.member."+itoa(i)+".ParameterKey") != ""; i++ {
			got[f.Get("Parameters.member."+itoa(i)+".ParameterKey")] = f.Get("Parameters.member." + itoa(i) + ".ParameterValue")
		}
		if got["ImageId"] != c.id || got["RootDeviceName"] != c.root {
			t.Errorf("ami %v: ImageId %q, RootDeviceName %q, want %s, %s", c.with, got["ImageId"], got["RootDeviceName"], c.id, c.root)
		}
	}
}
