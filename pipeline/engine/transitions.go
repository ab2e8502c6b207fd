package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/expr"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/state"
)

// initState makes the run document match the plan before anything starts:
// reused steps succeeded with their outputs, steps to run pending (attempts of
// earlier runs kept for the record and for unique log names), resume data kept
// only where a step reattaches, and steps the plan no longer has dropped.
//
// It also adds this runner's token to the run's runners: it is durable before
// any step starts (run waits for this update), so every process this runner
// starts can be found by a later one.
func (e *engine) initState(r *state.Run) {
	r.Status = state.RunRunning
	r.Runners = append(r.Runners, e.runnerToken)
	if r.Steps == nil {
		r.Steps = make(map[string]*state.Step, len(e.nodes))
	}
	r.Order = make([]string, len(e.nodes))
	for i, n := range e.nodes {
		ps := n.ps
		r.Order[i] = ps.ID
		st := r.Steps[ps.ID]
		if st == nil {
			st = &state.Step{ID: ps.ID}
			r.Steps[ps.ID] = st
		}
		st.Type = ps.Spec.Type
		st.Needs = ps.Needs
		st.DefDigest = ps.DefDigest
		st.Reason = ""
		if ps.Action == plan.Reuse {
			st.Status = state.StepSucceeded
			if st.Outputs == nil && ps.Outputs != nil {
				st.Outputs = maps.Clone(ps.Outputs)
			}
			continue
		}
		st.Status = state.StepPending
		st.Outputs = nil
		if !ps.Reattach {
			st.Resume = nil
		}
		closeAbandoned(st, e.opt.Now())
	}
	for id := range r.Steps {
		if _, ok := e.byID[id]; !ok {
			delete(r.Steps, id)
		}
	}
}

// closeAbandoned ends an attempt that a previous runner left open: it died
// (kill -9) or detached while the attempt ran, so no outcome was recorded.
// The next attempt runs the step again or reattaches to its remote command.
func closeAbandoned(st *state.Step, now time.Time) {
	if n := len(st.Attempts); n > 0 && st.Attempts[n-1].End == nil {
		end := now.UTC()
		st.Attempts[n-1].End = &end
		if st.Attempts[n-1].Error == "" {
			st.Attempts[n-1].Error = "the runner stopped during this attempt; no outcome was recorded"
		}
	}
}

// decide is called when all needs of step i are final: it starts the step or
// settles it as skipped, cancelled or failed, and returns ready extended by
// dependents that became ready.
func (e *engine) decide(i int, ready []int) []int {
	n := e.nodes[i]
	always := n.cond.Always()
	if !e.interrupt && e.ctx.Err() != nil {
		e.interrupt = true
	}
	if e.interrupt && !always {
		return e.settle(i, ready, state.StepCancelled, "run interrupted before the step started", nil)
	}
	for _, need := range n.ps.Needs {
		if st := e.nodes[e.byID[need]].status; st != state.StepSucceeded && !always {
			return e.settle(i, ready, state.StepSkipped, fmt.Sprintf("needs %s, which %s", need, pastTense(st)), nil)
		}
	}
	// A failing step cancels the run context before its result reaches the
	// scheduler; count it as failed already so nothing new starts.
	var ff *errFailFast
	if !e.failed && errors.As(context.Cause(e.runCtx), &ff) {
		e.failed = true
	}
	sc := e.scope(n)
	failed := e.failedFor(n)
	ok, err := n.cond.Eval(sc, expr.Status{Failed: failed, Cancelled: e.interrupt})
	if err != nil {
		return e.settle(i, ready, state.StepFailed, "", err)
	}
	if !ok {
		if failed && !always {
			return e.settle(i, ready, state.StepSkipped, "not started: "+e.failReason(), nil)
		}
		cond := n.ps.Spec.If
		if cond == "" {
			cond = "success()"
		}
		return e.settle(i, ready, state.StepSkipped, fmt.Sprintf("if: %s is false", cond), nil)
	}
	if e.nothingToClean(n) {
		return e.settle(i, ready, state.StepSkipped, "nothing to clean: the steps it cleans never started", nil)
	}
	if e.wait(i) {
		return ready // until a unit of its resource is free (see release)
	}
	ctx := e.runCtx
	if always {
		ctx = e.cleanCtx
	}
	e.active++
	go func() { e.doneCh <- e.execute(ctx, n, sc) }()
	return ready
}

func pastTense(st state.StepStatus) string {
	switch st {
	case state.StepFailed:
		return "failed"
	case state.StepCancelled:
		return "was cancelled"
	case state.StepSkipped:
		return "was skipped"
	}
	return "is " + string(st)
}

// failReason names the failure that stopped the run, for skip reasons.
func (e *engine) failReason() string {
	var ff *errFailFast
	if errors.As(context.Cause(e.runCtx), &ff) {
		return ff.Error()
	}
	if e.failedStep != "" {
		return "step " + e.failedStep + " failed"
	}
	return "the run failed"
}

