package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/state"
)

// The error a lost journal stops the run with is printed to the user: it
// names the run, the store and the decision once each.
func TestJournalLostErrorSaysItOnce(t *testing.T) {
	tests := []struct {
		name   string
		behind func(ctx context.Context, h *harness) error // what happens behind the runner's back
		is     error
	}{
		{"another runner wrote", func(ctx context.Context, h *harness) error {
			doc, v, err := h.store.Load(ctx, "run-1")
			if err == nil {
				_, err = h.store.Save(ctx, "run-1", doc, v)
			}
			return err
		}, state.ErrConflict},
		{"state deleted", func(ctx context.Context, h *harness) error {
			return h.store.Delete(ctx, "run-1")
		}, state.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.reg["fake"] = behaviours{
				"a": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
					return pipeline.Result{}, tt.behind(ctx, h)
				},
			}.runner()
			err := h.run(t.Context(), h.plan(newSpec(step("a"))), Options{})
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			msg := err.Error()
			for _, s := range []string{h.store.String(), "stop"} {
				if n := strings.Count(msg, s); n != 1 {
					t.Errorf("%q appears %d times in %q", s, n, msg)
				}
			}
		})
	}
}
