package report

import (
	"sort"
	"strings"
	"time"

	"github.com/gpipe/gpipe/internal/duration"
	"github.com/gpipe/gpipe/internal/shell"
	"github.com/gpipe/gpipe/pipeline/state"
)

// Options tune a summary. The zero value works: no --state in the resume
// command, no cost, no key outputs, time.Now.
type Options struct {
	// StateURL is the store the run lives in (Store.String()), so the resume
	// command works from another machine.
	StateURL string
	// Resources tells which steps make billable resources; nil leaves out
	// the cost and the resources an abandoned run holds.
	Resources Resources
	// Pricer prices instance hours; nil leaves the cost in hours only.
	Pricer Pricer
	// KeyOutputs names the outputs worth a column in tables, in order (the
	// step types declare them); a step with none of them shows its first
	// few outputs instead.
	KeyOutputs []string
	// Now is the time a live run's running steps and instances count to.
	Now func() time.Time
	// GitHub marks a GitHub Actions job summary (Markdown): what to do next
	// speaks of "Re-run failed jobs", and a state on the runner's disk gets
	// no resume command, since it is gone with the runner.
	GitHub bool
	// LogTail returns a failing step's last log lines, which Markdown shows
	// under the step in a collapsible block; nil shows none.
	LogTail func(step string) []string
}

// maxOtherOutputs bounds how many outputs a step without key outputs shows.
const maxOtherOutputs = 3

// Summary is what every report format shows, in one place so Markdown, JSON
// and Table agree. Field names of the JSON form are part of gpipe's interface.
type Summary struct {
	RunID    string `json:"run_id"`
	Pipeline string `json:"pipeline"`
	SpecFile string `json:"spec_file"`
	// Status is the run's status, or "abandoned" when it says running but
	// its runner is gone (then Abandoned says more).
	Status    state.RunStatus `json:"status"`
	Abandoned *Abandoned      `json:"abandoned,omitempty"`
	Created   time.Time       `json:"created"`
	Updated   time.Time       `json:"updated"`
	// DurationSeconds is the time any step was running: attempts that
	// overlap count once, and the gap while nobody drove the run (between a
	// dead runner and a resume) not at all.
	DurationSeconds float64       `json:"duration_seconds"`
	StateURL        string        `json:"state_url,omitempty"`
	ResumeCommand   string        `json:"resume_command"`
	Steps           []StepSummary `json:"steps"`
	// Outputs holds every step output as outputs[step][key].
	Outputs map[string]map[string]string `json:"outputs"`
	Cost    *Cost                        `json:"cost"`
	// HostLosses lists every host lost under a running step, in order.
	HostLosses []Interruption `json:"host_losses"`

	duration time.Duration
}

