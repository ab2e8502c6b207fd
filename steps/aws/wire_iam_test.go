package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/steps/aws/cfn"
	"github.com/gpipe/gpipe/steps/aws/ssmhost"
)

// lifecycleUnderPolicy is a run's whole life on AWS through the real SDK
// clients, with the fake enforcing policy: provision a stack (the fake's
// CloudFormation checks its handlers' permissions), run a command on the
// instance and read its output, interrupt a second command (which must be
// cancelled on the instance), tear the stack down. It returns what went
// wrong, or nil.
func lifecycleUnderPolicy(t *testing.T, policy []byte) error {
	e := newWire(t, 0)
	if err := e.srv.SetPolicy(policy); err != nil {
		t.Fatal(err)
	}
	steps := e.runner()
	// Every wait ends: a run the policy wedges fails the test, not the suite.
	tctx, stop := context.WithTimeout(t.Context(), time.Minute)
	defer stop()
	sr, log, _ := stepRun(wireRun, "provision", map[string]any{"results_bucket": "my-results"})
	res, err := steps.ProvisionStack().Run(tctx, sr)
	if err != nil {
		return fmt.Errorf("provision: %w\n%s", err, log)
	}
	ex, err := steps.SSMExecutor(pipeline.Host{Name: "gaudi", Address: res.Outputs["host"]})
	if err != nil {
		t.Fatal(err)
	}
	s, slog, _ := remoteScript("echo hello from the instance\necho k=v >>\"$GPIPE_OUTPUT\"\n", nil)
	out, err := ex.Exec(tctx, s)
	if err != nil || out["k"] != "v" || !strings.Contains(slog.String(), "hello from the instance") {
		return fmt.Errorf("command: %v, outputs %v\n%s", err, out, slog)
	}

	body, env, open := gated(t)
	t.Cleanup(open) // a command left running ends with the test
	ctx, cancel := context.WithCancel(tctx)
	base := len(e.clock.Slept())
	e.clock.setHook(func(n int) {
		if n == base+4 {
			cancel()
		}
	})
	s, slog, saved := remoteScript(body, env)
	if _, err := ex.Exec(ctx, s); !errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted command: %v\n%s", err, slog)
	}
	e.clock.setHook(nil)
	id := saved[ssmhost.ResumeCommandID]
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.SSM.Status(id) != "Cancelled" {
		if time.Now().After(deadline) {
			return fmt.Errorf("interrupted command %s still %s on the instance\n%s", id, e.srv.SSM.Status(id), slog)
		}
		time.Sleep(10 * time.Millisecond)
	}

	tsr, tlog, _ := stepRun(wireRun, "teardown", map[string]any{"stack": cfn.StackName(wireRun, "provision")})
	if _, err := steps.Teardown().Run(tctx, tsr); err != nil {
		return fmt.Errorf("teardown: %w\n%s", err, tlog)
	}
	if d := e.srv.Denied(); len(d) > 0 {
		return fmt.Errorf("the run succeeded but the policy refused %v", d)
	}
	return nil
}

