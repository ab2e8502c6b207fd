package report

import "github.com/gpipe/gpipe/pipeline/state"

// Resources knows which step types make something that costs money while it
// exists (an instance behind a stack) and which delete it again. That is the
// step types' knowledge, not the report's: the AWS steps implement it
// (steps/aws.Resources) and the command wires it in through
// Options.Resources. Without it a report shows no cost and no holdings.
type Resources interface {
	// Provisions reports whether steps of this type make a billable resource.
	Provisions(stepType string) bool
	// Releases reports whether steps of this type delete the resources of
	// the provision steps upstream of them.
	Releases(stepType string) bool
	// Made reports whether a provision step made, or began making, its
	// resource (so it may still exist).
	Made(st *state.Step) bool
	// Instance names the instance type and region a provision step runs.
	Instance(run *state.Run, st *state.Step) (instanceType, region string)
	// Name is the name of the resource a step's outputs name, "" for none.
	Name(outputs map[string]string) string
}
