package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/dag"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

func load(t *testing.T, path string) *spec.Spec {
	t.Helper()
	s, err := spec.NewLoader(spec.Options{}).Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPlan(t *testing.T, s *spec.Spec) *Plan {
	t.Helper()
	p, err := New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ids(p *Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.ID)
	}
	return out
}

func st(id string, needs ...string) spec.Step {
	return spec.Step{ID: id, Type: "shell", Needs: needs, With: map[string]any{"run": "echo " + id}}
}

func TestNewExpandsAndOrders(t *testing.T) {
	p := mustPlan(t, load(t, "testdata/demo.yaml"))
	want := []string{"provision", "fetch", "image", "train-fold-0", "train-fold-1", "evaluate", "end"}
	if got := ids(p); !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if got := p.Step("evaluate").Needs; !slices.Equal(got, []string{"train-fold-0", "train-fold-1"}) {
		t.Errorf("evaluate needs %v: a need on a matrix step means all its copies", got)
	}
	f0, f1 := p.Step("train-fold-0"), p.Step("train-fold-1")
	if f0.DefDigest == f1.DefDigest || f0.DefDigest == "" {
		t.Error("matrix copies must have distinct digests")
	}
	if f0.Matrix[0] != (spec.KV{Key: "fold", Value: "0"}) {
		t.Errorf("matrix %v", f0.Matrix)
	}
	if p.Params["region"] != "eu-west-1" {
		t.Errorf("params %v: defaults not resolved", p.Params)
	}
	if got := p.Instances("train"); !slices.Equal(got, []string{"train-fold-0", "train-fold-1"}) {
		t.Errorf("Instances(train) = %v", got)
	}
	for _, s := range p.Steps {
		if s.Action != Run || s.Reason != "" {
			t.Errorf("fresh plan: %s has action %s reason %q", s.ID, s.Action, s.Reason)
		}
	}
}

