package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/expr"
	"github.com/gpipe/gpipe/pipeline/secret"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// Retry defaults when a spec asks for attempts without saying how long to wait.
const (
	defaultBackoff    = time.Second
	defaultMaxBackoff = 5 * time.Minute
)

// execute runs one step to a final state in its own goroutine: resolve its
// expressions, take its cards and a concurrency slot, run attempts, and make
// the outcome durable before returning it to the scheduler.
func (e *engine) execute(ctx context.Context, n *node, sc *expr.Scope) done {
	id := n.ps.ID
	res, err := e.resolve(n.ps, sc)
	if err != nil {
		return e.record(n, 0, time.Time{}, time.Time{}, state.StepFailed, nil, fmt.Errorf("resolve expressions: %w", err))
	}
	// The slot and the cards are free once the step's work has ended: the
	// wait for its outcome to become durable holds back its dependents, not
	// other steps (with S3 round trips of tens of ms, that wait is most of a
	// short step's time).
	var release []func()
	finish := func(num int, start, end time.Time, st state.StepStatus, out map[string]string, err error) done {
		for _, r := range release {
			r()
		}
		return e.record(n, num, start, end, st, out, err)
	}
	// A host that declares no cards is not accounted: its steps see every
	// card the machine has, as they would without gpipe.
	if cd, ok := n.runner.(pipeline.CardDemander); ok && res.host.Cards > 0 {
		want := cd.Cards(res.with)
		if want > res.host.Cards {
			return e.record(n, 0, time.Time{}, time.Time{}, state.StepFailed, nil,
				fmt.Errorf("needs %d accelerator cards but host %s declares %d", want, res.host.Name, res.host.Cards))
		}
		if want > 0 {
			pool := e.pool(res.pool, res.host.Cards)
			cards, err := pool.acquire(ctx, want)
			if err != nil {
				return e.record(n, 0, time.Time{}, time.Time{}, state.StepCancelled, nil, cancelled(ctx))
			}
			releaseCards := sync.OnceFunc(func() { pool.release(cards) })
			defer releaseCards()
			release = append(release, releaseCards)
			res.cards = cards
		}
	}
	select {
	case e.slots <- struct{}{}:
		releaseSlot := sync.OnceFunc(func() { <-e.slots })
		defer releaseSlot()
		release = append(release, releaseSlot)
	case <-ctx.Done():
		return e.record(n, 0, time.Time{}, time.Time{}, state.StepCancelled, nil, cancelled(ctx))
	}
	if ctx.Err() != nil { // select picks at random when both are ready
		return e.record(n, 0, time.Time{}, time.Time{}, state.StepCancelled, nil, cancelled(ctx))
	}

	retry := n.ps.Spec.Retry
	tries := max(1, retry.Attempts)
	for a := 1; ; a++ {
		num := n.prevTries + a
		start := e.opt.Now()
		out, err := e.attempt(ctx, n, res, a, num, start)
		end := e.opt.Now()
		if err == nil {
			return finish(num, start, end, state.StepSucceeded, out.Outputs, nil)
		}
		var de *pipeline.DetachedError
		if errors.As(err, &de) && errors.Is(context.Cause(ctx), pipeline.ErrDetached) {
			return e.recordDetached(n, num, start, end, de)
		}
		if ctx.Err() != nil {
			return finish(num, start, end, state.StepCancelled, out.Outputs, cancelled(ctx))
		}
		if hl := pipeline.AsHostLost(err); hl != nil {
			for _, r := range release {
				r()
			}
			return e.recordLost(n, num, start, end, hl, err)
		}
		if a >= tries || !retryable(n, out.tail, err) {
			return finish(num, start, end, state.StepFailed, out.Outputs, err)
		}
		err = e.mask.Error(err)
		delay := backoff(retry, a, rand.Int64N)
		e.j.PostStep(id, func(r *state.Run) { endAttempt(r.Steps[id], num, end, err) })
		e.ev.emit(Event{Kind: StepRetry, Time: end, Step: id, Attempt: num, Err: err, Delay: delay, Duration: end.Sub(start)})
		if err := e.opt.Sleep(ctx, delay); err != nil || ctx.Err() != nil {
			// The step ran: it finishes cancelled, its last attempt (closed
			// above) keeping the error it failed with.
			return e.record(n, num, start, e.opt.Now(), state.StepCancelled, nil, cancelled(ctx))
		}
	}
}