// StepSummary is one row of the steps table.
type StepSummary struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Status   state.StepStatus `json:"status"`
	Needs    []string         `json:"needs"`
	Attempts int              `json:"attempts"`
	Start    *time.Time       `json:"start"`
	End      *time.Time       `json:"end"`
	// DurationSeconds adds up the step's attempts, not the pauses between them.
	DurationSeconds float64 `json:"duration_seconds"`
	// KeyOutputs are the outputs worth showing in a table, in display order.
	KeyOutputs []Output `json:"key_outputs"`
	// Error is the last attempt's error; Reason why a step was skipped or cancelled.
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`

	duration time.Duration
}

// Output is one named output value.
type Output struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Build computes the summary of a run. Summaries of live runs count running
// steps and instances up to opt.Now.
func Build(run *state.Run, opt Options) *Summary {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	t := now()
	keys := opt.KeyOutputs
	s := &Summary{
		RunID:         run.ID,
		Pipeline:      run.Pipeline,
		SpecFile:      run.SpecFile,
		Status:        run.Status,
		Created:       run.Created,
		Updated:       run.Updated,
		StateURL:      opt.StateURL,
		ResumeCommand: ResumeCommand(opt.StateURL, run.ID),
		Steps:         []StepSummary{},
		Outputs:       map[string]map[string]string{},
		Cost:          estimateCost(run, withNow(opt, t)),
		HostLosses:    interruptions(run),
		Abandoned:     Abandonment(run, opt.StateURL, t, opt.Resources),
	}
	// Steps count to now while a runner drives them; in an abandoned run
	// they stopped being watched when the runner's lease ran out.
	stepsNow := t
	if a := s.Abandoned; a != nil {
		s.Status = RunAbandoned
		if !a.Since.IsZero() && a.Since.Before(t) {
			stepsNow = a.Since
		}
	}
	live := run.Status == state.RunRunning || run.Status == state.RunPending
	var spans []span
	for _, id := range stepOrder(run) {
		st := run.Steps[id]
		row := StepSummary{
			ID:         id,
			Type:       st.Type,
			Status:     st.Status,
			Needs:      append([]string{}, st.Needs...),
			Attempts:   len(st.Attempts),
			KeyOutputs: keyOutputs(st.Outputs, keys),
			Reason:     st.Reason,
		}
		if n := len(st.Attempts); n > 0 {
			start := st.Attempts[0].Start
			row.Start = &start
			row.Error = st.Attempts[n-1].Error
			if end := st.Attempts[n-1].End; end != nil {
				e := *end
				row.End = &e
			}
			for i, at := range st.Attempts {
				end := at.End
				if end == nil && i == n-1 && live && st.Status == state.StepRunning {
					end = &stepsNow
				}
				// An attempt without an end that is not the last one was
				// cut off with its runner: how long it ran is unknown.
				if end != nil && end.After(at.Start) {
					row.duration += end.Sub(at.Start)
					spans = append(spans, span{at.Start, *end})
				}
			}
		}
		row.DurationSeconds = row.duration.Seconds()
		if len(st.Outputs) > 0 {
			out := make(map[string]string, len(st.Outputs))
			for k, v := range st.Outputs {
				out[k] = v
			}
			s.Outputs[id] = out
		}
		s.Steps = append(s.Steps, row)
	}
	s.duration = unionLength(spans)
	s.DurationSeconds = s.duration.Seconds()
	return s
}

// withNow fixes opt's clock at t, so every part of a summary counts to the
// same moment.
func withNow(opt Options, t time.Time) Options {
	opt.Now = func() time.Time { return t }
	return opt
}

// span is a stretch of time some attempt ran.
type span struct{ start, end time.Time }

// unionLength is the length of the union of spans: time when at least one
// ran, so parallel steps count once and idle gaps not at all.
func unionLength(spans []span) time.Duration {
	sort.Slice(spans, func(i, k int) bool { return spans[i].start.Before(spans[k].start) })
	var total time.Duration
	var cur span
	for i, sp := range spans {
		switch {
		case i == 0:
			cur = sp
		case sp.start.After(cur.end):
			total += cur.end.Sub(cur.start)
			cur = sp
		case sp.end.After(cur.end):
			cur.end = sp.end
		}
	}
	if len(spans) > 0 {
		total += cur.end.Sub(cur.start)
	}
	return total
}

// stepOrder lists a run's step ids in plan order, then any step the order
// misses (an older state document) sorted, so listings are stable.
func stepOrder(run *state.Run) []string {
	ids := make([]string, 0, len(run.Steps))
	seen := make(map[string]bool, len(run.Steps))
	for _, id := range run.Order {
		if _, ok := run.Steps[id]; ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	var rest []string
	for id := range run.Steps {
		if !seen[id] {
			rest = append(rest, id)
		}
	}
	sort.Strings(rest)
	return append(ids, rest...)
}

func keyOutputs(outputs map[string]string, keys []string) []Output {
	res := []Output{}
	for _, k := range keys {
		if v, ok := outputs[k]; ok {
			res = append(res, Output{k, v})
		}
	}
	if len(res) > 0 || len(outputs) == 0 {
		return res
	}
	names := make([]string, 0, len(outputs))
	for k := range outputs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if len(res) == maxOtherOutputs {
			break
		}
		res = append(res, Output{k, outputs[k]})
	}
	return res
}

// ResumeCommand is the command line that continues run id from any machine
// that can reach its store.
func ResumeCommand(stateURL, runID string) string {
	args := []string{"gpipe", "resume"}
	if stateURL != "" {
		args = append(args, "--state", shell.Quote(stateURL))
	}
	return strings.Join(append(args, shell.Quote(runID)), " ")
}

// formatDuration is duration.Format for tables and labels, where "-" says
// that nothing ran.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return duration.Format(d)
}

// truncate shortens s to n runes with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}
