package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/memory"
)

// BenchmarkRunLayered measures the engine's own overhead (scheduling, journal,
// events) on a random layered DAG of no-op steps, like bench/'s gpipe vs make
// comparison but without processes. Run with -benchtime=1x for one pass; the
// 10,000-step case is dominated by the Journal encoding the whole run document
// on every group commit.
func BenchmarkRunLayered(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			var steps []spec.Step
			const width = 50
			for i := range n {
				s := spec.Step{ID: fmt.Sprint("s", i), Type: "noop"}
				if layer := i / width; layer > 0 {
					for range 2 {
						s.Needs = append(s.Needs, fmt.Sprint("s", (layer-1)*width+r.IntN(width)))
					}
				}
				steps = append(steps, s)
			}
			p, err := plan.New(&spec.Spec{Name: "bench", Steps: steps}, nil)
			if err != nil {
				b.Fatal(err)
			}
			noop := fn(func(context.Context, *pipeline.StepRun) (pipeline.Result, error) { return pipeline.Result{}, nil })
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				store := memory.New("bench")
				j, err := state.Create(b.Context(), store, &state.Run{ID: fmt.Sprint("r", i)}, state.LeaseOptions{Owner: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				if err := Run(b.Context(), p, j, Options{Registry: registry{"noop": noop}, Concurrency: 16, Events: func(Event) {}}); err != nil {
					b.Fatal(err)
				}
				_ = j.Close(b.Context())
			}
		})
	}
}
