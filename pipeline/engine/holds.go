package engine

import (
	"fmt"
	"slices"

	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/state"
)

// holds counts the units of the spec's resources (spec resources:) in use.
// A step that holds a resource takes a unit before it starts and keeps it
// until the step that cleans it (cleans:, paired by matrix values as needs
// are) reaches a final state, or, with no such step in the plan, until it
// ends itself: a provision step's stack exists until its teardown is done,
// whatever became of either. A step waiting for a unit takes no
// concurrency slot. The engine knows nothing of what a unit is.
type holds struct {
	limit   map[string]int
	used    map[string]int
	holding map[int]string // holder → the resource it holds a unit of
	cleaner map[int][]int  // cleanup step → holders whose units it releases
	cleaned map[int]bool   // holders some step in the plan cleans
	waiting map[string][]int
	started map[int]bool // holders that took a unit (or were reused holding one)
}

// holdsOf builds the accounting on first use. A holder reused on resume
// whose cleanup runs still holds its unit: its stack exists.
func (e *engine) holdsOf() *holds {
	if e.res != nil {
		return e.res
	}
	h := &holds{limit: map[string]int{}, used: map[string]int{}, holding: map[int]string{}, cleaner: map[int][]int{},
		cleaned: map[int]bool{}, waiting: map[string][]int{}, started: map[int]bool{}}
	for _, r := range e.p.Spec.Resources {
		h.limit[r.Name] = r.Limit
	}
	for i, n := range e.nodes {
		for _, target := range n.ps.Spec.Cleans {
			for _, id := range e.p.PairedCopies(n.ps, target) {
				k, ok := e.byID[id]
				if !ok || e.nodes[k].ps.Spec.Holds == "" {
					continue
				}
				h.cleaner[i] = append(h.cleaner[i], k)
				h.cleaned[k] = true
				if held := e.nodes[k]; held.ps.Action == plan.Reuse && n.ps.Action == plan.Run && h.holding[k] == "" {
					h.holding[k] = held.ps.Spec.Holds
					h.used[held.ps.Spec.Holds]++
					h.started[k] = true
				}
			}
		}
	}
	e.res = h
	return h
}

// wait takes a unit for step i if it holds a resource; when none is free it
// queues the step and reports true: the step stays pending until release
// hands it back to the scheduler.
func (e *engine) wait(i int) bool {
	n := e.nodes[i]
	r := n.ps.Spec.Holds
	if r == "" {
		return false
	}
	h := e.holdsOf()
	if h.limit[r] == 0 || h.holding[i] != "" {
		return false
	}
	if h.used[r] < h.limit[r] {
		h.used[r]++
		h.holding[i] = r
		h.started[i] = true
		return false
	}
	if !slices.Contains(h.waiting[r], i) {
		h.waiting[r] = append(h.waiting[r], i)
	}
	id, reason := n.ps.ID, fmt.Sprintf("waiting for a unit of %s (%d of %d in use)", r, h.used[r], h.limit[r])
	e.j.PostStep(id, func(run *state.Run) {
		if s := run.Steps[id]; s != nil && s.Status == state.StepPending {
			s.Reason = reason
		}
	})
	return true
}

// nothingToClean reports whether step n cleans only holders that never
// started (a fold that waited for a stack when the run stopped): they made
// nothing, and its cleanup could only fail on their missing outputs, or
// worse, treat a missing name as "everything".
func (e *engine) nothingToClean(n *node) bool {
	if len(e.p.Spec.Resources) == 0 {
		return false
	}
	h := e.holdsOf()
	cleans := h.cleaner[n.idx]
	if len(cleans) == 0 {
		return false
	}
	for _, k := range cleans {
		if h.started[k] || e.nodes[k].ps.Spec.Holds != "" && h.limit[e.nodes[k].ps.Spec.Holds] == 0 {
			return false
		}
	}
	return true
}

// release frees the units step i's end releases (it cleans their holders,
// or holds one nobody cleans) and hands a waiting step back to the scheduler
// for each unit freed.
func (e *engine) release(i int, ready []int) []int {
	if e.res == nil && len(e.p.Spec.Resources) == 0 {
		return ready
	}
	h := e.holdsOf()
	free := func(k int) {
		r := h.holding[k]
		if r == "" {
			return
		}
		delete(h.holding, k)
		h.used[r]--
		if q := h.waiting[r]; len(q) > 0 {
			h.waiting[r] = q[1:]
			ready = append(ready, q[0])
		}
	}
	for _, k := range h.cleaner[i] {
		free(k)
	}
	if !h.cleaned[i] {
		free(i)
	}
	return ready
}

// unstick settles the steps still waiting for a unit when nothing runs that
// could release one: cancelled after an interrupt, else failed (a spec whose
// cleanups need the waiting steps, or a limit below what one chain holds).
func (e *engine) unstick(ready []int) []int {
	if e.res == nil || e.detached {
		return ready
	}
	for r, q := range e.res.waiting {
		e.res.waiting[r] = nil
		for _, i := range q {
			if e.interrupt {
				ready = e.settle(i, ready, state.StepCancelled, "run interrupted while the step waited for a unit of "+r, nil)
				continue
			}
			if e.failed && !e.p.Spec.KeepGoing {
				ready = e.settle(i, ready, state.StepSkipped, "not started: "+e.failReason(), nil)
				continue
			}
			ready = e.settle(i, ready, state.StepFailed, "", fmt.Errorf(
				"waited for a unit of resource %s (limit %d), but no running step will release one: the steps that clean its holders depend on steps that wait for it",
				r, e.res.limit[r]))
		}
	}
	return ready
}

// pairedRef resolves a reference to a matrix step by its spec id
// (steps.provision.outputs.host in train-fold-2) to the copy the step pairs
// with (provision-fold-2).
func (e *engine) pairedRef(n *node, ref string) (int, bool) {
	id, ok := e.p.PairedCopy(ref, n.ps.Matrix)
	if !ok {
		return 0, false
	}
	k, ok := e.byID[id]
	return k, ok
}

// failedFor is what failure() and success() see for step n: any failure in
// the run, or with fail_fast: false only a failure among the steps it needs,
// directly or not.
func (e *engine) failedFor(n *node) bool {
	if !e.p.Spec.KeepGoing {
		return e.failed
	}
	seen := map[int]bool{}
	stack := []int{n.idx}
	for len(stack) > 0 {
		m := e.nodes[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		for _, need := range m.ps.Needs {
			k := e.byID[need]
			if seen[k] {
				continue
			}
			seen[k] = true
			if e.nodes[k].status == state.StepFailed {
				return true
			}
			stack = append(stack, k)
		}
	}
	return false
}
