package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"

	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/report/console"
	"github.com/gpipe/gpipe/pipeline/report/gha"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// runReporter shows a run as it happens and writes its outcome at the end.
type runReporter struct {
	app      *App
	console  console.Reporter
	runID    string
	storeURL string
	github   bool
	gh       *console.GitHub // the console view inside GitHub Actions
	// restoreStderr ends routing stderr into the live view.
	restoreStderr func()
}

// localStateWarning says, at the start of a run inside GitHub Actions, that
// a state on the runner's disk dies with the runner: a GitHub-hosted runner
// is a fresh machine per job, and on a self-hosted one actions/checkout
// cleans the workspace, so neither "Re-run failed jobs" nor a detach can
// come back to the run.
func localStateWarning(storeURL string) gha.Annotation {
	return gha.Annotation{
		Level: "warning",
		Title: "gpipe: run state on the runner",
		Msg: fmt.Sprintf("The run state is in %s on this runner and is lost with it when the job ends: "+
			"\"Re-run failed jobs\" cannot resume this run, and a detached run's remote steps cannot be reattached. "+
			"Keep the state in S3 (the action's state: s3://BUCKET/PREFIX input, GPIPE_STATE, or the spec's state:).", storeURL),
	}
}

func (a *App) inGitHubActions() bool { return a.Getenv("GITHUB_ACTIONS") == "true" }

func (a *App) ghPaths() gha.Paths {
	wd, _ := os.Getwd()
	return gha.Paths{Workspace: a.Getenv("GITHUB_WORKSPACE"), Dir: wd}
}

// newReporter picks the console view: GitHub Actions groups and annotations,
// a live view on a terminal, or plain timestamped lines.
func (a *App) newReporter(p *plan.Plan, runID, storeURL string) *runReporter {
	r := &runReporter{app: a, runID: runID, storeURL: storeURL, github: a.inGitHubActions()}
	switch {
	case r.github:
		r.gh = console.NewGitHub(a.Stdout, console.GitHubOptions{
			StepPos: func(id string) (spec.Pos, bool) {
				if s := p.Step(id); s != nil {
					return s.Spec.Pos, true
				}
				return spec.Pos{}, false
			},
			Paths:   a.ghPaths(),
			Secrets: gha.SecretValues(p.Spec, p.Params),
		})
		r.console = r.gh
		if report.LocalState(storeURL) {
			// After the masks: nothing may print before them.
			if err := gha.WriteAnnotation(a.Stdout, localStateWarning(storeURL)); err != nil {
				fmt.Fprintf(a.Stderr, "gpipe: annotations: %v\n", err)
			}
		}
	case isTerminal(a.Stdout):
		f := a.Stdout.(*os.File)
		ids := make([]string, len(p.Steps))
		for i, s := range p.Steps {
			ids[i] = s.ID
		}
		live := console.NewLive(f, console.LiveOptions{
			Color: console.ColorEnabled(a.Getenv),
			Width: func() int {
				if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
					return w
				}
				return 80
			},
			Steps: ids,
		})
		r.console = live
		if a.stderr != nil && isTerminal(a.stderr.w) {
			r.restoreStderr = a.stderr.route(live.Above())
		}
	default:
		r.console = console.NewPlain(a.Stdout)
	}
	fmt.Fprintf(a.Stderr, "gpipe: run %s (state %s)\n", runID, storeURL)
	return r
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Event passes an engine event to the console view.
func (r *runReporter) Event(ev engine.Event) { r.console.Event(ev) }

