package spec

import (
	"context"
	"math"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// ynode is a YAML value with the positions the loader reports errors at.
// Aliases share the anchored ynode, so an error inside an aliased value points
// at the anchor's text, which is where the user can fix it.
type ynode struct {
	kind  nodeKind
	pos   Pos
	val   any // scalars: string, int, float64, bool or nil
	keys  []ykey
	items []*ynode
	style scalarStyle
	// For block scalars: where the text starts, to place expression errors.
	bodyLine, bodyIndent int
	size                 int  // nodes after alias expansion, to stop alias bombs
	bad                  bool // stands in for a value the converter rejected
}

type ykey struct {
	name string
	pos  Pos
	val  *ynode
}

type nodeKind int

const (
	scalarNode nodeKind = iota
	mapNode
	seqNode
)

type scalarStyle int

const (
	plainStyle scalarStyle = iota
	quotedStyle
	blockStyle
)

// maxNodes bounds alias expansion ("billion laughs"): a real spec of 10,000
// steps has about 150,000 nodes.
const maxNodes = 1_000_000

func (n *ynode) get(key string) *ynode {
	if n == nil || n.kind != mapNode {
		return nil
	}
	for i := range n.keys {
		if n.keys[i].name == key {
			return n.keys[i].val
		}
	}
	return nil
}

func (n *ynode) getKey(key string) *ykey {
	if n == nil || n.kind != mapNode {
		return nil
	}
	for i := range n.keys {
		if n.keys[i].name == key {
			return &n.keys[i]
		}
	}
	return nil
}

// value converts the node to the JSON-compatible value the schema validator
// and the decoder take.
func (n *ynode) value() any {
	switch n.kind {
	case mapNode:
		m := make(map[string]any, len(n.keys))
		for _, k := range n.keys {
			m[k.name] = k.val.value()
		}
		return m
	case seqNode:
		s := make([]any, len(n.items))
		for i, it := range n.items {
			s[i] = it.value()
		}
		return s
	}
	return n.val
}

// parseYAML parses src into a ynode tree. Errors that stop parsing are
// returned at once; problems that do not (duplicate keys, unknown aliases)
// are added to errs and parsing goes on, so that every error is reported.
func parseYAML(ctx context.Context, src []byte, s *source, errs *errList) (root *ynode, err error) {
	defer func() {
		// The YAML library is not ours; a panic on odd input must become an
		// error, not a crash of the CLI.
		if r := recover(); r != nil {
			errs.add(Pos{Line: 1, Col: 1}, "cannot parse YAML: %v", r)
			root = nil
		}
	}()
	tokens, ok, err := scanTokens(ctx, src, errs)
	if !ok || err != nil {
		return nil, err
	}
	f, err := parser.Parse(tokens, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		syntaxError(err, s, errs)
		return nil, nil
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		errs.add(Pos{Line: 1, Col: 1}, "empty spec: expected a mapping with version, name and steps")
		return nil, nil
	}
	if len(docs) > 1 {
		p := tokenPos(docs[1].Start)
		if docs[1].Start == nil {
			p = nodePos(docs[1].Body)
		}
		errs.add(p, "a spec is one YAML document; found another one here")
	}
	c := &converter{errs: errs, src: s, anchors: map[string]*ynode{}}
	return c.node(docs[0].Body, Pos{Line: 1, Col: 1}), nil
}

func syntaxError(err error, s *source, errs *errList) {
	type yamlError interface {
		GetToken() *token.Token
		GetMessage() string
	}
	ye, ok := err.(yamlError)
	if !ok || ye.GetToken() == nil {
		errs.add(Pos{Line: 1, Col: 1}, "invalid YAML: %v", err)
		return
	}
	p := tokenPos(ye.GetToken())
	msg := ye.GetMessage()
	if p.Line >= 1 && p.Line <= len(s.lines) {
		line := s.lines[p.Line-1]
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		if i := strings.IndexByte(line[:indent], '\t'); i >= 0 {
			errs.add(Pos{Line: p.Line, Col: i + 1}, "tab character in indentation: YAML indents with spaces")
			return
		}
	}
	errs.add(p, "invalid YAML: %s", msg)
}

func tokenPos(tk *token.Token) Pos {
	if tk == nil || tk.Position == nil {
		return Pos{}
	}
	return Pos{Line: tk.Position.Line, Col: tk.Position.Column}
}

func nodePos(n ast.Node) Pos {
	switch n := n.(type) {
	case nil:
		return Pos{}
	case *ast.MappingNode:
		if !n.IsFlowStyle && len(n.Values) > 0 {
			return nodePos(n.Values[0].Key)
		}
		return tokenPos(n.Start)
	case *ast.MappingValueNode:
		return nodePos(n.Key)
	case *ast.DocumentNode:
		return nodePos(n.Body)
	}
	return tokenPos(n.GetToken())
}

type converter struct {
	errs    *errList
	src     *source
	anchors map[string]*ynode
}

func (c *converter) null(p Pos) *ynode { return &ynode{kind: scalarNode, pos: p, size: 1} }

// bad stands in for a value that was reported as wrong, so that the schema
// does not report it a second time.
func (c *converter) bad(p Pos) *ynode { return &ynode{kind: scalarNode, pos: p, size: 1, bad: true} }

func (c *converter) node(n ast.Node, at Pos) *ynode {
	if n == nil {
		return c.null(at)
	}
	p := nodePos(n)
	if p.Line == 0 {
		p = at
	}
	switch n := n.(type) {
	case *ast.MappingNode:
		return c.mapping(n.Values, p)
	case *ast.MappingValueNode:
		return c.mapping([]*ast.MappingValueNode{n}, p)
	case *ast.SequenceNode:
		y := &ynode{kind: seqNode, pos: p, items: make([]*ynode, 0, len(n.Values)), size: 1}
		for _, v := range n.Values {
			it := c.node(v, p)
			y.items = append(y.items, it)
			y.size = addSize(y.size, it.size)
		}
		return c.checkSize(y)
	case *ast.AnchorNode:
		v := c.node(n.Value, p)
		if n.Name != nil {
			c.anchors[n.Name.GetToken().Value] = v
		}
		return v
	case *ast.AliasNode:
		name := ""
		if n.Value != nil {
			name = n.Value.GetToken().Value
		}
		v, ok := c.anchors[name]
		if !ok {
			c.errs.add(p, "alias *%s refers to no anchor &%s defined before it", name, name)
			return c.bad(p)
		}
		return v
	case *ast.TagNode:
		return c.tagged(n, p)
	case *ast.StringNode:
		y := &ynode{kind: scalarNode, pos: p, val: n.Value, size: 1}
		if tk := n.GetToken(); tk != nil && (tk.Type == token.SingleQuoteType || tk.Type == token.DoubleQuoteType) {
			y.style = quotedStyle
		}
		return y
	case *ast.LiteralNode:
		y := &ynode{kind: scalarNode, pos: p, val: "", style: blockStyle, size: 1}
		if n.Value != nil {
			y.val = n.Value.Value
		}
		y.bodyLine, y.bodyIndent = c.blockBody(p.Line)
		return y
	case *ast.IntegerNode:
		switch v := n.Value.(type) {
		case int64:
			if v >= math.MinInt && v <= math.MaxInt {
				return &ynode{kind: scalarNode, pos: p, val: int(v), size: 1}
			}
		case uint64:
			if v <= math.MaxInt {
				return &ynode{kind: scalarNode, pos: p, val: int(v), size: 1}
			}
			return &ynode{kind: scalarNode, pos: p, val: float64(v), size: 1}
		}
		c.errs.add(p, "integer %s is out of range", n.GetToken().Value)
		return c.bad(p)
	case *ast.FloatNode:
		if math.IsInf(n.Value, 0) || math.IsNaN(n.Value) {
			c.errs.add(p, "number %s is out of range", n.GetToken().Value)
			return c.bad(p)
		}
		return &ynode{kind: scalarNode, pos: p, val: n.Value, size: 1}
	case *ast.BoolNode:
		return &ynode{kind: scalarNode, pos: p, val: n.Value, size: 1}
	case *ast.NullNode:
		return c.null(p)
	case *ast.InfinityNode, *ast.NanNode:
		c.errs.add(p, "%s is not a number a spec can use", n.GetToken().Value)
		return c.bad(p)
	case *ast.CommentGroupNode, *ast.CommentNode:
		return c.null(p)
	}
	c.errs.add(p, "unsupported YAML construct %q", n.GetToken().Value)
	return c.bad(p)
}

// tagged handles explicit tags. Only the standard ones make sense in a spec;
// a CloudFormation habit like !Ref must not be silently dropped.
func (c *converter) tagged(n *ast.TagNode, p Pos) *ynode {
	tag := ""
	if n.Start != nil {
		tag = n.Start.Value
	}
	v := c.node(n.Value, p)
	switch tag {
	case "!!str":
		if v.kind == scalarNode {
			s := ""
			if n.Value != nil && v.val != nil {
				s = n.Value.GetToken().Value
			}
			if str, ok := v.val.(string); ok {
				s = str
			}
			return &ynode{kind: scalarNode, pos: v.pos, val: s, style: v.style, bodyLine: v.bodyLine, bodyIndent: v.bodyIndent, size: 1}
		}
	case "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq", "!":
	default:
		c.errs.add(p, "YAML tag %s is not supported in a spec", tag)
		return c.bad(p)
	}
	return v
}

func (c *converter) mapping(values []*ast.MappingValueNode, p Pos) *ynode {
	y := &ynode{kind: mapNode, pos: p, size: 1}
	type slot struct {
		key    ykey
		merged []*ynode // a "<<" entry: maps to merge here
	}
	slots := make([]slot, 0, len(values))
	seen := make(map[string]Pos, len(values))
	for _, mv := range values {
		if mv == nil {
			continue
		}
		kp := nodePos(mv.Key)
		if kp.Line == 0 {
			kp = p
		}
		val := c.node(mv.Value, kp)
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			slots = append(slots, slot{merged: c.mergeSources(val, kp)})
			continue
		}
		name, ok := c.keyName(mv.Key)
		if !ok {
			c.errs.add(kp, "mapping keys must be strings")
			continue
		}
		if first, dup := seen[name]; dup {
			c.errs.add(kp, "duplicate key %q (first at line %d)", name, first.Line)
			continue
		}
		seen[name] = kp
		slots = append(slots, slot{key: ykey{name: name, pos: kp, val: val}})
	}
	// Merged keys go where "<<" was written; explicit keys win, and among
	// merged maps the first one listed wins (YAML merge key semantics).
	for _, s := range slots {
		if s.merged == nil {
			y.keys = append(y.keys, s.key)
			y.size = addSize(y.size, s.key.val.size)
			continue
		}
		for _, m := range s.merged {
			for _, k := range m.keys {
				if _, taken := seen[k.name]; taken {
					continue
				}
				seen[k.name] = k.pos
				y.keys = append(y.keys, k)
				y.size = addSize(y.size, k.val.size)
			}
		}
	}
	return c.checkSize(y)
}

