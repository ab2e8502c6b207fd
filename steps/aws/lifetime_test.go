package aws

import (
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/spec"
)

// worstCase is how long a step may keep the host busy: every attempt up to
// its timeout, plus the waits between attempts (exponential from Backoff,
// capped at MaxBackoff or the engine's 5 minutes, as pipeline/engine does).
func worstCase(st *spec.Step) time.Duration {
	attempts := max(st.Retry.Attempts, 1)
	total := time.Duration(attempts) * st.Timeout
	capped := st.Retry.MaxBackoff
	if capped == 0 {
		capped = 5 * time.Minute
	}
	d := st.Retry.Backoff
	for range attempts - 1 {
		total += min(d, capped)
		d *= 2
	}
	return total
}

// TestMaxLifetimeCoversRetryBudget: the instance's max-lifetime guard must
// not shut the host down while the spec's own steps may legitimately still
// run. The budget is the longest chain of steps, from the provision step to
// what teardown waits for, each at its worst (every attempt to its timeout).
func TestMaxLifetimeCoversRetryBudget(t *testing.T) {
	for _, file := range []string{"../../specs/unet-brain.yaml", "../../specs/unet-brain-5fold.yaml", "../../specs/unet-brain-5fold-fleet.yaml"} {
		s, err := specLoader().Load(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		byID := map[string]*spec.Step{}
		var lifetime time.Duration
		for i := range s.Steps {
			st := &s.Steps[i]
			byID[st.ID] = st
			if st.Type == "provision-stack" {
				if lifetime, err = time.ParseDuration(st.With["max_lifetime"].(string)); err != nil {
					t.Fatalf("%s: max_lifetime: %v", file, err)
				}
			}
		}
		done := map[string]time.Duration{} // worst finishing time after provisioning
		var finish func(id string) time.Duration
		finish = func(id string) time.Duration {
			if d, ok := done[id]; ok {
				return d
			}
			st := byID[id]
			if st.Type == "provision-stack" {
				return 0
			}
			if st.Timeout == 0 {
				t.Errorf("%s: step %s has no timeout: the host's busy time is unbounded", file, id)
			}
			var start time.Duration
			for _, n := range st.Needs {
				start = max(start, finish(n))
			}
			done[id] = start + worstCase(st)
			return done[id]
		}
		var budget time.Duration
		for _, st := range s.Steps {
			if st.Type == "teardown" {
				for _, n := range st.Needs {
					budget = max(budget, finish(n))
				}
			}
		}
		if budget == 0 {
			t.Fatalf("%s: no step before teardown", file)
		}
		if lifetime < budget {
			t.Errorf("%s: max_lifetime %v is shorter than the steps' worst case %v", file, lifetime, budget)
		}
		t.Logf("%s: max_lifetime %v, worst case %v", file, lifetime, budget)
	}
}
