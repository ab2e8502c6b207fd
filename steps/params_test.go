package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/schemas"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/host"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// describer is what every step type implements: its with decoder's
// declarations (steps/internal/param).
type describer interface {
	DescribeWith(with map[string]any) ([]param.Decl, error)
}

// validWith is a with each step type accepts; the tests vary one key of it.
var validWith = map[string]map[string]any{
	"shell":           {"run": "true"},
	"provision-stack": {},
	"teardown":        {"stack": "s"},
	"prepare-host":    {},
	"prepare-disk":    {},
	"fetch-msd":       {"task": "01"},
	"preprocess":      {"task": "01"},
	"train-unet":      {"task": "01"},
	"evaluate":        {"task": "01"},
}

// requiredOnlyBySchema are keys a spec must write but whose empty value the
// step accepts, with the reason.
var requiredOnlyBySchema = map[string]string{
	"teardown.stack": "a spec says which stack; empty means every stack of the run",
}

// testRegistry is the real registry whose steps cannot reach a host or AWS:
// a step that got past its decoder with a bad value fails the test.
func testRegistry(t *testing.T) *Registry {
	noAWS := func(context.Context, string) (sdkaws.Config, error) {
		t.Error("a step loaded AWS configuration")
		return sdkaws.Config{}, errors.New("no AWS in this test")
	}
	noHost := func(h pipeline.Host) (host.Executor, error) {
		t.Errorf("a step reached host %s", h.Address)
		return nil, errors.New("no hosts in this test")
	}
	return NewRegistry(&Executors{SSM: noHost}, aws.New(aws.Options{LoadConfig: noAWS}))
}

// schemaProp is what the schema says about one with key, gathered through
// $ref and anyOf (the ${{ }} branch left out).
type schemaProp struct {
	types    map[string]bool // JSON types; "duration" for the duration pattern
	def      any
	hasDef   bool
	min, max *float64
	exclMin  *float64
	enum     []any
	itemEnum []any // of an array's items
}

type schemaDoc struct {
	Defs map[string]json.RawMessage `json:"$defs"`
}

type schemaNode struct {
	Ref              string            `json:"$ref"`
	Type             any               `json:"type"`
	Default          *json.RawMessage  `json:"default"`
	Minimum          *float64          `json:"minimum"`
	Maximum          *float64          `json:"maximum"`
	ExclusiveMinimum *float64          `json:"exclusiveMinimum"`
	Enum             []any             `json:"enum"`
	AnyOf            []json.RawMessage `json:"anyOf"`
	Items            *struct {
		Enum []any `json:"enum"`
	} `json:"items"`
	Properties map[string]json.RawMessage
	Required   []string
}

func (d *schemaDoc) gather(t *testing.T, raw json.RawMessage, p *schemaProp) {
	t.Helper()
	var n schemaNode
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatal(err)
	}
	switch n.Ref {
	case "":
	case "#/$defs/expr":
		return
	case "#/$defs/duration":
		p.types["duration"] = true
		return
	default:
		d.gather(t, d.Defs[strings.TrimPrefix(n.Ref, "#/$defs/")], p)
	}
	switch ty := n.Type.(type) {
	case string:
		p.types[ty] = true
	case []any:
		for _, x := range ty {
			p.types[x.(string)] = true
		}
	}
	if n.Default != nil {
		p.hasDef = true
		if err := json.Unmarshal(*n.Default, &p.def); err != nil {
			t.Fatal(err)
		}
	}
	if n.Minimum != nil {
		p.min = n.Minimum
	}
	if n.Maximum != nil {
		p.max = n.Maximum
	}
	if n.ExclusiveMinimum != nil {
		p.exclMin = n.ExclusiveMinimum
	}
	if n.Enum != nil {
		p.enum = n.Enum
		// An enum without a type: its values' type.
		for _, v := range n.Enum {
			switch v.(type) {
			case string:
				p.types["string"] = true
			case float64:
				p.types["integer"] = true
			}
		}
	}
	if n.Items != nil && n.Items.Enum != nil {
		p.itemEnum = n.Items.Enum
	}
	for _, b := range n.AnyOf {
		d.gather(t, b, p)
	}
}

