package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/gpipe/gpipe/internal/suggest"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

type resumeOptions struct {
	store       state.Store
	storeURL    string
	loaded      *state.Loaded // the run, as read to find it
	from        string
	specFile    string
	planOnly    bool
	force       bool
	concurrency int
	detach      detachOptions
	budget      float64 // 0: the spec's
	// secrets are secret params given with -p: a run saves none.
	secrets map[string]string
}

// runID is the id of the run to resume.
func (o resumeOptions) runID() string { return o.loaded.RunID() }

func (a *App) setupResume(fs *flag.FlagSet) handler {
	stateURL := stateFlag(fs)
	from := fs.String("from", "", "rerun this step and everything downstream of it")
	planOnly := fs.Bool("plan", false, "print what would be reused or rerun, and why, without running")
	specFile := fs.String("spec", "", "resume with this (edited) spec: changed steps rerun with their downstream")
	force := fs.Bool("force", false, "take over the run even if another live runner holds it (dangerous: two runners would drive one run)")
	concurrency := concurrencyFlag(fs)
	detachOpts := a.detachFlags(fs) // detach engineer: see detach.go
	budget := budgetFlag(fs)
	var params multiFlag
	fs.Var(&params, "p", "give a secret param again, name=value (a run saves no secret; repeatable)")
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 1, 1); err != nil {
			return err
		}
		a.loader().Warm() // the spec is parsed after the state is read
		if *budget < 0 {
			return usagef("--budget %v: want a positive number of dollars", *budget)
		}
		det, err := detachOpts()
		if err != nil {
			return err
		}
		secrets, err := parseParams(params)
		if err != nil {
			return err
		}
		st, url, err := a.openStore(ctx, *stateURL, "")
		if err != nil {
			return err
		}
		loaded, err := readForResume(ctx, st, url, args[0])
		if err != nil {
			return err
		}
		return a.resume(ctx, resumeOptions{
			store: st, storeURL: url, loaded: loaded, from: *from, specFile: *specFile,
			planOnly: *planOnly, force: *force, concurrency: *concurrency, detach: det, budget: *budget, secrets: secrets,
		})
	}
}

