package console

import (
	"io"
	"testing"

	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
)

func TestNewPicksReporter(t *testing.T) {
	tests := []struct {
		env      map[string]string
		terminal bool
		want     string
	}{
		{map[string]string{"GITHUB_ACTIONS": "true"}, true, "*console.GitHub"},
		{map[string]string{}, true, "*console.Live"},
		{map[string]string{"TERM": "dumb"}, true, "*console.Plain"},
		{map[string]string{}, false, "*console.Plain"},
	}
	for _, tt := range tests {
		r := New(io.Discard, Setting{Getenv: func(k string) string { return tt.env[k] }, Terminal: tt.terminal})
		if got := typeName(r); got != tt.want {
			t.Errorf("New(env %v, terminal %v) = %s, want %s", tt.env, tt.terminal, got, tt.want)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}

func typeName(r Reporter) string {
	switch r.(type) {
	case *GitHub:
		return "*console.GitHub"
	case *Live:
		return "*console.Live"
	case *Plain:
		return "*console.Plain"
	}
	return "?"
}

func TestPlanPos(t *testing.T) {
	src := "version: 1\nname: p\nsteps:\n  - id: a\n    type: shell\n    with: {run: 'true'}\n" +
		"  - id: train\n    type: shell\n    matrix:\n      fold: [0, 1]\n    with: {run: 'true'}\n"
	s, err := spec.NewLoader(spec.Options{}).Parse("specs/p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	pos := PlanPos(p)
	for _, st := range p.Steps {
		got, ok := pos(st.ID)
		if !ok || got.File != "specs/p.yaml" || got.Line != st.Spec.Pos.Line || got.Line == 0 {
			t.Errorf("PlanPos(%s) = %+v, %v; want line %d of specs/p.yaml", st.ID, got, ok, st.Spec.Pos.Line)
		}
	}
	if _, ok := pos("nope"); ok {
		t.Error("PlanPos found an unknown step")
	}
}
