package console

import (
	"fmt"
	"time"

	"github.com/gpipe/gpipe/internal/duration"
	"github.com/gpipe/gpipe/pipeline/engine"
)

// Reporter consumes a run's events. Pass Event as engine.Options.Events and
// call Close once engine.Run has returned.
type Reporter interface {
	Event(ev engine.Event)
	// Close flushes what is buffered and, for Live, removes the live view.
	Close() error
}

// ColorEnabled says whether to colour output, following https://no-color.org:
// any non-empty NO_COLOR turns colour off. getenv is os.Getenv in the CLI.
func ColorEnabled(getenv func(string) string) bool {
	return getenv("NO_COLOR") == ""
}

// describe says what a lifecycle event means in words, without the step id
// or time; "" for events that are not lifecycle lines (output, run finished).
func describe(ev engine.Event) string {
	switch ev.Kind {
	case engine.StepStarted:
		if ev.Attempt > 1 {
			return fmt.Sprintf("started (attempt %d)", ev.Attempt)
		}
		return "started"
	case engine.StepRetry:
		return fmt.Sprintf("attempt %d failed: %s; retrying in %s", ev.Attempt, errText(ev.Err), duration.Format(ev.Delay))
	case engine.StepFinished:
		switch ev.Status {
		case "succeeded":
			return "succeeded in " + duration.Format(ev.Duration)
		case "cancelled":
			return "cancelled after " + duration.Format(ev.Duration) + reasonText(ev.Reason, ev.Err)
		default:
			return fmt.Sprintf("%s after %s%s", ev.Status, duration.Format(ev.Duration), reasonText("", ev.Err))
		}
	case engine.StepSkipped:
		return string(ev.Status) + reasonText(ev.Reason, nil)
	case engine.StepReused:
		return "reused" + reasonText(ev.Reason, nil)
	case engine.HostLost:
		return fmt.Sprintf("attempt %d: %s; %s", ev.Attempt, errText(ev.Err), ev.Reason)
	}
	return ""
}

func reasonText(reason string, err error) string {
	switch {
	case reason != "":
		return ": " + reason
	case err != nil:
		return ": " + errText(err)
	}
	return ""
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// runLine is the closing line of a run.
func runLine(ev engine.Event, elapsed time.Duration) string {
	s := fmt.Sprintf("run %s", ev.RunStatus)
	if elapsed > 0 {
		s += " in " + duration.Format(elapsed)
	}
	if ev.Err != nil && ev.RunStatus != "succeeded" {
		s += ": " + ev.Err.Error()
	}
	return s
}
