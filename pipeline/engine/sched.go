package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/expr"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/secret"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// node is the scheduler's view of one plan step. Only the scheduler goroutine
// touches it after start.
type node struct {
	idx        int
	ps         *plan.Step
	runner     pipeline.Runner
	cond       *expr.Condition
	retryOn    []*regexp.Regexp
	refs       []string // steps whose outputs its expressions use
	dependents []int
	remaining  int // needs not yet in a final state
	status     state.StepStatus
	outputs    map[string]string
	prevTries  int               // attempts recorded by earlier runs of this run id
	resume     map[string]string // only for a step that reattaches
	previous   map[string]string // what an earlier runner saved, for cleaning up after it
	leftovers  []string          // token prefixes of its attempts by any runner of this run, this one included
	err        error             // why it failed
	replace    string            // a lost host this step made, which its next attempt replaces (hostloss.go)
}

// done is what a step goroutine reports when its step reached a final state
// (applied to the journal; durable once the journal's Durable reaches mark).
type done struct {
	i       int
	status  state.StepStatus
	outputs map[string]string
	err     error        // the step's failure
	fatal   error        // the journal could not record it: stop the run
	lost    *lostAttempt // the step's host was lost (hostloss.go); status is pending
	mark    state.Mark   // the journal change that records it; 0 when durable already
}

type engine struct {
	p     *plan.Plan
	j     journal
	opt   Options
	runID string
	ev    *events

	nodes   []*node
	byID    map[string]int
	hosts   map[string]spec.HostDecl
	specEnv map[string]string // spec env, evaluated once
	baseEnv map[string]string // runner env + spec env, for ${{ env.X }}
	params  map[string]string
	runVars map[string]string
	// mask hides secret params' values in what steps leave behind: logs,
	// outputs, errors (see record and attempt).
	mask *secret.Masker
	// runnerToken is this runner's entry in state.Run.Runners: the first
	// part of its attempts' tokens.
	runnerToken string

	ctx        context.Context // the caller's: cancelled on interrupt
	runCtx     context.Context // ordinary steps: cancelled by interrupt, fail-fast, Hard, loss
	cancelRun  context.CancelCauseFunc
	cleanCtx   context.Context // always()/failure() steps: cancelled only by Hard and loss
	saveCtx    context.Context // state and log writes: never cancelled (a lost journal fails them at once)
	cancelAll  context.CancelCauseFunc
	slots      chan struct{}
	poolMu     sync.Mutex
	pools      map[string]*cardPool // by host (see resolveHost)
	doneCh     chan done
	gated      []done     // finished, waiting for their outcome to be durable (see ungate)
	hurried    state.Mark // the highest Mark the journal was hurried to
	active     int
	failed     bool
	interrupt  bool
	detached   bool
	failedStep string
	res        *holds      // see holds.go; nil until a step holds a resource
	hl         *hostLosses // see hostloss.go; nil until a host is lost
}

// errFailFast is the cancellation cause of siblings of a failed step.
type errFailFast struct{ step string }

func (e *errFailFast) Error() string { return "step " + e.step + " failed" }

