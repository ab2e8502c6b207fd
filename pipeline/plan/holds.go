package plan

import (
	"fmt"
	"slices"
	"strings"
)

// HoldsDeadlockError is a spec whose resource limit can never be met: to
// start Step, the engine must first have run every holder in Holders (they
// are Step's ancestors, or Step itself), and none of their units comes back
// before Step starts (each is released only by Step or a step after it),
// so more than Limit units would be in use at once. The engine would wait
// for a unit forever (pipeline/engine/holds.go ends such a wait by failing
// the run); the plan refuses the spec instead.
type HoldsDeadlockError struct {
	Resource string
	Limit    int
	Step     string
	Holders  []string
}

func (e *HoldsDeadlockError) Error() string {
	return fmt.Sprintf("plan: resources.%s is %d, but step %s cannot start before %d steps that hold it have each taken a unit (%s), "+
		"and none is released before %s starts: the run would wait forever. Raise resources.%s to %d, or release each unit earlier "+
		"(a cleanup step paired with its holder, such as a teardown in the same matrix that needs only its own fold)",
		e.Resource, e.Limit, e.Step, len(e.Holders), strings.Join(e.Holders, ", "), e.Step, e.Resource, len(e.Holders))
}

// checkHolds refuses a plan whose holds can deadlock (HoldsDeadlockError).
// A holder keeps its unit until a step that cleans it (paired as the engine
// pairs them) reaches a final state, or until its own end when nothing in
// the plan cleans it. For every step S, the holders that must all hold a
// unit at the moment S starts are: S if it holds, and each holder among S's
// ancestors that is cleaned only by S or by steps after S.
func (p *Plan) checkHolds() error {
	if len(p.Spec.Resources) == 0 {
		return nil
	}
	cleaners := map[string][]string{} // holder → the steps that clean it
	var holders int
	for _, ps := range p.Steps {
		if ps.Spec.Holds != "" {
			holders++
		}
		for _, target := range ps.Spec.Cleans {
			for _, id := range p.PairedCopies(ps, target) {
				if h := p.byID[id]; h != nil && h.Spec.Holds != "" {
					cleaners[id] = append(cleaners[id], ps.ID)
				}
			}
		}
	}
	if holders == 0 {
		return nil
	}
	children := map[string][]string{}
	for _, ps := range p.Steps {
		for _, n := range ps.Needs {
			children[n] = append(children[n], ps.ID)
		}
	}
	walk := func(from string, next func(string) []string) map[string]bool {
		seen := map[string]bool{}
		stack := []string{from}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, n := range next(id) {
				if !seen[n] {
					seen[n] = true
					stack = append(stack, n)
				}
			}
		}
		return seen
	}
	needs := func(id string) []string { return p.byID[id].Needs }
	after := func(id string) []string { return children[id] }
	for _, s := range p.Steps {
		anc := walk(s.ID, needs)
		var desc map[string]bool // made when needed
		held := map[string][]string{}
		if r := s.Spec.Holds; r != "" {
			held[r] = append(held[r], s.ID)
		}
		for _, a := range p.Steps { // in plan order, for a stable message
			r := a.Spec.Holds
			cl := cleaners[a.ID]
			if r == "" || !anc[a.ID] || len(cl) == 0 {
				continue
			}
			if desc == nil {
				desc = walk(s.ID, after)
			}
			if !slices.ContainsFunc(cl, func(c string) bool { return c != s.ID && !desc[c] }) {
				held[r] = append(held[r], a.ID)
			}
		}
		for _, r := range p.Spec.Resources {
			if ids := held[r.Name]; r.Limit > 0 && len(ids) > r.Limit {
				return &HoldsDeadlockError{Resource: r.Name, Limit: r.Limit, Step: s.ID, Holders: ids}
			}
		}
	}
	return nil
}
