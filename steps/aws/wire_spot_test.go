package aws

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/steps/aws/cfn"
)

func createParamsAt(e *wireEnv, i int) map[string]string {
	f := e.srv.CFN.Creates()[i]
	params := map[string]string{}
	for j := 1; f.Get("Parameters.member."+itoa(j)+".ParameterKey") != ""; j++ {
		params[f.Get("Parameters.member."+itoa(j)+".ParameterKey")] = f.Get("Parameters.member." + itoa(j) + ".ParameterValue")
	}
	return params
}

// TestWireSpotFallsBackAlongPlacements: a spot request moves on from a zone
// without spot capacity, from a maximum price below the spot price, and past
// an instance type whose spot quota is used up (skipping its other zones:
// quotas are regional), then falls back to on-demand; each failed stack is
// deleted before the next try and the log says what was tried and why.
func TestWireSpotFallsBackAlongPlacements(t *testing.T) {
	e := newWire(t, -3*time.Second)
	e.srv.EC2.Offer("dl1.24xlarge", "us-east-1a", "us-east-1b")
	e.srv.EC2.Offer("trn1.32xlarge", "us-east-1a", "us-east-1b")
	e.srv.EC2.NoSpotCapacity("dl1.24xlarge", "us-east-1a")
	e.srv.EC2.SpotPrice("dl1.24xlarge", 5.2)
	e.srv.EC2.Quota("spot", "trn1.32xlarge", 0)
	sr, log, _ := stepRun(wireRun, "provision", map[string]any{"market": "spot", "max_price": "4.00", "fallback": "on-demand",
		"instance_types": []any{"dl1.24xlarge", "trn1.32xlarge"}})
	res, err := e.runner().ProvisionStack().Run(t.Context(), sr)
	if err != nil {
		t.Fatalf("provision: %v\n%s", err, log)
	}
	want := []struct{ market, typ, zone string }{
		{"spot", "dl1.24xlarge", "us-east-1a"}, {"spot", "dl1.24xlarge", "us-east-1b"},
		{"spot", "trn1.32xlarge", "us-east-1a"}, {"on-demand", "dl1.24xlarge", "us-east-1a"}}
	if n := len(e.srv.CFN.Creates()); n != len(want) {
		t.Fatalf("%d creations, want %d\n%s", n, len(want), log)
	}
	for i, w := range want {
		p := createParamsAt(e, i)
		if p["MarketType"] != w.market || p["InstanceType"] != w.typ || p["AvailabilityZone"] != w.zone {
			t.Errorf("creation %d: %s %s in %s, want %v", i+1, p["MarketType"], p["InstanceType"], p["AvailabilityZone"], w)
		}
		if price := p["SpotMaxPrice"]; (w.market == "spot") != (price == "4.00") {
			t.Errorf("creation %d (%s): SpotMaxPrice %q", i+1, w.market, price)
		}
	}
	for i, st := range e.srv.CFN.Stacks() {
		if want := map[bool]string{true: "CREATE_COMPLETE", false: "DELETE_COMPLETE"}[i == len(want)-1]; st.Status != want {
			t.Errorf("stack %d is %s, want %s", i+1, st.Status, want)
		}
	}
	if res.Outputs["market_type"] != "on-demand" || res.Outputs["instance_type"] != "dl1.24xlarge" || res.Outputs["availability_zone"] != "us-east-1a" {
		t.Errorf("outputs %v", res.Outputs)
	}
	for _, line := range []string{
		"spot dl1.24xlarge in us-east-1a: no spot instance at that price or capacity (There is no Spot capacity available",
		"and trying spot dl1.24xlarge in us-east-1b\n",
		"spot dl1.24xlarge in us-east-1b: no spot instance at that price or capacity (Your Spot request price of 4.00 is lower than the minimum required Spot request fulfillment price of 5.2.",
		"spot trn1.32xlarge in us-east-1a: the account's vCPU quota for it is used up (Max spot instance count exceeded",
		"and trying on-demand dl1.24xlarge in us-east-1a\n",
	} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, log)
		}
	}
}

// TestWireCapacityExhausted: the user's zones (one of which does not offer
// the type, and is skipped before any stack is made) all refuse; the error
// is the capacity failure and lists every placement tried.
func TestWireCapacityExhausted(t *testing.T) {
	e := newWire(t, -3*time.Second)
	e.srv.EC2.Offer("dl1.24xlarge", "us-east-1a", "us-east-1b", "us-east-1c")
	e.srv.EC2.NoCapacity("us-east-1b", "us-east-1c")
	sr, log, _ := stepRun(wireRun, "provision", map[string]any{"availability_zones": []any{"us-east-1c", "us-east-1f", "us-east-1b"},
		"instance_types": "dl1.24xlarge, trn1.32xlarge", "market": "spot"})
	e.srv.EC2.Offer("trn1.32xlarge", "us-east-1a")
	_, err := e.runner().ProvisionStack().Run(t.Context(), sr)
	if !errors.Is(err, cfn.ErrInsufficientCapacity) {
		t.Fatalf("err = %v, want the capacity failure\n%s", err, log)
	}
	if !strings.Contains(err.Error(), "every placement was tried: spot dl1.24xlarge in us-east-1c (no capacity), spot dl1.24xlarge in us-east-1b (no capacity)") {
		t.Errorf("error does not list what was tried: %v", err)
	}
	for _, line := range []string{"zone us-east-1f does not offer dl1.24xlarge (EC2 offers it in us-east-1a, us-east-1b, us-east-1c): skipping it",
		"zone us-east-1c does not offer trn1.32xlarge"} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, log)
		}
	}
	if n := len(e.srv.CFN.Creates()); n != 2 {
		t.Errorf("%d creations, want 2 (the offered zones of the list)", n)
	}
}

