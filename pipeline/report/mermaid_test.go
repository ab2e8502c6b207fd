package report

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

const mermaidInstall = "npm ci --prefix pipeline/report/testdata/mermaid-check"

// mermaidChecker returns a command that parses Mermaid text on stdin with
// mermaid's own parser, or skips (fails under CI=true) when node or the
// node_modules are missing.
func mermaidChecker(t *testing.T) func(docs []string) []checkResult {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := what + "; install with: " + mermaidInstall + " (needs node >= 18)"
		testtool.Unavailable(t, msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found on PATH")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "mermaid-check"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "mermaid", "package.json")); err != nil {
		missing("mermaid is not installed in " + dir)
	}
	return func(docs []string) []checkResult {
		t.Helper()
		cmd := exec.Command(node, "check.mjs")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(strings.Join(docs, "\x00"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var res []checkResult
		dec := json.NewDecoder(bytes.NewReader(out))
		for dec.More() {
			var r checkResult
			if derr := dec.Decode(&r); derr != nil {
				t.Fatalf("read mermaid checker output: %v\n%s%s", derr, out, stderr.String())
			}
			res = append(res, r)
		}
		if len(res) != len(docs) {
			t.Fatalf("mermaid checker answered %d of %d documents (%v):\n%s%s", len(res), len(docs), err, out, stderr.String())
		}
		return res
	}
}

// checkResult is what check.mjs says about one document.
type checkResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func TestMermaidParses(t *testing.T) {
	check := mermaidChecker(t)
	// The checker must reject what github.com would show as an error, or this
	// test proves nothing.
	bad := []string{
		"flowchart LR\n  n0[\"a\" --> n1\n",
		"flowchart LR\n  n0[\"a\"] --> n1\n  class n0 end\n",
	}
	for i, r := range check(bad) {
		if r.OK {
			t.Errorf("checker accepted invalid Mermaid %q", bad[i])
		}
	}
	runs := fixtures()
	// Step ids and statuses that are Mermaid keywords or markup.
	runs["hostile"] = newRun("hostile", "weird",
		&state.Step{ID: "end", Status: "succeeded"},
		&state.Step{ID: `a"b<c>#d;` + "`x`", Status: "failed", Needs: []string{"end"}},
		&state.Step{ID: "subgraph", Status: "mystery", Needs: []string{"end", "nowhere"}},
		&state.Step{ID: "click", Status: "running"},
		&state.Step{ID: "style", Status: "skipped", Needs: []string{"click"}},
		&state.Step{ID: "classDef", Status: "cancelled", Needs: []string{"style"}},
	)
	names := make([]string, 0, len(runs))
	for n := range runs {
		names = append(names, n)
	}
	sort.Strings(names)
	docs := make([]string, len(names))
	for i, name := range names {
		var buf bytes.Buffer
		if err := Mermaid(&buf, Build(runs[name], Options{Now: fixtureNow})); err != nil {
			t.Fatal(err)
		}
		docs[i] = buf.String()
	}
	for i, r := range check(docs) {
		if !r.OK {
			t.Errorf("mermaid rejected the graph of run %q: %s\n--- graph\n%s", names[i], r.Error, docs[i])
		}
	}
}