// attemptResult carries an attempt's log tail next to the Runner's result.
type attemptResult struct {
	pipeline.Result
	tail string
}

// attempt runs one try. The returned error has a timeout turned into a
// *TimeoutError; the result carries the log tail for retry.on.
//
// The attempt's token (RUNNER/STEP/N) needs no save before the step starts:
// the runner's part of it was made durable before any step started (see
// state.Run.Runners), which is what lets a later runner find the attempt's
// processes even if this one dies before the attempt is saved. Its log is
// not written before the attempt is saved (see logWriter.ready), so an
// attempt lost that way leaves nothing under its number to mix with the
// attempt that reuses it.
func (e *engine) attempt(ctx context.Context, n *node, res *resolved, a, num int, start time.Time) (attemptResult, error) {
	id := n.ps.ID
	logName := id + "." + strconv.Itoa(num)
	token := e.runnerToken + "/" + id + "/" + strconv.Itoa(num)
	reattach := a == 1 && n.ps.Reattach
	e.j.PostStep(id, func(r *state.Run) {
		st := r.Steps[id]
		if st == nil {
			return
		}
		st.Status, st.Reason = state.StepRunning, ""
		if !reattach {
			st.Resume = nil
		}
		st.Attempts = append(st.Attempts, state.Attempt{N: num, Start: start.UTC(), Log: logName, Token: token})
	})
	e.ev.emit(Event{Kind: StepStarted, Time: start, Step: id, Attempt: num})
	lw := newLogWriter(e.saveCtx, e.j.Store(), e.runID, logName, e.j.Sync, func(line string) {
		e.ev.emit(Event{Kind: StepOutput, Time: e.opt.Now(), Step: id, Attempt: num, Line: line})
	})
	lw.progress = func(line string) {
		e.ev.emit(Event{Kind: StepProgress, Time: e.opt.Now(), Step: id, Attempt: num, Line: line})
	}
	// Secrets are masked before the log is stored, streamed or searched by
	// retry.on; without secrets the output goes to the log unbuffered.
	var log io.Writer = lw
	var mw *secret.Writer
	if !e.mask.Empty() {
		mw = secret.NewWriter(e.mask, lw)
		log = mw
	}
	resume := map[string]string{}
	if reattach {
		for k, v := range n.resume {
			resume[k] = v
		}
	}
	actx, cancel := ctx, context.CancelFunc(func() {})
	if t := n.ps.Spec.Timeout; t > 0 {
		actx, cancel = context.WithTimeoutCause(ctx, t, &TimeoutError{Step: id, Timeout: t})
	}
	sr := &pipeline.StepRun{
		RunID: e.runID, StepID: id, Type: n.ps.Spec.Type, Attempt: num,
		With: res.with, Env: res.env, Host: res.host, Timeout: n.ps.Spec.Timeout, Cards: res.cards,
		Log: log, Resume: resume, SaveResume: e.saveResume(id), NoteResume: e.noteResume(id),
		Token: token, Leftovers: n.leftovers,
	}
	if a == 1 {
		sr.Previous, sr.Replace = n.previous, n.replace
	}
	out, err := callRunner(actx, n.runner, sr)
	var te *TimeoutError
	if err != nil && ctx.Err() == nil && errors.As(context.Cause(actx), &te) {
		err = te
	}
	cancel()
	if mw != nil {
		_ = mw.Close() // its only error is lw's, which lw.Close reports
	}
	if lerr := lw.Close(); lerr != nil {
		// A log that could not be stored must not fail a step that worked;
		// it is visible in the step's output instead.
		e.ev.emit(Event{Kind: StepOutput, Time: e.opt.Now(), Step: id, Attempt: num, Line: "gpipe: " + lerr.Error()})
	}
	return attemptResult{Result: out, tail: lw.Tail()}, err
}

