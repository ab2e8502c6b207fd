package gha

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
)

// Output is one entry of $GITHUB_OUTPUT.
type Output struct {
	Name  string
	Value string
}

// Names of the outputs every run writes.
const (
	OutputRunID   = "run-id"
	OutputStatus  = "status"
	OutputOutputs = "outputs"
)

// RunOutputs lists what a run puts in $GITHUB_OUTPUT:
//
//   - run-id and status (succeeded, failed, interrupted, running);
//   - outputs: every step output as compact JSON {"<step>": {"<key>": "<value>"}},
//     read in a workflow as fromJSON(steps.<id>.outputs.outputs).evaluate.mean_dice.
//     This is the one a composite action can pass on, since its outputs must
//     be declared in action.yml;
//   - one entry per step output named <step>__<key>, for workflows that run
//     gpipe directly: steps.<id>.outputs.evaluate__mean_dice. Output names allow
//     only [A-Za-z0-9_-], and step ids and keys commonly hold '-' and '_',
//     so a double underscore separates them; other characters become '_'. When
//     two entries would get the same name, the first in plan order wins; the
//     JSON always has both.
func RunOutputs(run *state.Run) ([]Output, error) {
	all := map[string]map[string]string{}
	outs := []Output{{OutputRunID, run.ID}, {OutputStatus, string(run.Status)}, {OutputOutputs, ""}}
	seen := map[string]bool{OutputRunID: true, OutputStatus: true, OutputOutputs: true}
	for _, st := range report.Build(run, report.Options{}).Steps {
		vals := run.Steps[st.ID].Outputs
		if len(vals) == 0 {
			continue
		}
		all[st.ID] = vals
		for _, k := range sortedKeys(vals) {
			name := OutputName(st.ID, k)
			if !seen[name] {
				seen[name] = true
				outs = append(outs, Output{name, vals[k]})
			}
		}
	}
	js, err := json.Marshal(all)
	if err != nil {
		return nil, fmt.Errorf("encode outputs of run %s: %w", run.ID, err)
	}
	outs[2].Value = string(js)
	return outs, nil
}

// OutputName is the $GITHUB_OUTPUT name of output key of step.
func OutputName(step, key string) string {
	return safeName(step) + "__" + safeName(key)
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// WriteOutputs writes outs in $GITHUB_OUTPUT syntax: name=value, or for a
// value with a line break the heredoc form name<<DELIM ... DELIM with a random
// delimiter that the value does not contain. rnd supplies the randomness
// (nil: crypto/rand); tests pass a fixed reader.
func WriteOutputs(w io.Writer, outs []Output, rnd io.Reader) error {
	if rnd == nil {
		rnd = rand.Reader
	}
	var b strings.Builder
	for _, o := range outs {
		if !strings.ContainsAny(o.Value, "\r\n") {
			b.WriteString(o.Name + "=" + o.Value + "\n")
			continue
		}
		delim, err := delimiter(rnd, o.Value)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", o.Name, delim, o.Value, delim)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write step outputs: %w", err)
	}
	return nil
}

func delimiter(rnd io.Reader, value string) (string, error) {
	for range 10 {
		var p [12]byte
		if _, err := io.ReadFull(rnd, p[:]); err != nil {
			return "", fmt.Errorf("make output delimiter: %w", err)
		}
		d := "ghadelimiter_" + hex.EncodeToString(p[:])
		if !strings.Contains(value, d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("make output delimiter: every candidate occurs in the value")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MaxStepSummary is the most a step may write to $GITHUB_STEP_SUMMARY:
// GitHub's documentation (workflow commands, "Step isolation and limits")
// restricts each step's summary to 1 MiB, and a bigger one is not shown at all.
const MaxStepSummary = 1 << 20

// StepSummary appends the run's Markdown summary (report.Markdown) to the
// step summary file ($GITHUB_STEP_SUMMARY). What the step wrote there already
// counts against GitHub's limit; a summary that would pass it is cut at a line
// and ends with a note saying so and how to see it whole.
func StepSummary(path string, run *state.Run, opt report.Options) error {
	var b bytes.Buffer
	if err := report.Markdown(&b, run, opt); err != nil {
		return err
	}
	used := int64(0)
	if fi, err := os.Stat(path); err == nil {
		used = fi.Size()
	}
	md := truncateSummary(b.Bytes(), MaxStepSummary-used, run.ID)
	return AppendFile(path, func(w io.Writer) error {
		_, err := w.Write(md)
		return err
	})
}

// truncateSummary returns md when it fits in limit bytes, else its longest
// prefix of whole lines that fits with a note (closing a code block and a
// <details> block the cut left open, so the note is not shown as code or
// folded away).
func truncateSummary(md []byte, limit int64, runID string) []byte {
	if int64(len(md)) <= limit {
		return md
	}
	// The note's count of shown bytes has at most as many digits as len(md);
	// a fence is no longer than the longest line.
	closers := int64(longestLine(md)) + int64(len(detailsEnd)) + 2
	room := limit - int64(len(cutNote(len(md), len(md), runID))) - closers
	if room <= 0 {
		return nil // the step already used its allowance
	}
	kept := md[:bytes.LastIndexByte(md[:room], '\n')+1]
	out := append([]byte(nil), kept...)
	fence, details := "", 0
	for line := range bytes.Lines(kept) {
		l := strings.TrimSpace(string(line))
		switch {
		case fence != "":
			// CommonMark: a closing fence is the opening's character, at
			// least as long, with nothing after it.
			if strings.HasPrefix(l, fence) && strings.Trim(l, "`") == "" {
				fence = ""
			}
		case strings.HasPrefix(l, "```"):
			fence = l[:len(l)-len(strings.TrimLeft(l, "`"))]
		case strings.HasPrefix(l, "<details>"):
			details++
		case l == detailsEnd && details > 0:
			details--
		}
	}
	if fence != "" {
		out = append(out, fence+"\n"...)
	}
	if details > 0 {
		out = append(out, "\n"+detailsEnd+"\n"...)
	}
	return append(out, cutNote(len(kept), len(md), runID)...)
}

const detailsEnd = "</details>"

func longestLine(md []byte) int {
	n := 0
	for line := range bytes.Lines(md) {
		n = max(n, len(line))
	}
	return n
}

func cutNote(shown, total int, runID string) string {
	return fmt.Sprintf("\n_Summary cut to fit GitHub's 1 MiB limit (%d of %d bytes shown): `gpipe report %s` prints it whole._\n", shown, total, runID)
}

// Outputs appends RunOutputs to the output file ($GITHUB_OUTPUT).
func Outputs(path string, run *state.Run) error {
	outs, err := RunOutputs(run)
	if err != nil {
		return err
	}
	return AppendFile(path, func(w io.Writer) error { return WriteOutputs(w, outs, nil) })
}

// WriteRunFiles writes a finished (or stopped) run's outputs to
// $GITHUB_OUTPUT and its summary to $GITHUB_STEP_SUMMARY, each when the
// runner set it; getenv is os.Getenv.
func WriteRunFiles(getenv func(string) string, run *state.Run, opt report.Options) error {
	if path := getenv("GITHUB_OUTPUT"); path != "" {
		if err := Outputs(path, run); err != nil {
			return err
		}
	}
	if path := getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := StepSummary(path, run, opt); err != nil {
			return err
		}
	}
	return nil
}
