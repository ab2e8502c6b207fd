package console

import (
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
)

// DefaultProgress is how often a step whose output is buffered gets a
// progress line in a GitHub Actions log.
const DefaultProgress = time.Minute

// progressCheck is how often the ticker looks for steps that are due a
// progress line.
const progressCheck = 5 * time.Second

// maxProgressText bounds the last output line quoted in a progress line; the
// whole line is in the step's group when it ends.
const maxProgressText = 160

// tailLines is how many of its last log lines a step keeps for the job
// summary, and maxTailLine the bytes kept of each.
const (
	tailLines   = 20
	maxTailLine = 400
)

// progressState is what a progress line says about a step.
type progressState struct {
	start  time.Time // its first attempt in this run of gpipe started
	last   string    // its last output line, without colours
	lastAt time.Time
	mark   time.Time // its last progress line, or its start
}

func (p *progressState) output(at time.Time, line string) {
	p.last, p.lastAt = line, at
}

// keepTail remembers text as the step's newest log line, keeping the last
// tailLines.
func (s *ghStep) keepTail(text string) {
	text = sanitize(text, false)
	if len(text) > maxTailLine {
		cut := maxTailLine
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	if len(s.tail) == tailLines {
		copy(s.tail, s.tail[1:])
		s.tail = s.tail[:tailLines-1]
	}
	s.tail = append(s.tail, text)
}

// LogTail returns the last lines (at most 20, each cut at 400 bytes, without
// colours) the log showed or buffered for step, with their times; nil for a
// step that never started. Step output reaches reporters masked (the engine
// masks secret params), so the lines are as safe to show as the log.
func (g *GitHub) LogTail(step string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.steps[step]
	if st == nil {
		return nil
	}
	return append([]string(nil), st.tail...)
}

// Progress writes a progress line for every running step whose output is
// buffered (it does not own the log) and that has had no progress line for
// an interval: how long it has run and its last output line. The ticker calls
// it; tests call it with a fake clock (GitHubOptions.Now).
func (g *GitHub) Progress() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	now := g.opt.Now()
	every := g.opt.Progress
	if every <= 0 {
		every = DefaultProgress
	}
	wrote := false
	for _, id := range g.started {
		st := g.steps[id]
		if id == g.owner || st == nil || st.start.IsZero() {
			continue
		}
		if st.mark.IsZero() {
			st.mark = st.start
		}
		if now.Sub(st.mark) < every {
			continue
		}
		st.mark = now
		line := fmt.Sprintf("%s [%s] running %s", now.Format("15:04:05"), id, compactDuration(now.Sub(st.start)))
		switch {
		case st.lastAt.IsZero():
			line += ", no output yet"
		case now.Sub(st.lastAt) >= every:
			line += fmt.Sprintf(", last line %s ago: %s", compactDuration(now.Sub(st.lastAt)), truncateRunes(st.last, maxProgressText))
		default:
			line += ", last line: " + truncateRunes(st.last, maxProgressText)
		}
		// Inside the owner's group when it is open: a group cannot be left
		// for a moment without reopening it as "(continued)" each minute.
		g.printf("%s\n", line)
		wrote = true
	}
	if wrote {
		g.flush()
	}
}

// compactDuration prints a long duration the way a person reads it in a log
// line: 45s, 5m10s, 1h02m.
func compactDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// ticker calls fn every interval until stopped.
type ticker struct {
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func startTicker(every time.Duration, fn func()) *ticker {
	t := &ticker{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(t.stopped)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-t.done:
				return
			case <-tk.C:
				fn()
			}
		}
	}()
	return t
}

// stop ends the ticker and waits for a call of fn in progress; nil is fine.
func (t *ticker) stop() {
	if t == nil {
		return
	}
	t.once.Do(func() { close(t.done) })
	<-t.stopped
}
