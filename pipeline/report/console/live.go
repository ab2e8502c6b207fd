package console

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gpipe/gpipe/internal/duration"
	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/state"
)

// LiveOptions configure a Live reporter. The zero value works.
type LiveOptions struct {
	// Color turns on ANSI colours (see ColorEnabled).
	Color bool
	// Width returns the terminal's columns (x/term.GetSize); view lines are cut
	// to fit so they never wrap, which would break redrawing in place. nil: 80.
	Width func() int
	// Interval between redraws; 0 means 200ms. Negative: no ticker, the view
	// is drawn only when Draw is called (tests).
	Interval time.Duration
	// Now is the clock running durations count to; nil: time.Now.
	Now func() time.Time
	// Steps lists every step id of the plan, so the view can count what waits.
	Steps []string
	// MaxRows caps the running steps listed; 0 means 10.
	MaxRows int
}

// maxPending is how many output lines Live holds between redraws before it
// writes them at once, so a chatty step cannot grow memory without bound.
const maxPending = 256

// Live shows a compact live view on a terminal: one header line with counts
// and elapsed time, then one line per running step (status, duration, attempt
// and its last output line). Step output and finished steps scroll above the
// view with the step id in front. The view is redrawn in place at a modest
// rate, not per event, so a chatty step costs one write per interval.
type Live struct {
	mu       sync.Mutex
	w        io.Writer
	opt      LiveOptions
	steps    map[string]*liveStep
	running  []string // running step ids, in the order they started
	colors   map[string]string
	pending  []string // lines to print above the view at the next draw
	height   int      // lines of the view now on screen
	lastKey  string   // the view drawn last, to skip identical redraws
	frame    int
	first    time.Time
	runDone  bool
	closed   bool
	err      error
	stop     chan struct{} // closed by Close to end the ticker
	stopped  chan struct{} // closed by the ticker when it ended
	stopOnce sync.Once
	above    []byte // an unfinished line written through Above
}

type liveStep struct {
	status  state.StepStatus
	attempt int
	start   time.Time
	last    string // last output line, sanitized
}

// NewLive returns a Live reporter drawing to w (a terminal) and starts its
// redraw ticker; Close stops it.
func NewLive(w io.Writer, opt LiveOptions) *Live {
	if opt.Width == nil {
		opt.Width = func() int { return 80 }
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxRows <= 0 {
		opt.MaxRows = 10
	}
	if opt.Interval == 0 {
		opt.Interval = 200 * time.Millisecond
	}
	l := &Live{w: w, opt: opt, steps: map[string]*liveStep{}, colors: map[string]string{}}
	if opt.Interval > 0 {
		l.stop = make(chan struct{})
		l.stopped = make(chan struct{})
		go l.tick(opt.Interval, l.stop, l.stopped)
	}
	return l
}

func (l *Live) tick(d time.Duration, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			l.Draw()
		}
	}
}

// Event records ev; what it prints appears at the next redraw.
func (l *Live) Event(ev engine.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.first.IsZero() {
		l.first = ev.Time
	}
	if ev.Kind == engine.RunFinished {
		l.runDone = true
		c, sym := runSymbol(ev.RunStatus)
		l.pending = append(l.pending, l.paint(c, sym)+" "+runLine(ev, ev.Time.Sub(l.first)))
		return
	}
	st := l.steps[ev.Step]
	if st == nil {
		st = &liveStep{status: state.StepPending}
		l.steps[ev.Step] = st
	}
	switch ev.Kind {
	case engine.StepStarted:
		st.status, st.attempt, st.start, st.last = state.StepRunning, ev.Attempt, ev.Time, ""
		l.setRunning(ev.Step, true)
	case engine.StepOutput:
		line := sanitize(ev.Line, l.opt.Color)
		st.last = sanitize(ev.Line, false)
		l.pending = append(l.pending, l.stepColor(ev.Step)+"["+ev.Step+"]"+l.reset()+" "+line)
	case engine.StepProgress:
		st.last = sanitize(ev.Line, false) // shown in the view, not scrolled
	case engine.StepRetry, engine.HostLost:
		st.last = ""
		l.pending = append(l.pending, l.paint(yellow, "↻")+" "+ev.Step+" "+describe(ev))
	case engine.StepFinished, engine.StepSkipped, engine.StepReused:
		st.status = ev.Status
		if ev.Kind == engine.StepReused {
			st.status = state.StepSucceeded
		}
		l.setRunning(ev.Step, false)
		l.pending = append(l.pending, l.paint(stepSymbol(ev))+" "+ev.Step+" "+describe(ev))
	}
	if len(l.pending) >= maxPending {
		l.drawLocked(false)
	}
}

func (l *Live) setRunning(id string, on bool) {
	for i, r := range l.running {
		if r == id {
			l.running = append(l.running[:i], l.running[i+1:]...)
			break
		}
	}
	if on {
		l.running = append(l.running, id)
	}
}

// Draw prints pending lines and redraws the view now. The ticker calls it;
// callers need not.
func (l *Live) Draw() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.drawLocked(false)
	}
}

// Above returns a writer for gpipe's own messages (warnings, "stopping
// steps" on Ctrl-C) while the view is on screen: each line is printed above
// the view at once. Written straight to the terminal instead, a message
// would push the view down, and the next redraw, which moves the cursor up
// by the view's height, would leave the view's top lines behind as stale
// footer lines. After Close, it writes straight through.
func (l *Live) Above() io.Writer { return aboveWriter{l} }

type aboveWriter struct{ l *Live }

