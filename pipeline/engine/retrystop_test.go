package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// A step stopped while it waits to retry has started: it finishes cancelled
// (not "skipped", which says it never ran), and its failed attempt keeps the
// error it failed with.
func TestStopDuringRetryBackoff(t *testing.T) {
	tests := []struct {
		name string
		stop func(cancel, cancelHard context.CancelFunc, fail context.CancelFunc)
		cond string
	}{
		{"interrupt", func(c, _, _ context.CancelFunc) { c() }, ""},
		{"sibling failed", func(_, _, f context.CancelFunc) { f() }, ""},
		{"second interrupt during cleanup", func(c, h, _ context.CancelFunc) { c(); h() }, "always()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			hard, cancelHard := context.WithCancel(t.Context())
			defer cancelHard()
			failSibling := make(chan struct{})
			h := newHarness(t, behaviours{
				"flaky": func(context.Context, *pipeline.StepRun) (pipeline.Result, error) {
					return pipeline.Result{}, &pipeline.ExitError{Code: 3}
				},
				"sibling": func(c context.Context, _ *pipeline.StepRun) (pipeline.Result, error) {
					select {
					case <-failSibling:
						return pipeline.Result{}, errors.New("sibling broke")
					case <-c.Done():
						return pipeline.Result{}, c.Err()
					}
				},
			})
			s := withIf(step("flaky"), tt.cond)
			s.Retry = spec.Retry{Attempts: 3}
			sleep := func(c context.Context, d time.Duration) error {
				tt.stop(cancel, cancelHard, closeOnce(failSibling))
				<-c.Done()
				return context.Cause(c)
			}
			_ = h.run(ctx, h.plan(newSpec(s, step("sibling"))), Options{Hard: hard, Sleep: sleep})
			st := h.stepState("flaky")
			if st.Status != state.StepCancelled {
				t.Errorf("status %s, want cancelled", st.Status)
			}
			if len(st.Attempts) != 1 || st.Attempts[0].ExitCode == nil || *st.Attempts[0].ExitCode != 3 ||
				st.Attempts[0].Error != (&pipeline.ExitError{Code: 3}).Error() {
				t.Errorf("attempts %+v, want attempt 1 failed with exit 3", st.Attempts)
			}
			if got := h.eventsOf(StepSkipped, "flaky"); len(got) != 0 {
				t.Errorf("a step that ran got a skipped event: %+v", got)
			}
			fin := h.eventsOf(StepFinished, "flaky")
			if len(fin) != 1 || fin[0].Status != state.StepCancelled || fin[0].Attempt != 1 {
				t.Errorf("finished events %+v, want one: cancelled, attempt 1", fin)
			}
		})
	}
}

// closeOnce returns a func that closes ch, once.
func closeOnce(ch chan struct{}) context.CancelFunc {
	return func() {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}
