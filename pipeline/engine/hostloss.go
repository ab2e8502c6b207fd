package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/expr"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/state"
)

// A host lost under a running step (a *pipeline.HostLostError: a spot
// interruption, a terminated instance) is not the step's failure. Up to the
// spec's max_host_losses times per invocation, the engine replaces the host:
// the steps its address refers to (the providers: provision) run again with
// StepRun.Replace naming the lost address, and so does every step that ran,
// runs or was to run on it (disk, data, preprocess: what they made was on
// the machine), the lost step last, each with new attempt numbers and none
// of it counted as a retry. Steps elsewhere that already succeeded keep
// their results, so nothing but the lost host's chain runs twice.
//
// The old host's remains are the provider's to clean up: it is told which
// address it replaces (provision-stack deletes the old stack before it
// creates the new one under the same name), so the chain's own cleanup step
// (teardown, via cleans:) runs once, at the end, for what exists then, and
// the provider keeps its unit of a held resource throughout.
//
// Other steps on the lost host that are still running will see the loss too
// (or finish on a machine about to vanish): their results are discarded and
// they rerun with the chain, without counting a second loss.
type hostLosses struct {
	count int             // losses replaced or refused in this invocation
	gone  map[string]bool // addresses lost and already handled
	stale map[int]bool    // running steps on a lost host: their result is discarded
}

// lostAttempt is what a step goroutine reports when its host was lost.
type lostAttempt struct {
	err        *pipeline.HostLostError
	full       error // the attempt's error, masked
	num        int
	start, end time.Time
}

// recordLost closes the attempt with the loss and leaves the step pending:
// the scheduler decides (hostLost) whether it runs again.
func (e *engine) recordLost(n *node, num int, start, end time.Time, hl *pipeline.HostLostError, err error) done {
	id := n.ps.ID
	err = e.mask.Error(err)
	werr := e.j.UpdateStep(e.saveCtx, id, func(r *state.Run) {
		s := r.Steps[id]
		if s == nil {
			return
		}
		s.Status, s.Reason = state.StepPending, "host lost: "+err.Error()
		endAttempt(s, num, end, err)
	})
	d := done{i: n.idx, status: state.StepPending, err: err, lost: &lostAttempt{err: hl, full: err, num: num, start: start, end: end}}
	if werr != nil {
		d.fatal = e.journalError(fmt.Errorf("record host loss of step %s: %w", id, werr))
	}
	return d
}

