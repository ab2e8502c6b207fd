package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/state"
)

// detachedRun is a run whose runner detached while training ran remotely.
func detachedRun() *state.Run {
	return newRun("gh-77-train", state.RunDetached,
		&state.Step{ID: "provision", Type: "provision-stack", Status: state.StepSucceeded,
			Attempts: []state.Attempt{attempt(1, 0, 4, 0, "")},
			Outputs:  map[string]string{"instance_id": "i-0aaaabbbbccccdddd", "stack_name": "gpipe-gh-77-train"}},
		&state.Step{ID: "train", Type: "train-unet", Status: state.StepRunning, Needs: []string{"provision"},
			Attempts: []state.Attempt{{N: 1, Start: at(4), Log: "train.1"}}},
		&state.Step{ID: "teardown", Type: "teardown", Status: state.StepPending, Needs: []string{"provision", "train"}},
	)
}

// TestMarkdownGitHubNextSteps: in a GitHub job summary, a detached run says
// what detached means and to use "Re-run failed jobs"; a run whose state was
// on the runner offers no resume command (none could reach the state) and
// says that re-running needs an S3 state.
func TestMarkdownGitHubNextSteps(t *testing.T) {
	tests := []struct {
		name, url string
		run       *state.Run
		github    bool
		want      []string
		not       []string
	}{
		{"detached-s3", "s3://b/p", detachedRun(), true,
			[]string{"**Detached:**", "**Re-run failed jobs**", "gpipe resume --state s3://b/p gh-77-train"}, nil},
		{"detached-local", "file://.gpipe", detachedRun(), true,
			[]string{"> **Detached**", "stack `gpipe-gh-77-train`", "**No resume:**", "S3"}, []string{"gpipe resume --state"}},
		{"failed-local", ".gpipe", fixtures()["failed"], true,
			[]string{"**No resume:**", "`.gpipe`"}, []string{"gpipe resume --state", "**Detached"}},
		{"succeeded-local", "file://.gpipe", fixtures()["succeeded"], true, nil, []string{"gpipe resume", "No resume", "Re-run"}},
		{"failed-s3", "s3://b/p", fixtures()["failed"], true,
			[]string{"**Re-run failed jobs**", "gpipe resume --state s3://b/p unet-brain-20260314T090000Z-c3d4"}, nil},
		// Outside GitHub nothing changes: the resume command, whatever the store.
		{"failed-local-cli", "file://.gpipe", fixtures()["failed"], false,
			[]string{"**Resume** this run from any machine", "gpipe resume --state file://.gpipe"}, []string{"Re-run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Markdown(&buf, tt.run, Options{Resources: testResources{}, KeyOutputs: fixtureKeys, StateURL: tt.url, GitHub: tt.github, Now: fixtureNow}); err != nil {
				t.Fatal(err)
			}
			md := buf.String()
			_, tail, _ := strings.Cut(md, "| Step |")
			for _, w := range tt.want {
				if !strings.Contains(tail, w) {
					t.Errorf("summary lacks %q:\n%s", w, tail)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(tail, n) {
					t.Errorf("summary has %q:\n%s", n, tail)
				}
			}
			if tt.github {
				golden(t, "github/"+tt.name+".md", buf.Bytes())
			}
		})
	}
}

// TestMarkdownLogTail: a failing step's last log lines appear under it in a
// collapsed block whose code fence no log line can close, and all the blocks
// together stay within maxLogTails.
func TestMarkdownLogTail(t *testing.T) {
	run := fixtures()["failed"]
	tail := func(step string) []string {
		if step != "train" {
			t.Errorf("LogTail asked for %q, which did not fail", step)
		}
		return []string{"09:10:00 epoch 3", "09:10:01 ```` not the end </details>", "09:10:02 RuntimeError: synStatus 26"}
	}
	var buf bytes.Buffer
	if err := Markdown(&buf, run, Options{Resources: testResources{}, KeyOutputs: fixtureKeys, GitHub: true, StateURL: "s3://b/p", LogTail: tail, Now: fixtureNow}); err != nil {
		t.Fatal(err)
	}
	golden(t, "github/log-tail.md", buf.Bytes())
	want := "- `train`: exit status 137: killed \\|OOM\\| &lt;rank 3&gt; second line\n\n" +
		"  <details><summary>Last 3 log lines</summary>\n\n  `````text\n  09:10:00 epoch 3\n"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("no log block under the failed step:\n%s", buf.String())
	}

	// Many failing steps with full tails: the blocks stop at the budget.
	var steps []*state.Step
	for i := range 200 {
		steps = append(steps, &state.Step{ID: "s" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("0", i/26),
			Type: "shell", Status: state.StepFailed, Attempts: []state.Attempt{attempt(1, 0, 1, 1, "exit status 1")}})
	}
	long := make([]string, 20)
	for i := range long {
		long[i] = strings.Repeat("y", 400)
	}
	buf.Reset()
	if err := Markdown(&buf, newRun("many", state.RunFailed, steps...), Options{Resources: testResources{}, KeyOutputs: fixtureKeys, GitHub: true, LogTail: func(string) []string { return long }}); err != nil {
		t.Fatal(err)
	}
	blocks := strings.Count(buf.String(), "<details>")
	t.Logf("200 failing steps with 20 lines of 400 bytes: %d log blocks, summary %d bytes", blocks, buf.Len())
	if size := blocks * 20 * 400; size > maxLogTails || blocks == 0 {
		t.Errorf("%d log blocks (%d bytes of lines), want some and at most %d bytes", blocks, size, maxLogTails)
	}
	if !strings.Contains(buf.String(), "left out to keep the summary small") {
		t.Error("steps past the budget do not say their lines were left out")
	}
}
