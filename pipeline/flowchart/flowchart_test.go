package flowchart

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
)

func TestMermaidHostileIDs(t *testing.T) {
	g := Graph{Direction: "LR", Nodes: []Node{
		{Key: "end", Label: []string{"end"}, Class: "succeeded"},
		{Key: `a"b<c>#d;` + "`x`\nz", Label: []string{`a"b<c>#d;` + "`x`\nz", "failed"}, Class: "failed"},
		{Key: "odd", Label: []string{"odd"}, Class: "mystery"},
	}, Edges: [][2]string{{"end", `a"b<c>#d;` + "`x`\nz"}, {"nowhere", "end"}, {"end", "odd"}}}
	var b strings.Builder
	if err := Mermaid(&b, g); err != nil {
		t.Fatal(err)
	}
	want := `flowchart LR
  n0["end"]:::st_succeeded
  n1["a#quot;b#lt;c#gt;#35;d;#96;x#96; z<br/>failed"]:::st_failed
  n2["odd"]
  n0 --> n1
  n0 --> n2
  classDef st_succeeded fill:#dafbe1,stroke:#1a7f37,color:#1a7f37
  classDef st_failed fill:#ffebe9,stroke:#cf222e,color:#cf222e
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n")[1:] {
		if !regexp.MustCompile(`^  (n\d+\[".*"\](:::st_[a-z]+)?|n\d+ --> n\d+|classDef st_[a-z]+ .*)$`).MatchString(l) {
			t.Errorf("line %q is not a safe node, edge or classDef", l)
		}
	}
}

func TestStyleOfKnowsEveryClass(t *testing.T) {
	for _, c := range []string{"succeeded", "failed", "running", "cancelled", "skipped", "pending", "reuse"} {
		if s, ok := StyleOf(c); !ok || s.Fill == "" || s.Stroke == "" || s.Text == "" {
			t.Errorf("%s: %+v, %v", c, s, ok)
		}
	}
	if _, ok := StyleOf(""); ok {
		t.Error(`"" has a style`)
	}
}

// TestMermaidParses: mermaid's own parser accepts a graph of hostile ids,
// keyword ids and every class.
func TestMermaidParses(t *testing.T) {
	check := testtool.MermaidChecker(t, filepath.Join("..", "report", "testdata", "mermaid-check"))
	g := Graph{Direction: "TD"}
	prev := ""
	for i, id := range []string{"end", "subgraph", "click", "style", "classDef", `a"b<c>#d;` + "`x`", "graph", "a-b", "a.b"} {
		class := []string{"succeeded", "failed", "running", "cancelled", "skipped", "pending", "reuse", "", "mystery"}[i]
		g.Nodes = append(g.Nodes, Node{Key: id, Label: []string{id, class}, Class: class})
		if prev != "" {
			g.Edges = append(g.Edges, [2]string{prev, id})
		}
		prev = id
	}
	var b strings.Builder
	if err := Mermaid(&b, g); err != nil {
		t.Fatal(err)
	}
	if r := check([]string{b.String()}); !r[0].OK {
		t.Errorf("mermaid rejects the graph: %s\n%s", r[0].Error, b.String())
	}
}
