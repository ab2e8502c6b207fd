package gha

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testtool.Golden(t, filepath.Join("testdata", name), got, *update)
}

func TestWriteAnnotation(t *testing.T) {
	tests := []struct {
		a    Annotation
		want string
	}{
		{Annotation{Level: "error", File: "specs/a,b.yaml", Line: 3, Col: 7, Title: "gpipe: step x: failed", Msg: "100% broken\nsecond"},
			"::error file=specs/a%2Cb.yaml,line=3,col=7,title=gpipe%3A step x%3A failed::100%25 broken%0Asecond\n"},
		{Annotation{Msg: "no place"}, "::error::no place\n"},
		{Annotation{Level: "warning", File: "f.yaml", Col: 4, Msg: "m"}, "::warning file=f.yaml::m\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := WriteAnnotation(&buf, tt.a); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("WriteAnnotation(%+v)\n got %q\nwant %q", tt.a, buf.String(), tt.want)
		}
	}
}

func TestPathsRel(t *testing.T) {
	ws := t.TempDir()
	tests := []struct {
		p    Paths
		file string
		want string
	}{
		{Paths{}, "specs/a.yaml", "specs/a.yaml"},
		{Paths{Workspace: ws, Dir: ws}, "specs/a.yaml", "specs/a.yaml"},
		{Paths{Workspace: ws, Dir: filepath.Join(ws, "ml")}, "specs/a.yaml", "ml/specs/a.yaml"},
		{Paths{Workspace: ws, Dir: filepath.Join(ws, "ml")}, "../specs/a.yaml", "specs/a.yaml"},
		{Paths{Workspace: ws, Dir: "/"}, filepath.Join(ws, "x", "b.yaml"), "x/b.yaml"},
		// Outside the workspace: left alone, github.com cannot attach it anyway.
		{Paths{Workspace: ws, Dir: ws}, "/etc/gpipe/a.yaml", "/etc/gpipe/a.yaml"},
		{Paths{Workspace: filepath.Join(ws, "repo"), Dir: filepath.Join(ws, "repo")}, "../repo2/a.yaml", "../repo2/a.yaml"},
	}
	for _, tt := range tests {
		if got := tt.p.Rel(tt.file); got != tt.want {
			t.Errorf("%+v.Rel(%q) = %q, want %q", tt.p, tt.file, got, tt.want)
		}
	}
}

func TestMasks(t *testing.T) {
	var buf bytes.Buffer
	if err := Masks(&buf, []string{"s3cret", "multi\r\nline\n\n  \nkey%"}); err != nil {
		t.Fatal(err)
	}
	want := "::add-mask::s3cret\n::add-mask::multi\n::add-mask::line\n::add-mask::key%25\n"
	if buf.String() != want {
		t.Errorf("Masks wrote %q, want %q", buf.String(), want)
	}
}

func TestSecretValues(t *testing.T) {
	s := &spec.Spec{Params: []spec.Param{
		{Name: "token", Secret: true}, {Name: "task"}, {Name: "empty", Secret: true}, {Name: "key", Secret: true},
	}}
	got := SecretValues(s, map[string]string{"token": "t0k", "task": "01", "key": "k"})
	if strings.Join(got, ",") != "t0k,k" {
		t.Errorf("SecretValues = %q, want [t0k k]", got)
	}
}

func TestSpecErrors(t *testing.T) {
	ws := t.TempDir()
	errs := spec.Errors{
		{Pos: spec.Pos{File: "specs/unet.yaml", Line: 12, Col: 11}, Msg: `unknown field "colour" in step "a"`,
			Excerpt: "   12 |     colour: red\n      |     ^"},
		{Pos: spec.Pos{File: filepath.Join(ws, "specs", "unet.yaml"), Line: 30, Col: 5}, Msg: "needs: unknown step \"trian\", did you mean \"train\"?"},
		{Pos: spec.Pos{File: "specs/unet.yaml"}, Msg: "cycle: a -> b -> a, 100%"},
	}
	var buf bytes.Buffer
	if err := SpecErrors(&buf, errs, Paths{Workspace: ws, Dir: ws}); err != nil {
		t.Fatal(err)
	}
	golden(t, "spec-errors.txt", buf.Bytes())
}

