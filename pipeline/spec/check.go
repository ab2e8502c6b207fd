package spec

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	suggestpkg "github.com/gpipe/gpipe/internal/suggest"
)

// checker runs the semantic checks the schema cannot express: ids, needs,
// cycles, matrix copies, hosts, and what expressions refer to.
type checker struct {
	opts  *Options
	errs  *errList
	spec  *Spec
	nodes []*ynode // the mapping node of each of spec.Steps
	root  *ynode

	byID   map[string]int // step id → index of its first definition
	needs  [][]int        // step index → indices of the steps it needs
	owner  map[string]int // instance id (step id or matrix copy id) → step index
	params map[string]bool
	hosts  map[string]int // host name → index in spec.Hosts

	// DFS scratch space for upstream queries, reused across queries.
	mark []int
	gen  int
}

func check(ctx context.Context, opts *Options, root *ynode, s *Spec, errs *errList) error {
	c := &checker{opts: opts, errs: errs, spec: s, root: root, byID: map[string]int{}, owner: map[string]int{}, params: map[string]bool{}, hosts: map[string]int{}}
	if st := root.get("steps"); st != nil && st.kind == seqNode {
		for _, it := range st.items {
			if it.kind == mapNode {
				c.nodes = append(c.nodes, it)
			}
		}
	}
	for _, p := range s.Params {
		c.params[p.Name] = true
	}
	for i, h := range s.Hosts {
		c.hosts[h.Name] = i
	}
	for _, f := range []func(){c.checkParams, c.checkIDs, c.checkNeeds, c.checkCycles, c.checkCleans, c.checkHolds, c.checkMatrix, c.checkGraphSize, c.checkTopLevelExprs} {
		if err := ctx.Err(); err != nil {
			return err
		}
		f()
	}
	for i := range s.Steps {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		c.checkStep(i)
	}
	warns := &errList{src: errs.src}
	c.checkInjection(warns)
	if len(warns.errs) > 0 {
		s.Warnings, _ = warns.result().(Errors)
	}
	return nil
}

func (c *checker) stepName(i int) string {
	if id := c.spec.Steps[i].ID; id != "" {
		return strconv.Quote(id)
	}
	return "#" + strconv.Itoa(i+1)
}

func (c *checker) fieldPos(i int, field string) Pos {
	if p, ok := c.spec.Steps[i].FieldPos[field]; ok {
		return p
	}
	return c.spec.Steps[i].Pos
}

func (c *checker) checkParams() {
	ps := c.root.get("params")
	for _, p := range c.spec.Params {
		pn := ps.get(p.Name)
		if p.Default != nil && !paramTypeOK(p.Type, p.Default) {
			c.errs.add(pn.get("default").pos, "param %q: default %s is not %s", p.Name, describeScalar(p.Default), typeWords(p.Type))
		}
		if f := pn.get("from"); f != nil && p.From != "" {
			if !p.Secret {
				c.errs.add(f.pos, "param %q: from: is for secrets: add secret: true", p.Name)
			}
			if p.Default != nil {
				c.errs.add(pn.get("default").pos, "param %q: a param read from %s has no default (when the reference cannot be read the run stops rather than using another value)", p.Name, p.From)
			}
		}
		if en := pn.get("enum"); en != nil && en.kind == seqNode {
			for _, it := range en.items {
				if it.kind == scalarNode && !paramTypeOK(p.Type, it.val) {
					c.errs.add(it.pos, "param %q: enum value %s is not %s", p.Name, describeScalar(it.val), typeWords(p.Type))
				}
			}
			if p.Default != nil && !inEnum(p.Default, p.Enum) {
				c.errs.add(pn.get("default").pos, "param %q: default %s is not one of its enum values", p.Name, describeScalar(p.Default))
			}
		}
	}
}

func paramTypeOK(typ string, v any) bool {
	switch typ {
	case "integer":
		_, ok := v.(int)
		if f, isF := v.(float64); isF {
			ok = f == float64(int64(f))
		}
		return ok
	case "number":
		_, i := v.(int)
		_, f := v.(float64)
		return i || f
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	}
	return true // an unknown type was reported by the schema
}

func inEnum(v any, enum []any) bool {
	for _, e := range enum {
		if scalarString(e) == scalarString(v) {
			return true
		}
	}
	return false
}

func describeScalar(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return scalarString(v)
}

func (c *checker) checkIDs() {
	for i, st := range c.spec.Steps {
		if st.ID == "" {
			continue
		}
		if first, dup := c.byID[st.ID]; dup {
			c.errs.add(c.fieldPos(i, "id"), "duplicate step id %q (first at line %d)", st.ID, c.fieldPos(first, "id").Line)
			continue
		}
		c.byID[st.ID] = i
	}
}

