package spec

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, path string) *Spec {
	t.Helper()
	s, err := testLoader().Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return s
}

func TestValidSpecsLoad(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no valid specs")
	}
	l := testLoader()
	for _, f := range files {
		if _, err := l.Load(f); err != nil {
			t.Errorf("Load(%s):\n%v", f, err)
		}
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	s := mustLoad(t, "testdata/valid/anchors.yaml")
	if len(s.Steps) != 4 {
		t.Fatalf("steps = %d", len(s.Steps))
	}
	a, b, c, d := s.Steps[0], s.Steps[1], s.Steps[2], s.Steps[3]
	if a.Type != "shell" || a.Timeout != 10*time.Minute || a.Retry.Attempts != 3 || a.Retry.Backoff != time.Second {
		t.Errorf("a did not get the merged defaults: %+v", a)
	}
	if b.Timeout != 20*time.Minute {
		t.Errorf("b: explicit timeout must win over the merged one, got %v", b.Timeout)
	}
	if !reflect.DeepEqual(b.With, map[string]any{"run": "echo a"}) {
		t.Errorf("b.With = %v, want the aliased mapping", b.With)
	}
	if !reflect.DeepEqual(c.Retry.On, []string{"synStatus::synSuccess"}) || c.Retry.MaxBackoff != 4*time.Second {
		t.Errorf("c.Retry = %+v", c.Retry)
	}
	if !reflect.DeepEqual(c.Env, []KV{{"A", "1"}, {"B", "2"}, {"C", "true"}}) {
		t.Errorf("c.Env = %v", c.Env)
	}
	// Among merged maps, the first listed wins; its needs come from the second.
	if d.ID != "d" || !reflect.DeepEqual(d.Needs, []string{"c"}) {
		t.Errorf("d = %+v", d)
	}
	if a.Pos.Line != 9 || a.Pos.File != "testdata/valid/anchors.yaml" {
		t.Errorf("a.Pos = %+v", a.Pos)
	}
}

func TestHostsSpec(t *testing.T) {
	s := mustLoad(t, "testdata/valid/hosts.yaml")
	if s.Version != 1 || s.Name != "unet-brain" || s.Concurrency != 4 || s.State != "s3://bucket/gpipe" {
		t.Errorf("top level = %+v", s)
	}
	if len(s.Hosts) != 1 || s.Hosts[0].Name != "gaudi" || s.Hosts[0].Cards != 8 ||
		s.Hosts[0].Address != "ssm:${{ steps.provision.outputs.instance_id }}" {
		t.Errorf("hosts = %+v", s.Hosts)
	}
	names := []string{}
	for _, p := range s.Params {
		names = append(names, p.Name)
	}
	if !reflect.DeepEqual(names, []string{"region", "results", "hpus", "token"}) {
		t.Errorf("params not in written order: %v", names)
	}
	if p := s.Params[2]; p.Type != "integer" || p.Default != 8 {
		t.Errorf("hpus = %+v", p)
	}
	if p := s.Params[1]; p.Type != "string" || p.Default != nil {
		t.Errorf("results = %+v", p)
	}
	if !s.Params[3].Secret {
		t.Error("token is not secret")
	}
	train := s.Steps[3]
	if train.Host != "gaudi" || train.Timeout != 6*time.Hour || train.Retry.Attempts != 3 ||
		train.Retry.Backoff != defaultBackoff || train.Retry.MaxBackoff != defaultMaxBackoff {
		t.Errorf("train = %+v", train)
	}
	if p := train.FieldPos["with.task"]; p.Line != 42 || p.Col != 13 || p.File == "" {
		t.Errorf(`FieldPos["with.task"] = %+v`, p)
	}
	if p := train.FieldPos["host"]; p.Line != 38 {
		t.Errorf(`FieldPos["host"] = %+v`, p)
	}
	if s.Steps[1].With["min_free_gib"] != 500 {
		t.Errorf("integers decode as int: %#v", s.Steps[1].With["min_free_gib"])
	}
	if s.Steps[0].Retry.Attempts != 1 {
		t.Errorf("default attempts = %d, want 1", s.Steps[0].Retry.Attempts)
	}
}

