package engine

import (
	"sync"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// EventKind says what happened.
type EventKind int

const (
	// StepStarted: an attempt of Step began (Attempt is its number).
	StepStarted EventKind = iota + 1
	// StepOutput: the attempt wrote Line (without its newline).
	StepOutput
	// StepRetry: the attempt failed with Err and the step tries again after Delay.
	StepRetry
	// StepFinished: a started step ended with Status (succeeded, failed or
	// cancelled); Err says why it did not succeed, Reason why it was cancelled.
	// Status is running when the runner detached and the step lives on
	// remotely (Err is its *pipeline.DetachedError).
	StepFinished
	// StepSkipped: the step never started; Status is skipped or cancelled
	// (pending when the runner detached first) and Reason says why.
	StepSkipped
	// StepReused: the step succeeded in a previous run and is not run again
	// (Reason from the plan, outputs restored).
	StepReused
	// RunFinished: the run ended with RunStatus; Err is what Run returns.
	RunFinished
	// StepProgress: the attempt redrew its current line with a carriage
	// return (a progress bar such as tqdm's); Line is the latest text. It is
	// not a line of the log: views that show a step's last line show it,
	// line-by-line views ignore it. The log keeps every byte regardless.
	StepProgress
	// HostLost: Step's host was lost (Err, a *pipeline.HostLostError); Reason
	// says which steps run again, or why none do.
	HostLost
)

func (k EventKind) String() string {
	switch k {
	case StepStarted:
		return "started"
	case StepOutput:
		return "output"
	case StepRetry:
		return "retry"
	case StepFinished:
		return "finished"
	case StepSkipped:
		return "skipped"
	case StepReused:
		return "reused"
	case RunFinished:
		return "run-finished"
	case StepProgress:
		return "progress"
	case HostLost:
		return "host-lost"
	}
	return "unknown"
}

// Event is one thing that happened during a run.
type Event struct {
	Kind      EventKind
	Time      time.Time
	Step      string // expanded step id; "" for RunFinished
	Attempt   int    // attempt number (1-based, counting earlier runs of the run id)
	Status    state.StepStatus
	RunStatus state.RunStatus // RunFinished
	Line      string          // StepOutput, StepProgress
	Err       error           // StepRetry, StepFinished, RunFinished
	Reason    string          // StepSkipped, StepReused, StepFinished when cancelled
	Delay     time.Duration   // StepRetry
	Duration  time.Duration   // StepFinished: the last attempt's duration
}

// events delivers Events from one goroutine, in the order they were emitted,
// so a reporter needs no locking and a slow terminal does not hold the
// scheduler's lock (the buffer absorbs bursts; a full buffer applies
// back-pressure rather than dropping lines).
type events struct {
	fn   func(Event)
	ch   chan Event
	done chan struct{}
	mu   sync.Mutex // orders emit against close
	shut bool
}

func newEvents(fn func(Event)) *events {
	ev := &events{fn: fn}
	if fn == nil {
		return ev
	}
	ev.ch = make(chan Event, 4096)
	ev.done = make(chan struct{})
	go func() {
		defer close(ev.done)
		for e := range ev.ch {
			fn(e)
		}
	}()
	return ev
}

func (ev *events) emit(e Event) {
	if ev.fn == nil {
		return
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if !ev.shut {
		ev.ch <- e
	}
}

// close waits until every emitted event was delivered.
func (ev *events) close() {
	if ev.fn == nil {
		return
	}
	ev.mu.Lock()
	ev.shut = true
	close(ev.ch)
	ev.mu.Unlock()
	<-ev.done
}
