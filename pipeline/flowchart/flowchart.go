// Package flowchart draws a step DAG as a Mermaid flowchart: the one renderer
// behind the plan's --format mermaid and the run summary's graph, with the one
// palette of step statuses (which the plan's DOT rendering shares) and the one
// way of escaping labels.
package flowchart

import (
	"fmt"
	"io"
	"strings"
)

// Style is how nodes of one class look. Colours follow GitHub's light theme
// for checks, so the summary graph sits well on github.com.
type Style struct {
	Fill, Stroke, Text string
	Dashed             bool
}

// classes are the node classes in the order their classDef lines appear:
// the step statuses, then "reuse" (a plan step a resume keeps).
var classes = []struct {
	name  string
	style Style
}{
	{"succeeded", Style{"#dafbe1", "#1a7f37", "#1a7f37", false}},
	{"failed", Style{"#ffebe9", "#cf222e", "#cf222e", false}},
	{"running", Style{"#ddf4ff", "#0969da", "#0969da", false}},
	{"cancelled", Style{"#fff8c5", "#9a6700", "#9a6700", false}},
	{"skipped", Style{"#f6f8fa", "#8c959f", "#57606a", true}},
	{"pending", Style{"#ffffff", "#8c959f", "#57606a", false}},
	{"reuse", Style{"#f6f8fa", "#8c959f", "#57606a", false}},
}

// StyleOf returns the style of a class: a step status or "reuse".
func StyleOf(class string) (Style, bool) {
	for _, c := range classes {
		if c.name == class {
			return c.style, true
		}
	}
	return Style{}, false
}

// Node is one step. Label lines are plain text; the renderer escapes them.
type Node struct {
	Key   string   // what edges refer to (the step id)
	Label []string // lines of the label
	Class string   // a StyleOf class; "" or an unknown class draws it plain
}

// Graph is a flowchart: Direction is Mermaid's ("LR", "TD"); edges go from
// the first key to the second, and an edge naming an unknown node is left out.
type Graph struct {
	Direction string
	Nodes     []Node
	Edges     [][2]string
}

// Mermaid writes g as Mermaid text.
//
// Node ids are positional (n0, n1, ...), so no step id can clash with a
// Mermaid keyword ("end", "subgraph") or punctuation; class names carry a
// prefix for the same reason. Labels are quoted and escaped with Text.
func Mermaid(w io.Writer, g Graph) error {
	var b strings.Builder
	b.WriteString("flowchart " + g.Direction + "\n")
	id := make(map[string]string, len(g.Nodes))
	used := map[string]bool{}
	for i, n := range g.Nodes {
		id[n.Key] = fmt.Sprintf("n%d", i)
		lines := make([]string, len(n.Label))
		for j, l := range n.Label {
			lines[j] = Text(l)
		}
		fmt.Fprintf(&b, "  %s[\"%s\"]", id[n.Key], strings.Join(lines, "<br/>"))
		if _, ok := StyleOf(n.Class); ok {
			fmt.Fprintf(&b, ":::st_%s", n.Class)
			used[n.Class] = true
		}
		b.WriteByte('\n')
	}
	for _, e := range g.Edges {
		from, ok1 := id[e[0]]
		to, ok2 := id[e[1]]
		if ok1 && ok2 {
			fmt.Fprintf(&b, "  %s --> %s\n", from, to)
		}
	}
	for _, c := range classes {
		if !used[c.name] {
			continue
		}
		fmt.Fprintf(&b, "  classDef st_%s fill:%s,stroke:%s,color:%s", c.name, c.style.Fill, c.style.Stroke, c.style.Text)
		if c.style.Dashed {
			b.WriteString(",stroke-dasharray:4 3")
		}
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write mermaid graph: %w", err)
	}
	return nil
}

// text escapes a quoted Mermaid label: Mermaid decodes "#name;" entity codes
// (the only escaping its parser knows inside quotes), so '#' itself is
// encoded first; line breaks become spaces.
var text = strings.NewReplacer(
	"#", "#35;",
	`"`, "#quot;",
	"<", "#lt;",
	">", "#gt;",
	"\n", " ",
	"\r", " ",
	"`", "#96;",
)

// Text escapes s for a quoted Mermaid label.
func Text(s string) string { return text.Replace(s) }