func (c *converter) mergeSources(v *ynode, p Pos) []*ynode {
	switch v.kind {
	case mapNode:
		return []*ynode{v}
	case seqNode:
		var out []*ynode
		for _, it := range v.items {
			if it.kind != mapNode {
				c.errs.add(it.pos, `merge key "<<" takes a mapping or a list of mappings`)
				continue
			}
			out = append(out, it)
		}
		if out == nil {
			out = []*ynode{}
		}
		return out
	}
	c.errs.add(p, `merge key "<<" takes a mapping or a list of mappings`)
	return []*ynode{}
}

func (c *converter) keyName(k ast.Node) (string, bool) {
	switch k := k.(type) {
	case *ast.MappingKeyNode:
		return c.keyName(k.Value)
	case *ast.TagNode:
		return c.keyName(k.Value)
	case *ast.AnchorNode:
		return c.keyName(k.Value)
	case *ast.AliasNode:
		if k.Value == nil {
			return "", false
		}
		v, ok := c.anchors[k.Value.GetToken().Value]
		if !ok || v.kind != scalarNode {
			return "", false
		}
		return scalarString(v.val), true
	case *ast.StringNode:
		return k.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode:
		if tk := k.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

func (c *converter) checkSize(y *ynode) *ynode {
	if y.size > maxNodes {
		c.errs.add(y.pos, "aliases expand to more than %d values", maxNodes)
		return c.bad(y.pos)
	}
	return y
}

func addSize(a, b int) int {
	if a+b > maxNodes+1 {
		return maxNodes + 1
	}
	return a + b
}