func (c *checker) checkNeeds() {
	c.needs = make([][]int, len(c.spec.Steps))
	ids := make([]string, 0, len(c.byID))
	for id := range c.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for i, st := range c.spec.Steps {
		for j, need := range st.Needs {
			p := c.fieldPos(i, "needs["+strconv.Itoa(j)+"]")
			t, ok := c.byID[need]
			switch {
			case need == st.ID:
				c.errs.add(p, "step %s needs itself", c.stepName(i))
			case !ok:
				c.errs.add(p, "step %s needs unknown step %q%s", c.stepName(i), need, suggestFrom(need, ids))
			default:
				c.needs[i] = append(c.needs[i], t)
			}
		}
	}
}

// checkCleans requires every step a step cleans to be upstream of it: a
// cleanup can only undo what ran before it.
func (c *checker) checkCleans() {
	for i, st := range c.spec.Steps {
		for j, target := range st.Cleans {
			p := c.fieldPos(i, "cleans["+strconv.Itoa(j)+"]")
			t, ok := c.byID[target]
			switch {
			case !ok:
				c.errs.add(p, "step %s cleans unknown step %q", c.stepName(i), target)
			case t == i:
				c.errs.add(p, "step %s cleans itself", c.stepName(i))
			case !c.upstream(i, t):
				c.errs.add(p, "step %s cleans %q, which is not upstream of it (add %q to needs)", c.stepName(i), target, target)
			}
		}
	}
}

// checkHolds requires every held resource to be declared.
func (c *checker) checkHolds() {
	var names []string
	for _, r := range c.spec.Resources {
		names = append(names, r.Name)
	}
	for i, st := range c.spec.Steps {
		if st.Holds != "" && !slices.Contains(names, st.Holds) {
			c.errs.add(c.fieldPos(i, "holds"), "step %s holds %q, which is not declared under resources%s", c.stepName(i), st.Holds, suggestFrom(st.Holds, names))
		}
	}
}

func suggestFrom(name string, candidates []string) string {
	return suggestpkg.DidYouMean(name, candidates)
}

// upstream reports whether step `to` is reachable from step `from` through
// needs (to runs before from).
func (c *checker) upstream(from, to int) bool {
	for _, n := range c.needs[from] {
		if n == to {
			return true
		}
	}
	if c.mark == nil {
		c.mark = make([]int, len(c.spec.Steps))
	}
	c.gen++
	stack := append([]int(nil), c.needs[from]...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == to {
			return true
		}
		if c.mark[n] == c.gen {
			continue
		}
		c.mark[n] = c.gen
		stack = append(stack, c.needs[n]...)
	}
	return false
}

func (c *checker) checkMatrix() {
	for i := range c.spec.Steps {
		st := &c.spec.Steps[i]
		if st.ID == "" || c.byID[st.ID] != i {
			continue
		}
		c.owner[st.ID] = i
	}
	for i := range c.spec.Steps {
		st := &c.spec.Steps[i]
		if len(st.Matrix) == 0 || st.ID == "" || c.byID[st.ID] != i || emptyAxis(st) {
			continue // an empty axis was reported by the schema
		}
		insts, err := Expand(st)
		if err != nil {
			c.errs.add(c.fieldPos(i, "matrix"), "%v", err)
			continue
		}
		for _, in := range insts {
			if len(in.ID) > MaxIDLength {
				c.errs.add(c.fieldPos(i, "matrix"), "step %s: matrix copy id %q is longer than the %d characters a step id may have", c.stepName(i), in.ID, MaxIDLength)
				break // every copy's id starts alike; one error says it
			}
			if o, taken := c.owner[in.ID]; taken {
				switch {
				case o == i:
					c.errs.add(c.fieldPos(i, "matrix"), "step %s: two matrix copies get the id %q", c.stepName(i), in.ID)
				case c.spec.Steps[o].ID == in.ID:
					c.errs.add(c.fieldPos(i, "matrix"), "step %s: matrix copy id %q collides with step %q", c.stepName(i), in.ID, in.ID)
				default:
					c.errs.add(c.fieldPos(i, "matrix"), "step %s: matrix copy id %q collides with a copy of step %s", c.stepName(i), in.ID, c.stepName(o))
				}
				continue
			}
			c.owner[in.ID] = i
		}
	}
}

