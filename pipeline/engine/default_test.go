package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/spec"
)

// TestDefaultConcurrency: with no --concurrency and none in the spec, at most
// DefaultConcurrency steps run at once, whatever the machine's CPU count,
// and the spec's concurrency overrides it.
func TestDefaultConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name     string
		specConc int
		want     int
	}{{"default", 0, DefaultConcurrency}, {"spec", 3, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			const total = DefaultConcurrency + 4
			var mu sync.Mutex
			inflight, peak, finished := 0, 0, 0
			b := behaviours{}
			var steps []spec.Step
			for i := range total {
				id := fmt.Sprint("s", i)
				steps = append(steps, step(id))
				b[id] = func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
					mu.Lock()
					inflight++
					peak = max(peak, inflight)
					mu.Unlock()
					// Hold the slot until as many steps run as the limit
					// allows, so the peak reaches the limit.
					waitFor(ctx, func() bool {
						mu.Lock()
						defer mu.Unlock()
						return inflight >= min(tc.want, total-finished)
					})
					mu.Lock()
					inflight--
					finished++
					mu.Unlock()
					return pipeline.Result{}, nil
				}
			}
			h := newHarness(t, b)
			sp := newSpec(steps...)
			sp.Concurrency = tc.specConc
			// A negative Concurrency reaches the engine as "not given"
			// (the harness fills in 0 with its own default).
			if err := h.run(t.Context(), h.plan(sp), Options{Concurrency: -1}); err != nil {
				t.Fatal(err)
			}
			if peak != tc.want {
				t.Errorf("peak concurrency %d, want %d", peak, tc.want)
			}
		})
	}
}
