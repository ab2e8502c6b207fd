package schemas

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/template"
)

//go:embed docs.md.tmpl
var docsTemplate string

// Reference renders docs/spec.md, the reference page of the spec language,
// from the schema: every field with its type, default and description, per
// step type. The prose around the tables lives in docs.md.tmpl.
func Reference() ([]byte, error) {
	var root map[string]any
	if err := json.Unmarshal(pipeline, &root); err != nil {
		return nil, fmt.Errorf("decode schema: %w", err)
	}
	d := &doc{root: root, defs: map[string]map[string]any{}}
	for name, def := range asMap(root["$defs"]) {
		d.defs[name] = asMap(def)
	}
	step := d.defs["step"]
	var types []stepType
	for _, t := range asList(asMap(asMap(step["properties"])["type"])["enum"]) {
		name, _ := t.(string)
		w := d.defs["with-"+name]
		types = append(types, stepType{Name: name, Description: str(w["description"]), Fields: d.fields(w)})
	}
	data := map[string]any{
		"Top":    d.fields(root),
		"Param":  d.fields(d.defs["param"]),
		"Host":   d.fields(d.defs["host"]),
		"Step":   d.fields(step),
		"Retry":  d.fields(d.defs["retry"]),
		"Types":  types,
		"Schema": str(root["$id"]),
	}
	t, err := template.New("spec.md").Delims("[[", "]]").Funcs(template.FuncMap{"table": table}).Parse(docsTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse docs template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render docs: %w", err)
	}
	return b.Bytes(), nil
}

type doc struct {
	root map[string]any
	defs map[string]map[string]any
}

type field struct {
	Name, Type, Default, Description string
	Required                         bool
}

type stepType struct {
	Name, Description string
	Fields            []field
}

// fields lists an object schema's properties: required ones first, then the
// rest alphabetically (decoded JSON objects have no order; this one is stable
// and easy to scan).
func (d *doc) fields(obj map[string]any) []field {
	props := asMap(obj["properties"])
	req := map[string]bool{}
	for _, r := range asList(obj["required"]) {
		if s, ok := r.(string); ok {
			req[s] = true
		}
	}
	var out []field
	for name, p := range props {
		pm, _ := p.(map[string]any)
		out = append(out, field{
			Name:        name,
			Type:        d.typeOf(pm),
			Default:     d.defaultOf(pm),
			Description: d.descriptionOf(pm),
			Required:    req[name],
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Required != out[j].Required {
			return out[i].Required
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (d *doc) ref(s map[string]any) (string, map[string]any) {
	r, _ := s["$ref"].(string)
	name := strings.TrimPrefix(r, "#/$defs/")
	if r == "" || d.defs[name] == nil {
		return "", nil
	}
	return name, d.defs[name]
}

var defWords = map[string]string{
	"expr":       "expression `${{ }}`",
	"duration":   "duration (`90m`, `1h30m`)",
	"identifier": "name",
	"scalar":     "string, number or boolean",
	"env":        "mapping of NAME → string, number or boolean",
	"string-map": "mapping of string → string, number or boolean",
	"retry":      "mapping (see [retry](#retry))",
	"param":      "mapping (see [params](#params))",
	"host":       "mapping (see [hosts](#hosts))",
	"step":       "mapping (see [steps](#steps))",
}

func (d *doc) typeOf(s map[string]any) string {
	if name, def := d.ref(s); def != nil {
		if w, ok := defWords[name]; ok {
			return w
		}
		return d.typeOf(def)
	}
	if alts := asList(s["anyOf"]); len(alts) > 0 {
		var parts []string
		for _, a := range alts {
			parts = append(parts, d.typeOf(asMap(a)))
		}
		return strings.Join(parts, ", or ")
	}
	if enum := asList(s["enum"]); len(enum) > 0 {
		var parts []string
		for _, e := range enum {
			parts = append(parts, "`"+jsonText(e)+"`")
		}
		return "one of " + strings.Join(parts, ", ")
	}
	if c, ok := s["const"]; ok {
		return "`" + jsonText(c) + "`"
	}
	var t string
	switch v := s["type"].(type) {
	case string:
		t = v
	case []any:
		var parts []string
		for _, x := range v {
			parts = append(parts, fmt.Sprint(x))
		}
		t = strings.Join(parts, ", ")
	}
	switch t {
	case "array":
		return "list of " + d.typeOf(asMap(s["items"]))
	case "object":
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			return "mapping of name → " + d.typeOf(ap)
		}
		return "mapping"
	case "integer", "number":
		lo, hasLo := s["minimum"]
		hi, hasHi := s["maximum"]
		switch {
		case hasLo && hasHi:
			return fmt.Sprintf("%s %s–%s", t, jsonText(lo), jsonText(hi))
		case hasLo:
			return fmt.Sprintf("%s ≥ %s", t, jsonText(lo))
		case hasHi:
			return fmt.Sprintf("%s ≤ %s", t, jsonText(hi))
		}
	case "string":
		if p, ok := s["pattern"].(string); ok {
			return "string matching `" + p + "`"
		}
	}
	if t == "" {
		return "any"
	}
	return t
}

func (d *doc) defaultOf(s map[string]any) string {
	if v, ok := s["default"]; ok {
		return "`" + jsonText(v) + "`"
	}
	if _, def := d.ref(s); def != nil {
		return d.defaultOf(def)
	}
	return ""
}

func (d *doc) descriptionOf(s map[string]any) string {
	if v, ok := s["description"].(string); ok {
		return v
	}
	if _, def := d.ref(s); def != nil {
		return d.descriptionOf(def)
	}
	return ""
}

// table renders fields as a Markdown table.
func table(fs []field) string {
	var b strings.Builder
	b.WriteString("| Field | Type | Default | Description |\n|---|---|---|---|\n")
	for _, f := range fs {
		name := "`" + f.Name + "`"
		if f.Required {
			name += " (required)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, cell(f.Type), cell(f.Default), cell(f.Description))
	}
	return b.String()
}

func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