func (a aboveWriter) Write(p []byte) (int, error) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.w.Write(p)
	}
	l.above = append(l.above, p...)
	for {
		i := bytes.IndexByte(l.above, '\n')
		if i < 0 {
			break
		}
		// A blank line (messages start with one to get off a "^C" the
		// terminal echoed) is dropped: the redraw clears that echo.
		if line := sanitize(string(l.above[:i]), l.opt.Color); strings.TrimSpace(line) != "" {
			l.pending = append(l.pending, line)
		}
		l.above = l.above[i+1:]
	}
	if len(l.above) == 0 {
		l.above = nil
	}
	l.drawLocked(false)
	return len(p), nil
}

// Close stops redrawing, prints what is pending and removes the view, so the
// terminal keeps a clean log of the run.
func (l *Live) Close() error {
	if l.stop != nil {
		l.stopOnce.Do(func() { close(l.stop) })
		<-l.stopped
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		if len(l.above) > 0 {
			l.pending = append(l.pending, sanitize(string(l.above), l.opt.Color))
			l.above = nil
		}
		l.drawLocked(true)
		l.closed = true
	}
	return l.err
}

func (l *Live) drawLocked(final bool) {
	var view []string
	if !final && !l.runDone {
		view = l.view()
	}
	key := strings.Join(view, "\n")
	if len(l.pending) == 0 && key == l.lastKey && !final {
		return
	}
	var b bytes.Buffer
	if l.height > 0 {
		// Back to the view's first line, then clear to the end of the screen.
		fmt.Fprintf(&b, "\r\x1b[%dA\x1b[J", l.height)
	}
	for _, line := range l.pending {
		b.WriteString(line)
		b.WriteString(l.reset())
		b.WriteByte('\n')
	}
	l.pending = l.pending[:0]
	for _, line := range view {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	l.height, l.lastKey = len(view), key
	l.frame++
	if _, err := l.w.Write(b.Bytes()); err != nil && l.err == nil {
		l.err = fmt.Errorf("write live view: %w", err)
	}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// view renders the live lines, each cut to the terminal's width.
func (l *Live) view() []string {
	if len(l.steps) == 0 {
		return nil
	}
	now := l.opt.Now()
	counts := map[state.StepStatus]int{}
	for _, st := range l.steps {
		counts[st.status]++
	}
	parts := []string{fmt.Sprintf("%d running", counts[state.StepRunning])}
	for _, s := range []state.StepStatus{state.StepSucceeded, state.StepFailed, state.StepCancelled, state.StepSkipped} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if n := len(l.opt.Steps); n > 0 {
		waiting := n - len(l.steps) + counts[state.StepPending]
		parts = append(parts, fmt.Sprintf("%d waiting", max(waiting, 0)))
	}
	width := max(l.opt.Width()-1, 20)
	lines := []string{fit(l.paint(bold, "gpipe")+" "+strings.Join(parts, " · ")+
		l.paint(dim, " · "+duration.Format(now.Sub(l.first).Truncate(time.Second))), width)}

	idw := 0
	for _, id := range l.running {
		idw = max(idw, utf8.RuneCountInString(id))
	}
	spin := spinner[l.frame%len(spinner)]
	for i, id := range l.running {
		if i == l.opt.MaxRows {
			lines = append(lines, fmt.Sprintf("  … and %d more running", len(l.running)-i))
			break
		}
		st := l.steps[id]
		row := fmt.Sprintf("%s %s%-*s%s %7s", l.paint(blue, spin), l.stepColor(id), idw, id, l.reset(),
			duration.Format(now.Sub(st.start).Truncate(time.Second)))
		if st.attempt > 1 {
			row += fmt.Sprintf(" (attempt %d)", st.attempt)
		}
		if st.last != "" {
			row += "  " + l.paint(dim, st.last)
		}
		lines = append(lines, fit(row, width))
	}
	return lines
}

// fit cuts s to width visible columns, keeping escape sequences and closing
// any colour it cut.
func fit(s string, width int) string {
	if visibleWidth(s) <= width {
		return s
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			end, _ := escapeEnd(s, i)
			b.WriteString(s[i:end])
			i = end
			continue
		}
		if n == width-1 {
			b.WriteString("…")
			break
		}
		r, size := decodeRune(s[i:])
		b.WriteRune(r)
		i += size
		n++
	}
	if strings.Contains(s, "\x1b[") {
		b.WriteString("\x1b[0m")
	}
	return b.String()
}

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

// ANSI SGR codes.
const (
	bold   = "1"
	dim    = "2"
	red    = "31"
	green  = "32"
	yellow = "33"
	blue   = "34"
)

var stepPalette = []string{"36", "35", "34", "33", "32", "96", "95", "94"}

func (l *Live) paint(code, s string) string {
	if !l.opt.Color || code == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (l *Live) reset() string {
	if !l.opt.Color {
		return ""
	}
	return "\x1b[0m"
}

// stepColor gives each step a stable colour for its log prefix, in the
// order steps first appear.
func (l *Live) stepColor(id string) string {
	if !l.opt.Color {
		return ""
	}
	c, ok := l.colors[id]
	if !ok {
		c = "\x1b[" + stepPalette[len(l.colors)%len(stepPalette)] + "m"
		l.colors[id] = c
	}
	return c
}

// stepSymbol returns the colour and symbol of a step's final line.
func stepSymbol(ev engine.Event) (string, string) {
	switch {
	case ev.Kind == engine.StepReused:
		return dim, "="
	case ev.Status == state.StepSucceeded:
		return green, "✓"
	case ev.Status == state.StepFailed:
		return red, "✗"
	case ev.Status == state.StepCancelled:
		return yellow, "⊘"
	default:
		return dim, "–"
	}
}

func runSymbol(s state.RunStatus) (string, string) {
	switch s {
	case state.RunSucceeded:
		return green, "✓"
	case state.RunFailed:
		return red, "✗"
	default:
		return yellow, "⊘"
	}
}
