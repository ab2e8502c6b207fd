package expr

import (
	"fmt"
	"strconv"
)

// node is one parsed expression.
type node interface{ pos() int }

type (
	litNode struct {
		off int
		val any // string, float64, bool or nil
	}
	refNode struct {
		off int
		ref Ref
	}
	callNode struct {
		off  int
		name string // always, success, failure, cancelled
	}
	notNode struct {
		off int
		x   node
	}
	binNode struct {
		off  int
		op   tokKind // tokAnd, tokOr, tokEq, tokNe
		l, r node
	}
)

func (n *litNode) pos() int  { return n.off }
func (n *refNode) pos() int  { return n.off }
func (n *callNode) pos() int { return n.off }
func (n *notNode) pos() int  { return n.off }
func (n *binNode) pos() int  { return n.off }

// statusFuncs are the functions of GitHub Actions' job status checks.
var statusFuncs = map[string]bool{"always": true, "success": true, "failure": true, "cancelled": true}

type parser struct {
	toks     []token
	i        int
	inCond   bool // status functions are allowed only in conditions
	maxDepth int
}

// maxNesting bounds recursion so that hostile input ("((((...") cannot
// exhaust the stack.
const maxNesting = 100

func parseExpr(body string, base int, inCond bool) (node, error) {
	toks, err := lex(body, base)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, inCond: inCond}
	if p.peek().kind == tokEOF {
		return nil, &SyntaxError{Offset: p.peek().off, Msg: "empty expression"}
	}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, &SyntaxError{Offset: t.off, Msg: fmt.Sprintf("unexpected %s", t)}
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *parser) or(depth int) (node, error) {
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tokOr {
		op := p.next()
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = &binNode{off: op.off, op: tokOr, l: l, r: r}
	}
	return l, nil
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.cmp(depth)
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tokAnd {
		op := p.next()
		r, err := p.cmp(depth)
		if err != nil {
			return nil, err
		}
		l = &binNode{off: op.off, op: tokAnd, l: l, r: r}
	}
	return l, nil
}

func (p *parser) cmp(depth int) (node, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	if k := p.peek().kind; k == tokEq || k == tokNe {
		op := p.next()
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l = &binNode{off: op.off, op: k, l: l, r: r}
		if k2 := p.peek().kind; k2 == tokEq || k2 == tokNe {
			return nil, &SyntaxError{Offset: p.peek().off, Msg: "comparisons cannot be chained; use parentheses"}
		}
	}
	return l, nil
}

func (p *parser) unary(depth int) (node, error) {
	if depth > maxNesting {
		return nil, &SyntaxError{Offset: p.peek().off, Msg: "expression nested too deeply"}
	}
	if p.peek().kind == tokNot {
		op := p.next()
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &notNode{off: op.off, x: x}, nil
	}
	return p.primary(depth)
}

func (p *parser) primary(depth int) (node, error) {
	t := p.next()
	switch t.kind {
	case tokLParen:
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, &SyntaxError{Offset: c.off, Msg: fmt.Sprintf("expected \")\", found %s", c)}
		}
		return n, nil
	case tokString:
		return &litNode{off: t.off, val: t.text}, nil
	case tokNumber:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, &SyntaxError{Offset: t.off, Msg: fmt.Sprintf("malformed number %q", t.text)}
		}
		return &litNode{off: t.off, val: f}, nil
	case tokIdent:
		switch t.text {
		case "true", "false":
			return &litNode{off: t.off, val: t.text == "true"}, nil
		case "null":
			return &litNode{off: t.off, val: nil}, nil
		}
		if p.peek().kind == tokLParen {
			return p.call(t)
		}
		return p.ref(t)
	}
	return nil, &SyntaxError{Offset: t.off, Msg: fmt.Sprintf("unexpected %s", t)}
}

func (p *parser) call(name token) (node, error) {
	p.next() // (
	if c := p.next(); c.kind != tokRParen {
		return nil, &SyntaxError{Offset: c.off, Msg: fmt.Sprintf("%s() takes no arguments", name.text)}
	}
	if !statusFuncs[name.text] {
		return nil, &SyntaxError{Offset: name.off, Msg: fmt.Sprintf("unknown function %s() (known: always, success, failure, cancelled)", name.text)}
	}
	if !p.inCond {
		return nil, &SyntaxError{Offset: name.off, Msg: fmt.Sprintf("%s() is only allowed in if", name.text)}
	}
	return &callNode{off: name.off, name: name.text}, nil
}

// ref reads a dotted reference and checks its shape, so that a typo like
// steps.a.output.x is a load error rather than a runtime one.
func (p *parser) ref(first token) (node, error) {
	parts := []token{first}
	for p.peek().kind == tokDot {
		p.next()
		t := p.next()
		if t.kind != tokIdent {
			return nil, &SyntaxError{Offset: t.off, Msg: fmt.Sprintf("expected a name after \".\", found %s", t)}
		}
		parts = append(parts, t)
	}
	bad := func(msg string) error { return &SyntaxError{Offset: first.off, Msg: msg} }
	switch first.text {
	case "params", "matrix", "env", "run":
		if len(parts) != 2 {
			return nil, bad(fmt.Sprintf("a %s reference is %s.<name>", first.text, first.text))
		}
		if first.text == "run" && parts[1].text != "id" {
			return nil, &SyntaxError{Offset: parts[1].off, Msg: fmt.Sprintf("unknown run field %q (known: id)", parts[1].text)}
		}
		return &refNode{off: first.off, ref: Ref{Kind: first.text, Name: parts[1].text}}, nil
	case "steps":
		if len(parts) != 4 || parts[2].text != "outputs" {
			return nil, bad("a step reference is steps.<id>.outputs.<key>")
		}
		return &refNode{off: first.off, ref: Ref{Kind: "steps", Name: parts[1].text, Key: parts[3].text}}, nil
	}
	return nil, bad(fmt.Sprintf("unknown name %q (known: params, steps, matrix, run, env)", first.text))
}