// Finish closes the view, says how the run ended and what to do next, and
// inside GitHub Actions writes the step outputs and the job summary.
func (r *runReporter) Finish(run *state.Run, runErr error) {
	a := r.app
	err := r.console.Close()
	if r.restoreStderr != nil {
		r.restoreStderr()
	}
	if err != nil {
		fmt.Fprintf(a.Stderr, "gpipe: console: %v\n", err)
	}
	// The run's context may be over (an interrupt): the prices of its spot
	// instances are loaded under one that only a second interrupt ends.
	hard := a.Hard
	if hard == nil {
		hard = context.Background()
	}
	prices := a.reportCosts(hard, run)
	// A short summary on a terminal or in a log; in GitHub Actions the job
	// summary has it.
	if !r.github && run != nil {
		if err := report.Brief(a.Stderr, run, reportOptions(r.storeURL, prices)); err != nil {
			fmt.Fprintf(a.Stderr, "gpipe: %v\n", err)
		}
	}
	resume := report.ResumeCommand(r.storeURL, r.runID)
	// Under GitHub Actions a state on the runner's disk goes with the runner:
	// no command printed here could resume the run.
	lost := r.github && report.LocalState(r.storeURL)
	switch {
	case runErr == nil:
		// The console view has said so.
	case lost && !errors.Is(runErr, state.ErrNotFound) && !errors.Is(runErr, state.ErrConflict):
		fmt.Fprintf(a.Stderr, "gpipe: run %s stopped: %v\n"+
			"gpipe: its state (%s) is on this runner and is lost with it, so it cannot be resumed; keep the state in S3 to resume runs (see the job summary)\n",
			r.runID, runErr, r.storeURL)
	case errors.As(runErr, new(*engine.DetachedRunError)) && r.github:
		fmt.Fprintf(a.Stderr, "gpipe: run %s detached; state saved. \"Re-run failed jobs\" reattaches to what still runs, as does:\n  %s\n", r.runID, resume)
	case errors.As(runErr, new(*engine.DetachedRunError)):
		fmt.Fprintf(a.Stderr, "gpipe: run %s detached; state saved. Reattach to what still runs with:\n  %s\n", r.runID, resume)
	case errors.As(runErr, new(*BudgetError)):
		fmt.Fprintf(a.Stderr, "gpipe: %v. Continue with a larger budget:\n  %s --budget DOLLARS\n", runErr, resume)
	case errors.Is(runErr, engine.ErrInterrupted):
		fmt.Fprintf(a.Stderr, "gpipe: run %s interrupted; state saved. Continue with:\n  %s\n", r.runID, resume)
	case errors.Is(runErr, state.ErrNotFound):
		fmt.Fprintf(a.Stderr, "gpipe: stopped driving run %s: its state is gone from %s (deleted?)\n", r.runID, r.storeURL)
	case errors.Is(runErr, state.ErrConflict):
		fmt.Fprintf(a.Stderr, "gpipe: stopped driving run %s: another runner changed its state\n", r.runID)
	default:
		fmt.Fprintf(a.Stderr, "gpipe: run %s failed. Fix the cause, then continue with:\n  %s\n", r.runID, resume)
	}
	if !r.github {
		return
	}
	opt := reportOptions(r.storeURL, prices)
	opt.GitHub = true
	if r.gh != nil {
		opt.LogTail = r.gh.LogTail
	}
	if path := a.Getenv("GITHUB_OUTPUT"); path != "" {
		if err := gha.Outputs(path, run); err != nil {
			fmt.Fprintf(a.Stderr, "gpipe: write GITHUB_OUTPUT: %v\n", err)
		}
	}
	if path := a.Getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := gha.StepSummary(path, run, opt); err != nil {
			fmt.Fprintf(a.Stderr, "gpipe: write GITHUB_STEP_SUMMARY: %v\n", err)
		}
	}
}

// reportSpecErrors prints spec errors, and annotations inside GitHub Actions.
func (a *App) reportSpecErrors(errs spec.Errors) {
	fmt.Fprintln(a.Stderr, errs.Error())
	if a.inGitHubActions() {
		if err := gha.SpecErrors(a.Stdout, errs, a.ghPaths()); err != nil {
			fmt.Fprintf(a.Stderr, "gpipe: annotations: %v\n", err)
		}
	}
}

// reportSpecWarnings prints what is valid but unsafe in a spec, and warning
// annotations inside GitHub Actions.
func (a *App) reportSpecWarnings(warns spec.Errors) {
	if len(warns) == 0 {
		return
	}
	fmt.Fprintln(a.Stderr, warns.Error())
	if a.inGitHubActions() {
		if err := gha.SpecWarnings(a.Stdout, warns, a.ghPaths()); err != nil {
			fmt.Fprintf(a.Stderr, "gpipe: annotations: %v\n", err)
		}
	}
}