// TestWireQuotaCountsLiveInstances: the fake's on-demand quota counts the
// instances that exist: a second stack of the type fails with
// VcpuLimitExceeded and moves to the next instance type without trying the
// type's other zones; once the first stack is deleted the type launches again.
func TestWireQuotaCountsLiveInstances(t *testing.T) {
	e := newWire(t, -3*time.Second)
	e.srv.EC2.Offer("trn1.32xlarge", "us-east-1a")
	e.srv.EC2.Quota("on-demand", "dl1.24xlarge", 1)
	steps := e.runner()
	with := map[string]any{"instance_types": []any{"dl1.24xlarge", "trn1.32xlarge"}}
	sr, log, _ := stepRun(wireRun, "one", with)
	if _, err := steps.ProvisionStack().Run(t.Context(), sr); err != nil {
		t.Fatalf("first: %v\n%s", err, log)
	}
	sr, log, _ = stepRun(wireRun, "two", with)
	res, err := steps.ProvisionStack().Run(t.Context(), sr)
	if err != nil || res.Outputs["instance_type"] != "trn1.32xlarge" {
		t.Fatalf("second: %v %v\n%s", err, res.Outputs, log)
	}
	if !strings.Contains(log.String(), "on-demand dl1.24xlarge in us-east-1a: the account's vCPU quota for it is used up (You have requested more vCPU capacity than your current vCPU limit of 96") ||
		strings.Contains(log.String(), "dl1.24xlarge in us-east-1b") {
		t.Errorf("log:\n%s", log)
	}
	td, _, _ := stepRun(wireRun, "teardown", map[string]any{"stack": cfn.StackName(wireRun, "one")})
	if _, err := steps.Teardown().Run(t.Context(), td); err != nil {
		t.Fatal(err)
	}
	sr, log, _ = stepRun(wireRun, "three", with)
	if res, err := steps.ProvisionStack().Run(t.Context(), sr); err != nil || res.Outputs["instance_type"] != "dl1.24xlarge" {
		t.Fatalf("after teardown: %v %v\n%s", err, res.Outputs, log)
	}
}

// TestWireSpotServiceLinkedRole: the account's first spot launch makes EC2
// create the AWSServiceRoleForEC2Spot service-linked role with the
// caller's credentials (CloudFormation's, the runner's). Under the printed
// policy without iam:CreateServiceLinkedRole the stack fails with EC2's
// AuthFailure.ServiceLinkedRoleCreationNotPermitted and no role is made;
// under the printed policy the launch makes it, and the next spot launch
// needs nothing more.
func TestWireSpotServiceLinkedRole(t *testing.T) {
	sp := iamTestSpec()
	sp.Steps[0].With["market"] = "spot"
	policy, err := IAMPolicy(sp, "")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(policy, &doc); err != nil {
		t.Fatal(err)
	}
	var kept []any
	for _, st := range doc["Statement"].([]any) {
		if st.(map[string]any)["Sid"] != "SpotServiceLinkedRole" {
			kept = append(kept, st)
		}
	}
	if len(kept) != len(doc["Statement"].([]any))-1 {
		t.Fatalf("the printed policy has no SpotServiceLinkedRole statement:\n%s", policy)
	}
	doc["Statement"] = kept
	without, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}

	e := newWire(t, -3*time.Second)
	if err := e.srv.SetPolicy(without); err != nil {
		t.Fatal(err)
	}
	sr, log, _ := stepRun(wireRun, "provision", map[string]any{"market": "spot", "results_bucket": "my-results"})
	_, err = e.runner().ProvisionStack().Run(t.Context(), sr)
	if err == nil || !strings.Contains(err.Error()+log.String(), "AuthFailure.ServiceLinkedRoleCreationNotPermitted") {
		t.Fatalf("spot launch without the grant: %v\n%s", err, log)
	}
	if e.srv.EC2.SpotRoleExists() {
		t.Error("the spot role was made without the permission")
	}
	if d := e.srv.Denied(); len(d) != 1 || !strings.HasPrefix(d[0], "iam:CreateServiceLinkedRole on arn:aws:iam::") {
		t.Errorf("denied %v, want only the service-linked role", d)
	}

	e = newWire(t, -3*time.Second)
	if err := e.srv.SetPolicy(policy); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		sr, log, _ := stepRun(wireRun+"-"+itoa(i), "provision", map[string]any{"market": "spot", "results_bucket": "my-results"})
		if _, err := e.runner().ProvisionStack().Run(t.Context(), sr); err != nil {
			t.Fatalf("spot launch %d under the printed policy: %v\n%s", i+1, err, log)
		}
		if !e.srv.EC2.SpotRoleExists() {
			t.Error("no spot role after a spot launch")
		}
	}
	if d := e.srv.Denied(); len(d) > 0 {
		t.Errorf("the printed policy refused %v", d)
	}
}
