package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/gpipe/gpipe/schemas"
)

// compiledSchema is the embedded schema, compiled, plus its raw JSON: error
// messages look keyword values up in it (the limit of a maximum, the names of
// the allowed properties) instead of parsing the validator's English. The raw
// JSON is decoded when the first message needs it: a valid spec, the common
// case, never does.
type compiledSchema struct {
	schema *jsonschema.Schema
	step   *jsonschema.Schema // $defs/step, to validate big specs' steps in parallel
	ident  *jsonschema.Schema // $defs/identifier, what a step's id must be
	raw    func() any
}

const schemaURL = "pipeline.schema.json"

func compileSchema() (*compiledSchema, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource(schemaURL, bytes.NewReader(schemas.Pipeline())); err != nil {
		return nil, fmt.Errorf("load pipeline schema: %w", err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile pipeline schema: %w", err)
	}
	step, err := c.Compile(schemaURL + "#/$defs/step")
	if err != nil {
		return nil, fmt.Errorf("compile pipeline schema: %w", err)
	}
	ident, err := c.Compile(schemaURL + "#/$defs/identifier")
	if err != nil {
		return nil, fmt.Errorf("compile pipeline schema: %w", err)
	}
	return &compiledSchema{schema: s, step: step, ident: ident, raw: sync.OnceValue(decodeSchema)}, nil
}

// decodeSchema decodes the embedded schema. It cannot fail once the
// compiler has parsed the same bytes; if it did, messages would lack the
// schema's values rather than the spec go unchecked.
func decodeSchema() any {
	var raw any
	if err := json.Unmarshal(schemas.Pipeline(), &raw); err != nil {
		return nil
	}
	return raw
}

// validate checks the document against the schema and reports each failure
// at its YAML node, in plain words.
func (cs *compiledSchema) validate(opts *Options, root *ynode, errs *errList) {
	doc := root.value()
	var steps []any
	if m, ok := doc.(map[string]any); ok {
		steps, _ = m["steps"].([]any)
		if len(steps) > parallelSteps {
			// Validate the document with its first step only, and the other
			// steps on their own, in parallel: a 10,000-step spec validates
			// in a fraction of the time. The errors are the same, because
			// nothing in the schema relates one step to another.
			m["steps"] = steps[:1]
		} else {
			steps = nil
		}
	}
	var found []leaf
	if err := cs.schema.Validate(doc); err != nil {
		found = cs.collect(err, "", found)
	}
	if len(steps) > 1 {
		found = append(found, cs.validateSteps(steps[1:], 1)...)
	}
	for _, l := range found {
		cs.report(opts, root, l, errs)
	}
}

// parallelSteps is the step count from which steps are validated apart.
const parallelSteps = 256

// validateSteps validates steps in a few chunks at once. A plain WaitGroup,
// not an errgroup: every step's errors are wanted, so no error stops the
// others.
func (cs *compiledSchema) validateSteps(steps []any, first int) []leaf {
	workers := min(runtime.GOMAXPROCS(0), 8)
	chunk := (len(steps) + workers - 1) / workers
	results := make([][]leaf, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, len(steps))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			valid := map[string]bool{} // shapes (see shape) that validated
			for i := lo; i < hi; i++ {
				key, ok := cs.shape(steps[i])
				if ok && valid[key] {
					continue
				}
				if err := cs.step.Validate(steps[i]); err != nil {
					results[w] = cs.collect(err, "/steps/"+strconv.Itoa(first+i), results[w])
				} else if ok {
					valid[key] = true
				}
			}
		}()
	}
	wg.Wait()
	var out []leaf
	for _, r := range results {
		out = append(out, r...)
	}
	return out
}

// collect flattens one validation error; prefix is the instance location of
// the validated value in the whole document.
func (cs *compiledSchema) collect(err error, prefix string, out []leaf) []leaf {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		ve = &jsonschema.ValidationError{InstanceLocation: "", Message: "cannot validate spec: " + err.Error()}
	}
	n := len(out)
	out = leaves(ve, false, out)
	if prefix != "" {
		for i := n; i < len(out); i++ {
			e := *out[i].ValidationError
			e.InstanceLocation = prefix + e.InstanceLocation
			out[i].ValidationError = &e
		}
	}
	return out
}

type leaf struct {
	*jsonschema.ValidationError
	exprAllowed bool // the value could also have been a ${{ }} expression
}

