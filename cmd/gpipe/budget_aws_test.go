//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store"
)

// instanceTemplate is a stack with one instance and no bucket.
const instanceTemplate = `AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  RunId: {Type: String, MinLength: 1}
  ImageId: {Type: "AWS::EC2::Image::Id"}
Resources:
  Instance:
    Type: AWS::EC2::Instance
    Properties: {ImageId: {Ref: ImageId}, InstanceType: dl1.24xlarge}
Outputs:
  InstanceId: {Value: {Ref: Instance}}
`

// budgetSpec would train for two minutes on a $13.11/hour instance, with a
// budget that does not cover the few minutes a teardown takes.
const budgetSpec = `version: 1
name: budget
budget: 0.5
steps:
  - id: provision
    type: provision-stack
    with: {template: instance.yaml, instance_type: dl1.24xlarge}
  - id: train
    type: shell
    needs: [provision]
    with:
      run: |
        touch train.started
        sleep 120
        touch train.finished
  - id: teardown
    type: teardown
    needs: [train]
    if: always()
    with: {stack: "${{ steps.provision.outputs.stack_name }}"}
`

// TestBudgetStopsRunCleanly: once the instance runs, the running estimate
// (projected over the margin a teardown needs) passes the spec's budget: the
// run stops within seconds, its teardown deletes the stack, and gpipe exits 1
// saying why.
func TestBudgetStopsRunCleanly(t *testing.T) {
	t.Parallel()
	c := newAWSCLI(t, false)
	addUbuntuImage(c.aws, "ami-0b0d000000000001")
	writeFile(t, filepath.Join(c.dir, "instance.yaml"), instanceTemplate)
	writeFile(t, filepath.Join(c.dir, "spec.yaml"), budgetSpec)

	res := c.gpipeCmd(t, "run", "--state", c.stateURL, "--run-id", "b1", "spec.yaml")
	if res.code != exitFailed {
		t.Fatalf("want exit 1 (stopped by the budget)\n%s", res)
	}
	if res.took > time.Minute {
		t.Errorf("the run took %v: the budget did not stop it", res.took)
	}
	for _, want := range []string{"run b1 stopped by its budget", "budget of $0.50", "--budget DOLLARS"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q\n%s", want, res)
		}
	}
	st, err := store.Open(t.Context(), c.stateURL)
	if err != nil {
		t.Fatal(err)
	}
	run, err := state.Read(t.Context(), st, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if run.Steps["train"].Status != state.StepCancelled || run.Steps["teardown"].Status != state.StepSucceeded {
		t.Errorf("train %s, teardown %s; want cancelled, succeeded", run.Steps["train"].Status, run.Steps["teardown"].Status)
	}
	stack := run.Steps["provision"].Outputs["stack_name"]
	if got := c.stackStatus(t, stack); got != "DELETE_COMPLETE" {
		t.Errorf("stack %s is %s, want DELETE_COMPLETE", stack, got)
	}
}