// schemaWith returns the schema's properties and required keys of a step
// type's with.
func schemaWith(t *testing.T, stepType string) (map[string]*schemaProp, []string) {
	t.Helper()
	var d schemaDoc
	if err := json.Unmarshal(schemas.Pipeline(), &d); err != nil {
		t.Fatal(err)
	}
	var n schemaNode
	if err := json.Unmarshal(d.Defs["with-"+stepType], &n); err != nil {
		t.Fatal(err)
	}
	props := map[string]*schemaProp{}
	for k, raw := range n.Properties {
		p := &schemaProp{types: map[string]bool{}}
		d.gather(t, raw, p)
		props[k] = p
	}
	return props, n.Required
}

func jsonOf(v any) string {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

func fmtBound(f *float64) string {
	if f == nil {
		return "none"
	}
	return fmt.Sprint(*f)
}

// TestParamsMatchSchema: for every step type, the keys the decoder reads are
// the schema's keys; each Go default is the schema's default; each bound or
// set of values the schema states is the decoder's, and each bound the
// decoder enforces is stated in the schema (so docs/spec.md, generated from
// it, tells users); required keys agree.
func TestParamsMatchSchema(t *testing.T) {
	reg := testRegistry(t)
	types, _ := schemaStepTypes(t)
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			run, _ := reg.Lookup(typ)
			d, ok := run.(describer)
			if !ok {
				t.Fatalf("%T does not describe its with decoder", run)
			}
			decls, err := d.DescribeWith(validWith[typ])
			if err != nil {
				t.Fatalf("valid with %v: %v", validWith[typ], err)
			}
			props, required := schemaWith(t, typ)
			seen := map[string]bool{}
			for _, dc := range decls {
				seen[dc.Key] = true
				sp, ok := props[dc.Key]
				if !ok {
					t.Errorf("with.%s: the decoder reads it; the schema has no such key", dc.Key)
					continue
				}
				compareDecl(t, typ, dc, sp, slices.Contains(required, dc.Key))
			}
			for _, k := range slices.Sorted(maps.Keys(props)) {
				if !seen[k] {
					t.Errorf("with.%s: in the schema; the decoder does not read it", k)
				}
			}
		})
	}
}

func compareDecl(t *testing.T, typ string, dc param.Decl, sp *schemaProp, required bool) {
	t.Helper()
	kind := string(dc.Kind)
	if !sp.types[kind] && !(dc.Kind == param.Integer && sp.types["number"]) {
		t.Errorf("with.%s: the decoder reads a %s; the schema allows %v", dc.Key, kind, slices.Sorted(maps.Keys(sp.types)))
	}
	if d, ok := dc.Default.(time.Duration); ok && sp.hasDef {
		// The schema writes a duration as a spec does ("24h").
		if s, isStr := sp.def.(string); isStr {
			if sd, err := time.ParseDuration(s); err == nil && sd == d {
				sp.def = dc.Default
			}
		}
	}
	switch {
	case !sp.hasDef && dc.Default != nil:
		t.Errorf("with.%s: Go default %s; the schema states none", dc.Key, jsonOf(dc.Default))
	case sp.hasDef && dc.Default == nil:
		t.Errorf("with.%s: schema default %s; the decoder has none", dc.Key, jsonOf(sp.def))
	case sp.hasDef && jsonOf(dc.Default) != jsonOf(sp.def):
		t.Errorf("with.%s: Go default %s, schema default %s", dc.Key, jsonOf(dc.Default), jsonOf(sp.def))
	}
	if why, ok := requiredOnlyBySchema[typ+"."+dc.Key]; ok {
		if !required || dc.Required {
			t.Errorf("with.%s: listed as required by the schema only (%s), but schema %t, decoder %t", dc.Key, why, required, dc.Required)
		}
	} else if required != dc.Required {
		t.Errorf("with.%s: required by the schema %t, by the decoder %t", dc.Key, required, dc.Required)
	}
	if dc.Kind == param.Duration {
		return // the schema's duration pattern admits no negative value: Min 0
	}
	smin, smax := sp.min, sp.max
	if dc.Kind == param.Integer && sp.enum != nil {
		// An enum of integers bounds them: the decoder checks the range.
		lo, hi := sp.enum[0].(float64), sp.enum[0].(float64)
		for _, v := range sp.enum {
			lo, hi = min(lo, v.(float64)), max(hi, v.(float64))
		}
		if int(hi-lo)+1 != len(sp.enum) {
			t.Errorf("with.%s: schema enum %v is not a range the decoder can check", dc.Key, sp.enum)
		}
		smin, smax = &lo, &hi
	}
	if dc.ExclusiveMin {
		if sp.exclMin == nil || *sp.exclMin != *dc.Min {
			t.Errorf("with.%s: the decoder wants it above %v; schema exclusiveMinimum %s", dc.Key, *dc.Min, fmtBound(sp.exclMin))
		}
	} else if fmtBound(smin) != fmtBound(dc.Min) {
		t.Errorf("with.%s: minimum: decoder %s, schema %s", dc.Key, fmtBound(dc.Min), fmtBound(smin))
	}
	if fmtBound(smax) != fmtBound(dc.Max) {
		t.Errorf("with.%s: maximum: decoder %s, schema %s", dc.Key, fmtBound(dc.Max), fmtBound(smax))
	}
	if enum := sp.enum; dc.Kind == param.String && (enum != nil || dc.Enum != nil) || dc.Kind == param.List && (sp.itemEnum != nil || dc.Enum != nil) {
		if dc.Kind == param.List {
			enum = sp.itemEnum
		}
		var schemaEnum []string
		for _, v := range enum {
			schemaEnum = append(schemaEnum, fmt.Sprint(v))
		}
		if !slices.Equal(slices.Sorted(slices.Values(schemaEnum)), slices.Sorted(slices.Values(dc.Enum))) {
			t.Errorf("with.%s: values: decoder %q, schema %q", dc.Key, dc.Enum, schemaEnum)
		}
	}
}

