package expr

import (
	"math"
	"strconv"
)

// Status is what the status functions of a condition look at.
type Status struct {
	Failed    bool // a step upstream failed
	Cancelled bool // the run was cancelled
}

func eval(n node, sc *Scope, st Status) (any, error) {
	switch n := n.(type) {
	case *litNode:
		return n.val, nil
	case *refNode:
		return lookup(n.ref, sc)
	case *callNode:
		switch n.name {
		case "always":
			return true, nil
		case "success":
			return !st.Failed && !st.Cancelled, nil
		case "failure":
			return st.Failed, nil
		default: // cancelled
			return st.Cancelled, nil
		}
	case *notNode:
		v, err := eval(n.x, sc, st)
		if err != nil {
			return nil, err
		}
		return !truthy(v), nil
	case *binNode:
		l, err := eval(n.l, sc, st)
		if err != nil {
			return nil, err
		}
		// && and || return an operand, as in GitHub Actions, so that
		// `${{ params.x || 'default' }}` works; they short-circuit.
		switch n.op {
		case tokAnd:
			if !truthy(l) {
				return l, nil
			}
			return eval(n.r, sc, st)
		case tokOr:
			if truthy(l) {
				return l, nil
			}
			return eval(n.r, sc, st)
		}
		r, err := eval(n.r, sc, st)
		if err != nil {
			return nil, err
		}
		if n.op == tokEq {
			return equal(l, r), nil
		}
		return !equal(l, r), nil
	}
	panic("expr: unknown node") // unreachable: the parser builds only the nodes above
}

func lookup(r Ref, sc *Scope) (any, error) {
	if sc == nil {
		sc = &Scope{}
	}
	var m map[string]string
	switch r.Kind {
	case "params":
		m = sc.Params
	case "matrix":
		m = sc.Matrix
	case "run":
		m = sc.Run
	case "env":
		// Like a shell, an unset variable is empty rather than an error.
		return sc.Env[r.Name], nil
	case "steps":
		outs, ok := sc.Steps[r.Name]
		if !ok {
			return nil, &RefError{Ref: r, Msg: "step " + strconv.Quote(r.Name) + " has no outputs (it did not run or did not succeed)"}
		}
		v, ok := outs[r.Key]
		if !ok {
			return nil, &RefError{Ref: r, Msg: "step " + strconv.Quote(r.Name) + " has no output " + strconv.Quote(r.Key)}
		}
		return v, nil
	}
	v, ok := m[r.Name]
	if !ok {
		return nil, &RefError{Ref: r, Msg: "no such " + r.Kind + " value"}
	}
	return v, nil
}

// truthy: references are strings, so a boolean param set to false arrives as
// "false"; treating it as false is what users mean.
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case float64:
		return v != 0 && !math.IsNaN(v)
	case string:
		return v != "" && v != "false"
	}
	return true
}

// equal compares loosely: a number against a string compares numerically when
// the string is a number, so `matrix.fold == 0` holds for the string "0".
func equal(a, b any) bool {
	_, an := a.(float64)
	_, bn := b.(float64)
	if an || bn {
		x, ok1 := toNumber(a)
		y, ok2 := toNumber(b)
		return ok1 && ok2 && x == y
	}
	return toString(a) == toString(b)
}

func toNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case nil:
		return 0, true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

func toString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(v)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return v
	}
	return ""
}
