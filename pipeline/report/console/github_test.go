package console

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/report/gha"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

func TestGitHub(t *testing.T) {
	var buf bytes.Buffer
	pos := map[string]spec.Pos{
		"lint":      {File: "/repo/specs/unet-brain.yaml", Line: 41, Col: 5},
		"fetch-msd": {File: "/repo/specs/unet-brain.yaml", Line: 20, Col: 5},
	}
	g := NewGitHub(&buf, GitHubOptions{
		StepPos:  func(id string) (spec.Pos, bool) { p, ok := pos[id]; return p, ok },
		Paths:    gha.Paths{Workspace: "/repo", Dir: "/repo"},
		Secrets:  []string{"hunter2"},
		Progress: -1,
	})
	for _, ev := range script() {
		g.Event(ev)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	golden(t, "github.txt", buf.Bytes())
	if !strings.HasPrefix(out, "::add-mask::hunter2\n") {
		t.Error("secret mask is not the first line")
	}
	checkGroups(t, out)
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "set-output") && strings.HasPrefix(l, "::") {
			t.Errorf("step output became a workflow command: %q", l)
		}
	}
}

// checkGroups fails when groups nest, interleave or stay open, which GitHub
// renders wrongly.
func checkGroups(t *testing.T, out string) {
	t.Helper()
	open := ""
	for i, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "::group::"):
			if open != "" {
				t.Errorf("line %d: group %q opens inside %q", i+1, l, open)
			}
			open = l
		case l == "::endgroup::":
			if open == "" {
				t.Errorf("line %d: endgroup without a group", i+1)
			}
			open = ""
		case strings.HasPrefix(l, "::error") && open != "":
			t.Errorf("line %d: annotation inside group %q", i+1, open)
		}
	}
	if open != "" {
		t.Errorf("group %q never closed", open)
	}
}

// An interrupted run: Close writes what running steps buffered.
func TestGitHubCloseUnfinished(t *testing.T) {
	var buf bytes.Buffer
	g := NewGitHub(&buf, GitHubOptions{Progress: -1})
	for _, ev := range script()[1:9] { // provision done; fetch-msd owns, lint buffers
		g.Event(ev)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	checkGroups(t, out)
	if !strings.Contains(out, "::group::lint (unfinished)\n09:05:00 started\n09:05:02 ::set-output name=evil::1\n::endgroup::\n") {
		t.Errorf("unfinished step's buffered lines missing:\n%s", out)
	}
	_ = engine.StepOutput
}

// TestGitHubProgress: while one step owns the log, every other running step
// gets a line a minute (by the fake clock) with its running time and last
// output, so a five-hour parallel step is not silent until it ends.
func TestGitHubProgress(t *testing.T) {
	var buf bytes.Buffer
	now := t0
	g := NewGitHub(&buf, GitHubOptions{Progress: -1, Now: func() time.Time { return now }})
	// at advances the fake clock to s seconds and lets the ticker look.
	at := func(s float64) { now = sec(s); g.Progress() }
	out := func(s float64, step, line string) {
		g.Event(engine.Event{Kind: engine.StepOutput, Time: sec(s), Step: step, Line: line})
	}
	for _, id := range []string{"train-fold-0", "train-fold-1", "train-fold-2"} {
		g.Event(engine.Event{Kind: engine.StepStarted, Time: sec(0), Step: id, Attempt: 1})
	}
	out(1, "train-fold-0", "epoch 1 loss 0.91")
	out(2, "train-fold-1", "epoch 1 loss 0.93")
	at(30) // nobody is due yet
	out(40, "train-fold-1", "\x1b[32mepoch 2 loss 0.80\x1b[0m")
	at(60)
	at(65) // not again within the minute
	out(100, "train-fold-0", "epoch 2 loss 0.78")
	at(121)
	at(3725) // fold 2 has been silent for an hour
	g.Event(engine.Event{Kind: engine.StepFinished, Time: sec(3730), Step: "train-fold-0", Attempt: 1,
		Status: state.StepSucceeded, Duration: 3730 * time.Second})
	// fold 1 owns the log now and streams; only fold 2 gets progress lines.
	out(3740, "train-fold-1", "epoch 90 loss 0.20 "+strings.Repeat("x", 300))
	out(3745, "train-fold-2", "epoch 1 loss 0.95 "+strings.Repeat("y", 300))
	at(3790)
	g.Event(engine.Event{Kind: engine.StepFinished, Time: sec(3800), Step: "train-fold-1", Attempt: 1,
		Status: state.StepFailed, Duration: 3800 * time.Second, Err: errors.New("exit status 1")})
	g.Event(engine.Event{Kind: engine.StepFinished, Time: sec(3810), Step: "train-fold-2", Attempt: 1,
		Status: state.StepSucceeded, Duration: 3810 * time.Second})
	at(3900) // nothing runs
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	golden(t, "github-progress.txt", buf.Bytes())
	checkGroups(t, buf.String())
	if n := strings.Count(buf.String(), "[train-fold-0] running"); n != 0 {
		t.Errorf("the step owning the log got %d progress lines", n)
	}
	if n := strings.Count(buf.String(), "[train-fold-2] running"); n != 4 {
		t.Errorf("train-fold-2 got %d progress lines, want 4 (at 60s, 121s, 3725s, 3790s)", n)
	}
}

// TestGitHubProgressTicker: without a fake clock, the ticker writes progress
// lines on its own, and Close stops it.
func TestGitHubProgressTicker(t *testing.T) {
	w := &lockedBuffer{}
	g := NewGitHub(w, GitHubOptions{Progress: 20 * time.Millisecond})
	start := time.Now()
	for _, id := range []string{"a", "b"} {
		g.Event(engine.Event{Kind: engine.StepStarted, Time: start, Step: id, Attempt: 1})
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.String(), "[b] running") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line for b after 10s:\n%s", w.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	n := len(w.String())
	time.Sleep(60 * time.Millisecond)
	if len(w.String()) != n {
		t.Error("progress lines written after Close")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestGitHubLogTail: the last 20 lines of a step, colours stripped and long
// lines cut, whether it owned the log or was buffered.
func TestGitHubLogTail(t *testing.T) {
	var buf bytes.Buffer
	g := NewGitHub(&buf, GitHubOptions{Progress: -1})
	g.Event(engine.Event{Kind: engine.StepStarted, Time: sec(0), Step: "owner", Attempt: 1})
	g.Event(engine.Event{Kind: engine.StepStarted, Time: sec(0), Step: "buffered", Attempt: 1})
	for i := range 30 {
		g.Event(engine.Event{Kind: engine.StepOutput, Time: sec(float64(i)), Step: "buffered", Line: fmt.Sprintf("\x1b[31mline %d\x1b[0m", i)})
	}
	g.Event(engine.Event{Kind: engine.StepOutput, Time: sec(40), Step: "owner", Line: "é" + strings.Repeat("z", 1000)})
	tail := g.LogTail("buffered")
	if len(tail) != 20 || tail[0] != "09:00:10 line 10" || tail[19] != "09:00:29 line 29" {
		t.Errorf("tail of buffered = %q", tail)
	}
	own := g.LogTail("owner")
	if len(own) != 2 || own[0] != "09:00:00 started" || len(own[1]) > 400+len("…") || !strings.HasSuffix(own[1], "z…") {
		t.Errorf("tail of owner = %q", own)
	}
	if g.LogTail("never") != nil {
		t.Error("a step that never ran has a tail")
	}
}
