package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gpipe/gpipe/internal/awsconfig"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// Stray is a gpipe stack that gc may delete, and why.
type Stray struct {
	cfn.StackInfo
	Why     string
	clients *cfn.Clients // of the stack's region
}

// Region is the region the stack lives in.
func (s Stray) Region() string { return s.clients.Region }

// GCRegions are the regions gc looks in: the one given, else the regions the
// store's runs provisioned in, sorted, and "" for the SDK's configured one
// (stacks of runs this store lacks).
func GCRegions(given string, runs []*state.Run) []string {
	if given != "" {
		return []string{given}
	}
	seen := map[string]bool{}
	for _, r := range runs {
		if rg := RunRegion(r); rg != "" {
			seen[rg] = true
		}
	}
	return append(sortedKeys(seen), "")
}

// Strays lists, region by region, the live gpipe stacks whose runs are done
// or abandoned (StrayReason). The SDK's configured region ("") is skipped
// when it names none and other regions were given: the recorded ones are
// all there is.
func (s *Stacks) Strays(ctx context.Context, regions []string) ([]Stray, error) {
	looked := map[string]bool{}
	var stray []Stray
	for _, rg := range regions {
		cl, err := s.Clients(ctx, rg)
		if rg == "" && len(regions) > 1 && errors.Is(err, awsconfig.ErrNoRegion) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if looked[cl.Region] {
			continue
		}
		looked[cl.Region] = true
		stacks, err := cfn.ListGpipeStacks(ctx, cl.CFN)
		if err != nil {
			return nil, fmt.Errorf("list gpipe stacks in %s: %w", cl.Region, err)
		}
		for _, st := range stacks {
			why, err := StrayReason(ctx, s.Store, st.RunID, s.now())
			if err != nil {
				return nil, fmt.Errorf("check run %s in %s: %w", st.RunID, s.URL, err)
			}
			if why != "" {
				stray = append(stray, Stray{StackInfo: st, Why: why, clients: cl})
			}
		}
	}
	return stray, nil
}

// Delete deletes the stray stacks, emptying the buckets they own; it tries
// every stack and returns every failure.
func (s *Stacks) Delete(ctx context.Context, stray []Stray) error {
	var failed []error
	for _, st := range stray {
		if err := cfn.Teardown(ctx, st.clients, cfn.TeardownOptions{EmptyBuckets: true, Log: s.log(), Clock: s.Clock}, st.Name); err != nil {
			failed = append(failed, fmt.Errorf("delete stack %s: %w", st.Name, err))
		}
	}
	return errors.Join(failed...)
}

// StrayReason says why a run's stacks may go, or "" while a runner still
// drives it: the run finished, its lease expired, or the store has no such
// run. A detached run keeps its stacks.
func StrayReason(ctx context.Context, st state.Store, runID string, now time.Time) (string, error) {
	run, err := state.Read(ctx, st, runID)
	if errors.Is(err, state.ErrNotFound) {
		return "run not in this state store", nil
	}
	if err != nil {
		return "", err
	}
	switch {
	case run.Status == state.RunSucceeded || run.Status == state.RunFailed || run.Status == state.RunInterrupted:
		return "run " + string(run.Status), nil
	case run.Status == state.RunDetached:
		// Left running on purpose (--detach-after) for a resume to reattach
		// to; `gpipe teardown RUN_ID` ends it, the instance's max_lifetime
		// guard bounds it.
		return "", nil
	case run.Lease == nil:
		return "run has no runner", nil
	case now.After(run.Lease.Expires):
		return "runner's lease expired " + run.Lease.Expires.UTC().Format(time.RFC3339), nil
	case state.CheckHeld(run, state.LeaseOptions{Now: func() time.Time { return now }}) == nil:
		return fmt.Sprintf("runner (pid %d on this host) is gone", run.Lease.PID), nil
	}
	return "", nil
}
