package plan

import (
	"fmt"
	"io"
	"strings"

	"github.com/gpipe/gpipe/pipeline/flowchart"
	"github.com/gpipe/gpipe/pipeline/state"
)

// renderMermaid draws the plan with the one Mermaid renderer (see
// pipeline/flowchart): each node shows the step id and type, coloured by
// status or, after a resume decision, by reuse.
func (p *Plan) renderMermaid(w io.Writer, status map[string]state.StepStatus) error {
	g := flowchart.Graph{Direction: "TD", Nodes: make([]flowchart.Node, 0, len(p.Steps))}
	for _, s := range p.Steps {
		g.Nodes = append(g.Nodes, flowchart.Node{Key: s.ID, Label: []string{s.ID, s.Spec.Type}, Class: class(s, status)})
		for _, n := range s.Needs {
			g.Edges = append(g.Edges, [2]string{n, s.ID})
		}
	}
	return flowchart.Mermaid(w, g)
}

var dotEscape = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// dotQuote makes a DOT double-quoted string.
func dotQuote(s string) string { return `"` + dotEscape.Replace(s) + `"` }

func (p *Plan) renderDOT(w io.Writer, status map[string]state.StepStatus) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(p.Spec.Name))
	b.WriteString("    rankdir=TB;\n")
	b.WriteString("    node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\"];\n")
	for _, s := range p.Steps {
		// \n in a DOT label is a centred line break.
		fmt.Fprintf(&b, "    %s [label=\"%s\\n%s\"", dotQuote(s.ID), dotEscape.Replace(s.ID), dotEscape.Replace(s.Spec.Type))
		if col, ok := flowchart.StyleOf(class(s, status)); ok {
			fmt.Fprintf(&b, ", fillcolor=%s, color=%s, fontcolor=%s", dotQuote(col.Fill), dotQuote(col.Stroke), dotQuote(col.Text))
			if col.Dashed {
				b.WriteString(`, style="rounded,filled,dashed"`)
			}
		}
		b.WriteString("];\n")
	}
	for _, s := range p.Steps {
		for _, n := range s.Needs {
			fmt.Fprintf(&b, "    %s -> %s;\n", dotQuote(n), dotQuote(s.ID))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