// hostLost handles a step whose host was lost, or a step that finished on a
// host lost meanwhile (stale): it resets the host's chain, or fails the step
// when the run may replace no more hosts.
func (e *engine) hostLost(d done, ready []int) []int {
	if e.hl == nil {
		e.hl = &hostLosses{gone: map[string]bool{}, stale: map[int]bool{}}
	}
	n := e.nodes[d.i]
	if e.hl.stale[d.i] {
		delete(e.hl.stale, d.i)
		if d.lost == nil && d.status != state.StepSucceeded && d.status != state.StepFailed {
			return e.settleLost(d, ready) // cancelled: the run stops anyway
		}
		e.resetStep(n, "rerun: its host was lost while it ran")
		return e.requeue(ready)
	}
	if d.fatal != nil {
		return e.settleLost(d, ready)
	}
	la := d.lost
	addr := la.err.Host.Address
	if e.hl.gone[addr] {
		// The same loss, seen by a second step on that host: the chain is
		// already being replaced.
		e.resetStep(n, "rerun: "+la.err.Error())
		return e.requeue(ready)
	}
	loss := state.HostLoss{Step: n.ps.ID, Attempt: la.num, Host: la.err.Host.Name, Address: addr, Zone: la.err.Zone,
		Time: la.end.UTC(), Start: la.start.UTC(), Cause: la.full.Error()}
	providers := e.providers(n)
	for _, k := range providers {
		if out := e.nodes[k].outputs; len(out) > 0 {
			if loss.Providers == nil {
				loss.Providers = map[string]map[string]string{}
			}
			loss.Providers[e.nodes[k].ps.ID] = maps.Clone(out)
		}
	}
	var refuse error
	switch {
	case e.interrupt || e.detached || e.failed && !e.p.Spec.KeepGoing:
		// The run is stopping: nothing new starts, so the host is not
		// replaced; the step reads as failed with its cause.
		refuse = la.full
	case len(providers) == 0:
		refuse = fmt.Errorf("%w; not replaced: the address of host %s refers to no step that could make a new one", la.err, la.err.Host.Name)
	default:
		e.hl.count++
		if e.hl.count > e.p.Spec.MaxHostLosses {
			refuse = &pipeline.HostLossLimitError{Lost: la.err, Max: e.p.Spec.MaxHostLosses, Count: e.hl.count}
		}
	}
	if refuse != nil {
		loss.Failed = refuse.Error()
		e.j.Post(func(r *state.Run) { r.HostLosses = append(r.HostLosses, loss) })
		e.ev.emit(Event{Kind: HostLost, Time: la.end, Step: n.ps.ID, Attempt: la.num, Err: la.err, Reason: "not replaced"})
		return e.failLost(n, ready, refuse)
	}
	e.hl.gone[addr] = true
	chain := e.chain(n, providers, ready)
	for _, k := range providers {
		e.nodes[k].replace = addr
	}
	reason := "rerun: " + la.err.Error()
	for _, k := range chain {
		if e.inFlight(k, d.i, ready) {
			e.hl.stale[k] = true
			continue
		}
		e.resetStep(e.nodes[k], reason)
	}
	for _, k := range chain {
		loss.Rerun = append(loss.Rerun, e.nodes[k].ps.ID)
	}
	e.j.Post(func(r *state.Run) { r.HostLosses = append(r.HostLosses, loss) })
	e.ev.emit(Event{Kind: HostLost, Time: la.end, Step: n.ps.ID, Attempt: la.num, Err: la.err,
		Reason: fmt.Sprintf("host loss %d of %d allowed; running again: %s", e.hl.count, e.p.Spec.MaxHostLosses, strings.Join(loss.Rerun, ", "))})
	return e.requeue(ready)
}

// failLost makes the step's failure durable and hands it to finish.
func (e *engine) failLost(n *node, ready []int, err error) []int {
	id := n.ps.ID
	d := done{i: n.idx, status: state.StepFailed, err: err}
	_ = e.j.UpdateStep(e.saveCtx, id, func(r *state.Run) {
		if s := r.Steps[id]; s != nil {
			s.Status, s.Reason = state.StepFailed, ""
		}
	})
	// A save that failed loses the journal, which stops the run (run's
	// loop watches Lost).
	e.ev.emit(Event{Kind: StepFinished, Time: e.opt.Now(), Step: id, Status: state.StepFailed, Err: err})
	return e.finish(d, ready)
}

// settleLost passes a result through unchanged, as finish would take it
// without host losses.
func (e *engine) settleLost(d done, ready []int) []int {
	d.lost = nil
	if d.status == state.StepPending {
		d.status = state.StepFailed
	}
	return e.finish(d, ready)
}

