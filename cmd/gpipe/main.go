// Command gpipe runs declarative ML training pipelines: a YAML spec of typed
// steps (provision a Gaudi instance, prepare its disks, fetch the Medical
// Segmentation Decathlon, preprocess, train, evaluate, tear down) executed as a
// DAG with resumable state kept locally or in S3.
//
// This package is the command line only: flags, signals to context, and the
// one place where errors become exit codes. The work lives in pipeline and steps.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gpipe/gpipe/internal/awsconfig"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store"
	"github.com/gpipe/gpipe/steps/aws"
)

// Exit codes, documented in the README.
const (
	exitOK          = 0
	exitFailed      = 1 // the pipeline failed, or gpipe could not do what was asked
	exitUsage       = 2 // bad usage or an invalid spec
	exitHeld        = 3 // the run is held by another runner, or its state changed underneath
	exitDetached    = 4 // detached: steps still run remotely; resume the run to reattach
	exitHostLost    = 5 // failed only because hosts were lost (beyond max_host_losses); a resume re-provisions them
	exitInterrupted = 130
)

func main() {
	raiseStartupGC(os.Getenv)
	os.Exit(runMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// runMain is main without os.Exit, so testscript can run gpipe in-process.
func runMain(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	signals := &signalRoute{}
	errw := &routedWriter{w: stderr} // the live view takes it over while on screen
	stderr = errw
	soft, hard, stop := signalContexts(stderr, signals)
	defer stop()
	app := &App{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: getenv, Hard: hard, signals: signals, stderr: errw}
	err := app.Main(soft, args)
	code := exitCode(err)
	if err != nil && !errors.Is(err, errReported) {
		if msg := err.Error(); strings.HasPrefix(msg, "gpipe ") {
			fmt.Fprintln(stderr, msg) // already names the command
		} else {
			fmt.Fprintf(stderr, "gpipe: %v\n", err)
		}
	}
	if h := hint(err); h != "" {
		fmt.Fprintf(stderr, "gpipe: hint: %s\n", h)
	}
	return code
}

// errReported marks an error whose details the command already printed.
var errReported = errors.New("reported")

// exitCode is the single place where errors turn into exit codes.
func exitCode(err error) int {
	var (
		usage   *UsageError
		specErr spec.Errors
		param   *spec.ParamError
		readErr *spec.ReadError
		held    *state.HeldError
		failed  *engine.FailedError
		newer   *state.NewerSchemaError
		detach  *engine.DetachedRunError
		drift   *SpecMismatchError
		badURL  *store.URLError
		holds   *plan.HoldsDeadlockError
	)
	// Order matters: a failed pipeline wraps its steps' errors, which may be
	// of any kind, so the run-level outcomes are checked first.
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &detach):
		return exitDetached
	case errors.Is(err, engine.ErrInterrupted), errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &failed) && onlyHostsLost(failed):
		return exitHostLost
	case errors.As(err, &failed):
		return exitFailed
	case errors.As(err, &held), errors.Is(err, state.ErrConflict):
		return exitHeld
	case errors.As(err, &usage), errors.As(err, &specErr), errors.As(err, &param), errors.As(err, &drift),
		errors.As(err, &readErr), errors.Is(err, aws.ErrUnresolved), errors.Is(err, aws.ErrBadTrust),
		errors.As(err, &badURL), errors.As(err, &holds):
		return exitUsage
	case errors.As(err, &newer):
		return exitFailed
	default:
		return exitFailed
	}
}

// onlyHostsLost: every failed step failed because its host was lost, not by
// its own doing, which a CI job may want to tell apart (retry the job, it
// resumes on a new host).
func onlyHostsLost(f *engine.FailedError) bool {
	for _, err := range f.Errors {
		if pipeline.AsHostLost(err) == nil {
			return false
		}
	}
	return len(f.Errors) > 0
}

// signalContexts returns a context cancelled by the first SIGINT or SIGTERM
// (stop starting steps, cancel running ones, still run cleanup) and one
// cancelled by the second (stop at once). A command that asked route for the
// first signal (--detach-on-signal) gets it instead of the soft cancel.
func signalContexts(stderr io.Writer, route *signalRoute) (soft, hard context.Context, stop func()) {
	soft, cancelSoft := context.WithCancelCause(context.Background())
	hard, cancelHard := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case sig := <-sigs:
				n++
				if n == 1 && route.take(sig) {
					continue
				}
				if n == 1 {
					fmt.Fprintf(stderr, "\ngpipe: %v: stopping steps and running cleanup; repeat to stop at once\n", sig)
					cancelSoft(fmt.Errorf("%w by %v", engine.ErrInterrupted, sig))
					continue
				}
				fmt.Fprintf(stderr, "\ngpipe: %v again: stopping now\n", sig)
				cancelHard(fmt.Errorf("%w twice by %v", engine.ErrInterrupted, sig))
				return
			}
		}
	}()
	return soft, hard, func() {
		signal.Stop(sigs)
		close(done)
		cancelSoft(nil)
		cancelHard(nil)
	}
}

// hint says what to do about errors whose text comes from outside gpipe. The
// AWS SDK reports missing credentials only in words (no error type to match),
// after trying every source down to the EC2 instance metadata service.
func hint(err error) string {
	if err == nil {
		return ""
	}
	if h := usageHint(err); h != "" {
		return h
	}
	if errors.Is(err, awsconfig.ErrNoRegion) {
		return "give the region with --region (teardown and gc), or set AWS_REGION"
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to refresh cached credentials"),
		strings.Contains(msg, "failed to retrieve credentials"):
		return "no AWS credentials found: set AWS_PROFILE (aws sso login / aws configure), " +
			"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions use aws-actions/configure-aws-credentials"
	}
	return ""
}
