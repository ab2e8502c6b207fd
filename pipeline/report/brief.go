package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gpipe/gpipe/pipeline/state"
)

// briefAllSteps is how many steps Brief lists one by one; a bigger run lists
// only the steps that did not succeed and counts the rest.
const briefAllSteps = 20

// Brief writes the few lines a terminal shows when a run ends: its status
// and counts, each step's status, duration and key outputs, and the cost
// estimate. What to do next (the resume command) is the caller's, which
// knows how the run ended.
func Brief(w io.Writer, run *state.Run, opt Options) error {
	s := Build(run, opt)
	counts := map[state.StepStatus]int{}
	for _, st := range s.Steps {
		counts[st.Status]++
	}
	var parts []string
	for _, st := range []state.StepStatus{state.StepSucceeded, state.StepFailed, state.StepCancelled,
		state.StepSkipped, state.StepRunning, state.StepPending} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "summary: run %s %s", s.RunID, s.Status)
	if s.duration > 0 {
		fmt.Fprintf(&b, " after %s", formatDuration(s.duration))
	}
	fmt.Fprintf(&b, " (%s)\n", strings.Join(parts, ", "))
	var tb strings.Builder
	tw := tabwriter.NewWriter(&tb, 0, 8, 2, ' ', 0)
	hidden := 0
	for _, st := range s.Steps {
		if len(s.Steps) > briefAllSteps && st.Status == state.StepSucceeded {
			hidden++
			continue
		}
		var detail []string
		for _, o := range st.KeyOutputs {
			detail = append(detail, o.Key+"="+truncate(oneLine(o.Value), maxCellLen))
		}
		switch {
		case st.Status == state.StepFailed && st.Error != "":
			detail = append(detail, truncate(oneLine(st.Error), 120))
		case st.Reason != "" && st.Status != state.StepSucceeded:
			detail = append(detail, truncate(oneLine(st.Reason), 120))
		}
		fmt.Fprintf(tw, "  %s %s\t%s\t%s\n", briefSymbol(st.Status), st.ID, formatDuration(st.duration), strings.Join(detail, " "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("format run summary: %w", err)
	}
	for _, row := range strings.SplitAfter(tb.String(), "\n") {
		b.WriteString(strings.TrimRight(row, " \n"))
		if row != "" {
			b.WriteByte('\n')
		}
	}
	if hidden > 0 {
		fmt.Fprintf(&b, "  … and %d more succeeded (gpipe status %s lists them)\n", hidden, s.RunID)
	}
	if len(s.HostLosses) > 0 {
		fmt.Fprintf(&b, "losses: %s\n", lossHeadline(s.HostLosses))
		for _, in := range s.HostLosses {
			for _, l := range lossLines(in) {
				fmt.Fprintf(&b, "  %s\n", l)
			}
		}
	}
	if s.Cost != nil {
		fmt.Fprintf(&b, "cost: %s\n", costSentence(s.Cost, ""))
		for _, l := range instanceLines(s.Cost) {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write run summary: %w", err)
	}
	return nil
}

func briefSymbol(s state.StepStatus) string {
	switch s {
	case state.StepSucceeded:
		return "✓"
	case state.StepFailed:
		return "✗"
	case state.StepCancelled:
		return "⊘"
	case state.StepSkipped:
		return "-"
	}
	return "…"
}
