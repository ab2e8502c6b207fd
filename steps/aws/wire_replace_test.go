package aws

import (
	"strings"
	"testing"
	"time"
)

// TestWireReplaceLostInstance: provision-stack rerun by the engine after its
// instance was lost (StepRun.Replace names the lost host) deletes the stack
// it finds instead of returning the dead instance, and creates it again,
// trying the zone that lost it last. A Replace naming another host (the
// stack was already replaced) leaves the stack alone.
func TestWireReplaceLostInstance(t *testing.T) {
	e := newWire(t, -3*time.Second)
	e.srv.EC2.Offer("dl1.24xlarge", "us-east-1a", "us-east-1b")
	with := map[string]any{"market": "spot", "availability_zones": []any{"us-east-1a", "us-east-1b"}}
	sr, log, _ := stepRun(wireRun, "provision", with)
	first, err := e.runner().ProvisionStack().Run(t.Context(), sr)
	if err != nil || first.Outputs["availability_zone"] != "us-east-1a" {
		t.Fatalf("provision: %v %v\n%s", err, first.Outputs, log)
	}

	sr, log, _ = stepRun(wireRun, "provision", with)
	sr.Attempt, sr.Replace = 2, first.Outputs["host"]
	second, err := e.runner().ProvisionStack().Run(t.Context(), sr)
	if err != nil {
		t.Fatalf("replace: %v\n%s", err, log)
	}
	if second.Outputs["availability_zone"] != "us-east-1b" || second.Outputs["host"] == first.Outputs["host"] ||
		second.Outputs["stack_name"] != first.Outputs["stack_name"] {
		t.Errorf("replacement outputs %v, first %v", second.Outputs, first.Outputs)
	}
	stacks := e.srv.CFN.Stacks()
	if len(stacks) != 2 || stacks[0].Status != "DELETE_COMPLETE" || stacks[1].Status != "CREATE_COMPLETE" {
		t.Errorf("stacks %+v", stacks)
	}
	for _, line := range []string{
		"the instance of stack " + first.Outputs["stack_name"] + " (" + first.Outputs["host"] + " in us-east-1a) was lost; deleting the stack to create it again",
		"zone us-east-1a lost this step's last instance: trying it last",
		"launching spot dl1.24xlarge in us-east-1b",
	} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, log)
		}
	}

	sr, log, _ = stepRun(wireRun, "provision", with)
	sr.Attempt, sr.Replace = 3, first.Outputs["host"]
	third, err := e.runner().ProvisionStack().Run(t.Context(), sr)
	if err != nil || third.Outputs["host"] != second.Outputs["host"] || len(e.srv.CFN.Creates()) != 2 {
		t.Errorf("a stale Replace recreated the stack: %v %v, %d creations\n%s", err, third.Outputs, len(e.srv.CFN.Creates()), log)
	}
}