// checkTopLevelExprs checks the spec's env and the hosts' addresses. Host
// addresses may name step outputs; whether those steps are upstream is checked
// for each step that uses the host.
func (c *checker) checkTopLevelExprs() {
	if env := c.root.get("env"); env != nil && env.kind == mapNode {
		for _, k := range env.keys {
			c.checkString(k.val, "env."+k.name, exprCtx{where: "env", step: -1})
		}
	}
	if hs := c.root.get("hosts"); hs != nil && hs.kind == mapNode {
		for _, k := range hs.keys {
			if a := k.val.get("address"); a != nil {
				c.checkString(a, "address", exprCtx{where: fmt.Sprintf("host %q", k.name), step: -1, host: true})
			}
		}
	}
}

func (c *checker) checkStep(i int) {
	n := c.nodes[i]
	ctx := exprCtx{where: "step " + c.stepName(i), step: i}
	if w := n.get("with"); w != nil {
		c.walkStrings(w, "with", ctx)
	}
	if env := n.get("env"); env != nil && env.kind == mapNode {
		for _, k := range env.keys {
			c.checkString(k.val, "env."+k.name, ctx)
		}
	}
	if h := n.get("host"); h != nil {
		c.checkString(h, "host", ctx)
		c.checkHost(i, h)
	}
	if f := n.get("if"); f != nil {
		c.checkCondition(f, ctx)
	}
	if r := n.get("retry"); r != nil {
		if on := r.get("on"); on != nil && on.kind == seqNode {
			for j, it := range on.items {
				if s, ok := it.scalar().(string); ok {
					if _, err := regexp.Compile(s); err != nil {
						c.errs.add(it.pos, "step %s: retry.on[%d] is not a valid regular expression: %v", c.stepName(i), j, err)
					}
				}
			}
		}
		for _, f := range []string{"backoff", "max_backoff"} {
			c.checkDuration(i, r.get(f), "retry."+f)
		}
	}
	c.checkDuration(i, n.get("timeout"), "timeout")
	if t := n.get("timeout"); t != nil {
		// Absent means no limit; a zero limit would fail every attempt at
		// once, which no one means.
		if s, ok := t.scalar().(string); ok && durationRE.MatchString(s) {
			if d, err := time.ParseDuration(s); err == nil && d == 0 {
				c.errs.add(t.pos, "step %s: timeout %q is no time at all; leave timeout out for no limit", c.stepName(i), s)
			}
		}
	}
}

// checkDuration reports durations that match the schema's pattern but do not
// fit a time.Duration (about 290 years).
func (c *checker) checkDuration(i int, n *ynode, field string) {
	s, ok := n.scalar().(string)
	if !ok || !durationRE.MatchString(s) {
		return
	}
	if _, err := time.ParseDuration(s); err != nil {
		c.errs.add(n.pos, "step %s: %q is too long a duration", c.stepName(i), s)
	}
}

var durationRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)

func (c *checker) checkHost(i int, h *ynode) {
	s, ok := h.scalar().(string)
	if !ok || s == "" {
		return
	}
	if _, declared := c.hosts[s]; declared {
		// The host's address may use step outputs: they must be upstream of
		// every step that runs there.
		addr := c.root.get("hosts").get(s).get("address")
		if a, ok := addr.scalar().(string); ok && strings.Contains(a, "${{") {
			for _, u := range usesOf(a) {
				if u.Ref.Kind == "steps" {
					if t, known := c.owner[u.Ref.Name]; known && t != i && !c.upstream(i, t) {
						c.errs.add(h.pos, "step %s: host %q uses %s, but step %q is not upstream of %s (add it to needs)",
							c.stepName(i), s, u.Ref, u.Ref.Name, c.stepName(i))
					}
				}
				if u.Ref.Kind == "matrix" && !c.hasAxis(i, u.Ref.Name) {
					c.errs.add(h.pos, "step %s: host %q uses matrix.%s, but the step has no matrix axis %q", c.stepName(i), s, u.Ref.Name, u.Ref.Name)
				}
			}
		}
		return
	}
	if strings.Contains(s, "${{") || s == "local" || c.opts.hostScheme(s) {
		return
	}
	names := make([]string, 0, len(c.spec.Hosts))
	for _, hd := range c.spec.Hosts {
		names = append(names, hd.Name)
	}
	if hint := suggestFrom(s, names); hint != "" {
		c.errs.add(h.pos, "step %s: unknown host %q%s", c.stepName(i), s, hint)
		return
	}
	c.errs.add(h.pos, "step %s: unknown host %q (declare it under hosts, or use %s)", c.stepName(i), s, c.opts.hostUsage())
}

func (c *checker) hasAxis(i int, name string) bool {
	for _, ax := range c.spec.Steps[i].Matrix {
		if ax.Name == name {
			return true
		}
	}
	return false
}

func emptyAxis(st *Step) bool {
	for _, ax := range st.Matrix {
		if len(ax.Values) == 0 {
			return true
		}
	}
	return false
}
