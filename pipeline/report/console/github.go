package console

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/report/gha"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// GitHubOptions configure a GitHub reporter.
type GitHubOptions struct {
	// StepPos says where a step is defined in the spec, so a failing step is
	// annotated at its place (plan.Step(id).Spec.Pos); nil: no file position.
	StepPos func(step string) (spec.Pos, bool)
	// Paths turn spec file names into repository paths for annotations.
	Paths gha.Paths
	// Secrets are masked with ::add-mask:: before anything else is written
	// (gha.SecretValues).
	Secrets []string
	// Progress is how often a step whose output is buffered gets a progress
	// line; 0 means DefaultProgress. Negative: no ticker, progress lines are
	// written only when Progress is called (tests).
	Progress time.Duration
	// Now is the clock progress lines count to; nil: time.Now.
	Now func() time.Time
}

// GitHub writes a run's log for GitHub Actions (GITHUB_ACTIONS=true): each
// step's output in a ::group::, an ::error:: annotation at the spec position
// of each failing step, and secrets masked first.
//
// Groups cannot nest or interleave, but steps run in parallel. Buffering every
// step until it ends would hide a five-hour training step's log until the
// end, and per-line prefixes without groups make a long log unreadable. So one
// step at a time owns the log: its group is open and its lines stream live;
// the others buffer. When another step finishes, the owner's group is closed,
// the finished step's whole group is written, and the owner's group reopens
// ("train (continued)"). When the owner finishes, the longest-running
// unfinished step becomes the owner and its buffered lines are written.
//
// A buffered step is not silent for hours, though: every Progress interval
// (a minute) it gets one line saying how long it has run and what it printed
// last ("[train-fold-1] running 1h02m, last line: epoch 12 ..."), written
// where the log is at (inside the owner's group when it is open). Progress
// lines rather than every buffered line with a prefix: five parallel folds
// interleaved line by line would bury the owner's log and repeat every line
// (it is written again in the step's own group when it ends), while one line a
// minute per step shows that each is alive and how far it got, and folds away
// with the owner's group once the run is over.
//
// Every line is written with a time in front: that keeps a step's output from
// being read as a workflow command (a line starting with "::"), and buffered
// lines keep the time they were produced.
//
// The last lines of each step are kept (LogTail) for the job summary of a
// failing step.
type GitHub struct {
	mu      sync.Mutex // Event, Close and the progress ticker
	w       *bufio.Writer
	opt     GitHubOptions
	steps   map[string]*ghStep
	started []string // unfinished steps in the order they started
	owner   string   // the step that owns the log, "" for none
	title   string   // the owner's group title, written before its next line
	inGroup bool     // a ::group:: is open
	first   time.Time
	err     error
	closed  bool
	ticker  *ticker
}

type ghStep struct {
	lines []string // buffered lines while another step owns the log
	progressState
	tail []string // the last tailLines lines, for the job summary
}

// NewGitHub returns a GitHub reporter writing to w (stdout), writes the
// secret masks at once and starts the progress ticker; Close stops it.
func NewGitHub(w io.Writer, opt GitHubOptions) *GitHub {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Progress == 0 {
		opt.Progress = DefaultProgress
	}
	g := &GitHub{w: bufio.NewWriter(w), opt: opt, steps: map[string]*ghStep{}}
	g.check(gha.Masks(g.w, opt.Secrets))
	g.flush()
	if opt.Progress > 0 {
		// Checking often and writing per step when its interval has passed
		// keeps each step's lines a Progress apart, give or take a check.
		g.ticker = startTicker(min(opt.Progress, progressCheck), g.Progress)
	}
	return g
}

// Event writes or buffers ev.
func (g *GitHub) Event(ev engine.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	if g.first.IsZero() {
		g.first = ev.Time
	}
	ts := ev.Time.Format("15:04:05")
	switch ev.Kind {
	case engine.StepStarted:
		st, ok := g.steps[ev.Step]
		if !ok {
			st = &ghStep{}
			g.steps[ev.Step] = st
		}
		if !ok || !g.isStarted(ev.Step) {
			g.started = append(g.started, ev.Step)
		}
		if ev.Attempt <= 1 || st.start.IsZero() {
			st.start = ev.Time
		}
		if g.owner == "" {
			g.open(ev.Step, "")
		}
		g.line(ev.Step, ts+" "+describe(ev))
	case engine.StepOutput:
		g.line(ev.Step, ts+" "+sanitize(ev.Line, true))
		if st := g.steps[ev.Step]; st != nil {
			st.output(ev.Time, sanitize(ev.Line, false))
		}
	case engine.StepRetry, engine.HostLost:
		g.line(ev.Step, ts+" "+describe(ev))
	case engine.StepFinished:
		g.finish(ev, ts)
	case engine.StepSkipped, engine.StepReused:
		// No log of their own: a line between groups says what happened.
		g.aside(func() { g.printf("%s [%s] %s\n", ts, ev.Step, describe(ev)) })
	case engine.RunFinished:
		g.closeOwner()
		g.printf("%s %s\n", ts, runLine(ev, ev.Time.Sub(g.first)))
	}
	g.flush()
}

