package expr

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var scope = &Scope{
	Params: map[string]string{"task": "01", "hpus": "8", "flag": "false", "empty": ""},
	Matrix: map[string]string{"fold": "0"},
	Run:    map[string]string{"id": "p-20260101-abc"},
	Env:    map[string]string{"HOME": "/root"},
	Steps:  map[string]map[string]string{"provision": {"instance_id": "i-123"}, "train-fold-0": {"ckpt": "s3://b/k"}},
}

func TestTemplateEval(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"", ""},
		{"${{ params.task }}", "01"},
		{"ssm:${{ steps.provision.outputs.instance_id }}", "ssm:i-123"},
		{"a${{params.task}}b${{ matrix.fold }}c", "a01b0c"},
		{"${{ run.id }}/${{ env.HOME }}/${{ env.UNSET }}", "p-20260101-abc//root/"},
		{"${{ steps.train-fold-0.outputs.ckpt }}", "s3://b/k"},
		{"${{ params.empty || 'default' }}", "default"},
		{"${{ params.task || 'default' }}", "01"},
		{"${{ params.task == '01' }}", "true"},
		{"${{ matrix.fold == 0 }}", "true"},
		{"${{ matrix.fold != 1 && params.hpus == 8 }}", "true"},
		{"${{ !params.flag }}", "true"},
		{"${{ 'it''s' }}", "it's"},
		{`${{ "}}" }}`, "}}"},
		{"${{ 1.5 }} ${{ 3 }} ${{ true }} ${{ null }}", "1.5 3 true "},
		{"$ {{ not }} $x", "$ {{ not }} $x"},
	}
	for _, tt := range tests {
		tpl, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		got, err := tpl.Eval(scope)
		if err != nil {
			t.Errorf("Eval(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Eval(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		msg    string
	}{
		{"x ${{ params.task", 2, `"${{" without a closing "}}"`},
		{"${{ }}", 4, "empty expression"},
		{"${{ params.task + 1 }}", 16, `unexpected character '+'`},
		{"${{ params }}", 4, "a params reference is params.<name>"},
		{"${{ params.a.b }}", 4, "a params reference is params.<name>"},
		{"${{ steps.a.output.x }}", 4, "a step reference is steps.<id>.outputs.<key>"},
		{"${{ step.a }}", 4, `unknown name "step"`},
		{"${{ run.name }}", 8, `unknown run field "name"`},
		{"${{ always() }}", 4, "always() is only allowed in if"},
		{"${{ format('x') }}", 11, "format() takes no arguments"},
		{"${{ foo() }}", 4, "unknown function foo()"},
		{"${{ 'abc }}", 0, `without a closing "}}"`},
		{"${{ 'abc' == 'x }}", 0, `without a closing "}}"`},
		{"${{ a = b }}", 6, `"=" is not an operator`},
		{"${{ (params.a }}", 14, `expected ")", found end of expression`},
		{"${{ params.a == 1 == 2 }}", 18, "comparisons cannot be chained"},
		{"${{ params. }}", 12, `expected a name after "."`},
		{"${{ " + strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200) + " }}", 105, "nested too deeply"},
		{"${{ 1e }}", 4, `malformed number "1e"`},
		{"ok ${{ params.a }} ${{ ) }}", 23, `unexpected ")"`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a SyntaxError", tt.in, err)
			continue
		}
		if se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("Parse(%q) = offset %d %q, want offset %d containing %q", tt.in, se.Offset, se.Msg, tt.offset, tt.msg)
		}
	}
}

func TestRefs(t *testing.T) {
	tpl, err := Parse("${{ params.a }}-${{ steps.s.outputs.k || params.a }}-${{ matrix.x }}-${{ run.id }}-${{ env.E }}")
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{{"params", "a", ""}, {"steps", "s", "k"}, {"matrix", "x", ""}, {"run", "id", ""}, {"env", "E", ""}}
	if got := tpl.Refs(); !reflect.DeepEqual(got, want) {
		t.Errorf("Refs = %v, want %v", got, want)
	}
	uses := tpl.Uses()
	if len(uses) != 6 || uses[0].Offset != 4 || uses[1].Offset != 20 {
		t.Errorf("Uses = %v", uses)
	}
	if tpl.IsLiteral() {
		t.Error("IsLiteral = true")
	}
	lit, _ := Parse("just text")
	if !lit.IsLiteral() || len(lit.Refs()) != 0 {
		t.Error("literal template has refs or is not literal")
	}
}

