package aws

import (
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// Step type names of the AWS steps.
const (
	TypeProvisionStack = "provision-stack"
	TypeTeardown       = "teardown"
)

// defaultRegion is the region a cost estimate names when neither a provision
// step's outputs nor the run's params say: the SDK's usual region.
const defaultRegion = "us-east-1"

// Resources tells a report what the AWS steps make that costs money: a
// provision-stack step makes a stack with an instance, which lives until a
// teardown step downstream of it (or `gpipe teardown`) deletes it. It
// implements report.Resources.
type Resources struct{}

// Provisions reports whether steps of stepType make a stack.
func (Resources) Provisions(stepType string) bool { return stepType == TypeProvisionStack }

// Releases reports whether steps of stepType delete upstream stacks.
func (Resources) Releases(stepType string) bool { return stepType == TypeTeardown }

// Made reports whether a provision step made, or began making, its stack:
// it succeeded, or it saved the stack's name to resume by.
func (Resources) Made(st *state.Step) bool {
	return st.Status == state.StepSucceeded || st.Resume[cfn.ResumeStackName] != "" || st.Outputs[cfn.ResumeStackName] != ""
}

// Instance is the instance type and region of a provision step: its outputs,
// else the run's params, else the step's defaults.
func (Resources) Instance(run *state.Run, st *state.Step) (instanceType, region string) {
	return pick(st.Outputs["instance_type"], run.Params["instance_type"], cfn.DefaultInstanceType),
		pick(st.Outputs["region"], run.Params["region"], defaultRegion)
}

// Name is the stack a step's outputs name, "" for none.
func (Resources) Name(outputs map[string]string) string { return outputs[cfn.ResumeStackName] }

func pick(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
