package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/gpipe/gpipe/pipeline/state"
)

// runSymbols marks a run's status in headings.
var runSymbols = map[state.RunStatus]string{
	state.RunSucceeded:   "✅",
	state.RunFailed:      "❌",
	state.RunRunning:     "🔄",
	state.RunInterrupted: "🚫",
	state.RunDetached:    "⏸️",
	state.RunPending:     "⏳",
	RunAbandoned:         "⚠️",
}

// Mermaid's default limits (maxTextSize, maxEdges): past them github.com
// shows an error box instead of the graph.
const (
	mermaidMaxText  = 50000
	mermaidMaxEdges = 500
)

// maxCellLen bounds output values and errors in table cells; the JSON form
// has them whole.
const maxCellLen = 60

// Markdown writes a run's summary as GitHub-flavoured Markdown, for
// $GITHUB_STEP_SUMMARY and `gpipe report --format markdown`: the run status,
// a Mermaid graph of the DAG coloured by step status, a table of steps, the
// failures, the estimated instance cost and the command that resumes the run.
func Markdown(w io.Writer, run *state.Run, opt Options) error {
	s := Build(run, opt)
	var b strings.Builder
	fmt.Fprintf(&b, "## %s gpipe run `%s`: %s\n\n", runSymbols[s.Status], s.RunID, s.Status)
	fmt.Fprintf(&b, "Pipeline **%s**", mdEscape(s.Pipeline))
	if s.SpecFile != "" {
		fmt.Fprintf(&b, " (`%s`)", mdCode(s.SpecFile))
	}
	if !s.Created.IsZero() {
		fmt.Fprintf(&b, ", created %s", s.Created.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if s.duration > 0 {
		fmt.Fprintf(&b, ", ran %s", formatDuration(s.duration))
	}
	b.WriteString(".\n\n")
	if a := s.Abandoned; a != nil {
		fmt.Fprintf(&b, "> [!WARNING]\n> **Abandoned:** %s. %s.\n\n", mdEscape(a.Line()), strings.ToUpper(a.Todo()[:1])+a.Todo()[1:])
	}
	var g strings.Builder
	if err := Mermaid(&g, s); err != nil {
		return err
	}
	if edges := strings.Count(g.String(), " --> "); g.Len() > mermaidMaxText || edges > mermaidMaxEdges {
		fmt.Fprintf(&b, "_The graph of %d steps and %d edges is larger than Mermaid renders "+
			"(%d characters, %d edges); `gpipe plan --format dot` draws it._\n\n",
			len(s.Steps), edges, mermaidMaxText, mermaidMaxEdges)
	} else {
		b.WriteString("```mermaid\n" + g.String() + "```\n\n")
	}

	b.WriteString("| Step | Status | Attempts | Duration | Outputs |\n")
	b.WriteString("| --- | --- | ---: | ---: | --- |\n")
	for _, st := range s.Steps {
		outs := make([]string, 0, len(st.KeyOutputs))
		for _, o := range st.KeyOutputs {
			outs = append(outs, fmt.Sprintf("%s=`%s`", mdEscape(o.Key), mdCode(truncate(o.Value, maxCellLen))))
		}
		fmt.Fprintf(&b, "| `%s` | %s %s | %d | %s | %s |\n", mdCode(st.ID), statusSymbol(st.Status), st.Status,
			st.Attempts, formatDuration(st.duration), strings.Join(outs, "<br>"))
	}

	var failed []StepSummary
	for _, st := range s.Steps {
		if st.Status == state.StepFailed {
			failed = append(failed, st)
		}
	}
	if len(failed) > 0 {
		b.WriteString("\n**Failed steps**\n\n")
		tails := tailBudget{left: maxLogTails}
		for _, st := range failed {
			msg := st.Error
			if msg == "" {
				msg = st.Reason
			}
			fmt.Fprintf(&b, "- `%s`: %s\n", mdCode(st.ID), mdEscape(truncate(oneLine(msg), 300)))
			if opt.LogTail != nil {
				b.WriteString(tails.block(opt.LogTail(st.ID)))
			}
		}
	}

	b.WriteString(markdownLosses(s.HostLosses))

	if c := s.Cost; c != nil {
		b.WriteString("\n**Estimated instance cost:** ")
		b.WriteString(costSentence(c, "**"))
		b.WriteString("\n")
		if lines := instanceLines(c); len(lines) > 0 {
			b.WriteString("\n")
			for _, l := range lines {
				b.WriteString("- " + mdEscape(l) + "\n")
			}
		}
	}

	b.WriteString(nextSteps(s, opt))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown summary: %w", err)
	}
	return nil
}

func statusSymbol(s state.StepStatus) string {
	if st, ok := statusStyles[s]; ok {
		return st.symbol
	}
	return statusStyles[state.StepPending].symbol
}

// mdEscape keeps text from breaking a table row or turning into markup.
func mdEscape(s string) string {
	r := strings.NewReplacer(
		`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", ">", "&gt;",
		"[", `\[`, "]", `\]`, "\n", " ", "\r", " ",
	)
	return r.Replace(s)
}

// mdCode makes text safe inside a single-backtick code span within a table:
// backticks cannot be escaped there, and a pipe would still end the cell.
func mdCode(s string) string {
	r := strings.NewReplacer("`", "'", "|", `\|`, "\n", " ", "\r", " ")
	return r.Replace(s)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
