package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store"
	"github.com/gpipe/gpipe/steps/aws"
)

// stateURL is the state store URL chosen by flag, then $GPIPE_STATE, then the
// spec's state:, then the default local folder (store.ChooseURL).
func (a *App) stateURL(flagURL, specURL string) string {
	return store.ChooseURL(flagURL, a.Getenv(store.EnvVar), specURL)
}

// openStore opens the state store stateURL chooses.
func (a *App) openStore(ctx context.Context, flagURL, specURL string) (state.Store, string, error) {
	url := a.stateURL(flagURL, specURL)
	st, err := store.Open(ctx, url)
	if err != nil {
		return nil, "", err // the store's error names the URL
	}
	return st, url, nil
}

func printResumePlan(w io.Writer, p *plan.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tACTION\tWHY")
	for _, s := range p.Steps {
		action := "rerun"
		if s.Action == plan.Reuse {
			action = "reuse"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.ID, action, s.Reason)
	}
	return tw.Flush()
}

func (a *App) setupValidate(fs *flag.FlagSet) handler {
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 1, -1); err != nil {
			return err
		}
		var failed []error
		for _, path := range args {
			sp, err := a.loadSpec(ctx, path)
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err != nil {
				failed = append(failed, err)
				continue
			}
			if err := holdsDeadlock(sp); err != nil {
				failed = append(failed, fmt.Errorf("%s: %w", path, err))
				continue
			}
			a.reportSpecWarnings(sp.Warnings)
			fmt.Fprintf(a.Stdout, "%s: valid (%d steps)\n", path, len(sp.Steps))
		}
		return errors.Join(failed...)
	}
}

func (a *App) setupPlan(fs *flag.FlagSet) handler {
	format := fs.String("format", "text", "output format: text, mermaid, dot or json")
	scripts := fs.Bool("scripts", false, "also print the script each host step would run")
	var params multiFlag
	fs.Var(&params, "p", "set a parameter, name=value (repeatable)")
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 1, 1); err != nil {
			return err
		}
		switch *format {
		case "text", "mermaid", "dot", "json":
		default:
			return usagef("--format %q: want text, mermaid, dot or json", *format)
		}
		p, _, err := a.loadPlan(ctx, args[0], params, paramsToShowAll)
		if err != nil {
			return err
		}
		if *format == "text" || *format == "json" {
			charges, err := a.charges(p)
			if err != nil {
				return err
			}
			p.SetCharges(charges)
		}
		if err := p.Render(a.Stdout, *format, nil); err != nil {
			return err
		}
		if *scripts {
			return a.printScripts(a.Stdout, p)
		}
		return nil
	}
}

func (a *App) setupStatus(fs *flag.FlagSet) handler {
	stateURL := stateFlag(fs)
	asJSON := fs.Bool("json", false, "print the run's state document as JSON")
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 1, 1); err != nil {
			return err
		}
		run, url, err := a.readRun(ctx, *stateURL, args[0])
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(a.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(run)
		}
		return a.printStatus(ctx, a.Stdout, run, url)
	}
}

func (a *App) setupRuns(fs *flag.FlagSet) handler {
	stateURL := stateFlag(fs)
	pruning := pruneFlags(fs) // see prune.go
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 0, 0); err != nil {
			return err
		}
		if err := pruning.check(fs); err != nil {
			return err
		}
		st, url, err := a.openStore(ctx, *stateURL, "")
		if err != nil {
			return err
		}
		if *pruning.prune {
			return a.prune(ctx, st, url, pruning)
		}
		ids, err := st.List(ctx)
		if err != nil {
			return err // the store names itself
		}
		runs := readRuns(ctx, st, ids)
		newestFirst(runs)
		tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN ID\tPIPELINE\tSTATUS\tSTEPS\tCREATED\tUPDATED")
		now := time.Now()
		for _, r := range runs {
			status := string(r.Status)
			if ab := report.Abandonment(r, url, now, aws.Resources{}); ab != nil {
				// Its state says running, but nobody drives it.
				status = string(report.RunAbandoned)
				if len(ab.Holding) > 0 {
					status += " (holds a stack: gpipe teardown " + r.ID + ")"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, status, stepCounts(r),
				r.Created.UTC().Format(time.RFC3339), r.Updated.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	}
}

// newestFirst sorts runs by creation time, newest first (ties by id), the
// order of gpipe runs and the meaning of the run id "latest".
func newestFirst(runs []*state.Run) {
	sort.Slice(runs, func(i, k int) bool {
		if !runs[i].Created.Equal(runs[k].Created) {
			return runs[i].Created.After(runs[k].Created)
		}
		return runs[i].ID > runs[k].ID
	})
}

// readRuns loads run documents a few at a time; a run that cannot be read is
// listed with the reason as its status rather than hiding it, so no read
// fails the group and none cancels the others.
func readRuns(ctx context.Context, st state.Store, ids []string) []*state.Run {
	runs := make([]*state.Run, len(ids))
	var g errgroup.Group
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			r, err := state.Read(ctx, st, id)
			switch {
			case errors.Is(err, state.ErrNotFound):
				return nil // a spec snapshot without state: its runner died before the run began
			case err != nil:
				r = &state.Run{ID: id, Status: state.RunStatus("unreadable: " + err.Error())}
			}
			runs[i] = r
			return nil
		})
	}
	_ = g.Wait() // every function returns nil
	return slices.DeleteFunc(runs, func(r *state.Run) bool { return r == nil })
}

func stepCounts(r *state.Run) string {
	counts := map[state.StepStatus]int{}
	for _, s := range r.Steps {
		counts[s.Status]++
	}
	var parts []string
	for _, s := range []state.StepStatus{state.StepSucceeded, state.StepFailed, state.StepRunning, state.StepCancelled, state.StepSkipped, state.StepPending} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
