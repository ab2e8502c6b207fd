package spec

import (
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/gpipe/gpipe/pipeline/expr"
)

// exprCtx says where an expression is written, which decides what it may
// refer to.
type exprCtx struct {
	where string // `step "a"`, `host "gaudi"`, "env"
	step  int    // index of the step, -1 outside steps
	host  bool   // a host address: step refs are checked per using step
}

func (c *checker) walkStrings(n *ynode, path string, ctx exprCtx) {
	switch n.kind {
	case mapNode:
		for _, k := range n.keys {
			c.walkStrings(k.val, path+"."+k.name, ctx)
		}
	case seqNode:
		for i, it := range n.items {
			c.walkStrings(it, path+"["+strconv.Itoa(i)+"]", ctx)
		}
	default:
		c.checkString(n, path, ctx)
	}
}

func (c *checker) checkString(n *ynode, field string, ctx exprCtx) {
	s, ok := n.scalar().(string)
	if !ok || !strings.Contains(s, "${{") {
		return
	}
	t, err := expr.Parse(s)
	if err != nil {
		c.syntaxError(n, field, ctx, err)
		return
	}
	for _, u := range t.Uses() {
		c.checkUse(n, u, ctx)
	}
}

func (c *checker) checkCondition(n *ynode, ctx exprCtx) {
	s, ok := n.scalar().(string)
	if !ok {
		return
	}
	cond, err := expr.ParseCondition(s)
	if err != nil {
		c.syntaxError(n, "if", ctx, err)
		return
	}
	for _, u := range cond.Uses() {
		c.checkUse(n, u, ctx)
	}
}

func (c *checker) syntaxError(n *ynode, field string, ctx exprCtx, err error) {
	var se *expr.SyntaxError
	if !errors.As(err, &se) {
		c.errs.add(n.pos, "%s: malformed expression in %s: %v", ctx.where, field, err)
		return
	}
	c.errs.add(n.offsetPos(se.Offset), "%s: malformed expression in %s: %s", ctx.where, field, se.Msg)
}

// usesOf parses a string already known to be well formed.
func usesOf(s string) []expr.Use {
	t, err := expr.Parse(s)
	if err != nil {
		return nil
	}
	return t.Uses()
}

func (c *checker) checkUse(n *ynode, u expr.Use, ctx exprCtx) {
	at := n.offsetPos(u.Offset)
	switch u.Ref.Kind {
	case "params":
		if !c.params[u.Ref.Name] {
			names := make([]string, 0, len(c.spec.Params))
			for _, p := range c.spec.Params {
				names = append(names, p.Name)
			}
			c.errs.add(at, "%s: unknown param %q%s", ctx.where, u.Ref.Name, suggestFrom(u.Ref.Name, names))
		}
	case "matrix":
		switch {
		case ctx.host:
			// Checked against each step that runs on the host.
		case ctx.step < 0:
			c.errs.add(at, "%s: matrix.%s can only be used in a step with a matrix", ctx.where, u.Ref.Name)
		case !c.hasAxis(ctx.step, u.Ref.Name):
			axes := c.spec.Steps[ctx.step].Matrix
			if len(axes) == 0 {
				c.errs.add(at, "%s: matrix.%s is used, but the step has no matrix", ctx.where, u.Ref.Name)
				return
			}
			names := make([]string, len(axes))
			for i, ax := range axes {
				names[i] = ax.Name
			}
			c.errs.add(at, "%s: the step has no matrix axis %q (axes: %s)", ctx.where, u.Ref.Name, strings.Join(names, ", "))
		}
	case "steps":
		t, known := c.owner[u.Ref.Name]
		switch {
		case !known:
			ids := make([]string, 0, len(c.owner))
			if len(c.owner) <= 1000 {
				for id := range c.owner {
					ids = append(ids, id)
				}
				sort.Strings(ids)
			}
			c.errs.add(at, "%s: %s refers to unknown step %q%s", ctx.where, u.Ref, u.Ref.Name, suggestFrom(u.Ref.Name, ids))
		case ctx.host:
			// Checked against each step that runs on the host.
		case ctx.step < 0:
			c.errs.add(at, "%s: step outputs cannot be used here (only in steps)", ctx.where)
		case t == ctx.step:
			c.errs.add(at, "%s: %s refers to the step's own outputs", ctx.where, u.Ref)
		case !c.upstream(ctx.step, t):
			c.errs.add(at, "%s: %s refers to step %q, which is not upstream of %s (add %q to needs)",
				ctx.where, u.Ref, u.Ref.Name, c.stepName(ctx.step), c.spec.Steps[t].ID)
		}
	}
}