// badValues are values a declaration rules out: of the wrong type, outside
// its bounds or its set of values.
func badValues(dc param.Decl) []any {
	var out []any
	switch dc.Kind {
	case param.String:
		out = append(out, map[string]any{"a": 1})
	case param.Integer:
		out = append(out, "not-a-value", 1.5)
	case param.Number, param.Boolean, param.Duration:
		out = append(out, "not-a-value")
	case param.List:
		out = append(out, 42)
	case param.Map:
		out = append(out, "not-an-object")
	}
	if dc.Kind == param.Duration {
		return append(out, "-5m")
	}
	if dc.Min != nil {
		switch {
		case dc.ExclusiveMin:
			out = append(out, *dc.Min)
		case dc.Kind == param.Integer:
			out = append(out, int(*dc.Min)-1)
		default:
			out = append(out, *dc.Min-0.5)
		}
	}
	if dc.Max != nil {
		out = append(out, *dc.Max+1)
	}
	switch {
	case dc.Enum != nil && dc.Kind == param.List:
		out = append(out, []any{"not-one-of-them"})
	case dc.Enum != nil:
		out = append(out, "not-one-of-them")
	}
	return out
}

// TestBadParametersArePermanent: for every step type and every key, each
// value its declaration rules out makes Run fail before it reaches a host
// or AWS, with a permanent error `<type>: with.<key>...`; so does an
// unknown key.
func TestBadParametersArePermanent(t *testing.T) {
	reg := testRegistry(t)
	types, _ := schemaStepTypes(t)
	for _, typ := range types {
		run, _ := reg.Lookup(typ)
		d, ok := run.(describer)
		if !ok {
			t.Errorf("%s: %T does not describe its with decoder", typ, run)
			continue
		}
		decls, _ := d.DescribeWith(validWith[typ])
		cases := []struct {
			key string
			v   any
		}{{"no_such_key", "x"}}
		for _, dc := range decls {
			for _, v := range badValues(dc) {
				cases = append(cases, struct {
					key string
					v   any
				}{dc.Key, v})
			}
		}
		for _, c := range cases {
			with := maps.Clone(validWith[typ])
			with[c.key] = c.v
			sr := &pipeline.StepRun{RunID: "r", StepID: "s", Type: typ, With: with, Attempt: 1, Log: &strings.Builder{},
				Host: pipeline.Host{Name: "h", Address: "ssm:i-0123456789abcdef0"}}
			_, err := run.Run(t.Context(), sr)
			want := typ + ": with." + c.key
			if err == nil || !strings.Contains(err.Error(), want) || !pipeline.IsPermanent(err) {
				t.Errorf("%s with.%s = %#v: err %v (permanent %t), want a permanent %q", typ, c.key, c.v, err, pipeline.IsPermanent(err), want)
			}
		}
	}
}