// callRunner turns a panicking step type into a failed attempt rather than a
// crashed runner that leaves state saying "running".
func callRunner(ctx context.Context, r pipeline.Runner, sr *pipeline.StepRun) (res pipeline.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("step type %s panicked: %v", sr.Type, p)
		}
	}()
	return r.Run(ctx, sr)
}

func (e *engine) saveResume(id string) func(ctx context.Context, key, value string) error {
	return func(ctx context.Context, key, value string) error {
		// Resume data describes something that already exists (a command
		// sent): it must become durable even when the step is being
		// cancelled or detached at this moment, and on disk, for a resume
		// after a power loss to find it. A lost journal still fails the
		// save at once.
		wctx := context.WithoutCancel(ctx)
		err := e.j.UpdateStep(wctx, id, func(r *state.Run) {
			st := r.Steps[id]
			if st == nil {
				return
			}
			if st.Resume == nil {
				st.Resume = map[string]string{}
			}
			st.Resume[key] = value
		})
		if err == nil {
			err = e.j.Flush(wctx)
		}
		if err != nil {
			return fmt.Errorf("save resume data %s of step %s: %w", key, id, err)
		}
		return nil
	}
}

// noteResume posts resume data with the step's next group commit without
// waiting for it: a local step notes where its processes run on every start,
// and a durable write each time would cost more than the step. A note lost
// because the runner died before the commit means a resume cannot stop what
// that runner left behind; nothing worse.
func (e *engine) noteResume(id string) func(key, value string) {
	return func(key, value string) {
		e.j.PostStep(id, func(r *state.Run) {
			st := r.Steps[id]
			if st == nil {
				return
			}
			if st.Resume == nil {
				st.Resume = map[string]string{}
			}
			st.Resume[key] = value
		})
	}
}

// retryable applies retry.on: with patterns, only a failure whose log tail
// (or error text, where remote hosts report their status) matches retries.
func retryable(n *node, tail string, err error) bool {
	if pipeline.IsPermanent(err) {
		return false
	}
	if len(n.retryOn) == 0 {
		return true
	}
	text := tail + "\n" + err.Error()
	for _, re := range n.retryOn {
		if re.MatchString(text) {
			return true
		}
	}
	return false
}

// backoff is the wait before attempt a+1: exponential from retry.Backoff,
// capped at MaxBackoff, with equal jitter (a uniform draw in [d/2, d]) so that
// many steps failing together do not retry in lockstep, while a backoff still
// means a wait: full jitter (a draw in [0, d]) retried a `backoff: 1s` step
// after 285 ms, and could retry at once, which is not what a user who asked
// for a delay before the first retry meant.
func backoff(r spec.Retry, a int, randN func(int64) int64) time.Duration {
	base, ceil := r.Backoff, r.MaxBackoff
	if base <= 0 {
		base = defaultBackoff
	}
	if ceil <= 0 {
		ceil = max(defaultMaxBackoff, base)
	}
	d := base
	for i := 1; i < a && d < ceil; i++ {
		d *= 2
	}
	d = min(d, ceil)
	half := d / 2
	return half + time.Duration(randN(int64(d-half)+1))
}

func cancelled(ctx context.Context) error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = context.Canceled
	}
	return cause
}

// endAttempt closes attempt num of st with its outcome; an attempt already
// closed (a retry's, before its backoff) keeps its outcome.
func endAttempt(st *state.Step, num int, end time.Time, err error) {
	if st == nil || num == 0 {
		return
	}
	for i := len(st.Attempts) - 1; i >= 0; i-- {
		at := &st.Attempts[i]
		if at.N != num {
			continue
		}
		if at.End != nil {
			return
		}
		t := end.UTC()
		at.End = &t
		code := 0
		var xe *pipeline.ExitError
		switch {
		case err == nil:
		case errors.As(err, &xe):
			code = xe.Code
		default:
			at.Error = err.Error()
			return
		}
		at.ExitCode = &code
		if err != nil {
			at.Error = err.Error()
		}
		return
	}
}

