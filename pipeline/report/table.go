package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gpipe/gpipe/pipeline/state"
)

// Table writes a run's summary for a terminal (`gpipe status`): a header, one
// aligned row per step, failures, the cost estimate and the resume command.
// It uses no colour, so it reads the same piped into a file.
func Table(w io.Writer, run *state.Run, opt Options) error {
	s := Build(run, opt)
	var b strings.Builder
	fmt.Fprintf(&b, "run:      %s\n", s.RunID)
	fmt.Fprintf(&b, "pipeline: %s", s.Pipeline)
	if s.SpecFile != "" {
		fmt.Fprintf(&b, " (%s)", s.SpecFile)
	}
	fmt.Fprintf(&b, "\nstatus:   %s", s.Status)
	if s.duration > 0 {
		fmt.Fprintf(&b, " after %s", formatDuration(s.duration))
	}
	if a := s.Abandoned; a != nil {
		fmt.Fprintf(&b, ": %s\ntodo:     %s", a.Line(), strings.ReplaceAll(a.Todo(), "`", ""))
	}
	b.WriteString("\n\n")

	var tb strings.Builder
	tw := tabwriter.NewWriter(&tb, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tATTEMPTS\tDURATION\tOUTPUTS")
	for _, st := range s.Steps {
		outs := make([]string, 0, len(st.KeyOutputs))
		for _, o := range st.KeyOutputs {
			outs = append(outs, o.Key+"="+truncate(oneLine(o.Value), maxCellLen))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", st.ID, st.Status, st.Attempts, formatDuration(st.duration),
			strings.Join(outs, " "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("format status table: %w", err)
	}
	// tabwriter pads an empty last column; trailing blanks only get in the way.
	rows := strings.Split(tb.String(), "\n")
	for i, r := range rows {
		rows[i] = strings.TrimRight(r, " ")
	}
	b.WriteString(strings.Join(rows, "\n"))

	b.WriteString("\n")
	for _, st := range s.Steps {
		if st.Status == state.StepFailed {
			msg := st.Error
			if msg == "" {
				msg = st.Reason
			}
			fmt.Fprintf(&b, "failed: %s: %s\n", st.ID, truncate(oneLine(msg), 300))
		}
	}
	if len(s.HostLosses) > 0 {
		fmt.Fprintf(&b, "losses: %s\n", lossHeadline(s.HostLosses))
		for _, in := range s.HostLosses {
			for _, l := range lossLines(in) {
				fmt.Fprintf(&b, "        %s\n", l)
			}
		}
	}
	if s.Cost != nil {
		fmt.Fprintf(&b, "cost:   %s\n", costSentence(s.Cost, ""))
		for _, l := range instanceLines(s.Cost) {
			fmt.Fprintf(&b, "        %s\n", l)
		}
	}
	fmt.Fprintf(&b, "resume: %s\n", s.ResumeCommand)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write status table: %w", err)
	}
	return nil
}
