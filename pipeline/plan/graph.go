package plan

import (
	"fmt"
	"io"
	"strings"

	"github.com/gpipe/gpipe/pipeline/state"
)

// palette colours a node by status or action; the colours follow GitHub's
// light theme so the summary graph sits well on github.com.
type colours struct{ fill, stroke, text, extra string }

var classOrder = []string{"succeeded", "failed", "running", "cancelled", "skipped", "pending", "reuse"}

func palette(class string) (colours, bool) {
	switch class {
	case "succeeded":
		return colours{"#dafbe1", "#1a7f37", "#1f2328", ""}, true
	case "failed":
		return colours{"#ffebe9", "#cf222e", "#1f2328", ""}, true
	case "running":
		return colours{"#ddf4ff", "#0969da", "#1f2328", ""}, true
	case "cancelled":
		return colours{"#fff8c5", "#9a6700", "#1f2328", ""}, true
	case "skipped":
		return colours{"#f6f8fa", "#8c959f", "#57606a", "stroke-dasharray:4 3"}, true
	case "pending":
		return colours{"#ffffff", "#8c959f", "#1f2328", ""}, true
	case "reuse":
		return colours{"#f6f8fa", "#8c959f", "#57606a", ""}, true
	}
	return colours{}, false
}

// mermaidIDs gives every step a node id made of [A-Za-z0-9_] with a prefix, so
// that ids such as "end", "train-fold-0" or "a.b" never clash with Mermaid's
// keywords or punctuation; collisions after sanitizing get a numeric suffix.
func (p *Plan) mermaidIDs() map[string]string {
	ids := make(map[string]string, len(p.Steps))
	used := make(map[string]bool, len(p.Steps))
	for _, s := range p.Steps {
		var b strings.Builder
		b.WriteString("s_")
		for _, r := range s.ID {
			if r < 128 && (r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
		id := b.String()
		for n := 2; used[id]; n++ {
			id = fmt.Sprintf("%s_%d", b.String(), n)
		}
		used[id] = true
		ids[s.ID] = id
	}
	return ids
}

// mermaidText escapes text for a double-quoted Mermaid label with entity
// codes, the only escaping Mermaid's parser understands inside quotes.
var mermaidText = strings.NewReplacer(
	"#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", " ", "\r", " ",
)

func (p *Plan) renderMermaid(w io.Writer, status map[string]state.StepStatus) error {
	ids := p.mermaidIDs()
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	members := map[string][]string{}
	for _, s := range p.Steps {
		if c := class(s, status); c != "" {
			members[c] = append(members[c], ids[s.ID])
		}
	}
	for _, c := range classOrder {
		if len(members[c]) == 0 {
			continue
		}
		col, _ := palette(c)
		fmt.Fprintf(&b, "    classDef %s fill:%s,stroke:%s,color:%s", c, col.fill, col.stroke, col.text)
		if col.extra != "" {
			b.WriteString("," + col.extra)
		}
		b.WriteByte('\n')
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "    %s[\"%s<br/>%s\"]\n", ids[s.ID], mermaidText.Replace(s.ID), mermaidText.Replace(s.Spec.Type))
	}
	for _, s := range p.Steps {
		for _, n := range s.Needs {
			fmt.Fprintf(&b, "    %s --> %s\n", ids[n], ids[s.ID])
		}
	}
	for _, c := range classOrder {
		if len(members[c]) > 0 {
			fmt.Fprintf(&b, "    class %s %s\n", strings.Join(members[c], ","), c)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
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
		if col, ok := palette(class(s, status)); ok {
			fmt.Fprintf(&b, ", fillcolor=%s, color=%s, fontcolor=%s", dotQuote(col.fill), dotQuote(col.stroke), dotQuote(col.text))
			if col.extra != "" {
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