// record applies a step's final state to the journal and reports it. num is
// the last attempt's number, 0 when no attempt was left open. It does not
// wait for the save: the scheduler holds the step's dependents back until
// the journal says the outcome is durable (see gate), so a step's success is
// stored before anything that depends on it starts, while steps that do not
// depend on it run on and many outcomes share one save.
func (e *engine) record(n *node, num int, start, end time.Time, st state.StepStatus, outputs map[string]string, err error) done {
	id := n.ps.ID
	// Everything of a step's outcome that is saved, printed or handed to
	// dependents passes here, so here is where secrets are masked: an output
	// holding a secret reaches dependents as *** too, as in GitHub Actions.
	outputs, err = e.mask.Map(outputs), e.mask.Error(err)
	if st == state.StepFailed && !e.p.Spec.KeepGoing {
		// Cancel siblings now rather than after the save below.
		e.cancelRun(&errFailFast{step: id})
	}
	reason := ""
	if st == state.StepCancelled && err != nil {
		reason = cancelReason(err)
	}
	var attemptErr error
	if st != state.StepSucceeded {
		attemptErr = err
		if attemptErr == nil {
			attemptErr = errors.New(string(st))
		}
	}
	mark, werr := e.j.Apply(id, func(r *state.Run) {
		s := r.Steps[id]
		if s == nil {
			return
		}
		s.Status, s.Reason = st, reason
		if len(outputs) > 0 {
			s.Outputs = outputs
		}
		endAttempt(s, num, end, attemptErr)
	})
	if end.IsZero() {
		end = e.opt.Now()
	}
	ev := Event{Kind: StepFinished, Time: end, Step: id, Attempt: num, Status: st, Reason: reason}
	if !start.IsZero() {
		ev.Duration = end.Sub(start)
	}
	if st != state.StepSucceeded {
		ev.Err = err
	}
	if num == 0 && st == state.StepCancelled {
		ev.Kind = StepSkipped
	}
	e.ev.emit(ev)
	d := done{i: n.idx, status: st, err: err, mark: mark}
	if st == state.StepSucceeded || len(outputs) > 0 {
		d.outputs = outputs
		if d.outputs == nil {
			d.outputs = map[string]string{}
		}
	}
	if werr != nil {
		d.fatal = e.journalError(fmt.Errorf("record step %s %s: %w", id, st, werr))
	}
	return d
}

// recordDetached leaves a step that lives on remotely "running" in the state,
// its attempt open and its resume data kept, so a resume reattaches to it.
func (e *engine) recordDetached(n *node, num int, start, end time.Time, de *pipeline.DetachedError) done {
	id := n.ps.ID
	reason := "detached while running"
	if de.Running != "" {
		reason += ": " + de.Running
	}
	werr := e.j.UpdateStep(e.saveCtx, id, func(r *state.Run) {
		if s := r.Steps[id]; s != nil {
			s.Status, s.Reason = state.StepRunning, reason
		}
	})
	e.ev.emit(Event{Kind: StepFinished, Time: end, Step: id, Attempt: num, Status: state.StepRunning,
		Reason: reason, Err: de, Duration: end.Sub(start)})
	d := done{i: n.idx, status: state.StepRunning, err: de}
	if werr != nil {
		d.fatal = e.journalError(fmt.Errorf("record step %s detached: %w", id, werr))
	}
	return d
}

func cancelReason(err error) string {
	var ff *errFailFast
	switch {
	case errors.Is(err, pipeline.ErrDetached):
		return "runner detached; resume runs it again"
	case errors.As(err, &ff):
		return "cancelled: " + ff.Error()
	case errors.Is(err, ErrInterrupted), errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return err.Error()
}