// scope builds the expression scope of a step: params, its matrix values, run
// variables, env, and the outputs of the steps it refers to.
func (e *engine) scope(n *node) *expr.Scope {
	sc := &expr.Scope{Params: e.params, Matrix: kvMap(n.ps.Matrix), Run: e.runVars, Env: e.baseEnv}
	for _, ref := range n.refs {
		k, ok := e.byID[ref]
		if !ok {
			k, ok = e.pairedRef(n, ref)
		}
		if ok && e.nodes[k].outputs != nil {
			if sc.Steps == nil {
				sc.Steps = make(map[string]map[string]string, len(n.refs))
			}
			sc.Steps[ref] = e.nodes[k].outputs
		}
	}
	return sc
}

// settle gives a step that never starts its final status.
func (e *engine) settle(i int, ready []int, st state.StepStatus, reason string, err error) []int {
	n := e.nodes[i]
	id := n.ps.ID
	if err != nil {
		reason = err.Error()
	}
	e.j.PostStep(id, func(r *state.Run) {
		if s := r.Steps[id]; s != nil {
			s.Status, s.Reason = st, reason
		}
	})
	kind := StepSkipped
	if st == state.StepFailed {
		kind = StepFinished
	}
	e.ev.emit(Event{Kind: kind, Time: e.opt.Now(), Step: id, Status: st, Reason: reason, Err: err})
	return e.finish(done{i: i, status: st, err: err}, ready)
}

// finish records a step's final state in the scheduler and releases its
// dependents.
func (e *engine) finish(d done, ready []int) []int {
	if d.lost != nil || e.hl != nil && e.hl.stale[d.i] {
		return e.hostLost(d, ready)
	}
	n := e.nodes[d.i]
	n.status, n.outputs, n.err = d.status, d.outputs, d.err
	if d.status == state.StepFailed {
		if !e.failed {
			e.failedStep = n.ps.ID
		}
		e.failed = true
		if !e.p.Spec.KeepGoing {
			e.cancelRun(&errFailFast{step: n.ps.ID})
		}
	}
	ready = e.release(d.i, ready)
	for _, k := range n.dependents {
		dn := e.nodes[k]
		if dn.ps.Action == plan.Reuse {
			continue
		}
		dn.remaining--
		if dn.remaining == 0 {
			ready = append(ready, k)
		}
	}
	return ready
}

// end writes the run's final status and builds Run's result.
func (e *engine) end(fatal error) error {
	status := state.RunSucceeded
	var failed FailedError
	for _, n := range e.nodes {
		if n.status == state.StepFailed {
			failed.Steps = append(failed.Steps, n.ps.ID)
			failed.Errors = append(failed.Errors, n.err)
		}
	}
	var result error
	detached := e.detachedResult()
	switch {
	case fatal != nil:
		status = state.RunFailed
		result = fatal
	case detached != nil:
		// Before interrupt and failure: cleanup did not run, so what was
		// provisioned is still there; only a resume (or a teardown) ends it.
		status = state.RunDetached
		result = detached
	case e.interrupt:
		status = state.RunInterrupted
		result = fmt.Errorf("run %s: %w", e.runID, ErrInterrupted)
		if cause := context.Cause(e.ctx); cause != nil && !errors.Is(cause, ErrInterrupted) && !errors.Is(cause, context.Canceled) {
			result = fmt.Errorf("run %s: %w: %v", e.runID, ErrInterrupted, cause)
		}
	case len(failed.Steps) > 0:
		status = state.RunFailed
		result = &failed
	}
	if fatal == nil {
		// The final status must be saved even after a second interrupt.
		err := e.j.Update(e.saveCtx, func(r *state.Run) { r.Status = status })
		if err != nil {
			result = e.journalError(fmt.Errorf("record end of run %s: %w", e.runID, err))
			status = state.RunFailed
		}
	}
	e.ev.emit(Event{Kind: RunFinished, Time: e.opt.Now(), RunStatus: status, Err: result})
	e.ev.close()
	return result
}

// detachedResult says what a detach left behind, or nil when the run did not
// detach or every step reached its end anyway.
func (e *engine) detachedResult() *DetachedRunError {
	if !e.detached {
		return nil
	}
	d := &DetachedRunError{RunID: e.runID}
	for _, n := range e.nodes {
		switch {
		case n.status == state.StepRunning:
			d.Running = append(d.Running, n.ps.ID)
		case n.status == state.StepPending,
			n.status == state.StepCancelled && errors.Is(n.err, pipeline.ErrDetached):
			d.Stopped = append(d.Stopped, n.ps.ID)
		}
	}
	if len(d.Running) == 0 && len(d.Stopped) == 0 {
		return nil
	}
	return d
}
