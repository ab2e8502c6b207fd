package console

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/state"
)

// TestLiveMessageAboveView: gpipe's own message while the view is up (the
// "stopping steps" of a Ctrl-C) goes through Above, lands above the view,
// and leaves no stale view lines behind, during the run or after Close.
// Written straight to the terminal, the same message leaves the view's top
// lines on screen: the second half shows what Above prevents.
func TestLiveMessageAboveView(t *testing.T) {
	const msg = "\ngpipe: interrupt: stopping steps and running cleanup; repeat to stop at once\n"
	run := func(direct bool) string {
		scr := &screen{width: 80}
		now := sec(10)
		l := NewLive(scr, LiveOptions{Width: func() int { return 80 }, Interval: -1, Now: func() time.Time { return now },
			Steps: []string{"a", "b"}})
		for _, id := range []string{"a", "b"} {
			l.Event(engine.Event{Kind: engine.StepStarted, Time: sec(0), Step: id, Attempt: 1})
		}
		l.Draw()
		if direct {
			fmt.Fprint(scr, msg)
		} else {
			fmt.Fprint(l.Above(), msg)
		}
		l.Draw()
		for _, id := range []string{"a", "b"} {
			l.Event(engine.Event{Kind: engine.StepFinished, Time: sec(11), Step: id, Status: state.StepCancelled, Duration: 11 * time.Second})
			l.Draw()
		}
		l.Event(engine.Event{Kind: engine.RunFinished, Time: sec(12), RunStatus: state.RunInterrupted})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return scr.String()
	}
	got := run(false)
	if strings.Contains(got, "gpipe 2 running") || strings.Count(got, "gpipe: interrupt") != 1 {
		t.Errorf("screen after a message through Above:\n%s", got)
	}
	if lines := strings.Split(strings.TrimSpace(got), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "gpipe: interrupt") {
		t.Errorf("want the message, two cancelled steps and the run line, got:\n%s", got)
	}
	if direct := run(true); !strings.Contains(direct, "gpipe 2 running") {
		t.Errorf("the emulator no longer shows the stale lines a direct write leaves, so this test proves nothing:\n%s", direct)
	}
}

// TestLiveProgress: a step's carriage-return progress (tqdm) shows in the
// view as its last line, updated in place, without scrolling a line per
// redraw.
func TestLiveProgress(t *testing.T) {
	scr := &screen{width: 80}
	l := NewLive(scr, LiveOptions{Width: func() int { return 80 }, Interval: -1, Now: func() time.Time { return sec(5) }})
	l.Event(engine.Event{Kind: engine.StepStarted, Time: sec(0), Step: "train", Attempt: 1})
	for _, p := range []string{" 10%|#         | 1/10", " 20%|##        | 2/10"} {
		l.Event(engine.Event{Kind: engine.StepProgress, Time: sec(1), Step: "train", Line: p})
		l.Draw()
	}
	want := "gpipe 1 running · 5s\n⠙ train      5s   20%|##        | 2/10\n"
	if got := scr.String(); got != want {
		t.Errorf("screen:\n%q\nwant:\n%q", got, want)
	}
}