// line writes a step's line live when the step owns the log, else buffers it.
func (g *GitHub) line(step, text string) {
	if st := g.steps[step]; st != nil {
		st.keepTail(text)
	}
	if step == g.owner {
		g.ownerLine(text)
		return
	}
	st := g.steps[step]
	if st == nil {
		// Output of a step that never started (not expected): keep it visible.
		g.aside(func() { g.printf("[%s] %s\n", step, text) })
		return
	}
	st.lines = append(st.lines, text)
}

func (g *GitHub) finish(ev engine.Event, ts string) {
	st := g.steps[ev.Step]
	write := func() {
		g.printf("::group::%s\n", ev.Step)
		if st != nil {
			for _, l := range st.lines {
				g.printf("%s\n", l)
			}
		}
		g.printf("::endgroup::\n")
		g.result(ev, ts)
	}
	g.forget(ev.Step)
	if ev.Step == g.owner {
		g.closeOwner()
		g.result(ev, ts)
		if len(g.started) > 0 {
			next := g.started[0]
			g.open(next, "")
		}
		return
	}
	g.aside(write)
}

// result writes a finished step's closing line and, when it failed, an
// annotation at its place in the spec.
func (g *GitHub) result(ev engine.Event, ts string) {
	g.printf("%s [%s] %s\n", ts, ev.Step, describe(ev))
	if ev.Status != state.StepFailed {
		return
	}
	a := gha.Annotation{
		Level: "error",
		Title: "gpipe: step " + ev.Step + " failed",
		Msg:   fmt.Sprintf("step %s %s", ev.Step, describe(ev)),
	}
	if g.opt.StepPos != nil {
		if pos, ok := g.opt.StepPos(ev.Step); ok {
			a.File, a.Line, a.Col = g.opt.Paths.Rel(pos.File), pos.Line, pos.Col
		}
	}
	g.check(gha.WriteAnnotation(g.w, a))
}

// aside writes something outside any group: the owner's group is closed
// around it and reopened after.
func (g *GitHub) aside(fn func()) {
	owner := g.owner
	g.closeOwner()
	fn()
	if owner != "" {
		g.open(owner, " (continued)")
	}
}

// open makes step the owner and writes its buffered lines. Its group opens
// with its first line, so a reopened group that gets no line before the next
// interruption does not show up empty.
func (g *GitHub) open(step, suffix string) {
	g.owner, g.title, g.inGroup = step, step+suffix, false
	if st := g.steps[step]; st != nil {
		for _, l := range st.lines {
			g.ownerLine(l)
		}
		st.lines = nil
	}
}

func (g *GitHub) ownerLine(text string) {
	if !g.inGroup {
		g.printf("::group::%s\n", g.title)
		g.inGroup = true
	}
	g.printf("%s\n", text)
}

func (g *GitHub) closeOwner() {
	if g.inGroup {
		g.printf("::endgroup::\n")
	}
	g.owner, g.inGroup = "", false
}

func (g *GitHub) isStarted(step string) bool {
	for _, s := range g.started {
		if s == step {
			return true
		}
	}
	return false
}

func (g *GitHub) forget(step string) {
	for i, s := range g.started {
		if s == step {
			g.started = append(g.started[:i], g.started[i+1:]...)
			return
		}
	}
}

// Close stops the progress ticker, ends the open group and writes what
// unfinished steps buffered (an interrupted run), so no output is lost.
func (g *GitHub) Close() error {
	g.ticker.stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return g.err
	}
	g.closed = true
	g.closeOwner()
	for _, id := range g.started {
		if st := g.steps[id]; st != nil && len(st.lines) > 0 {
			g.printf("::group::%s (unfinished)\n", id)
			for _, l := range st.lines {
				g.printf("%s\n", l)
			}
			g.printf("::endgroup::\n")
			st.lines = nil
		}
	}
	g.started = nil
	g.flush()
	return g.err
}

func (g *GitHub) printf(format string, args ...any) {
	_, err := fmt.Fprintf(g.w, format, args...)
	g.check(err)
}

func (g *GitHub) flush() { g.check(g.w.Flush()) }

func (g *GitHub) check(err error) {
	if err != nil && g.err == nil {
		g.err = fmt.Errorf("write GitHub Actions log: %w", err)
	}
}
