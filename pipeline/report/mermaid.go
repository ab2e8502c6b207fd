package report

import (
	"fmt"
	"io"

	"github.com/gpipe/gpipe/pipeline/flowchart"
	"github.com/gpipe/gpipe/pipeline/state"
)

// statusStyle is how a step status looks in text; the graph's colours are
// flowchart's palette.
type statusStyle struct {
	symbol string
}

var statusStyles = map[state.StepStatus]statusStyle{
	state.StepSucceeded: {"✅"},
	state.StepFailed:    {"❌"},
	state.StepRunning:   {"🔄"},
	state.StepCancelled: {"🚫"},
	state.StepSkipped:   {"⏭️"},
	state.StepPending:   {"⏳"},
}

// Mermaid writes the run's DAG as a Mermaid flowchart (see
// pipeline/flowchart), each node coloured by its step status and labelled
// with the step id, status and duration.
func Mermaid(w io.Writer, s *Summary) error {
	g := flowchart.Graph{Direction: "LR", Nodes: make([]flowchart.Node, 0, len(s.Steps))}
	for _, st := range s.Steps {
		class := st.Status
		if _, ok := statusStyles[class]; !ok {
			class = state.StepPending
		}
		status := string(st.Status)
		if d := formatDuration(st.duration); d != "-" {
			status += " · " + d
		}
		if st.Attempts > 1 {
			status += fmt.Sprintf(" · %d attempts", st.Attempts)
		}
		g.Nodes = append(g.Nodes, flowchart.Node{Key: st.ID, Label: []string{st.ID, status}, Class: string(class)})
	}
	for _, st := range s.Steps {
		for _, n := range st.Needs {
			g.Edges = append(g.Edges, [2]string{n, st.ID})
		}
	}
	return flowchart.Mermaid(w, g)
}
