package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/engine"
)

func TestExitCodeDetached(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{reported{&engine.DetachedRunError{RunID: "r", Running: []string{"train"}}}, exitDetached},
		// A step that claimed to detach when nobody asked failed the run.
		{&engine.FailedError{Steps: []string{"a"}, Errors: []error{&pipeline.DetachedError{}}}, exitFailed},
		{fmt.Errorf("run r: %w", engine.ErrInterrupted), exitInterrupted},
		// Host losses beyond max_host_losses, and nothing else, failed the run.
		{&engine.FailedError{Steps: []string{"train"}, Errors: []error{&pipeline.HostLossLimitError{
			Lost: &pipeline.HostLostError{Host: pipeline.Host{Name: "gaudi"}}, Max: 1, Count: 2}}}, exitHostLost},
		{&engine.FailedError{Steps: []string{"train", "eval"}, Errors: []error{
			&pipeline.HostLostError{Host: pipeline.Host{Name: "gaudi"}}, &pipeline.ExitError{Code: 1}}}, exitFailed},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestDetachFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		env     string
		want    time.Duration
		wantErr bool
	}{
		{nil, "", 0, false},
		{nil, "5h30m", 5*time.Hour + 30*time.Minute, false},
		{[]string{"--detach-after", "200ms"}, "5h", 200 * time.Millisecond, false},
		{[]string{"--detach-after", "0"}, "5h", 0, false},
		{[]string{"--detach-after", "soon"}, "", 0, true},
		{nil, "-1h", 0, true},
	} {
		a := &App{Getenv: func(k string) string {
			if k == "GPIPE_DETACH_AFTER" {
				return tc.env
			}
			return ""
		}}
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		get := a.detachFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		o, err := get()
		var ue *UsageError
		if tc.wantErr != errors.As(err, &ue) || o.after != tc.want {
			t.Errorf("%v env %q: after %v, err %v; want %v (error: %v)", tc.args, tc.env, o.after, err, tc.want, tc.wantErr)
		}
	}
}

func TestStartDetach(t *testing.T) {
	a := &App{Stderr: io.Discard, signals: &signalRoute{}}
	// The duration counts from when gpipe started, not from when the run did.
	ch, stop := a.startDetach(detachOptions{after: time.Hour, started: time.Now().Add(-2 * time.Hour)})
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("an elapsed --detach-after did not fire")
	}
	stop()

	ch, stop = a.startDetach(detachOptions{onSignal: true, started: time.Now()})
	if !a.signals.take(os.Interrupt) {
		t.Fatal("--detach-on-signal did not take the first signal")
	}
	testtool.Recv(t, ch, "the detach the signal asked for")
	stop()
	if a.signals.take(os.Interrupt) {
		t.Error("the signal route outlived the run")
	}
}
