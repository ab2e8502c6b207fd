package console

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/gpipe/gpipe/pipeline/engine"
)

// Plain writes one timestamped line per event, `15:04:05 [step] text`, for
// output that is not a terminal. Lines of parallel steps interleave as they
// come; the step id in front of each keeps them apart.
type Plain struct {
	w     *bufio.Writer
	err   error
	first time.Time
}

// NewPlain returns a Plain reporter writing to w. Timestamps are the events'
// own times, in their location (the CLI passes local times).
func NewPlain(w io.Writer) *Plain {
	return &Plain{w: bufio.NewWriter(w)}
}

// Event writes ev. Output is flushed per event so a `tail -f` of a log file
// keeps up; the buffer only saves syscalls within one event.
func (p *Plain) Event(ev engine.Event) {
	if p.first.IsZero() {
		p.first = ev.Time
	}
	ts := ev.Time.Format("15:04:05")
	switch ev.Kind {
	case engine.StepOutput:
		fmt.Fprintf(p.w, "%s [%s] %s\n", ts, ev.Step, sanitize(ev.Line, false))
	case engine.RunFinished:
		fmt.Fprintf(p.w, "%s %s\n", ts, runLine(ev, ev.Time.Sub(p.first)))
	default:
		if text := describe(ev); text != "" {
			fmt.Fprintf(p.w, "%s [%s] %s\n", ts, ev.Step, text)
		}
	}
	if err := p.w.Flush(); err != nil && p.err == nil {
		p.err = fmt.Errorf("write run log: %w", err)
	}
}

// Close reports the first write error, if any.
func (p *Plain) Close() error {
	if err := p.w.Flush(); err != nil && p.err == nil {
		p.err = fmt.Errorf("write run log: %w", err)
	}
	return p.err
}