func newEngine(ctx context.Context, p *plan.Plan, j journal, opt Options) (*engine, error) {
	e := &engine{
		p: p, j: j, opt: opt, runID: j.RunID(), ctx: ctx,
		byID:   make(map[string]int, len(p.Steps)),
		hosts:  map[string]spec.HostDecl{},
		params: p.Params,
		pools:  map[string]*cardPool{},
		slots:  make(chan struct{}, opt.Concurrency),
		doneCh: make(chan done, 64),
	}
	e.runVars = map[string]string{"id": e.runID, "name": p.Spec.Name}
	// GPIPE_SECRET_* variables are secrets even when a -p overrode the param
	// they were meant for: steps inherit them.
	vals := secret.Values(p.Spec, p.Params)
	for k, v := range opt.Env {
		if strings.HasPrefix(k, secret.EnvPrefix) {
			vals = append(vals, v)
		}
	}
	e.mask = secret.NewMasker(vals...)
	e.runnerToken = rand.Text()
	for _, h := range p.Spec.Hosts {
		e.hosts[h.Name] = h
	}
	e.baseEnv = maps.Clone(opt.Env)
	if e.baseEnv == nil {
		e.baseEnv = map[string]string{}
	}
	e.specEnv = map[string]string{}
	for _, kv := range p.Spec.Env {
		v, err := interpolateString(kv.Value, &expr.Scope{Params: e.params, Run: e.runVars, Env: e.baseEnv})
		if err != nil {
			return nil, fmt.Errorf("spec env %s: %w", kv.Key, err)
		}
		e.specEnv[kv.Key] = v
		e.baseEnv[kv.Key] = v
	}
	snap := j.Snapshot()
	e.nodes = make([]*node, len(p.Steps))
	for i, ps := range p.Steps {
		e.byID[ps.ID] = i
		n := &node{idx: i, ps: ps, status: state.StepPending}
		if prev := snap.Steps[ps.ID]; prev != nil {
			n.prevTries = maxAttempt(prev.Attempts)
			if ps.Action == plan.Run && len(prev.Resume) > 0 {
				n.previous = maps.Clone(prev.Resume)
			}
			if ps.Reattach {
				n.resume = maps.Clone(prev.Resume)
			}
		}
		if ps.Action == plan.Run {
			// Any runner of this run may have left processes of the
			// step running: one that died (perhaps before it saved the
			// attempt), or one whose process left its process group.
			// This runner's own are earlier attempts, before a retry.
			for _, r := range append(slices.Clone(snap.Runners), e.runnerToken) {
				n.leftovers = append(n.leftovers, r+"/"+ps.ID+"/")
			}
		}
		e.nodes[i] = n
	}
	var problems []string
	for i, n := range e.nodes {
		for _, need := range n.ps.Needs {
			k, ok := e.byID[need]
			if !ok {
				return nil, fmt.Errorf("engine: step %s needs %s, which is not in the plan", n.ps.ID, need)
			}
			e.nodes[k].dependents = append(e.nodes[k].dependents, i)
			if n.ps.Action != plan.Reuse && e.nodes[k].ps.Action != plan.Reuse {
				n.remaining++
			}
		}
		if n.ps.Action == plan.Reuse {
			n.status = state.StepSucceeded
			n.outputs = n.ps.Outputs
			continue
		}
		if err := e.prepare(n); err != nil {
			problems = append(problems, fmt.Sprintf("step %s: %v", n.ps.ID, err))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("cannot run the plan:\n  %s", strings.Join(problems, "\n  "))
	}
	return e, nil
}

func maxAttempt(as []state.Attempt) int {
	m := 0
	for _, a := range as {
		m = max(m, a.N)
	}
	return m
}

// prepare checks what can be checked before anything runs: the step type,
// the condition, retry patterns, and a card demand its host cannot meet.
func (e *engine) prepare(n *node) error {
	st := n.ps.Spec
	r, ok := e.opt.Registry.Lookup(st.Type)
	if !ok {
		return fmt.Errorf("unknown step type %q", st.Type)
	}
	n.runner = r
	c, err := expr.ParseCondition(st.If)
	if err != nil {
		return fmt.Errorf("if %q: %w", st.If, err)
	}
	n.cond = c
	if n.refs, err = stepRefs(n.ps, e.p.Spec.Hosts, c); err != nil {
		return err
	}
	for _, pat := range st.Retry.On {
		re, err := regexp.Compile(pat)
		if err != nil {
			return fmt.Errorf("retry.on %q: %w", pat, err)
		}
		n.retryOn = append(n.retryOn, re)
	}
	cd, ok := r.(pipeline.CardDemander)
	if !ok {
		return nil
	}
	// Resolve what is known before the run (params, matrix, env); a host or
	// with that depends on step outputs is checked when the step starts.
	sc := &expr.Scope{Params: e.params, Matrix: kvMap(n.ps.Matrix), Run: e.runVars, Env: e.baseEnv}
	res, err := e.resolve(n.ps, sc)
	if err != nil {
		return nil
	}
	want := cd.Cards(res.with)
	if res.host.Cards > 0 && want > res.host.Cards {
		return fmt.Errorf("needs %d accelerator cards but host %s declares %d", want, res.host.Name, res.host.Cards)
	}
	return nil
}

// pool returns the card pool of a host, creating it on first use.
func (e *engine) pool(key string, cards int) *cardPool {
	e.poolMu.Lock()
	defer e.poolMu.Unlock()
	p := e.pools[key]
	if p == nil {
		p = newCardPool(cards)
		e.pools[key] = p
	}
	return p
}

// run drives the scheduler loop until every step reached a final state.
func (e *engine) run() error {
	hard := e.opt.Hard
	if hard == nil {
		hard = context.WithoutCancel(e.ctx)
	}
	e.saveCtx = context.WithoutCancel(e.ctx)
	e.cleanCtx, e.cancelAll = context.WithCancelCause(hard)
	defer e.cancelAll(nil)
	e.runCtx, e.cancelRun = context.WithCancelCause(e.ctx)
	defer e.cancelRun(nil)
	stopHard := context.AfterFunc(e.cleanCtx, func() { e.cancelRun(context.Cause(e.cleanCtx)) })
	defer stopHard()

	e.ev = newEvents(e.opt.Events)
	if err := e.j.Update(e.saveCtx, e.initState); err != nil {
		e.ev.close()
		return e.journalError(fmt.Errorf("record start of run %s: %w", e.runID, err))
	}

	var ready []int
	for i, n := range e.nodes {
		if n.ps.Action == plan.Reuse {
			e.ev.emit(Event{Kind: StepReused, Time: e.opt.Now(), Step: n.ps.ID, Status: state.StepSucceeded, Reason: n.ps.Reason})
			continue
		}
		if n.remaining == 0 {
			ready = append(ready, i)
		}
	}
	var fatal error
	lost := e.j.Lost()
	ctxDone := e.ctx.Done()
	detach := e.opt.Detach
	// The scheduler's own loop, not an errgroup: a failure cancels the
	// ordinary steps (runCtx) but not always() cleanup steps (cleanCtx), and
	// it is the moment failure() and always() steps start, so every step's
	// outcome, not only the first error, decides what runs next and is
	// recorded. errgroup has one context that its first error cancels for
	// every goroutine, and reports only that error, at Wait.
	for {
		select {
		case <-detach: // checked first so that nothing starts once it fired
			detach = nil
			e.detach()
		default:
		}
		for len(ready) > 0 && fatal == nil && !e.detached {
			i := ready[0]
			ready = ready[1:]
			ready = e.decide(i, ready)
		}
		var durable <-chan struct{}
		if len(e.gated) > 0 {
			var more bool
			if ready, more, durable = e.ungate(ready, fatal != nil); more {
				continue
			}
		}
		if e.active == 0 && len(e.gated) == 0 && fatal == nil && len(ready) == 0 {
			// Steps waiting for a resource no running step will free.
			if ready = e.unstick(ready); len(ready) > 0 {
				continue
			}
		}
		if e.active == 0 && len(e.gated) == 0 {
			break
		}
		select {
		case <-detach:
			detach = nil
			e.detach()
		case <-durable:
		case d := <-e.doneCh:
			e.active--
			if d.fatal != nil && fatal == nil {
				fatal = d.fatal
				e.cancelAll(fatal)
			}
			if d.mark != 0 {
				e.gated = append(e.gated, d)
				continue
			}
			ready = e.finish(d, ready)
		case <-ctxDone:
			ctxDone = nil
			e.interrupt = true
		case <-lost:
			lost = nil
			if fatal == nil {
				fatal = e.journalError(e.j.Err())
				e.cancelAll(fatal)
			}
		}
	}
	if fatal == nil {
		select {
		case <-e.j.Lost():
			fatal = e.journalError(e.j.Err())
		default:
		}
	}
	if fatal == nil && e.ctx.Err() != nil {
		e.interrupt = true
	}
	if e.detached {
		e.leavePending()
	}
	return e.end(fatal)
}

// ungate hands the scheduler the steps whose outcome the journal has stored
// since they finished (gated), in the order they finished, and reports
// whether it did. A step's dependents start only then: a runner killed at any
// moment leaves no step started whose needs a resume would run again. Saves
// are not awaited one by one: while every slot is busy, outcomes wait for the
// journal's next save (within its post delay), and many share it; once a slot
// would idle, the journal is hurried. With fatal, nothing will start any
// more: every gated step is handed over at once, for the final tally.
//
// It returns the channel that is closed when the journal stores more.
func (e *engine) ungate(ready []int, fatal bool) ([]int, bool, <-chan struct{}) {
	stored, more := e.j.Durable()
	waiting := e.gated[:0]
	var want state.Mark
	released := false
	for _, d := range e.gated {
		if fatal || d.mark <= stored {
			ready = e.finish(d, ready)
			released = true
			continue
		}
		waiting = append(waiting, d)
		want = max(want, d.mark)
	}
	clear(e.gated[len(waiting):])
	e.gated = waiting
	if want > e.hurried && len(e.slots) < cap(e.slots) {
		e.hurried = want
		e.j.Hurry(want)
	}
	return ready, released, more
}

// detach stops the run without stopping remote work: every step context,
// cleanup's included, is cancelled with pipeline.ErrDetached, which step
// types read as "return, leave it running" (see pipeline.DetachedError).
func (e *engine) detach() {
	e.detached = true
	e.cancelRun(pipeline.ErrDetached)
	e.cancelAll(pipeline.ErrDetached)
}

// leavePending gives the steps a detached run never started a reason; they
// stay pending, so a resume runs them.
func (e *engine) leavePending() {
	const reason = "not started: the runner detached"
	for _, n := range e.nodes {
		if n.status != state.StepPending {
			continue
		}
		id := n.ps.ID
		e.j.PostStep(id, func(r *state.Run) {
			if s := r.Steps[id]; s != nil && s.Status == state.StepPending {
				s.Reason = reason
			}
		})
		e.ev.emit(Event{Kind: StepSkipped, Time: e.opt.Now(), Step: id, Status: state.StepPending, Reason: reason})
	}
}

// journalError makes sure a journal lost to another writer reads as
// state.ErrConflict to callers that map errors to exit codes; a run whose
// state was deleted reads as state.ErrNotFound.
func (e *engine) journalError(err error) error {
	if err == nil {
		err = errors.New("journal lost")
	}
	// The journal's error says that this runner stops driving the run.
	if errors.Is(err, state.ErrConflict) {
		return fmt.Errorf("run %s: %w", e.runID, err)
	}
	if errors.Is(err, state.ErrNotFound) {
		// Nobody else drives it: its state was deleted. Not a conflict.
		return fmt.Errorf("run %s: %w", e.runID, err)
	}
	// Saves kept failing (the store is down): the journal gave up. That is
	// not another runner's doing, so it does not read as a conflict.
	return fmt.Errorf("run %s: %w", e.runID, err)
}
