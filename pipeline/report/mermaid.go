package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/gpipe/gpipe/pipeline/state"
)

// statusStyle is how a step status looks: a symbol for text and a Mermaid
// class for the graph. Colours follow GitHub's own palette for checks.
type statusStyle struct {
	symbol string
	class  string
	def    string
}

var statusStyles = map[state.StepStatus]statusStyle{
	state.StepSucceeded: {"✅", "st_succeeded", "fill:#dafbe1,stroke:#1a7f37,color:#1a7f37"},
	state.StepFailed:    {"❌", "st_failed", "fill:#ffebe9,stroke:#cf222e,color:#cf222e"},
	state.StepRunning:   {"🔄", "st_running", "fill:#ddf4ff,stroke:#0969da,color:#0969da"},
	state.StepCancelled: {"🚫", "st_cancelled", "fill:#fff8c5,stroke:#9a6700,color:#9a6700"},
	state.StepSkipped:   {"⏭️", "st_skipped", "fill:#f6f8fa,stroke:#8c959f,color:#57606a,stroke-dasharray:4 3"},
	state.StepPending:   {"⏳", "st_pending", "fill:#ffffff,stroke:#8c959f,color:#57606a"},
}

// classOrder fixes the order of classDef lines so output is stable.
var classOrder = []state.StepStatus{
	state.StepSucceeded, state.StepFailed, state.StepRunning,
	state.StepCancelled, state.StepSkipped, state.StepPending,
}

// Mermaid writes the run's DAG as a Mermaid flowchart, each node coloured by
// its step status and labelled with the step id, status and duration.
//
// Node ids are positional (n0, n1, ...) and labels are quoted with Mermaid's
// entity codes for the characters that would end or confuse a label, so any
// step id renders; words like "end" never appear as bare ids.
func Mermaid(w io.Writer, s *Summary) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	node := make(map[string]string, len(s.Steps))
	used := map[state.StepStatus]bool{}
	for i, st := range s.Steps {
		id := fmt.Sprintf("n%d", i)
		node[st.ID] = id
		status := st.Status
		if _, ok := statusStyles[status]; !ok {
			status = state.StepPending
		}
		style := statusStyles[status]
		used[status] = true
		label := mermaidText(st.ID) + "<br/>" + mermaidText(string(st.Status))
		if d := formatDuration(st.duration); d != "-" {
			label += " · " + d
		}
		if st.Attempts > 1 {
			label += fmt.Sprintf(" · %d attempts", st.Attempts)
		}
		fmt.Fprintf(&b, "  %s[\"%s\"]:::%s\n", id, label, style.class)
	}
	for _, st := range s.Steps {
		for _, n := range st.Needs {
			if from, ok := node[n]; ok {
				fmt.Fprintf(&b, "  %s --> %s\n", from, node[st.ID])
			}
		}
	}
	for _, status := range classOrder {
		if used[status] {
			style := statusStyles[status]
			fmt.Fprintf(&b, "  classDef %s %s\n", style.class, style.def)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write mermaid graph: %w", err)
	}
	return nil
}

// mermaidText escapes text for a quoted Mermaid label. Mermaid decodes
// "#name;" entity codes, so '#' itself must be encoded first.
func mermaidText(s string) string {
	r := strings.NewReplacer(
		"#", "#35;",
		`"`, "#quot;",
		"<", "#lt;",
		">", "#gt;",
		"\n", " ",
		"\r", " ",
		"`", "#96;",
	)
	return r.Replace(s)
}