// leaves flattens the error tree to the failures worth reporting. For an
// anyOf whose alternative is an expression, the expression branch is dropped:
// "must be at most 8" helps, "does not match ^\$\{\{.*\}\}$" does not.
func leaves(e *jsonschema.ValidationError, exprAllowed bool, out []leaf) []leaf {
	if len(e.Causes) == 0 {
		return append(out, leaf{e, exprAllowed})
	}
	kw := lastSegment(e.KeywordLocation)
	if kw == "anyOf" || kw == "oneOf" {
		var kept []*jsonschema.ValidationError
		sawExpr := false
		for _, c := range e.Causes {
			if isExprBranch(c) {
				sawExpr = true
				continue
			}
			kept = append(kept, c)
		}
		if len(kept) == 0 {
			kept = e.Causes
		}
		for _, c := range kept {
			out = leaves(c, exprAllowed || sawExpr, out)
		}
		return out
	}
	for _, c := range e.Causes {
		out = leaves(c, exprAllowed, out)
	}
	return out
}

// isExprBranch reports whether an anyOf branch failed only because the value
// is not a ${{ }} expression.
func isExprBranch(e *jsonschema.ValidationError) bool {
	if strings.Contains(e.AbsoluteKeywordLocation, "/$defs/expr") {
		return true
	}
	if len(e.Causes) == 0 {
		return false
	}
	for _, c := range e.Causes {
		if !isExprBranch(c) {
			return false
		}
	}
	return true
}

func lastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func pointerTokens(p string) []string {
	p = strings.TrimPrefix(p, "#")
	if p == "" || p == "/" {
		return nil
	}
	toks := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, t := range toks {
		// The validator escapes instance tokens with url.PathEscape too.
		if u, err := url.PathUnescape(t); err == nil {
			t = u
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks
}

// schemaAt resolves the fragment of an absolute keyword location in the raw
// schema.
func (cs *compiledSchema) schemaAt(absLoc string) any {
	frag := absLoc
	if i := strings.IndexByte(absLoc, '#'); i >= 0 {
		frag = absLoc[i+1:]
	}
	v := cs.raw()
	for _, t := range pointerTokens(frag) {
		switch x := v.(type) {
		case map[string]any:
			v = x[t]
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// locate walks the YAML tree along a JSON pointer. It returns the deepest
// node it reached, the map key of the last step when the pointer ends in a
// mapping, and whether the whole pointer resolved.
func locate(root *ynode, toks []string) (*ynode, *ykey, bool) {
	n := root
	var key *ykey
	for _, t := range toks {
		key = nil
		switch n.kind {
		case mapNode:
			k := n.getKey(t)
			if k == nil {
				return n, nil, false
			}
			key, n = k, k.val
		case seqNode:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(n.items) {
				return n, nil, false
			}
			n = n.items[i]
		default:
			return n, nil, false
		}
	}
	return n, key, true
}

// owner names what a pointer is inside of (a step, a param, a host), and
// returns the rest of the path relative to it.
func owner(root *ynode, toks []string) (string, []string) {
	if len(toks) < 2 {
		return "", toks
	}
	switch toks[0] {
	case "steps":
		i, _ := strconv.Atoi(toks[1])
		if step, _, ok := locate(root, toks[:2]); ok {
			if id, ok := step.get("id").scalar().(string); ok && id != "" {
				return fmt.Sprintf("step %q", id), toks[2:]
			}
		}
		return fmt.Sprintf("step #%d", i+1), toks[2:]
	case "params":
		return fmt.Sprintf("param %q", toks[1]), toks[2:]
	case "hosts":
		return fmt.Sprintf("host %q", toks[1]), toks[2:]
	}
	return "", toks
}

func (n *ynode) scalar() any {
	if n == nil || n.kind != scalarNode {
		return nil
	}
	return n.val
}

// container describes an object for "unknown field ... in X" and
// "missing required field ... in X".
func container(own string, rel []string) string {
	switch {
	case len(rel) == 0 && own == "":
		return "the spec"
	case len(rel) == 0:
		return own
	case own == "":
		return strings.Join(rel, ".")
	}
	return strings.Join(rel, ".") + " of " + own
}

// subject names a value for "X must be ...": `step "a": "hpus"`.
func subject(own string, rel []string) string {
	if len(rel) == 0 {
		if own == "" {
			return "the spec"
		}
		return own
	}
	field := rel[len(rel)-1]
	if _, err := strconv.Atoi(field); err == nil && len(rel) > 1 {
		field = rel[len(rel)-2] + "[" + field + "]"
	}
	if own == "" {
		return strconv.Quote(field)
	}
	return own + ": " + strconv.Quote(field)
}

func (cs *compiledSchema) report(opts *Options, root *ynode, l leaf, errs *errList) {
	toks := pointerTokens(l.InstanceLocation)
	node, key, _ := locate(root, toks)
	if node.bad {
		return // the YAML converter already said what is wrong with this value
	}
	own, rel := owner(root, toks)
	kw := lastSegment(l.KeywordLocation)
	at := node.pos
	var parent map[string]any
	if i := strings.LastIndexByte(l.AbsoluteKeywordLocation, '/'); i >= 0 {
		parent, _ = cs.schemaAt(l.AbsoluteKeywordLocation[:i]).(map[string]any)
	}
	kwVal := cs.schemaAt(l.AbsoluteKeywordLocation)

	if strings.Contains(l.KeywordLocation, "/propertyNames/") {
		kind := "name"
		if len(toks) >= 2 {
			kind = map[string]string{"params": "param name", "hosts": "host name", "env": "environment variable name", "matrix": "matrix axis name"}[toks[len(toks)-2]]
			if kind == "" {
				kind = "name"
			}
		}
		if key != nil {
			at = key.pos
		}
		name := ""
		if len(toks) > 0 {
			name = toks[len(toks)-1]
			own, rel = owner(root, toks[:len(toks)-1])
		}
		pre := ""
		if own != "" {
			pre = own + ": "
		}
		errs.add(at, "%s%s %q %s", pre, kind, name, opts.patternPhrase(kwVal, l.AbsoluteKeywordLocation, ""))
		return
	}

	switch kw {
	case "additionalProperties":
		props, _ := parent["properties"].(map[string]any)
		patterns, _ := parent["patternProperties"].(map[string]any)
		for _, k := range node.keys {
			if _, known := props[k.name]; known || matchesAny(k.name, patterns) {
				continue
			}
			if where := container(own, rel); where != "the spec" {
				errs.add(k.pos, "unknown field %q in %s%s", k.name, where, suggest(k.name, props))
			} else {
				errs.add(k.pos, "unknown top-level field %q%s", k.name, suggest(k.name, props))
			}
		}
	case "required":
		req, _ := kwVal.([]any)
		for _, r := range req {
			name, _ := r.(string)
			if node.getKey(name) == nil {
				if where := container(own, rel); where != "the spec" {
					errs.add(at, "missing required field %q in %s", name, where)
				} else {
					errs.add(at, "missing required top-level field %q", name)
				}
			}
		}
	case "type":
		want := typeWords(kwVal)
		if l.exprAllowed {
			want += " or an expression ${{ ... }}"
		}
		if len(toks) == 0 {
			errs.add(at, "the spec must be a mapping with version, name and steps, not %s", describeValue(node))
			return
		}
		errs.add(at, "%s must be %s, not %s", subject(own, rel), want, describeValue(node))
	case "enum":
		if len(toks) == 3 && toks[0] == "steps" && toks[2] == "type" {
			errs.add(at, "%s: unknown step type %s (known: %s)", own, describeValue(node), joinValues(kwVal, false))
			return
		}
		errs.add(at, "%s must be one of %s, not %s", subject(own, rel), joinValues(kwVal, true), describeValue(node))
	case "const":
		errs.add(at, "%s must be %s, not %s", subject(own, rel), jsonText(kwVal), describeValue(node))
	case "minimum":
		errs.add(at, "%s must be at least %s", subject(own, rel), jsonText(kwVal))
	case "maximum":
		errs.add(at, "%s must be at most %s", subject(own, rel), jsonText(kwVal))
	case "exclusiveMinimum":
		errs.add(at, "%s must be more than %s", subject(own, rel), jsonText(kwVal))
	case "exclusiveMaximum":
		errs.add(at, "%s must be less than %s", subject(own, rel), jsonText(kwVal))
	case "minLength":
		if jsonText(kwVal) == "1" {
			errs.add(at, "%s must not be empty", subject(own, rel))
			return
		}
		errs.add(at, "%s must be at least %s characters long", subject(own, rel), jsonText(kwVal))
	case "maxLength":
		errs.add(at, "%s must be at most %s characters long", subject(own, rel), jsonText(kwVal))
	case "minItems":
		errs.add(at, "%s must list at least %s %s", subject(own, rel), jsonText(kwVal), plural(jsonText(kwVal), "item"))
	case "maxItems":
		errs.add(at, "%s must list at most %s %s", subject(own, rel), jsonText(kwVal), plural(jsonText(kwVal), "item"))
	case "pattern":
		got, _ := node.scalar().(string)
		errs.add(at, "%s %s", subject(own, rel), opts.patternPhrase(kwVal, l.AbsoluteKeywordLocation, got))
	default:
		errs.add(at, "%s: %s", subject(own, rel), l.Message)
	}
}
