package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws"
)

// runDeleter is what rm and runs --prune need of a store beyond
// state.Store: removing a run's document, spec snapshots and logs. The file
// and S3 stores have it.
type runDeleter interface {
	Delete(ctx context.Context, runID string) error
}

// defaultPruneAge is how old (since its last update) a finished run must be
// for runs --prune to delete it when --older-than is not given.
const defaultPruneAge = 30 * 24 * time.Hour

func (a *App) setupRm(fs *flag.FlagSet) handler {
	stateURL := stateFlag(fs)
	force := fs.Bool("force", false, "delete even a run that a live runner drives, or whose abandoned run still holds a stack")
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		for _, id := range args {
			if err := checkRunID(id); err != nil {
				return err
			}
		}
		st, url, err := a.openStore(ctx, *stateURL, "")
		if err != nil {
			return err
		}
		del, ok := st.(runDeleter)
		if !ok {
			return fmt.Errorf("the state store %s cannot delete runs", url)
		}
		// Resolve every id first: a typo deletes nothing.
		ids := make([]string, 0, len(args))
		for _, typed := range args {
			id, err := resolveRunID(ctx, st, url, typed)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		var failed []error
		for _, id := range ids {
			if err := a.removeRun(ctx, st, del, url, id, *force); err != nil {
				failed = append(failed, err)
			}
		}
		return errors.Join(failed...)
	}
}

// removeRun deletes one run, unless a live runner drives it or (abandoned)
// it still holds a stack, which only its state records: then it refuses
// without force.
func (a *App) removeRun(ctx context.Context, st state.Store, del runDeleter, url, id string, force bool) error {
	run, err := state.Read(ctx, st, id)
	if errors.Is(err, state.ErrNotFound) {
		return nil // deleted meanwhile, or only a spec snapshot: delete what is there
	}
	if err != nil && !force {
		return fmt.Errorf("rm %s: %w (--force deletes it anyway)", id, err)
	}
	if run != nil && !force {
		if err := keepReason(run, url, time.Now()); err != nil {
			return err
		}
	}
	if err := del.Delete(ctx, id); err != nil {
		return err // the store names the run and itself
	}
	fmt.Fprintf(a.Stdout, "deleted run %s\n", id)
	return nil
}

// keepReason says why a run must not be deleted without --force: a live
// runner drives it (*state.HeldError, exit 3), or its runner is gone but
// its stack may still be up, which only its state records.
func keepReason(run *state.Run, url string, now time.Time) error {
	if err := state.CheckHeld(run, state.LeaseOptions{}); err != nil {
		return err
	}
	if ab := report.Abandonment(run, url, now, aws.Resources{}); ab != nil && len(ab.Holding) > 0 {
		return fmt.Errorf("run %s is abandoned and may still hold the stack of %s: delete it with `%s` first, or rm --force",
			run.ID, strings.Join(ab.Holding, ", "), ab.Advice[len(ab.Advice)-1])
	}
	return nil
}

// pruneOptions are the flags of runs --prune.
type pruneOptions struct {
	prune     *bool
	olderThan *time.Duration
	dryRun    *bool
	force     *bool
}

func pruneFlags(fs *flag.FlagSet) pruneOptions {
	return pruneOptions{
		prune:     fs.Bool("prune", false, "delete runs not updated for --older-than (state, spec snapshots, logs); live runs are kept"),
		olderThan: fs.Duration("older-than", defaultPruneAge, "with --prune: delete runs not updated for this long"),
		dryRun:    fs.Bool("dry-run", false, "with --prune: list what would be deleted, delete nothing"),
		force:     fs.Bool("force", false, "with --prune: delete abandoned runs that may still hold a stack too"),
	}
}

// check refuses the pruning flags without --prune: they would do nothing.
func (o pruneOptions) check(fs *flag.FlagSet) error {
	if *o.prune {
		return nil
	}
	var stray []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "older-than" || f.Name == "dry-run" || f.Name == "force" {
			stray = append(stray, flagName(f.Name))
		}
	})
	if len(stray) > 0 {
		return usagef("gpipe runs: %s only work with --prune", strings.Join(stray, ", "))
	}
	return nil
}

// prune deletes the runs of st last updated before now - olderThan, keeping
// live runs (and, without force, abandoned ones that may hold a stack).
func (a *App) prune(ctx context.Context, st state.Store, url string, o pruneOptions) error {
	if *o.olderThan < 0 {
		return usagef("gpipe runs: --older-than %v: want a positive duration", *o.olderThan)
	}
	del, ok := st.(runDeleter)
	if !ok {
		return fmt.Errorf("the state store %s cannot delete runs", url)
	}
	ids, err := st.List(ctx)
	if err != nil {
		return err // the store names itself
	}
	runs := readRuns(ctx, st, ids)
	newestFirst(runs)
	now := time.Now()
	cutoff := now.Add(-*o.olderThan)
	var failed []error
	deleted, kept := 0, 0
	for _, r := range runs {
		if r.Updated.After(cutoff) || r.Updated.IsZero() {
			continue // recent, or unreadable (no time to judge by)
		}
		if err := keepReason(r, url, now); err != nil && (!*o.force || errors.As(err, new(*state.HeldError))) {
			fmt.Fprintf(a.Stderr, "gpipe: keeping run %s: %v\n", r.ID, err)
			kept++
			continue
		}
		if *o.dryRun {
			fmt.Fprintf(a.Stdout, "would delete run %s (%s, updated %s)\n", r.ID, r.Status, r.Updated.UTC().Format(time.RFC3339))
			deleted++
			continue
		}
		if err := del.Delete(ctx, r.ID); err != nil {
			failed = append(failed, err)
			continue
		}
		fmt.Fprintf(a.Stdout, "deleted run %s (%s, updated %s)\n", r.ID, r.Status, r.Updated.UTC().Format(time.RFC3339))
		deleted++
	}
	verb := "deleted"
	if *o.dryRun {
		verb = "would delete"
	}
	fmt.Fprintf(a.Stderr, "gpipe: %s %d runs not updated for %s in %s; kept %d live or holding runs\n",
		verb, deleted, *o.olderThan, url, kept)
	return errors.Join(failed...)
}