func TestEvalRefErrors(t *testing.T) {
	for _, in := range []string{"${{ params.nope }}", "${{ matrix.nope }}", "${{ steps.x.outputs.y }}", "${{ steps.provision.outputs.nope }}"} {
		tpl, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tpl.Eval(scope)
		var re *RefError
		if !errors.As(err, &re) {
			t.Errorf("Eval(%q) = %v, want RefError", in, err)
		}
	}
	// A nil scope must not panic.
	tpl, _ := Parse("${{ env.X }}")
	if s, err := tpl.Eval(nil); err != nil || s != "" {
		t.Errorf("Eval(nil) = %q, %v", s, err)
	}
}

func TestCondition(t *testing.T) {
	ok, failed, cancelled := Status{}, Status{Failed: true}, Status{Failed: true, Cancelled: true}
	tests := []struct {
		in     string
		st     Status
		want   bool
		always bool
	}{
		{"", ok, true, false},
		{"", failed, false, false},
		{"success()", ok, true, false},
		{"success()", failed, false, false},
		{"always()", failed, true, true},
		{"${{ always() }}", cancelled, true, true},
		{"failure()", failed, true, true},
		{"failure()", ok, false, true},
		{"cancelled()", cancelled, true, true},
		{"cancelled()", failed, false, true},
		{"!cancelled()", failed, true, true},
		{"params.task == '01'", ok, true, false},
		{"params.task == '01'", failed, false, false}, // implicit success()
		{"${{ params.task != '01' }}", ok, false, false},
		{"failure() && params.flag", failed, false, true},
		{"failure() || matrix.fold == 0", ok, true, true},
		{"params.flag", ok, false, false},
		{" ${{ params.hpus == 8 }} ", ok, true, false},
	}
	for _, tt := range tests {
		c, err := ParseCondition(tt.in)
		if err != nil {
			t.Errorf("ParseCondition(%q): %v", tt.in, err)
			continue
		}
		got, err := c.Eval(scope, tt.st)
		if err != nil {
			t.Errorf("Eval(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Eval(%q, %+v) = %v, want %v", tt.in, tt.st, got, tt.want)
		}
		if c.Always() != tt.always {
			t.Errorf("Always(%q) = %v, want %v", tt.in, c.Always(), tt.always)
		}
	}
}

func TestConditionErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int
	}{
		{"always() && ${{ params.a }}", 12},
		{"${{ always( }}", 12},
		{"succes()", 0},
		{"  ${{ params.a == }}", 18},
	}
	for _, tt := range tests {
		_, err := ParseCondition(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Offset != tt.offset {
			t.Errorf("ParseCondition(%q) = %v, want SyntaxError at %d", tt.in, err, tt.offset)
		}
	}
	c, err := ParseCondition("steps.a.outputs.ok == 'yes'")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Refs(); len(got) != 1 || got[0] != (Ref{"steps", "a", "ok"}) {
		t.Errorf("Refs = %v", got)
	}
	if _, err := c.Eval(&Scope{}, Status{}); err == nil {
		t.Error("Eval with missing step outputs: no error")
	}
}

func TestInterpolate(t *testing.T) {
	in := map[string]any{
		"task":  "${{ params.task }}",
		"hpus":  "${{ params.hpus }}",
		"n":     3,
		"flag":  true,
		"extra": []any{"--fold=${{ matrix.fold }}", 1.5},
		"nest":  map[string]any{"id": "${{ run.id }}"},
	}
	got, err := Interpolate(in, scope)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"task":  "01",
		"hpus":  "8",
		"n":     3,
		"flag":  true,
		"extra": []any{"--fold=0", 1.5},
		"nest":  map[string]any{"id": "p-20260101-abc"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Interpolate = %#v, want %#v", got, want)
	}
	if in["task"] != "${{ params.task }}" {
		t.Error("Interpolate modified its input")
	}
	_, err = Interpolate(map[string]any{"a": []any{map[string]any{"b": "${{ params.zzz }}"}}}, scope)
	if err == nil || !strings.HasPrefix(err.Error(), "a[0].b: ") {
		t.Errorf("Interpolate error = %v, want one prefixed with a[0].b", err)
	}
}
