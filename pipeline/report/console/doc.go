// Package console reports a run's engine events to a person: Plain writes
// timestamped lines for logs, pipes and CI systems; Live keeps a compact view
// of the running steps redrawn in place on a terminal, with step output
// scrolling above it.
//
// Both are driven by engine.Options.Events, which delivers events from one
// goroutine at a time; Live also redraws from its own ticker, so it locks.
package console