func sampleRun() *state.Run {
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	end := t0.Add(time.Hour)
	return &state.Run{
		ID: "gh-12345", Pipeline: "unet-brain", Status: state.RunSucceeded, Created: t0,
		Order: []string{"provision", "train-fold-0", "evaluate", "odd.step"},
		Steps: map[string]*state.Step{
			"provision": {ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
				Attempts: []state.Attempt{{N: 1, Start: t0, End: &end}},
				Outputs:  map[string]string{"stack_name": "gpipe-gh-12345", "instance_id": "i-0abc"}},
			"train-fold-0": {ID: "train-fold-0", Type: "train-unet", Status: state.StepSucceeded,
				Outputs: map[string]string{"log_tail": "epoch 1\nepoch 2\nghadelimiter_000000000000000000000000"}},
			"evaluate": {ID: "evaluate", Type: "evaluate", Status: state.StepSucceeded,
				Outputs: map[string]string{"mean_dice": "0.7412"}},
			// Characters outside [A-Za-z0-9_-] become '_' in flattened names.
			"odd.step": {ID: "odd.step", Type: "shell", Status: state.StepSucceeded,
				Outputs: map[string]string{"x y": "1"}},
		},
	}
}

// counter is a deterministic "random" source: bytes 0, 1, 2, ...
type counter struct{ n byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n / 12 // the same byte for a whole 12-byte delimiter
		c.n++
	}
	return len(p), nil
}

func TestWriteOutputs(t *testing.T) {
	outs, err := RunOutputs(sampleRun())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteOutputs(&buf, outs, &counter{}); err != nil {
		t.Fatal(err)
	}
	// The first candidate delimiter (all zero bytes) occurs in log_tail, so
	// the heredoc must use the second.
	golden(t, "outputs.txt", buf.Bytes())
	if got := parseOutputFile(t, buf.String()); got["train-fold-0__log_tail"] != "epoch 1\nepoch 2\nghadelimiter_000000000000000000000000" ||
		got["outputs"] != `{"evaluate":{"mean_dice":"0.7412"},"odd.step":{"x y":"1"},"provision":{"instance_id":"i-0abc","stack_name":"gpipe-gh-12345"},"train-fold-0":{"log_tail":"epoch 1\nepoch 2\nghadelimiter_000000000000000000000000"}}` ||
		got["run-id"] != "gh-12345" || got["status"] != "succeeded" || got["odd_step__x_y"] != "1" {
		t.Errorf("output file parses to %q", got)
	}
}

// parseOutputFile reads a $GITHUB_OUTPUT file the way the runner does.
func parseOutputFile(t *testing.T, s string) map[string]string {
	t.Helper()
	res := map[string]string{}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				val = append(val, lines[i])
			}
			if i == len(lines) {
				t.Fatalf("heredoc %s: delimiter %s never closes", name, delim)
			}
			res[name] = strings.Join(val, "\n")
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("bad output line %q", line)
		}
		res[name] = val
	}
	return res
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	out, sum := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	if err := os.WriteFile(out, []byte("earlier=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := sampleRun()
	if err := Outputs(out, run); err != nil {
		t.Fatal(err)
	}
	if err := StepSummary(sum, run, report.Options{StateURL: "s3://b/p"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !strings.HasPrefix(string(got), "earlier=1\nrun-id=gh-12345\n") {
		t.Errorf("output file does not keep earlier entries and append:\n%s", got)
	}
	md, _ := os.ReadFile(sum)
	if !strings.Contains(string(md), "gpipe resume --state s3://b/p gh-12345") || !strings.Contains(string(md), "```mermaid") {
		t.Errorf("step summary lacks the resume command or graph:\n%s", md)
	}
	if err := Outputs(filepath.Join(dir, "missing", "x"), run); err == nil {
		t.Error("Outputs into a missing directory succeeded")
	}
}

func TestWriteRunFiles(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if err := WriteRunFiles(getenv, sampleRun(), report.Options{}); err != nil {
		t.Fatalf("without the variables: %v", err)
	}
	env["GITHUB_OUTPUT"] = filepath.Join(dir, "out")
	env["GITHUB_STEP_SUMMARY"] = filepath.Join(dir, "sum")
	if err := WriteRunFiles(getenv, sampleRun(), report.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"out", "sum"} {
		if data, err := os.ReadFile(filepath.Join(dir, f)); err != nil || len(data) == 0 {
			t.Errorf("%s not written (%v)", f, err)
		}
	}
}