// dropAction removes an action from every statement of a policy.
func dropAction(t *testing.T, policy []byte, action string) []byte {
	t.Helper()
	var doc struct {
		Version   string
		Statement []statement
	}
	if err := json.Unmarshal(policy, &doc); err != nil {
		t.Fatal(err)
	}
	var kept []statement
	found := false
	for _, st := range doc.Statement {
		found = found || contains(st.Action, action)
		st.Action = without(st.Action, action)
		if len(st.Action) > 0 {
			kept = append(kept, st)
		}
	}
	if !found {
		t.Fatalf("the policy does not grant %s", action)
	}
	doc.Statement = kept
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWireLifecycleUnderPrintedPolicy: the policy iam-policy prints is
// enough for a run's whole life, and each action in it that this test drops
// breaks the run where AWS would: a call of gpipe's answered AccessDenied, a
// stack whose resource handler lacks a permission failing to create or
// delete, a command left running on the instance.
func TestWireLifecycleUnderPrintedPolicy(t *testing.T) {
	policy, err := IAMPolicy(iamTestSpec(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := lifecycleUnderPolicy(t, policy); err != nil {
		t.Fatalf("under the printed policy: %v", err)
	}
	for action, want := range map[string]string{
		"cloudformation:GetTemplateSummary": "AccessDenied",                   // gpipe's own call
		"ec2:DescribeImages":                "UnauthorizedOperation",          // EC2's code for it
		"iam:ListRolePolicies":              "HandlerErrorCode: AccessDenied", // the Role handler's
		"ec2:DescribeVpcAttribute":          "HandlerErrorCode: AccessDenied", // the VPC handler's
		"ec2:TerminateInstances":            "DELETE_FAILED",
		"ssm:SendCommand":                   "AccessDeniedException",
		"logs:GetLogEvents":                 "policy refused [logs:GetLogEvents", // output falls back to the truncated invocation
		"ssm:CancelCommand":                 "still InProgress on the instance",
	} {
		t.Run(action, func(t *testing.T) {
			err := lifecycleUnderPolicy(t, dropAction(t, policy, action))
			if err == nil {
				t.Fatalf("the run succeeded without %s", action)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("without %s: %v\nwant it to mention %q", action, err, want)
			}
		})
	}
}

// TestWireSendCommandScopedToRunInstances: under the printed policy a
// command reaches an instance only if it carries the run tag (the stack's
// instances do) or the spec names it as a host.
func TestWireSendCommandScopedToRunInstances(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hosts   []spec.HostDecl
		allowed bool
	}{
		{"untagged instance", nil, false},
		{"instance the spec names", []spec.HostDecl{{Name: "gaudi", Address: "ssm:" + instance}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := iamTestSpec()
			sp.Hosts = tc.hosts
			policy, err := IAMPolicy(sp, "")
			if err != nil {
				t.Fatal(err)
			}
			e := newWire(t, 0)
			if err := e.srv.SetPolicy(policy); err != nil {
				t.Fatal(err)
			}
			e.runner()
			e.srv.SSM.AddInstance(instance, 0) // not made by a stack: no tags
			ctx, stop := context.WithTimeout(t.Context(), time.Minute)
			defer stop()
			s, log, _ := remoteScript("echo hi\n", nil)
			_, err = e.executor().Exec(ctx, s)
			if tc.allowed && err != nil {
				t.Fatalf("denied: %v\n%s", err, log)
			}
			if !tc.allowed && (err == nil || !strings.Contains(err.Error(), "AccessDeniedException") ||
				!strings.Contains(err.Error(), "ssm:SendCommand on resource: arn:aws:ec2:us-east-1:123456789012:instance/"+instance)) {
				t.Fatalf("err = %v, want SSM's AccessDeniedException naming the instance", err)
			}
		})
	}
}

// TestWireRollbackNeedsDeleteHandlers: a creation that fails rolls back by
// deleting what it made, with the caller's credentials; a delete handler the
// policy refuses leaves the stack ROLLBACK_FAILED and the resource behind
// (provision-stack's own attempt to delete it then fails the same way).
func TestWireRollbackNeedsDeleteHandlers(t *testing.T) {
	policy, err := IAMPolicy(iamTestSpec(), "")
	if err != nil {
		t.Fatal(err)
	}
	e := newWire(t, 0)
	if err := e.srv.SetPolicy(dropAction(t, policy, "ec2:DeleteSecurityGroup")); err != nil {
		t.Fatal(err)
	}
	e.srv.CFN.FailNextCreate(awsfake.Failure{Resource: "Instance", Reason: "We currently do not have sufficient dl1.24xlarge capacity"})
	steps := e.runner()
	ctx, stop := context.WithTimeout(t.Context(), time.Minute)
	defer stop()
	sr, log, _ := stepRun(wireRun, "provision", map[string]any{"results_bucket": "my-results"})
	if _, err := steps.ProvisionStack().Run(ctx, sr); err == nil {
		t.Fatalf("provision succeeded\n%s", log)
	}
	if !strings.Contains(log.String(), "AWS::CloudFormation::Stack ROLLBACK_FAILED") ||
		!strings.Contains(log.String(), "SecurityGroup AWS::EC2::SecurityGroup DELETE_FAILED: Resource handler returned message") {
		t.Errorf("no ROLLBACK_FAILED for the security group's delete handler:\n%s", log)
	}
	if st := e.srv.CFN.Stacks()[0]; st.Status != "DELETE_FAILED" {
		t.Errorf("stack %s, want DELETE_FAILED after provision-stack's cleanup", st.Status)
	}
	if d := strings.Join(e.srv.Denied(), "\n"); !strings.Contains(d, "ec2:DeleteSecurityGroup") {
		t.Errorf("refused: %s", d)
	}
}
