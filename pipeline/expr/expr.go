// Package expr parses and evaluates gpipe's `${{ ... }}` expressions: the
// references a spec makes to params, step outputs, matrix values, the run and
// the environment, and the `if:` conditions of steps with GitHub Actions'
// status functions (always(), success(), failure(), cancelled()).
//
// The grammar is deliberately small: literals ('single' or "double" quoted
// strings, numbers, true, false, null), dotted references, !, ==, !=, && and
// || with parentheses. There is no arithmetic and there are no other
// functions: a spec is a description of a pipeline, not a program. Every
// error carries the byte offset inside the string so that the spec loader can
// point at the exact column.
package expr

import (
	"fmt"
	"strings"
)

// Ref is one reference an expression makes. Kind is params, steps, matrix, run
// or env; for steps, Name is the step id and Key the output key; otherwise
// Name is the referenced name and Key is empty.
type Ref struct {
	Kind, Name, Key string
}

func (r Ref) String() string {
	if r.Kind == "steps" {
		return "steps." + r.Name + ".outputs." + r.Key
	}
	return r.Kind + "." + r.Name
}

// Use is a Ref with the byte offset of its first character in the parsed
// string, for error positions.
type Use struct {
	Ref    Ref
	Offset int
}

// Scope holds the values references resolve to. Any map may be nil.
type Scope struct {
	Params, Matrix, Run, Env map[string]string
	Steps                    map[string]map[string]string
}

// SyntaxError is a malformed expression. Offset is the 0-based byte offset in
// the string given to Parse or ParseCondition.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg)
}

// RefError is a reference whose value is not in the Scope.
type RefError struct {
	Ref Ref
	Msg string
}

func (e *RefError) Error() string { return fmt.Sprintf("%s: %s", e.Ref, e.Msg) }

// Template is a string with zero or more `${{ ... }}` segments.
type Template struct {
	src   string
	parts []part
}

type part struct {
	lit  string
	expr node // nil for a literal part
	span Span // of an expression part, in the source
}

// Span locates one `${{ ... }}` in a template's source: Text is the whole
// segment, Offset its 0-based byte offset.
type Span struct {
	Offset int
	Text   string
}

// Spans returns the template's expression segments in order.
func (t *Template) Spans() []Span {
	var out []Span
	for _, p := range t.parts {
		if p.expr != nil {
			out = append(out, p.span)
		}
	}
	return out
}

// Parse parses a string with zero or more `${{ ... }}` segments.
func Parse(s string) (*Template, error) {
	t := &Template{src: s}
	rest, base := s, 0
	for {
		i := strings.Index(rest, "${{")
		if i < 0 {
			if rest != "" {
				t.parts = append(t.parts, part{lit: rest})
			}
			return t, nil
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		start := base + i
		end := closing(rest[i+3:])
		if end < 0 {
			return nil, &SyntaxError{Offset: start, Msg: `"${{" without a closing "}}"`}
		}
		body := rest[i+3 : i+3+end]
		n, err := parseExpr(body, start+3, false)
		if err != nil {
			return nil, err
		}
		consumed := i + 3 + end + 2
		t.parts = append(t.parts, part{expr: n, span: Span{Offset: start, Text: rest[i:consumed]}})
		rest, base = rest[consumed:], base+consumed
	}
}

// closing finds the "}}" that ends an expression body, skipping quoted
// strings so that '}}' inside a literal does not end it; -1 when there is none.
func closing(s string) int {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			return i
		}
	}
	return -1
}

// IsLiteral reports whether the template has no expression.
func (t *Template) IsLiteral() bool {
	for _, p := range t.parts {
		if p.expr != nil {
			return false
		}
	}
	return true
}

// String returns the source the template was parsed from.
func (t *Template) String() string { return t.src }

// Refs returns the distinct references, in order of first appearance.
func (t *Template) Refs() []Ref { return refsOf(t.Uses()) }

// Uses returns every reference with its offset, in order of appearance.
func (t *Template) Uses() []Use {
	var uses []Use
	for _, p := range t.parts {
		if p.expr != nil {
			uses = collect(p.expr, uses)
		}
	}
	return uses
}

// Eval evaluates the template to a string.
func (t *Template) Eval(sc *Scope) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := eval(p.expr, sc, Status{})
		if err != nil {
			return "", err
		}
		b.WriteString(toString(v))
	}
	return b.String(), nil
}

func collect(n node, uses []Use) []Use {
	switch n := n.(type) {
	case *refNode:
		uses = append(uses, Use{Ref: n.ref, Offset: n.off})
	case *notNode:
		uses = collect(n.x, uses)
	case *binNode:
		uses = collect(n.r, collect(n.l, uses))
	}
	return uses
}

func refsOf(uses []Use) []Ref {
	seen := make(map[Ref]bool, len(uses))
	var refs []Ref
	for _, u := range uses {
		if !seen[u.Ref] {
			seen[u.Ref] = true
			refs = append(refs, u.Ref)
		}
	}
	return refs
}