func TestNewOrdersDependenciesFirst(t *testing.T) {
	p := mustPlan(t, &spec.Spec{Name: "x", Steps: []spec.Step{st("c", "b"), st("b", "a"), st("a"), st("z")}})
	if got := ids(p); !slices.Equal(got, []string{"a", "b", "c", "z"}) {
		t.Errorf("order %v", got)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name  string
		steps []spec.Step
		want  string
	}{
		{"cycle", []spec.Step{st("a", "c"), st("b", "a"), st("c", "b")}, "steps need each other in a cycle: a needs c needs b needs a"},
		{"unknown need", []spec.Step{st("a", "nope")}, `step a needs unknown step "nope"`},
		{"duplicate", []spec.Step{st("a"), st("a")}, `duplicate step id "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(&spec.Spec{Name: "x", Steps: tt.steps}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if tt.name == "cycle" {
				var ce *dag.CycleError
				if !errors.As(err, &ce) {
					t.Error("cycle error is not a *dag.CycleError")
				}
			}
		})
	}
}

// prevRun builds the saved state of a run of p with the given statuses
// (steps not listed succeeded), outputs "out=<id>" on every success.
func prevRun(p *Plan, statuses map[string]state.StepStatus) *state.Run {
	r := &state.Run{ID: "r", Steps: map[string]*state.Step{}}
	for _, s := range p.Steps {
		status := state.StepSucceeded
		if x, ok := statuses[s.ID]; ok {
			status = x
		}
		ps := &state.Step{ID: s.ID, Status: status, DefDigest: s.DefDigest, Needs: s.Needs}
		if status == state.StepSucceeded {
			ps.Outputs = map[string]string{"out": s.ID}
		}
		r.Steps[s.ID] = ps
	}
	return r
}

func TestForResume(t *testing.T) {
	type decision struct {
		action Action
		reason string
	}
	tests := []struct {
		name     string
		statuses map[string]state.StepStatus
		edit     func(s *spec.Spec) // applied to the spec before the new plan
		prevEdit func(r *state.Run)
		from     string
		want     map[string]decision
	}{
		{
			name:     "failed step and its downstream rerun",
			statuses: map[string]state.StepStatus{"train-fold-1": state.StepFailed, "evaluate": state.StepSkipped, "end": state.StepSucceeded},
			want: map[string]decision{
				"provision":    {Reuse, "succeeded in previous run"},
				"train-fold-0": {Reuse, "succeeded in previous run"},
				"train-fold-1": {Run, "failed in previous run"},
				"evaluate":     {Run, "downstream of train-fold-1"},
				"end":          {Run, "downstream of train-fold-1"},
			},
		},
		{
			name:     "cancelled, pending and running",
			statuses: map[string]state.StepStatus{"fetch": state.StepCancelled, "image": state.StepRunning, "train-fold-0": state.StepPending},
			want: map[string]decision{
				"provision":    {Reuse, "succeeded in previous run"},
				"fetch":        {Run, "cancelled in previous run"},
				"image":        {Run, "running when the previous runner stopped"},
				"train-fold-0": {Run, "downstream of fetch"},
			},
		},
		{
			name:     "running with resume data reattaches",
			statuses: map[string]state.StepStatus{"evaluate": state.StepRunning, "end": state.StepPending},
			prevEdit: func(r *state.Run) { r.Steps["evaluate"].Resume = map[string]string{"command_id": "c-1"} },
			want: map[string]decision{
				"evaluate": {Run, "running when the previous runner stopped; resuming with its saved data"},
				"end":      {Run, "downstream of evaluate"},
			},
		},
		{
			name:     "running in a detached run reattaches",
			statuses: map[string]state.StepStatus{"evaluate": state.StepRunning, "end": state.StepPending},
			prevEdit: func(r *state.Run) {
				r.Status = state.RunDetached
				r.Steps["evaluate"].Resume = map[string]string{"command_id": "c-1"}
			},
			want: map[string]decision{
				"evaluate": {Run, "detached while running; resuming with its saved data"},
				"end":      {Run, "downstream of evaluate"},
			},
		},
		{
			name: "--from a matrix step reruns all copies and downstream",
			from: "train",
			want: map[string]decision{
				"image":        {Reuse, "succeeded in previous run"},
				"train-fold-0": {Run, "--from train"},
				"train-fold-1": {Run, "--from train"},
				"evaluate":     {Run, "downstream of train (--from)"},
				"end":          {Run, "downstream of train (--from)"},
			},
		},
		{
			name: "--from one copy",
			from: "train-fold-1",
			want: map[string]decision{
				"train-fold-0": {Reuse, "succeeded in previous run"},
				"train-fold-1": {Run, "--from train-fold-1"},
				"evaluate":     {Run, "downstream of train-fold-1 (--from)"},
			},
		},
		{
			name: "edited step and downstream rerun, the rest reused",
			edit: func(s *spec.Spec) { s.Steps[2].With = map[string]any{"run": "echo pull --quiet"} }, // image
			want: map[string]decision{
				"provision":    {Reuse, "succeeded in previous run"},
				"fetch":        {Reuse, "succeeded in previous run"},
				"image":        {Run, "definition changed"},
				"train-fold-0": {Run, "downstream of image"},
				"end":          {Run, "downstream of image"},
			},
		},
		{
			name: "new matrix value: old copies reused, new one runs",
			edit: func(s *spec.Spec) { s.Steps[3].Matrix[0].Values = append(s.Steps[3].Matrix[0].Values, 2) },
			want: map[string]decision{
				"train-fold-0": {Reuse, "succeeded in previous run"},
				"train-fold-1": {Reuse, "succeeded in previous run"},
				"train-fold-2": {Run, "new step"},
				"evaluate":     {Run, "downstream of train-fold-2"},
			},
		},
		{
			name:     "steps gone from the spec are ignored",
			prevEdit: func(r *state.Run) { r.Steps["old"] = &state.Step{ID: "old", Status: state.StepFailed} },
			want: map[string]decision{
				"provision": {Reuse, "succeeded in previous run"},
				"end":       {Reuse, "succeeded in previous run"},
			},
		},
		{
			name:     "a cleanup that ran reruns what it cleaned and all after it",
			statuses: map[string]state.StepStatus{"train-fold-1": state.StepCancelled, "evaluate": state.StepCancelled},
			edit:     func(s *spec.Spec) { s.Steps[5].Cleans = []string{"provision"} },
			prevEdit: func(r *state.Run) {},
			want: map[string]decision{
				"provision":    {Run, "cleaned up by end in the previous run"},
				"fetch":        {Run, "downstream of provision"},
				"train-fold-0": {Run, "downstream of provision"},
				"end":          {Run, "downstream of provision"},
			},
		},
		{
			name: "a succeeded run with a cleanup that ran reruns nothing",
			edit: func(s *spec.Spec) { s.Steps[5].Cleans = []string{"provision"} },
			want: map[string]decision{
				"provision":    {Reuse, "succeeded in previous run"},
				"train-fold-0": {Reuse, "succeeded in previous run"},
				"end":          {Reuse, "succeeded in previous run"},
			},
		},
		{
			name: "an edit after a cleanup reruns what it cleaned, since the edited step needs it",
			edit: func(s *spec.Spec) {
				s.Steps[5].Cleans = []string{"provision"}
				s.Steps[4].With = map[string]any{"run": "echo eval --again"}
			},
			want: map[string]decision{
				"provision":    {Run, "cleaned up by end in the previous run"},
				"train-fold-0": {Run, "downstream of provision"},
				"evaluate":     {Run, "definition changed"},
				"end":          {Run, "downstream of evaluate"},
			},
		},
		{
			name:     "a cleanup that reruns alone does not re-provision what it cleaned",
			statuses: map[string]state.StepStatus{},
			edit: func(s *spec.Spec) {
				s.Steps[5].Cleans = []string{"provision"}
				s.Steps[5].With = map[string]any{"run": "echo teardown again"}
			},
			want: map[string]decision{
				"provision": {Reuse, "succeeded in previous run"},
				"end":       {Run, "definition changed"},
			},
		},
		{
			name:     "a stack deleted by gpipe teardown is made again when a rerun step needs it",
			statuses: map[string]state.StepStatus{"evaluate": state.StepRunning, "end": state.StepPending},
			prevEdit: func(r *state.Run) { r.Steps["provision"].Released = &time.Time{} },
			want: map[string]decision{
				"provision":    {Run, "cleaned up by gpipe teardown in the previous run"},
				"train-fold-0": {Run, "downstream of provision"},
				"evaluate":     {Run, "downstream of provision"},
			},
		},
		{
			name:     "a cleanup that failed cleaned nothing for sure: it reruns, the rest is reused",
			statuses: map[string]state.StepStatus{"end": state.StepFailed},
			edit:     func(s *spec.Spec) { s.Steps[5].Cleans = []string{"provision"} },
			want: map[string]decision{
				"provision": {Reuse, "succeeded in previous run"},
				"end":       {Run, "failed in previous run"},
			},
		},
		{
			name: "matrix value removed: the step that needed the removed copy reruns",
			edit: func(s *spec.Spec) { s.Steps[3].Matrix[0].Values = s.Steps[3].Matrix[0].Values[:1] },
			want: map[string]decision{
				"train-fold-0": {Reuse, "succeeded in previous run"},
				"evaluate":     {Run, "needed train-fold-1, which the pipeline no longer has"},
				"end":          {Run, "downstream of evaluate"},
			},
		},
		{
			name: "new step",
			edit: func(s *spec.Spec) { s.Steps = append(s.Steps, st("report", "evaluate")) },
			want: map[string]decision{"report": {Run, "new step"}, "evaluate": {Reuse, "succeeded in previous run"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := mustPlan(t, load(t, "testdata/demo.yaml"))
			prev := prevRun(orig, tt.statuses)
			if tt.prevEdit != nil {
				tt.prevEdit(prev)
			}
			s := load(t, "testdata/demo.yaml")
			if tt.edit != nil {
				tt.edit(s)
			}
			p := mustPlan(t, s)
			if err := p.ForResume(prev, tt.from); err != nil {
				t.Fatal(err)
			}
			for id, w := range tt.want {
				got := p.Step(id)
				if got == nil {
					t.Errorf("no step %s", id)
					continue
				}
				if got.Action != w.action || got.Reason != w.reason {
					t.Errorf("%s: %s (%q), want %s (%q)", id, got.Action, got.Reason, w.action, w.reason)
				}
				if got.Action == Reuse && got.Outputs["out"] != id {
					t.Errorf("%s: reused without its outputs: %v", id, got.Outputs)
				}
				if got.Action == Run && got.Outputs != nil {
					t.Errorf("%s: rerun step keeps outputs %v", id, got.Outputs)
				}
			}
		})
	}
}

func TestDigestCoversEnvAndHost(t *testing.T) {
	base := &spec.Spec{Name: "x", Steps: []spec.Step{st("a"), st("b")},
		Hosts: []spec.HostDecl{{Name: "gaudi", Address: "ssm:i-1", Cards: 8}}}
	base.Steps[1].Host = "gaudi"
	digests := func(edit func(s *spec.Spec)) (string, string) {
		s := *base
		s.Steps = slices.Clone(base.Steps)
		s.Hosts = slices.Clone(base.Hosts)
		if edit != nil {
			edit(&s)
		}
		p := mustPlan(t, &s)
		return p.Step("a").DefDigest, p.Step("b").DefDigest
	}
	a0, b0 := digests(nil)
	if a1, b1 := digests(func(s *spec.Spec) { s.Hosts[0].Cards = 4 }); a1 != a0 || b1 == b0 {
		t.Error("changing a host declaration must change exactly the steps on that host")
	}
	if a1, b1 := digests(func(s *spec.Spec) { s.Env = []spec.KV{{Key: "X", Value: "1"}} }); a1 == a0 || b1 == b0 {
		t.Error("changing the pipeline env must change every step")
	}
	if a1, _ := digests(func(s *spec.Spec) { s.Description = "words" }); a1 != a0 {
		t.Error("a description change must not rerun steps")
	}
}

func TestForResumeUnknownFrom(t *testing.T) {
	p := mustPlan(t, load(t, "testdata/demo.yaml"))
	err := p.ForResume(prevRun(p, nil), "nope")
	var ue *UnknownStepError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "provision, fetch, image, train, evaluate, end") {
		t.Fatalf("err = %v", err)
	}
	if err := p.ForResume(nil, ""); err == nil {
		t.Error("nil previous run accepted")
	}
}

// A matrix step that needs a matrix step over the same axis pairs up with it;
// a step without that axis needs every copy; a copy named in an expression is
// needed whatever the pairing says.
func TestMatrixNeedsPairUp(t *testing.T) {
	train := st("train")
	train.Matrix = []spec.MatrixAxis{{Name: "fold", Values: []any{0, 1, 2}}}
	eval := st("evaluate", "train")
	eval.Matrix = []spec.MatrixAxis{{Name: "fold", Values: []any{0, 1, 2}}}
	cross := st("cross", "train")
	cross.Matrix = []spec.MatrixAxis{{Name: "fold", Values: []any{0, 1}}}
	cross.With = map[string]any{"run": "echo ${{ steps.train-fold-2.outputs.ckpt }}"}
	other := st("sweep", "train")
	other.Matrix = []spec.MatrixAxis{{Name: "lr", Values: []any{"0.1", "0.01"}}}
	mean := st("mean", "evaluate")
	odd := st("odd", "train")
	odd.Matrix = []spec.MatrixAxis{{Name: "fold", Values: []any{7}}}
	p := mustPlan(t, &spec.Spec{Version: 1, Name: "pairs", Steps: []spec.Step{train, eval, cross, other, mean, odd}})
	tests := map[string][]string{
		"evaluate-fold-1": {"train-fold-1"},
		"cross-fold-0":    {"train-fold-0", "train-fold-2"},
		"sweep-lr-0_1":    {"train-fold-0", "train-fold-1", "train-fold-2"},
		"mean":            {"evaluate-fold-0", "evaluate-fold-1", "evaluate-fold-2"},
		"odd-fold-7":      {"train-fold-0", "train-fold-1", "train-fold-2"},
	}
	for id, want := range tests {
		got := slices.Clone(p.Step(id).Needs)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s needs %v, want %v", id, got, want)
		}
	}
}
