package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/gpipe/gpipe/internal/duration"
)

// Detaching: a CI job has a time limit (6 hours on GitHub-hosted runners)
// and a training step may run longer on its instance. When the job times
// out, the runner gets SIGINT, then SIGTERM, then SIGKILL; an interrupt would
// cancel the remote command and run the teardown that deletes the instance.
// A detach instead stops driving the run and leaves remote steps running,
// recorded in the state with their command ids, so that "Re-run failed jobs"
// (a resume of the same run) reattaches to them. gpipe exits with
// exitDetached.

// detachOptions are the --detach-after and --detach-on-signal flags.
type detachOptions struct {
	after    time.Duration // 0: never
	onSignal bool
	started  time.Time // when this runner started; after counts from here
}

// detachFlags declares the detach flags on fs; the returned function reads
// them (with GPIPE_DETACH_AFTER as the default of --detach-after) once flags
// are parsed.
func (a *App) detachFlags(fs *flag.FlagSet) func() (detachOptions, error) {
	started := time.Now()
	after := fs.String("detach-after", "", "detach when this duration (e.g. 5h30m) has passed since gpipe started: "+
		"remote steps keep running, local steps stop, cleanup does not run; exit 4; resume reattaches (default $GPIPE_DETACH_AFTER)")
	onSignal := fs.Bool("detach-on-signal", false, "detach on the first SIGINT/SIGTERM instead of interrupting (for CI systems that kill on timeout)")
	return func() (detachOptions, error) {
		o := detachOptions{onSignal: *onSignal, started: started}
		v, name := *after, "--detach-after"
		if v == "" {
			v, name = a.Getenv("GPIPE_DETACH_AFTER"), "GPIPE_DETACH_AFTER"
		}
		if v == "" {
			return o, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return o, usagef("%s %q: want a duration such as 5h30m, or 0 for never", name, v)
		}
		o.after = d
		return o, nil
	}
}

// startDetach arms the detach triggers of o. The channel is closed by the
// first that fires; stop disarms them.
func (a *App) startDetach(o detachOptions) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	trigger := func(why string) {
		once.Do(func() {
			fmt.Fprintf(a.Stderr, "\ngpipe: %s: detaching: remote steps keep running, local steps stop, cleanup does not run; resume the run to reattach\n", why)
			close(ch)
		})
	}
	var stops []func()
	if o.after > 0 {
		t := time.AfterFunc(max(0, o.after-time.Since(o.started)), func() {
			trigger("--detach-after " + duration.Format(o.after) + " elapsed")
		})
		stops = append(stops, func() { t.Stop() })
	}
	if o.onSignal {
		stops = append(stops, a.signals.onFirst(func(sig os.Signal) { trigger(sig.String() + " (--detach-on-signal)") }))
	}
	return ch, func() {
		for _, s := range stops {
			s()
		}
	}
}

// signalRoute lets a command take the first SIGINT/SIGTERM for itself
// (--detach-on-signal); without a taker it interrupts. It is shared between
// runMain's signal goroutine and the command.
type signalRoute struct {
	mu sync.Mutex
	fn func(os.Signal)
}

// onFirst makes fn receive the first signal instead of the interrupt, until
// the returned function is called.
func (r *signalRoute) onFirst(fn func(os.Signal)) func() {
	if r == nil {
		return func() {}
	}
	r.mu.Lock()
	r.fn = fn
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.fn = nil
		r.mu.Unlock()
	}
}

// take hands sig to the taker and reports whether there was one.
func (r *signalRoute) take(sig os.Signal) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	fn := r.fn
	r.mu.Unlock()
	if fn == nil {
		return false
	}
	fn(sig)
	return true
}
