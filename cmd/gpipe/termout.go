package main

import (
	"io"
	"sync"
)

// routedWriter is gpipe's stderr. While the live view is on the terminal,
// the run reporter routes it into the view (console.Live.Above), so that
// gpipe's own messages, the "stopping steps" of a Ctrl-C among them, are
// printed above the view instead of under it, where the next redraw would
// leave stale view lines behind.
type routedWriter struct {
	w io.Writer // the real stderr

	mu sync.Mutex
	to io.Writer // nil: w
}

func (r *routedWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	to := r.to
	r.mu.Unlock()
	if to != nil {
		return to.Write(p)
	}
	return r.w.Write(p)
}

// route sends writes to to until the returned func is called.
func (r *routedWriter) route(to io.Writer) (restore func()) {
	r.mu.Lock()
	r.to = to
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.to = nil
		r.mu.Unlock()
	}
}