func TestMatrixSpec(t *testing.T) {
	s := mustLoad(t, "testdata/valid/matrix.yaml")
	insts, err := Expand(&s.Steps[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 10 {
		t.Fatalf("copies = %d", len(insts))
	}
	if insts[0].ID != "train-fold-0-lr-0_001" || insts[1].ID != "train-fold-0-lr-1e-4" || insts[9].ID != "train-fold-4-lr-1e-4" {
		t.Errorf("ids = %v, %v, %v", insts[0].ID, insts[1].ID, insts[9].ID)
	}
	if !reflect.DeepEqual(insts[1].Matrix, []KV{{"fold", "0"}, {"lr", "1e-4"}}) {
		t.Errorf("matrix = %v", insts[1].Matrix)
	}
}

func TestExpand(t *testing.T) {
	one, err := Expand(&Step{ID: "a"})
	if err != nil || !reflect.DeepEqual(one, []Instance{{ID: "a"}}) {
		t.Errorf("Expand(no matrix) = %v, %v", one, err)
	}
	got, err := Expand(&Step{ID: "t", Matrix: []MatrixAxis{{"fold", []any{0, 1}}, {"dim", []any{2, 3}}, {"name", []any{"a b/c", true}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range got {
		ids = append(ids, in.ID)
	}
	want := []string{
		"t-fold-0-dim-2-name-a_b_c", "t-fold-0-dim-2-name-true", "t-fold-0-dim-3-name-a_b_c", "t-fold-0-dim-3-name-true",
		"t-fold-1-dim-2-name-a_b_c", "t-fold-1-dim-2-name-true", "t-fold-1-dim-3-name-a_b_c", "t-fold-1-dim-3-name-true",
	}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %v", ids)
	}
	if _, err := Expand(&Step{ID: "x", Matrix: []MatrixAxis{{"a", nil}}}); err == nil {
		t.Error("empty axis: no error")
	}
	big := make([]any, 1001)
	if _, err := Expand(&Step{ID: "x", Matrix: []MatrixAxis{{"a", big}}}); err == nil {
		t.Error("1001 copies: no error")
	}
}

func TestYAMLLanguageServerCommentIsHarmless(t *testing.T) {
	src := "# yaml-language-server: $schema=../schemas/pipeline.schema.json\nversion: 1\nname: x\nsteps: [{id: a, type: shell, with: {run: 'true'}}]\n"
	if _, err := testLoader().Parse("x.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

func TestErrorFormat(t *testing.T) {
	src := "version: 1\nname: x\nsteps:\n  - id: a\n    type: train-unet\n    with:\n\t\t# tab-indented comment\n      task: '01'\n"
	_, err := testLoader().Parse("f.yaml", []byte(src))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("err = %v", err)
	}
	src = "version: 1\nname: x\nsteps:\n  - id: a\n    type: train-unet\n    with: {task: '01', hpus: 9}\n"
	_, err = testLoader().Parse("f.yaml", []byte(src))
	want := "f.yaml:6:30: step \"a\": \"hpus\" must be at most 8\n" +
		"    6 |     with: {task: '01', hpus: 9}\n" +
		"      |                              ^"
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
	if !errors.As(err, &errs) || errs[0].Pos != (Pos{File: "f.yaml", Line: 6, Col: 30}) {
		t.Errorf("Pos = %+v", errs[0].Pos)
	}
}

func TestAllErrorsSortedByPosition(t *testing.T) {
	_, err := testLoader().Load("testdata/invalid/wrong_value.yaml")
	var errs Errors
	if !errors.As(err, &errs) || len(errs) < 10 {
		t.Fatalf("err = %v", err)
	}
	for i := 1; i < len(errs); i++ {
		a, b := errs[i-1].Pos, errs[i].Pos
		if a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col) {
			t.Errorf("errors out of order at %d: %v then %v", i, a, b)
		}
	}
}

func TestCycleOrderIsStable(t *testing.T) {
	// The same cycle written in different orders prints the same way.
	specs := []string{
		"steps:\n- {id: b, type: shell, needs: [c], with: {run: x}}\n- {id: c, type: shell, needs: [a], with: {run: x}}\n- {id: a, type: shell, needs: [b], with: {run: x}}\n",
		"steps:\n- {id: a, type: shell, needs: [b], with: {run: x}}\n- {id: c, type: shell, needs: [a], with: {run: x}}\n- {id: b, type: shell, needs: [c], with: {run: x}}\n",
	}
	for _, s := range specs {
		_, err := testLoader().Parse("c.yaml", []byte("version: 1\nname: c\n"+s))
		if err == nil || !strings.Contains(err.Error(), "dependency cycle: a -> b -> c -> a") {
			t.Errorf("err = %v", err)
		}
	}
}

func TestDigests(t *testing.T) {
	a := "version: 1\nname: d\nsteps:\n  - id: s\n    type: shell\n    needs: [x, y]\n    env: {A: '1', B: '2'}\n    with: {run: echo, working_directory: /tmp}\n  - {id: x, type: shell, with: {run: 'true'}}\n  - {id: y, type: shell, with: {run: 'true'}}\n"
	b := "version: 1\nname: d\nsteps:\n  - {id: x, type: shell, with: {run: 'true'}}\n  - {id: y, type: shell, with: {run: 'true'}}\n  - id: s\n    with: {working_directory: /tmp, run: echo}\n    env: {B: '2', A: '1'}\n    needs: [y, x]\n    type: shell\n"
	c := strings.Replace(a, "run: echo,", "run: echo hi,", 1)
	sa, err := testLoader().Parse("a", []byte(a))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := testLoader().Parse("b", []byte(b))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := testLoader().Parse("c", []byte(c))
	if err != nil {
		t.Fatal(err)
	}
	if StepDigest(&sa.Steps[0]) != StepDigest(&sb.Steps[2]) {
		t.Error("StepDigest changes with key order")
	}
	if StepDigest(&sa.Steps[0]) == StepDigest(&sc.Steps[0]) {
		t.Error("StepDigest does not see a changed with.run")
	}
	if StepDigest(&sa.Steps[1]) == StepDigest(&sa.Steps[2]) {
		t.Error("steps x and y have the same digest")
	}
	if sa.Digest() == sb.Digest() || len(sa.Digest()) != 64 {
		t.Errorf("Digest = %q, %q", sa.Digest(), sb.Digest())
	}
	if sa.Digest() != "" && sa.Digest() != (&Spec{Source: []byte(a)}).Digest() {
		t.Error("Digest is not a function of Source")
	}
}

func TestResolveParams(t *testing.T) {
	src := `version: 1
name: p
params:
  task: {enum: ["01", "04"], default: "01"}
  hpus: {type: integer, default: 8, enum: [1, 8]}
  lr: {type: number, default: 0.001}
  flag: {type: boolean, default: false}
  bucket: {description: required}
steps: [{id: a, type: shell, with: {run: 'true'}}]
`
	s, err := testLoader().Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ResolveParams(s, map[string]string{"bucket": "b", "hpus": "01", "flag": "TRUE"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"task": "01", "hpus": "1", "lr": "0.001", "flag": "true", "bucket": "b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ResolveParams = %v, want %v", got, want)
	}
	_, err = ResolveParams(s, map[string]string{"hpus": "eight", "task": "05", "flag": "maybe", "lr": "x", "nope": "1", "bucekt": "b"})
	var pe *ParamError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *ParamError", err)
	}
	for _, frag := range []string{
		`param "nope": unknown param (declared: task, hpus, lr, flag, bucket)`,
		`param "bucekt": unknown param (did you mean "bucket"?) (declared: task, hpus, lr, flag, bucket)`,
		`param "task": "05" is not one of 01, 04`,
		`param "hpus": "eight" is not an integer`,
		`param "lr": "x" is not a number`,
		`param "flag": "maybe" is not true or false`,
		`param "bucket": required: give it with -p bucket=VALUE`,
	} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error lacks %q:\n%v", frag, err)
		}
	}
	if _, err := ResolveParams(s, map[string]string{"bucket": "b", "hpus": "4"}); err == nil {
		t.Error("hpus 4 is not in the enum, but no error")
	}
}

func TestLoaderReuse(t *testing.T) {
	l := testLoader()
	for i := 0; i < 3; i++ {
		if _, err := l.Load("testdata/valid/hosts.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Load("testdata/does-not-exist.yaml"); err == nil || !strings.Contains(err.Error(), "read spec") {
		t.Errorf("err = %v", err)
	}
}
