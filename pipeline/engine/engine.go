// Package engine runs a plan: it starts every step whose needs are done, as
// soon as they are done, up to a concurrency limit; it fails fast (a failure
// cancels running siblings and skips what has not started) while still running
// the steps whose `if` asks for it (always(), failure(), cancelled()) under a
// context the failure and a first interrupt do not cancel; it retries with
// backoff, enforces timeouts, hands out accelerator cards, and records every
// transition through the run's state.Journal.
//
// Detaching (Options.Detach) is the third way to stop, for a runner about to
// be killed (a CI job's time limit) while steps run remotely: nothing new
// starts, cleanup does not run, and every running step's context is cancelled
// with pipeline.ErrDetached. A step whose work lives on remotely returns a
// *pipeline.DetachedError and stays "running" in the state with its resume
// data, so a resume reattaches; any other step stops as on an interrupt and is
// recorded cancelled, so a resume runs it again.
//
// One scheduler goroutine owns the DAG bookkeeping (remaining-needs counters
// and dependents lists, so each transition costs O(its edges)); each started
// step runs in its own goroutine. A step's final state is made durable
// (Journal.Update, group-committed with whatever else finishes at the same
// time) before the scheduler learns of it, so no dependent can start on a
// result that a crash could lose.
package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gpipe/gpipe/internal/duration"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/state"
)

// DefaultConcurrency caps the steps running at once when neither
// --concurrency nor the spec's concurrency says. It is a constant rather than
// the runner's CPU count: steps mostly wait on remote hosts and the engine
// schedules accelerator cards separately, so the runner's cores say little,
// and a run should not behave differently on a laptop and a 2-core CI runner.
// The schema's description and the --concurrency help state it (a test checks).
const DefaultConcurrency = 8

// Options configure a run.
type Options struct {
	Registry pipeline.Registry
	// Concurrency caps the steps running at once; 0 uses the spec's
	// concurrency, and when that is 0 too, DefaultConcurrency.
	Concurrency int
	// Hard is cancelled on the second interrupt; it bounds the steps that run
	// after a failure or a first interrupt (cleanup). Nil: never cancelled.
	Hard context.Context
	// Env is the runner's environment as seen by ${{ env.X }}.
	Env map[string]string
	// Events receives progress, one call at a time, in order. Nil: none.
	Events func(Event)
	// Detach, when closed, makes the run detach (see the package comment):
	// Run returns a *DetachedRunError once the running steps returned. Nil:
	// never.
	Detach <-chan struct{}
	// Now and Sleep are injectable for tests. Sleep waits d or until ctx ends
	// (then returns ctx's cause).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// ErrInterrupted is wrapped by Run's error when ctx was cancelled.
var ErrInterrupted = errors.New("interrupted")

// DetachedRunError is Run's result when the runner detached before the run
// ended. It wraps pipeline.ErrDetached.
type DetachedRunError struct {
	RunID   string
	Running []string // steps left running remotely, which a resume reattaches to
	Stopped []string // steps stopped (local) or not started, which a resume runs
}

func (e *DetachedRunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s detached", e.RunID)
	if len(e.Running) > 0 {
		fmt.Fprintf(&b, "; still running remotely: %s", strings.Join(e.Running, ", "))
	}
	if len(e.Stopped) > 0 {
		fmt.Fprintf(&b, "; to run on resume: %s", strings.Join(e.Stopped, ", "))
	}
	return b.String()
}

func (e *DetachedRunError) Unwrap() error { return pipeline.ErrDetached }

// FailedError says the pipeline ran to its end with failed steps.
type FailedError struct {
	Steps  []string // failed step ids, in plan order
	Errors []error  // Errors[i] is why Steps[i] failed
}

func (e *FailedError) Error() string {
	var b strings.Builder
	b.WriteString("pipeline failed: ")
	for i, s := range e.Steps {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "step %s", s)
		if i < len(e.Errors) && e.Errors[i] != nil {
			fmt.Fprintf(&b, ": %v", e.Errors[i])
		}
	}
	return b.String()
}

// Unwrap lets errors.Is/As see why steps failed (a *TimeoutError, an
// *pipeline.ExitError).
func (e *FailedError) Unwrap() []error { return e.Errors }

// TimeoutError is the cause of a step attempt that ran out of time.
type TimeoutError struct {
	Step    string
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return "timed out after " + duration.Format(e.Timeout)
}

// journal is what the engine needs of a state.Journal.
type journal interface {
	Snapshot() *state.Run
	Update(ctx context.Context, fn func(*state.Run)) error
	Post(fn func(*state.Run))
	// The Step variants say fn changes only that step, so a save re-encodes
	// one step rather than the whole run.
	UpdateStep(ctx context.Context, step string, fn func(*state.Run)) error
	PostStep(step string, fn func(*state.Run))
	// Apply posts a step's change and returns its Mark; Durable says how
	// far changes are stored, Hurry saves up to a Mark at once. A step's
	// outcome is applied, and its dependents start once Durable passes it.
	Apply(step string, fn func(*state.Run)) (state.Mark, error)
	Durable() (state.Mark, <-chan struct{})
	Hurry(m state.Mark)
	// Sync waits until every change applied so far is durable; Flush also
	// until it is on disk.
	Sync(ctx context.Context) error
	Flush(ctx context.Context) error
	Lost() <-chan struct{}
	Err() error
	Store() state.Store
	RunID() string
}

// Run executes the steps of p whose Action is Run (Reuse steps count as
// succeeded with their restored outputs) and records everything in j.
//
// It returns nil when every step succeeded or was skipped by its own `if`;
// a *FailedError when steps failed; an error wrapping ErrInterrupted when ctx
// was cancelled; a *DetachedRunError when opt.Detach was closed before every
// step reached a final state; an error wrapping state.ErrConflict when j was lost (another
// runner took the run, or its state vanished). Problems found before anything
// runs (unknown step type, bad retry pattern, a card demand no host can meet)
// are returned as plain errors.
func Run(ctx context.Context, p *plan.Plan, j *state.Journal, opt Options) error {
	return run(ctx, p, j, opt)
}

func run(ctx context.Context, p *plan.Plan, j journal, opt Options) error {
	if opt.Registry == nil {
		return errors.New("engine: no step registry")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Sleep == nil {
		opt.Sleep = sleep
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = p.Spec.Concurrency
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = DefaultConcurrency
	}
	e, err := newEngine(ctx, p, j, opt)
	if err != nil {
		return err
	}
	return e.run()
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
