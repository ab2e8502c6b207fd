package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/gpipe/gpipe/internal/duration"
	"github.com/gpipe/gpipe/pipeline/state"
)

// Interruption is one host lost under a running step (state.HostLoss) as
// reports show it: which step, host and machine, when and why, what ran
// again, and the time it cost.
type Interruption struct {
	Step    string    `json:"step"`
	Attempt int       `json:"attempt"`
	Host    string    `json:"host"`
	Address string    `json:"address"`
	Zone    string    `json:"zone,omitempty"`
	Time    time.Time `json:"time"`
	Cause   string    `json:"cause"`
	// AttemptSeconds is how long the lost attempt had run: what it did
	// since its last checkpoint is done again.
	AttemptSeconds float64 `json:"attempt_seconds"`
	// ReplacedAfterSeconds is the time from the loss to the step's next
	// attempt, on the new host; null while it has not started again (the
	// loss was not replaced, or the new host is still being made).
	ReplacedAfterSeconds *float64 `json:"replaced_after_seconds"`
	// TimeLostSeconds adds the two: at most this much later the run is
	// where it was when the host went (less for a step that resumes from a
	// checkpoint).
	TimeLostSeconds float64  `json:"time_lost_seconds"`
	Rerun           []string `json:"rerun"`
	// Failed says why the loss was not replaced (max_host_losses).
	Failed string `json:"failed,omitempty"`

	ran, back time.Duration
}

// interruptions lists a run's host losses.
func interruptions(run *state.Run) []Interruption {
	out := []Interruption{}
	for _, l := range run.HostLosses {
		in := Interruption{Step: l.Step, Attempt: l.Attempt, Host: l.Host, Address: l.Address, Zone: l.Zone,
			Time: l.Time, Cause: l.Cause, Rerun: append([]string{}, l.Rerun...), Failed: l.Failed}
		if l.Time.After(l.Start) {
			in.ran = l.Time.Sub(l.Start)
		}
		if next, ok := nextAttempt(run.Steps[l.Step], l.Attempt); ok && l.Failed == "" {
			if next.After(l.Time) {
				in.back = next.Sub(l.Time)
			}
			s := in.back.Seconds()
			in.ReplacedAfterSeconds = &s
		}
		in.AttemptSeconds = in.ran.Seconds()
		in.TimeLostSeconds = (in.ran + in.back).Seconds()
		out = append(out, in)
	}
	return out
}

// nextAttempt is when the step's first attempt after attempt n started.
func nextAttempt(st *state.Step, n int) (time.Time, bool) {
	if st == nil {
		return time.Time{}, false
	}
	var best *state.Attempt
	for i := range st.Attempts {
		if a := &st.Attempts[i]; a.N > n && (best == nil || a.N < best.N) {
			best = a
		}
	}
	if best == nil {
		return time.Time{}, false
	}
	return best.Start, true
}

// timeLost is the time all of a summary's host losses cost.
func timeLost(ins []Interruption) time.Duration {
	var d time.Duration
	for _, in := range ins {
		d += in.ran + in.back
	}
	return d
}

// lossHeadline counts the host losses and the time they cost.
func lossHeadline(ins []Interruption) string {
	word := "host losses"
	if len(ins) == 1 {
		word = "host loss"
	}
	return fmt.Sprintf("%d %s, up to %s lost", len(ins), word, duration.Format(timeLost(ins)))
}

// where names the machine lost: the host, its address and zone.
func (in Interruption) where() string {
	s := in.Host
	var extra []string
	if in.Address != "" && in.Address != in.Host {
		extra = append(extra, in.Address)
	}
	if in.Zone != "" {
		extra = append(extra, in.Zone)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

// lost says the time the loss cost and how it adds up.
func (in Interruption) lost() string {
	if in.ReplacedAfterSeconds == nil {
		return fmt.Sprintf("%s of work lost (the attempt had run that long)", duration.Format(in.ran))
	}
	return fmt.Sprintf("up to %s lost (the attempt had run %s; it ran again %s later)",
		duration.Format(in.ran+in.back), duration.Format(in.ran), duration.Format(in.back))
}

// outcome says what the run did about the loss.
func (in Interruption) outcome() string {
	switch {
	case in.Failed != "":
		return in.Failed // the engine's error: "…; not replaced: …"
	case len(in.Rerun) > 0:
		return "ran again: " + strings.Join(in.Rerun, ", ")
	}
	return "replaced"
}

// lossLines are a host loss in plain text: a line saying what and when,
// then why and what the run did, indented.
func lossLines(in Interruption) []string {
	return []string{
		fmt.Sprintf("%s (attempt %d) lost host %s at %s: %s", in.Step, in.Attempt, in.where(),
			in.Time.UTC().Format("2006-01-02 15:04:05 UTC"), in.lost()),
		"  why: " + truncate(oneLine(in.Cause), 200),
		"  " + truncate(oneLine(in.outcome()), 200),
	}
}

// markdownLosses is the Markdown section on host losses: a table of them.
func markdownLosses(ins []Interruption) string {
	if len(ins) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n**Host losses:** %s.\n\n", lossHeadline(ins))
	b.WriteString("| Step | Host | When | Why | Time lost | What ran again |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, in := range ins {
		fmt.Fprintf(&b, "| `%s` (attempt %d) | %s | %s | %s | %s | %s |\n", mdCode(in.Step), in.Attempt, mdEscape(in.where()),
			in.Time.UTC().Format("2006-01-02 15:04:05 UTC"), mdEscape(truncate(oneLine(in.Cause), 200)), mdEscape(in.lost()),
			mdEscape(truncate(oneLine(in.outcome()), 200)))
	}
	return b.String()
}
