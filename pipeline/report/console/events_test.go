package console

import (
	"bytes"
	"errors"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"

	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/state"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testtool.Golden(t, filepath.Join("testdata", name), got, *update)
}

var t0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// sec is t0 plus s seconds.
func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// script is a run with parallel steps, a retry, a failure, a skip, a reuse,
// hostile output and a cleanup step, as the engine would report it.
func script() []engine.Event {
	return []engine.Event{
		{Kind: engine.StepReused, Time: sec(0), Step: "build", Status: state.StepSucceeded, Reason: "succeeded in previous run"},
		{Kind: engine.StepStarted, Time: sec(0), Step: "provision", Attempt: 1},
		{Kind: engine.StepOutput, Time: sec(1), Step: "provision", Line: "creating stack gpipe-a1b2"},
		{Kind: engine.StepOutput, Time: sec(290), Step: "provision", Line: "CREATE_COMPLETE"},
		{Kind: engine.StepFinished, Time: sec(300), Step: "provision", Attempt: 1, Status: state.StepSucceeded, Duration: 300 * time.Second},
		{Kind: engine.StepStarted, Time: sec(300), Step: "fetch-msd", Attempt: 1},
		{Kind: engine.StepStarted, Time: sec(300), Step: "lint", Attempt: 1},
		{Kind: engine.StepOutput, Time: sec(301), Step: "fetch-msd", Line: "downloading Task01_BrainTumour.tar"},
		{Kind: engine.StepOutput, Time: sec(302), Step: "lint", Line: "::set-output name=evil::1"},
		{Kind: engine.StepOutput, Time: sec(303), Step: "lint", Line: "progress 10%\rprogress 100%\x1b[2K\x1b[31merror\x1b[0m\ttab"},
		{Kind: engine.StepFinished, Time: sec(360), Step: "lint", Attempt: 1, Status: state.StepFailed, Duration: 60 * time.Second,
			Err: errors.New("exit status 2")},
		{Kind: engine.StepSkipped, Time: sec(360), Step: "report", Status: state.StepSkipped, Reason: "upstream lint failed"},
		{Kind: engine.StepRetry, Time: sec(420), Step: "fetch-msd", Attempt: 1, Err: errors.New("md5 mismatch"), Delay: 10 * time.Second},
		{Kind: engine.StepStarted, Time: sec(430), Step: "fetch-msd", Attempt: 2},
		{Kind: engine.StepOutput, Time: sec(431), Step: "fetch-msd", Line: "md5 ok"},
		{Kind: engine.StepFinished, Time: sec(540), Step: "fetch-msd", Attempt: 2, Status: state.StepSucceeded, Duration: 110 * time.Second},
		{Kind: engine.StepStarted, Time: sec(540), Step: "teardown", Attempt: 1},
		{Kind: engine.StepOutput, Time: sec(541), Step: "teardown", Line: "DELETE_COMPLETE"},
		{Kind: engine.StepFinished, Time: sec(600.4), Step: "teardown", Attempt: 1, Status: state.StepSucceeded, Duration: 60400 * time.Millisecond},
		{Kind: engine.RunFinished, Time: sec(600.5), RunStatus: state.RunFailed, Err: errors.New("pipeline failed: lint")},
	}
}

func TestPlain(t *testing.T) {
	var buf bytes.Buffer
	p := NewPlain(&buf)
	for _, ev := range script() {
		p.Event(ev)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	golden(t, "plain.txt", buf.Bytes())
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		in      string
		keepSGR bool
		want    string
	}{
		{"plain", false, "plain"},
		{"a\r\n", false, "a"},
		{"10%\r50%\r100%", false, "100%"},
		{"\x1b[31mred\x1b[0m", true, "\x1b[31mred\x1b[0m"},
		{"\x1b[31mred\x1b[0m", false, "red"},
		{"\x1b[2J\x1b[Hclear\x1b[1A", true, "clear"},
		{"title\x1b]0;evil\x07done", true, "titledone"},
		{"bell\x07\x00x", false, "bellx"},
		{"tab\there", false, "tab    here"},
		{"cut\x1b[3", true, "cut"},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in, tt.keepSGR); got != tt.want {
			t.Errorf("sanitize(%q, %v) = %q, want %q", tt.in, tt.keepSGR, got, tt.want)
		}
	}
}

func TestColorEnabled(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if !ColorEnabled(get) {
		t.Error("colour off without NO_COLOR")
	}
	env["NO_COLOR"] = "1"
	if ColorEnabled(get) {
		t.Error("colour on with NO_COLOR=1")
	}
}
