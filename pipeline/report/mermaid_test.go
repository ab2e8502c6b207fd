package report

import (
	"bytes"
	"path/filepath"
	"sort"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

func TestMermaidParses(t *testing.T) {
	check := testtool.MermaidChecker(t, filepath.Join("testdata", "mermaid-check"))
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
		if err := Mermaid(&buf, Build(runs[name], Options{Resources: testResources{}, KeyOutputs: fixtureKeys, Now: fixtureNow})); err != nil {
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
