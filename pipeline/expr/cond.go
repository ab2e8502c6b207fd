package expr

import (
	"fmt"
	"strings"
)

// Condition is a parsed `if:`.
type Condition struct {
	src  string
	expr node
}

// ParseCondition parses an `if:` value, written with or without `${{ }}`.
// "" means success(). As in GitHub Actions, a condition that calls no status
// function is implicitly `success() && (...)`, so `if: params.x == 'y'` does not
// run after a failure upstream.
func ParseCondition(s string) (*Condition, error) {
	body, base := s, 0
	trimmed := strings.TrimSpace(s)
	if strings.HasPrefix(trimmed, "${{") && strings.HasSuffix(trimmed, "}}") && closing(trimmed[3:]) == len(trimmed)-5 {
		lead := strings.Index(s, "${{")
		body, base = trimmed[3:len(trimmed)-2], lead+3
	} else if i := strings.Index(s, "${{"); i >= 0 {
		return nil, &SyntaxError{Offset: i, Msg: "a condition is one expression: write it without ${{ }} or wrap all of it"}
	}
	if strings.TrimSpace(body) == "" {
		return &Condition{src: s, expr: &callNode{off: base, name: "success"}}, nil
	}
	n, err := parseExpr(body, base, true)
	if err != nil {
		return nil, err
	}
	if !hasStatus(n) {
		n = &binNode{off: n.pos(), op: tokAnd, l: &callNode{off: n.pos(), name: "success"}, r: n}
	}
	return &Condition{src: s, expr: n}, nil
}

func hasStatus(n node) bool {
	switch n := n.(type) {
	case *callNode:
		return true
	case *notNode:
		return hasStatus(n.x)
	case *binNode:
		return hasStatus(n.l) || hasStatus(n.r)
	}
	return false
}

// Eval evaluates the condition.
func (c *Condition) Eval(sc *Scope, st Status) (bool, error) {
	v, err := eval(c.expr, sc, st)
	if err != nil {
		return false, fmt.Errorf("evaluate if %q: %w", c.src, err)
	}
	return truthy(v), nil
}

// Refs returns the distinct references, in order of first appearance.
func (c *Condition) Refs() []Ref { return refsOf(c.Uses()) }

// Uses returns every reference with its offset in the condition string.
func (c *Condition) Uses() []Use { return collect(c.expr, nil) }

// Always reports whether the condition can hold after a failure or
// cancellation upstream (it calls always(), failure() or cancelled()), which
// tells the engine to run the step under the context the failure did not
// cancel.
func (c *Condition) Always() bool { return callsAny(c.expr, "always", "failure", "cancelled") }

func callsAny(n node, names ...string) bool {
	switch n := n.(type) {
	case *callNode:
		for _, name := range names {
			if n.name == name {
				return true
			}
		}
	case *notNode:
		return callsAny(n.x, names...)
	case *binNode:
		return callsAny(n.l, names...) || callsAny(n.r, names...)
	}
	return false
}

// String returns the source of the condition.
func (c *Condition) String() string { return c.src }
