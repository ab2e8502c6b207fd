// Package plan turns a loaded spec into the list of concrete steps a run
// executes: matrices expanded into readable ids, needs resolved to those ids,
// params resolved, and the steps ordered topologically (stable: the order the
// spec is written in wherever dependencies allow). A plan is also what
// `gpipe resume` rebuilds from saved state: ForResume marks each step Reuse or
// Run and says why, and Render prints a plan as text, Mermaid, DOT or JSON.
package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gpipe/gpipe/pipeline/dag"
	"github.com/gpipe/gpipe/pipeline/expr"
	"github.com/gpipe/gpipe/pipeline/spec"
)

// Action says what a run does with a step.
type Action string

const (
	// Run executes the step.
	Run Action = "run"
	// Reuse takes the step's outputs from the previous run without executing it.
	Reuse Action = "reuse"
)

// Plan is a spec resolved into concrete steps.
type Plan struct {
	Spec   *spec.Spec
	Params map[string]string // resolved: defaults applied, types checked
	Steps  []*Step           // topological, stable

	byID map[string]*Step
	// instances maps a spec step id to the ids of its matrix copies, so that
	// `--from train` means every copy of train.
	instances map[string][]string
	graph     *dag.Graph
	charges   []Charge // see SetCharges
}

// Step is one matrix-expanded step.
type Step struct {
	ID        string
	Spec      *spec.Step
	Matrix    []spec.KV
	Needs     []string // expanded ids
	DefDigest string
	Action    Action
	Reason    string // why Run or Reuse on resume; "" for a fresh run

	// Outputs of a reused step, restored from the previous run so that
	// downstream expressions see them.
	Outputs map[string]string
	// Reattach is set on resume for a step that was running when the previous
	// runner stopped and saved resume data: its first attempt gets that data
	// back, to reattach to a remote command (an SSM command id) instead of
	// starting over, or to stop what a local step left running. Every
	// other attempt starts with empty resume data, so that a retry never
	// reattaches to the command that just failed.
	Reattach bool
}

// New expands s into a plan. params are the values given on the command line
// (or saved with a run); they are resolved against the spec's declarations.
func New(s *spec.Spec, params map[string]string) (*Plan, error) {
	resolved, err := spec.ResolveParams(s, params)
	if err != nil {
		return nil, err
	}
	p := &Plan{
		Spec:      s,
		Params:    resolved,
		byID:      map[string]*Step{},
		instances: map[string][]string{},
		graph:     dag.New(),
	}
	var all []*Step
	for i := range s.Steps {
		st := &s.Steps[i]
		if _, dup := p.instances[st.ID]; dup {
			return nil, fmt.Errorf("plan: duplicate step id %q", st.ID)
		}
		insts, err := spec.Expand(st)
		if err != nil {
			return nil, fmt.Errorf("plan: expand step %s: %w", st.ID, err)
		}
		// The matrix axes are left out of the step's digest and each copy's
		// own values added instead, so adding a fold to a matrix leaves the
		// other copies reusable on resume.
		bare := *st
		bare.Matrix = nil
		base := spec.StepDigest(&bare)
		ids := make([]string, 0, len(insts))
		for _, in := range insts {
			if _, dup := p.byID[in.ID]; dup {
				return nil, fmt.Errorf("plan: step %s: expanded id %q collides with another step", st.ID, in.ID)
			}
			ps := &Step{ID: in.ID, Spec: st, Matrix: in.Matrix, DefDigest: instanceDigest(base, in.Matrix, s.Env, hostDecl(s, st.Host)), Action: Run}
			p.byID[in.ID] = ps
			p.graph.Add(in.ID)
			ids = append(ids, in.ID)
			all = append(all, ps)
		}
		p.instances[st.ID] = ids
	}
	for _, ps := range all {
		seen := map[string]bool{}
		for _, need := range ps.Spec.Needs {
			ids, ok := p.instances[need]
			if !ok {
				return nil, fmt.Errorf("plan: step %s needs unknown step %q", ps.ID, need)
			}
			paired := make([]string, 0, len(ids))
			for _, id := range ids {
				if sameSharedAxes(ps.Matrix, p.byID[id].Matrix) {
					paired = append(paired, id)
				}
			}
			if len(paired) == 0 {
				paired = ids // no copy shares its values: need them all, never none
			}
			for _, id := range paired {
				if !seen[id] {
					seen[id] = true
					ps.Needs = append(ps.Needs, id)
					p.graph.Connect(id, ps.ID)
				}
			}
		}
		// A copy named in an expression is needed even when pairing left it
		// out: evaluate-fold-0 may read steps.train-fold-3.outputs.
		refs, err := copyRefs(ps.Spec)
		if err != nil {
			return nil, fmt.Errorf("plan: step %s: %w", ps.ID, err)
		}
		for _, id := range refs {
			// Only matrix copies can have been left out by pairing.
			if c, ok := p.byID[id]; ok && len(c.Matrix) > 0 && !seen[id] && id != ps.ID {
				seen[id] = true
				ps.Needs = append(ps.Needs, id)
				p.graph.Connect(id, ps.ID)
			}
		}
	}
	order, err := p.graph.TopoSort()
	if err != nil {
		var ce *dag.CycleError
		if errors.As(err, &ce) {
			return nil, &CycleError{err: ce}
		}
		return nil, fmt.Errorf("plan: order steps: %w", err)
	}
	p.Steps = make([]*Step, len(order))
	for i, id := range order {
		p.Steps[i] = p.byID[id]
	}
	if err := p.checkHolds(); err != nil {
		return nil, err
	}
	return p, nil
}

