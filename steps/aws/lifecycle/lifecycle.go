// Package lifecycle is the policy for the CloudFormation stacks of gpipe runs
// once their runner is done or gone: which stacks belong to a run, when
// `gpipe teardown` may delete them and how it records that, and which stacks
// `gpipe gc` deletes (gc.go). The command parses flags, resolves the run id
// and maps errors to exit codes; the decisions are here, next to the AWS
// steps that make the stacks. Package aws must not import this package.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// Stacks applies the policy to the runs of one state store.
type Stacks struct {
	Store state.Store
	// URL names the store in errors.
	URL string
	// Clients returns a region's clients ("" = the SDK's configured region).
	Clients cfn.ClientsFor
	// Log receives what is deleted, as it happens.
	Log io.Writer
	// Clock replaces time in leases and in the waits for deletion (tests);
	// the zero value is the wall clock.
	Clock cfn.Clock
}

func (s *Stacks) now() time.Time {
	if s.Clock.Now != nil {
		return s.Clock.Now()
	}
	return time.Now()
}

func (s *Stacks) log() io.Writer {
	if s.Log != nil {
		return s.Log
	}
	return io.Discard
}

// TeardownOptions adjust Teardown.
type TeardownOptions struct {
	// Region overrides the region the run's state records.
	Region string
	// KeepBuckets leaves the buckets the stacks own as they are (deletion
	// then fails if they hold objects).
	KeepBuckets bool
	// Force deletes even though a live runner drives the run (it will fail
	// on its instance).
	Force bool
}

// Teardown deletes the stacks of run runID: those its provision steps
// recorded and those tagged with its id (a provision step interrupted before
// its stack name reached the state), in the region the run provisioned in.
// A run whose state is gone is taken by its id alone. It refuses a run a live
// runner still drives, unless opt.Force, and records the deleted stacks in
// the run's state.
func (s *Stacks) Teardown(ctx context.Context, runID string, opt TeardownOptions) error {
	run, err := state.Read(ctx, s.Store, runID)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err // the store names the run and itself
	}
	// This command is for runs whose runner is gone (or detached): a live
	// runner would lose its instance mid-step.
	if run != nil && !opt.Force {
		if err := state.CheckHeld(run, state.LeaseOptions{Now: s.Clock.Now}); err != nil {
			return err
		}
	}
	// The stacks live where the run provisioned them, which its state
	// records; opt.Region overrides, the SDK's configuration is the last
	// resort.
	where := opt.Region
	if where == "" {
		where = RunRegion(run)
	}
	cl, err := s.Clients(ctx, where)
	if err != nil {
		return err
	}
	names := runStacks(run)
	tagged, err := cfn.ListGpipeStacks(ctx, cl.CFN)
	if err != nil {
		return fmt.Errorf("list gpipe stacks: %w", err)
	}
	for _, st := range tagged {
		if st.RunID == runID {
			names[st.Name] = true
		}
	}
	if len(names) == 0 {
		fmt.Fprintf(s.log(), "run %s has no stacks left\n", runID)
		return nil
	}
	var failed []error
	gone := map[string]bool{}
	for _, n := range sortedKeys(names) {
		fmt.Fprintf(s.log(), "deleting stack %s\n", n)
		err := cfn.Teardown(ctx, cl, cfn.TeardownOptions{EmptyBuckets: !opt.KeepBuckets, Log: s.log(), Clock: s.Clock}, n)
		if err != nil {
			failed = append(failed, fmt.Errorf("delete stack %s: %w", n, err))
			continue
		}
		gone[n] = true
	}
	if run != nil {
		if err := s.recordReleased(ctx, runID, gone, opt.Force); err != nil {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// runStacks are the stack names the run's provision steps recorded, as
// outputs or, for a step still creating its stack, as resume data.
func runStacks(run *state.Run) map[string]bool {
	names := map[string]bool{}
	if run == nil {
		return names
	}
	for _, s := range run.Steps {
		if s.Type != aws.TypeProvisionStack {
			continue
		}
		for _, n := range []string{s.Outputs["stack_name"], s.Resume["stack_name"]} {
			if n != "" {
				names[n] = true
			}
		}
	}
	return names
}

// RunRegion is the region a run's provision steps reported, "" when none
// did (the run never got that far, or its state is gone).
func RunRegion(run *state.Run) string {
	if run == nil {
		return ""
	}
	for _, id := range run.Order {
		if s := run.Steps[id]; s != nil && s.Type == aws.TypeProvisionStack && s.Outputs["region"] != "" {
			return s.Outputs["region"]
		}
	}
	return ""
}

// recordReleased notes in the run's state when the stacks of its provision
// steps were deleted, so that its status and cost stop counting an instance
// that is gone, and a resume provisions again rather than reusing a stack that
// no longer exists.
func (s *Stacks) recordReleased(ctx context.Context, runID string, gone map[string]bool, force bool) error {
	if len(gone) == 0 {
		return nil
	}
	j, err := state.Acquire(ctx, s.Store, runID, state.LeaseOptions{Force: force, Now: s.Clock.Now})
	if err != nil {
		return fmt.Errorf("record the deleted stacks in run %s: %w", runID, err)
	}
	now := s.now().UTC()
	err = j.Update(ctx, func(r *state.Run) {
		for _, st := range r.Steps {
			if st.Type != aws.TypeProvisionStack || st.Released != nil {
				continue
			}
			if gone[st.Outputs["stack_name"]] || gone[st.Resume["stack_name"]] {
				st.Released = &now
			}
		}
	})
	if cerr := j.Close(context.WithoutCancel(ctx)); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record the deleted stacks in run %s: %w", runID, err)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
