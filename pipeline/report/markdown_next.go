package report

import (
	"fmt"
	"strings"

	"github.com/gpipe/gpipe/pipeline/state"
)

// maxLogTails bounds the log lines all failing steps together add to a
// Markdown summary. A job summary must stay under GitHub's 1 MiB; past this,
// a failing step's block points to its group in the job log instead.
const maxLogTails = 64 << 10

// tailBudget hands out the room for failing steps' log tails.
type tailBudget struct{ left int }

// block renders lines as a collapsed <details> block inside a list item:
// indented two spaces, in a code fence longer than any run of backticks in
// the lines, so a log line cannot end the block.
func (t *tailBudget) block(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	fence := "```"
	for _, l := range lines {
		for run := longestRun(l, '`'); len(fence) <= run; {
			fence += "`"
		}
	}
	var b strings.Builder
	word := "lines"
	if len(lines) == 1 {
		word = "line"
	}
	fmt.Fprintf(&b, "\n  <details><summary>Last %d log %s</summary>\n\n  %stext\n", len(lines), word, fence)
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("  " + fence + "\n\n  </details>\n\n")
	if b.Len() > t.left {
		t.left = 0
		return "  _Its last log lines are left out to keep the summary small: see its group in the job log._\n"
	}
	t.left -= b.Len()
	return b.String()
}

func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// LocalState reports whether a state URL names a folder on this machine
// (file://DIR or a plain path) rather than a store that outlives it (S3).
func LocalState(url string) bool {
	return url != "" && !strings.HasPrefix(url, "s3://")
}

// nextSteps is the closing section of a Markdown summary: how to continue
// the run.
func nextSteps(s *Summary, opt Options) string {
	resume := fmt.Sprintf("```sh\n%s\n```\n", s.ResumeCommand)
	if !opt.GitHub {
		return "\n**Resume** this run from any machine that can reach its state:\n\n" + resume
	}
	detached := s.Status == state.RunDetached
	if LocalState(s.StateURL) {
		// A GitHub-hosted runner is deleted after the job, and a self-hosted
		// one's checkout cleans the workspace: no command can reach the state.
		var b strings.Builder
		switch {
		case detached && !anyRunning(s):
			b.WriteString("\n**Detached:** gpipe stopped driving this run before the job's time limit (`detach-after`); " +
				"its local steps were stopped and none runs remotely.\n")
		case detached:
			b.WriteString("\n> [!WARNING]\n> **Detached** (gpipe stopped driving the run before the job's time limit, " +
				"`detach-after`, leaving steps on remote instances running), but the run's state was on the runner, " +
				"so nothing can reattach to those steps: their instances keep running, and costing, until deleted")
			if stacks := stackNames(s, opt.Resources); len(stacks) > 0 {
				fmt.Fprintf(&b, " (CloudFormation stack %s)", strings.Join(stacks, ", "))
			}
			b.WriteString(".\n")
		}
		if s.Status == state.RunSucceeded && !detached {
			return b.String()
		}
		fmt.Fprintf(&b, "\n**No resume:** this run's state (`%s`) was on the runner's disk and is gone with the runner, "+
			"so neither **Re-run failed jobs** nor `gpipe resume` can continue it; a re-run starts over. "+
			"To make runs resumable, keep their state in S3 (the action's `state: s3://BUCKET/PREFIX` input, "+
			"`GPIPE_STATE`, or the spec's `state:`).\n", mdCode(s.StateURL))
		return b.String()
	}
	if detached {
		return "\n**Detached:** gpipe stopped driving this run before the job's time limit (`detach-after`): steps on " +
			"remote instances keep running, local steps were stopped and cleanup did not run. Use **Re-run failed jobs** " +
			"to reattach and finish it (the re-run resumes this run when it passes the same run id, as the action's " +
			"default `run-id` does), or resume it from any machine that can reach its state:\n\n" + resume
	}
	if s.Status == state.RunSucceeded {
		return "\n**Resume** this run from any machine that can reach its state:\n\n" + resume
	}
	return "\n**Resume** with **Re-run failed jobs** (the re-run resumes this run when it passes the same run id, " +
		"as the action's default `run-id` does), or from any machine that can reach its state:\n\n" + resume
}

func anyRunning(s *Summary) bool {
	for _, st := range s.Steps {
		if st.Status == state.StepRunning {
			return true
		}
	}
	return false
}

// stackNames lists the resources a run's steps name, as code spans.
func stackNames(s *Summary, res Resources) []string {
	if res == nil {
		return nil
	}
	var names []string
	for _, st := range s.Steps {
		if v := res.Name(s.Outputs[st.ID]); v != "" {
			names = append(names, "`"+mdCode(v)+"`")
		}
	}
	return names
}