func (a *App) resume(ctx context.Context, o resumeOptions) error {
	prev := o.loaded
	if o.planOnly {
		p, err := a.resumePlan(ctx, o, prev.Run)
		if err != nil {
			return err
		}
		return printResumePlan(a.Stdout, p)
	}
	if done, err := a.nothingToResume(ctx, o, prev.Run); done || err != nil {
		return err
	}
	// The lease is taken from the run as read above (read again only if it
	// changed since): against S3 a read is a GET and a LIST.
	j, err := state.AcquireLoaded(ctx, o.store, prev, a.leaseOptions(o.force))
	if errors.Is(err, state.ErrNotFound) {
		return noRun(o.runID(), o.storeURL)
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	held := j.Snapshot() // the run as the lease found it (a deep copy: once)
	p, err := a.resumePlan(ctx, o, held)
	if err != nil {
		_ = j.Close(context.WithoutCancel(ctx))
		return err
	}
	if o.specFile != "" {
		if err := o.store.PutBlob(ctx, o.runID(), specBlobName(p.Spec.Digest()), p.Spec.Source); err != nil {
			_ = j.Close(context.WithoutCancel(ctx))
			return fmt.Errorf("save edited spec of run %s: %w", o.runID(), err)
		}
	}
	printResumePlan(a.Stderr, p)
	if o.specFile != "" || len(secretParamsGiven(p.Spec, held.Params)) > 0 {
		if err := j.Update(ctx, func(r *state.Run) {
			r.SpecDigest = p.Spec.Digest()
			r.SpecFile = p.Spec.File
			scrubSecretParams(p.Spec, r) // saved by a gpipe that kept them
		}); err != nil {
			_ = j.Close(context.WithoutCancel(ctx))
			return fmt.Errorf("record spec and params of run %s: %w", o.runID(), err)
		}
	}
	return a.drive(ctx, j, p, o.storeURL, o.concurrency, o.detach, o.budget)
}

// nothingToResume reports (and says) that a succeeded run has nothing to
// rerun: resuming it does nothing, touches no state and succeeds. --from and
// an edited spec rerun on purpose, so they are not cut short here.
func (a *App) nothingToResume(ctx context.Context, o resumeOptions, prev *state.Run) (bool, error) {
	if o.from != "" || prev.Status != state.RunSucceeded {
		return false, nil
	}
	p, err := a.resumePlan(ctx, o, prev)
	if err != nil {
		return false, err
	}
	if run, _ := p.Counts(); run > 0 {
		return false, nil
	}
	fmt.Fprintf(a.Stderr, "gpipe: run %s succeeded; nothing to rerun (gpipe resume --from STEP %s reruns a step and what follows it)\n",
		o.runID(), o.runID())
	return true, nil
}

// resumePlan rebuilds the plan of a saved run, from its spec snapshot or an
// edited spec, and decides per step what to reuse and what to rerun.
func (a *App) resumePlan(ctx context.Context, o resumeOptions, prev *state.Run) (*plan.Plan, error) {
	var sp *spec.Spec
	var err error
	if o.specFile != "" {
		sp, err = a.loadSpec(ctx, o.specFile)
	} else {
		sp, err = a.snapshotSpec(ctx, o.store, o.runID(), prev.SpecFile, prev.SpecDigest)
	}
	if err != nil {
		return nil, err
	}
	given, err := a.resumeParams(ctx, sp, prev, o.secrets, o.planOnly)
	if err != nil {
		return nil, err
	}
	p, err := plan.New(sp, given)
	if err != nil {
		return nil, err
	}
	if o.from != "" && p.Step(o.from) == nil && p.Instances(o.from) == nil {
		return nil, usagef("--from %s: no such step in run %s%s (steps: %s)", o.from, o.runID(),
			suggest.DidYouMean(o.from, planStepNames(p)), strings.Join(planStepNames(p), ", "))
	}
	if err := p.ForResume(prev, o.from); err != nil {
		return nil, fmt.Errorf("plan resume of run %s: %w", o.runID(), err)
	}
	return p, nil
}

// noRun is the usage error for a run id the store does not have.
func noRun(runID, storeURL string) error {
	return usagef("no run %s in %s (gpipe runs --state %s lists the runs there)", runID, storeURL, storeURL)
}

// runReadError turns a failed read of a run into what the user should see.
func runReadError(runID, storeURL string, err error) error {
	if errors.Is(err, state.ErrNotFound) {
		return noRun(runID, storeURL)
	}
	return err // the store's error names the run and the store
}

// readForResume reads the run to resume, named by what resolveRunID accepts
// (an id, a unique prefix, latest): a run named by its id is read once,
// not looked up first and read after.
func readForResume(ctx context.Context, st state.Store, storeURL, typed string) (*state.Loaded, error) {
	l, err := state.ReadLoaded(ctx, st, typed)
	if err == nil || !errors.Is(err, state.ErrNotFound) {
		return l, err // the store's error names the run and the store
	}
	id, err := resolveRunID(ctx, st, storeURL, typed)
	if err != nil {
		return nil, err
	}
	if l, err = state.ReadLoaded(ctx, st, id); err != nil {
		return nil, runReadError(id, storeURL, err)
	}
	return l, nil
}

// readRun opens the store and reads one run from it, for commands that only
// look at a run.
func (a *App) readRun(ctx context.Context, stateURL, runID string) (*state.Run, string, error) {
	st, url, err := a.openStore(ctx, stateURL, "")
	if err != nil {
		return nil, "", err
	}
	if runID, err = resolveRunID(ctx, st, url, runID); err != nil {
		return nil, url, err
	}
	run, err := state.Read(ctx, st, runID)
	if err != nil {
		return nil, url, runReadError(runID, url, err)
	}
	return run, url, nil
}
