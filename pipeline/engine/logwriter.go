package engine

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

const (
	// flushEvery bounds how stale a log in the store may be while a step
	// runs, so `gpipe logs --follow` elsewhere sees progress.
	flushEvery = time.Second
	// flushSize makes a chatty step flush before the tick, bounding memory.
	flushSize = 256 << 10
	// tailSize is how much of an attempt's output retry.on patterns see.
	tailSize = 64 << 10
	// maxLine splits pathological lines (progress bars without newlines) so
	// an event never carries megabytes.
	maxLine = 16 << 10
)

// logWriter is one attempt's pipeline.StepRun.Log: it buffers output for the
// store (flushed at least every flushEvery and at the end), cuts it into lines
// for StepOutput events, and keeps the tail for retry.on.
type logWriter struct {
	ctx   context.Context // not cancelled by an interrupt: logs are saved regardless
	store state.Store
	runID string
	name  string
	line  func(string)
	// ready returns once the attempt is saved; nothing reaches the store
	// before, so a runner that dies first leaves no log under a number
	// that the state does not show as used. Called once, by the first
	// flush with data.
	ready     func(context.Context) error
	readyDone bool
	readyErr  error
	// progress, if set, gets the latest text of a line being redrawn with
	// carriage returns, as it changes.
	progress     func(string)
	lastProgress string

	mu      sync.Mutex
	pending []byte
	partial []byte
	tail    []byte
	err     error // first AppendLog failure; later writes still reach events

	// timer flushes every flushEvery once output arrives; under mu. Most
	// steps of a big run write nothing, and so start no timer.
	timer  *time.Timer
	closed bool

	flushMu sync.Mutex // serializes AppendLog calls so chunks keep their order
}

func newLogWriter(ctx context.Context, store state.Store, runID, name string, ready func(context.Context) error, line func(string)) *logWriter {
	return &logWriter{ctx: ctx, store: store, runID: runID, name: name, ready: ready, line: line}
}

// tick flushes and rearms the timer until Close.
func (w *logWriter) tick() {
	w.flush()
	w.mu.Lock()
	if !w.closed {
		w.timer.Reset(flushEvery)
	}
	w.mu.Unlock()
}

// Write implements io.Writer; safe for concurrent use.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.timer == nil && !w.closed {
		w.timer = time.AfterFunc(flushEvery, w.tick)
	}
	w.pending = append(w.pending, p...)
	w.tail = append(w.tail, p...)
	if len(w.tail) > 2*tailSize {
		w.tail = append(w.tail[:0], w.tail[len(w.tail)-tailSize:]...)
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			if len(w.partial) >= maxLine {
				w.line(string(w.partial[:maxLine]))
				w.partial = append(w.partial[:0], w.partial[maxLine:]...)
				continue
			}
			break
		}
		w.line(string(bytes.TrimSuffix(w.partial[:i], []byte("\r"))))
		w.partial = w.partial[i+1:]
		w.lastProgress = ""
	}
	w.redrawn()
	// Reuse the buffer when drained, so a long-running step does not keep
	// reallocating.
	if len(w.partial) == 0 {
		w.partial = w.partial[:0:0]
	}
	big := len(w.pending) >= flushSize
	w.mu.Unlock()
	if big {
		w.flush()
	}
	return len(p), nil
}

// redrawn handles an unterminated line that a progress bar keeps redrawing
// with "\r" (tqdm writes "\r 42%|####  | ..." and a newline only at the
// end): it reports the latest complete redraw as progress and keeps only that
// redraw of the line, so the line event that comes with the newline shows
// what a terminal would, and the partial line stays small. Called with mu.
func (w *logWriter) redrawn() {
	cr := bytes.LastIndexByte(w.partial, '\r')
	if cr < 0 {
		return
	}
	latest, keep := w.partial[cr+1:], cr
	if len(latest) == 0 { // ends with "\r": the redraw before it is the latest
		prev := bytes.LastIndexByte(w.partial[:cr], '\r')
		latest, keep = w.partial[prev+1:cr], max(prev, 0)
	}
	if w.progress != nil && len(latest) > 0 && string(latest) != w.lastProgress {
		w.lastProgress = string(latest)
		w.progress(w.lastProgress)
	}
	if keep > 0 {
		w.partial = append(w.partial[:0], w.partial[keep:]...)
	}
}

func (w *logWriter) flush() {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	data := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(data) == 0 {
		return
	}
	// flushMu serializes this: only flushes touch ready's fields.
	if !w.readyDone && w.ready != nil {
		w.readyErr = w.ready(w.ctx)
	}
	w.readyDone = true
	err := w.readyErr
	if err == nil {
		err = w.store.AppendLog(w.ctx, w.runID, w.name, data)
	}
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = fmt.Errorf("append log %s of run %s: %w", w.name, w.runID, err)
		}
		w.mu.Unlock()
	}
}

// Tail returns the last output of the attempt (up to tailSize bytes).
func (w *logWriter) Tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.tail
	if len(t) > tailSize {
		t = t[len(t)-tailSize:]
	}
	return string(t)
}

// Close emits an unterminated last line, stops the timer and flushes what is
// left. It returns the first store error, if any. A tick still running
// finds nothing left to flush once Close's flush, which it serializes with,
// has taken the rest.
func (w *logWriter) Close() error {
	w.mu.Lock()
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
