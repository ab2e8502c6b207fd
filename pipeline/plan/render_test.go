package plan

import (
	"bytes"
	"encoding/json"
	"flag"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"

	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

var digestRE = regexp.MustCompile(`"def_digest": "[0-9a-f]{64}"`)

// golden compares got with testdata/name, or rewrites it under -update.
// Step digests are masked: they belong to the spec package's hashing, not to
// the rendering under test.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	got = digestRE.ReplaceAll(got, []byte(`"def_digest": "<digest>"`))
	testtool.Golden(t, filepath.Join("testdata", name), got, *update)
}

func render(t *testing.T, p *Plan, format string, status map[string]state.StepStatus) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.Render(&b, format, status); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var ext = map[string]string{"text": "txt", "mermaid": "mmd", "dot": "dot", "json": "json"}

// renderCases returns the plans the golden and Mermaid tests render.
func renderCases(t *testing.T) []struct {
	name   string
	p      *Plan
	status map[string]state.StepStatus
} {
	plain := mustPlan(t, load(t, "testdata/demo.yaml"))
	resumed := mustPlan(t, load(t, "testdata/demo.yaml"))
	if err := resumed.ForResume(prevRun(resumed, map[string]state.StepStatus{
		"train-fold-1": state.StepFailed, "evaluate": state.StepSkipped}), ""); err != nil {
		t.Fatal(err)
	}
	odd := mustPlan(t, &spec.Spec{Name: `odd "one"`, Steps: []spec.Step{
		{ID: "end", Type: `say "<b>hi</b>" #1`},
		{ID: "a-b", Type: "shell", Needs: []string{"end"}},
		{ID: "a_b", Type: "shell", Needs: []string{"end"}},
		{ID: "graph", Type: "shell", Needs: []string{"a-b", "a_b"}},
	}})
	return []struct {
		name   string
		p      *Plan
		status map[string]state.StepStatus
	}{
		{"demo", plain, nil},
		{"demo-status", plain, map[string]state.StepStatus{
			"provision": state.StepSucceeded, "fetch": state.StepSucceeded, "image": state.StepSucceeded,
			"train-fold-0": state.StepRunning, "train-fold-1": state.StepFailed, "evaluate": state.StepSkipped,
			"end": state.StepCancelled,
		}},
		{"demo-resume", resumed, nil},
		{"odd", odd, map[string]state.StepStatus{"end": state.StepSucceeded}},
	}
}

func TestRenderGolden(t *testing.T) {
	for _, c := range renderCases(t) {
		for _, format := range Formats() {
			t.Run(c.name+"/"+format, func(t *testing.T) {
				golden(t, c.name+"."+ext[format], render(t, c.p, format, c.status))
			})
		}
	}
}

func TestRenderJSONIsValid(t *testing.T) {
	for _, c := range renderCases(t) {
		var doc struct {
			Steps []jsonStep `json:"steps"`
		}
		if err := json.Unmarshal(render(t, c.p, "json", c.status), &doc); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(doc.Steps) != len(c.p.Steps) {
			t.Errorf("%s: %d steps in JSON, want %d", c.name, len(doc.Steps), len(c.p.Steps))
		}
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	p := mustPlan(t, load(t, "testdata/demo.yaml"))
	if err := p.Render(&bytes.Buffer{}, "svg", nil); err == nil || !strings.Contains(err.Error(), "text, mermaid, dot, json") {
		t.Errorf("err = %v", err)
	}
}

// TestMermaidParses runs every Mermaid rendering through mermaid's own parser
// (the node project the report package keeps for the same purpose), since an
// invalid graph shows as an error on github.com.
func TestMermaidParses(t *testing.T) {
	check := testtool.MermaidChecker(t, filepath.Join("..", "report", "testdata", "mermaid-check"))
	var docs, names []string
	for _, c := range renderCases(t) {
		docs = append(docs, string(render(t, c.p, "mermaid", c.status)))
		names = append(names, c.name)
	}
	for i, r := range check(docs) {
		if !r.OK {
			t.Errorf("%s: mermaid rejects the graph: %s\n%s", names[i], r.Error, docs[i])
		}
	}
}