// sameSharedAxes reports whether two matrix copies agree on every axis they
// share. A matrix step that needs a matrix step over the same axis thereby
// pairs up with it: evaluate-fold-0 needs train-fold-0, not all five folds.
func sameSharedAxes(a, b []spec.KV) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Key == y.Key && x.Value != y.Value {
				return false
			}
		}
	}
	return true
}

// copyRefs lists the step ids that a step's expressions name.
func copyRefs(st *spec.Step) ([]string, error) {
	var out []string
	add := func(refs []expr.Ref) {
		for _, r := range refs {
			if r.Kind == "steps" {
				out = append(out, r.Name)
			}
		}
	}
	walk := func(v any) error {
		refs, err := expr.RefsIn(v)
		add(refs)
		return err
	}
	if err := walk(st.With); err != nil {
		return nil, err
	}
	for _, kv := range st.Env {
		if err := walk(kv.Value); err != nil {
			return nil, err
		}
	}
	if err := walk(st.Host); err != nil {
		return nil, err
	}
	cond, err := expr.ParseCondition(st.If)
	if err != nil {
		return nil, err
	}
	add(cond.Refs())
	return out, nil
}

// instanceDigest folds into a step's digest what else decides what one copy
// does: its matrix values, the pipeline's env (every step sees it) and the
// declaration of the host it runs on, so that resume --spec reruns a step when
// any of them changed.
func instanceDigest(base string, m []spec.KV, env []spec.KV, host *spec.HostDecl) string {
	h := sha256.New()
	fmt.Fprintf(h, "step %s\n", base)
	for _, kv := range m {
		fmt.Fprintf(h, "matrix %q=%q\n", kv.Key, kv.Value)
	}
	for _, kv := range env {
		fmt.Fprintf(h, "env %q=%q\n", kv.Key, kv.Value)
	}
	if host != nil {
		fmt.Fprintf(h, "host %q %q %d\n", host.Name, host.Address, host.Cards)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hostDecl returns the declared host a step's host field names, if any.
func hostDecl(s *spec.Spec, name string) *spec.HostDecl {
	for i := range s.Hosts {
		if s.Hosts[i].Name == name {
			return &s.Hosts[i]
		}
	}
	return nil
}

// Step returns the step with the expanded id, or nil.
func (p *Plan) Step(id string) *Step { return p.byID[id] }

// Instances returns the expanded ids of a spec step (one id for a step
// without a matrix), or nil when the spec has no such step.
func (p *Plan) Instances(specID string) []string {
	return append([]string(nil), p.instances[specID]...)
}

// CycleError says steps need each other in a circle. It wraps the
// *dag.CycleError and words each cycle along needs: "a needs c needs b needs a".
type CycleError struct{ err *dag.CycleError }

func (e *CycleError) Error() string {
	var parts []string
	for _, c := range e.err.Cycles {
		// Graph edges run from a need to its dependent; reversed, the path
		// reads along needs.
		r := slices.Clone(c)
		slices.Reverse(r)
		parts = append(parts, strings.Join(r, " needs "))
	}
	return "plan: steps need each other in a cycle: " + strings.Join(parts, "; ")
}

func (e *CycleError) Unwrap() error { return e.err }