// providers are the steps the address of n's host refers to (paired like
// needs across a matrix): the steps that made the machine.
func (e *engine) providers(n *node) []int {
	var raw []any
	raw = append(raw, n.ps.Spec.Host)
	if h, ok := e.hosts[n.ps.Spec.Host]; ok {
		raw = append(raw, h.Address)
	}
	var out []int
	for _, v := range raw {
		refs, err := expr.RefsIn(v)
		if err != nil {
			continue // checked by prepare
		}
		for _, r := range refs {
			if r.Kind != "steps" {
				continue
			}
			k, ok := e.byID[r.Name]
			if !ok {
				k, ok = e.pairedRef(n, r.Name)
			}
			if ok && e.nodes[k].ps.Action == plan.Run && !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// chain is what runs again when the host the providers made is lost: the
// providers, the lost step, and every step downstream of them that ran or
// runs on that host (what it made was on the machine), in plan order. Steps
// still to run only have their needs recounted (requeue).
func (e *engine) chain(lost *node, providers []int, ready []int) []int {
	down := map[int]bool{}
	stack := slices.Clone(providers)
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range e.nodes[k].dependents {
			if !down[c] {
				down[c] = true
				stack = append(stack, c)
			}
		}
	}
	var out []int
	for i, n := range e.nodes {
		switch {
		case slices.Contains(providers, i), i == lost.idx:
		case !down[i] || n.ps.Action != plan.Run || !e.onHostOf(n, providers):
			continue
		case n.status == state.StepSucceeded, e.inFlight(i, lost.idx, ready):
		default:
			continue
		}
		out = append(out, i)
	}
	return out
}

// onHostOf: n runs on a host whose address one of the providers makes.
func (e *engine) onHostOf(n *node, providers []int) bool {
	for _, k := range e.providers(n) {
		if slices.Contains(providers, k) {
			return true
		}
	}
	return false
}

// inFlight: step k was handed to a goroutine and has not reported back (the
// step whose report is being handled, self, has). A pending step with no
// needs left is in flight unless it is still queued or waits for a unit of
// a resource.
func (e *engine) inFlight(k, self int, ready []int) bool {
	n := e.nodes[k]
	return k != self && n.status == state.StepPending && n.remaining == 0 && !slices.Contains(ready, k) && !e.waitingForUnit(k)
}

// resetStep makes step n pending again with its outputs gone; its next
// attempt numbers follow the last one recorded.
func (e *engine) resetStep(n *node, reason string) {
	id := n.ps.ID
	snap := e.j.Snapshot().Steps[id]
	if snap != nil {
		n.prevTries = maxAttempt(snap.Attempts)
		if len(snap.Resume) > 0 {
			n.previous = maps.Clone(snap.Resume)
		}
	}
	n.status, n.outputs, n.err, n.resume = state.StepPending, nil, nil, nil
	n.remaining = -1 // not in flight; requeue recounts it
	e.j.PostStep(id, func(r *state.Run) {
		if s := r.Steps[id]; s != nil {
			s.Status, s.Reason, s.Outputs = state.StepPending, reason, nil
		}
	})
}

// requeue recounts the needs of every pending step not in flight (resets
// add needs that are no longer final) and returns ready with the steps that
// can start now, and without those that no longer can.
func (e *engine) requeue(ready []int) []int {
	var recount []int
	for i, n := range e.nodes {
		if n.status == state.StepPending && n.ps.Action == plan.Run && !e.hl.stale[i] && !e.inFlight(i, -1, ready) {
			recount = append(recount, i)
		}
	}
	for _, i := range recount {
		n := e.nodes[i]
		n.remaining = 0
		for _, need := range n.ps.Needs {
			m := e.nodes[e.byID[need]]
			if m.ps.Action != plan.Reuse && (m.status == state.StepPending || m.status == state.StepRunning) {
				n.remaining++
			}
		}
		if n.remaining == 0 && !slices.Contains(ready, i) && !e.waitingForUnit(i) {
			ready = append(ready, i)
		}
	}
	if e.res != nil {
		for r, q := range e.res.waiting {
			e.res.waiting[r] = slices.DeleteFunc(q, func(k int) bool { return e.nodes[k].remaining > 0 })
		}
	}
	return slices.DeleteFunc(ready, func(k int) bool { return e.nodes[k].remaining > 0 })
}

// waitingForUnit: step k is queued for a unit of a resource (holds.go).
func (e *engine) waitingForUnit(k int) bool {
	if e.res != nil {
		for _, q := range e.res.waiting {
			if slices.Contains(q, k) {
				return true
			}
		}
	}
	return false
}
