package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/secret"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store"
)

// stateFlag declares --state, shared by every command that reads a store.
func stateFlag(fs *flag.FlagSet) *string {
	return fs.String("state", "", "state store URL: file://DIR, a path, or s3://BUCKET/PREFIX (default $"+store.EnvVar+", the spec's state:, then "+store.DefaultURL+")")
}

func (a *App) setupRun(fs *flag.FlagSet) handler {
	var params multiFlag
	fs.Var(&params, "p", "set a parameter, name=value (repeatable)")
	runID := fs.String("run-id", "", "use this run id instead of a generated one")
	stateURL := stateFlag(fs)
	concurrency := concurrencyFlag(fs)
	dryRun := fs.Bool("dry-run", false, "print the plan and exit without running anything")
	resumeExisting := fs.Bool("resume-existing", false, "if a run with --run-id exists, resume it instead (CI re-runs)")
	detachOpts := a.detachFlags(fs) // detach engineer: see detach.go
	yes := fs.Bool("yes", false, "start billable steps without asking (a run on a terminal asks first)")
	budget := budgetFlag(fs)
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 1, 1); err != nil {
			return err
		}
		det, err := detachOpts()
		if err != nil {
			return err
		}
		if *dryRun {
			// Like plan: no secret is needed (or read) to show the steps.
			p, _, err := a.loadPlan(ctx, args[0], params, paramsToShow)
			if err != nil {
				return err
			}
			return p.Render(a.Stdout, "text", nil)
		}
		p, given, err := a.loadPlan(ctx, args[0], params, paramsToRun)
		if err != nil {
			return err
		}
		sp := p.Spec
		st, url, err := a.openStore(ctx, *stateURL, sp.State)
		if err != nil {
			return err
		}
		id := *runID
		if id == "" {
			id = newRunID(sp.Name, time.Now())
		} else if err := checkRunID(id); err != nil {
			return fmt.Errorf("--run-id: %w", err)
		}
		if *budget < 0 {
			return usagef("--budget %v: want a positive number of dollars", *budget)
		}
		if *resumeExisting && *runID != "" {
			if loaded, err := state.ReadLoaded(ctx, st, id); err == nil {
				prev := loaded.Run
				if prev.SpecDigest != sp.Digest() {
					return &SpecMismatchError{RunID: id, StoreURL: url, RunSpec: prev.SpecFile, RunDigest: prev.SpecDigest,
						Spec: args[0], Digest: sp.Digest()}
				}
				fmt.Fprintf(a.Stderr, "gpipe: run %s exists in %s: resuming it\n", id, url)
				return a.resume(ctx, resumeOptions{store: st, storeURL: url, loaded: loaded, concurrency: *concurrency, detach: det,
					budget: *budget, secrets: onlySecrets(sp, given)})
			} else if !errors.Is(err, state.ErrNotFound) {
				return fmt.Errorf("look up run %s: %w", id, err)
			}
		}
		charges, err := a.charges(p)
		if err != nil {
			return err
		}
		if err := a.confirmCharges(charges, *yes); err != nil {
			return err
		}
		// The spec snapshot goes first, under its digest, so that a runner
		// killed right after creating the run leaves a run that resumes; a
		// snapshot is never overwritten with another spec.
		if _, err := state.Read(ctx, st, id); err == nil {
			return usagef("run %s already exists in %s: use gpipe resume %s, or --resume-existing", id, url, id)
		}
		if err := st.PutBlob(ctx, id, specBlobName(sp.Digest()), sp.Source); err != nil {
			return fmt.Errorf("save spec snapshot of run %s: %w", id, err)
		}
		run := newRunState(id, sp, p.Params, secretParamsGiven(sp, given), time.Now())
		j, err := state.Create(ctx, st, run, a.leaseOptions(false))
		if err != nil {
			if errors.Is(err, state.ErrExists) {
				return usagef("run %s already exists in %s: use gpipe resume %s, or --resume-existing", id, url, id)
			}
			return fmt.Errorf("create run %s: %w", id, err)
		}
		return a.drive(ctx, j, p, url, *concurrency, det, *budget)
	}
}

// budgetFlag declares --budget, shared by run and resume.
func budgetFlag(fs *flag.FlagSet) *float64 {
	return fs.Float64("budget", 0, "stop the run (cleanup still runs) before its estimated instance cost passes this many dollars (default: the spec's budget)")
}

// SpecMismatchError refuses run --resume-existing when the spec given is not
// the one the run was started with: resuming would silently run the old spec
// (or, worse, mix the two). An edit is applied on purpose with resume --spec.
type SpecMismatchError struct {
	RunID, StoreURL   string
	RunSpec, Spec     string
	RunDigest, Digest string
}

func (e *SpecMismatchError) Error() string {
	return fmt.Sprintf("run %s in %s was started with %s (digest %s), not with %s (digest %s) as given: "+
		"to run the edited spec in this run, use gpipe resume --spec %s %s; or start a new run with another --run-id",
		e.RunID, e.StoreURL, e.RunSpec, short(e.RunDigest), e.Spec, short(e.Digest), e.Spec, e.RunID)
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// specBlobName names a run's spec snapshot by the spec's digest (the run's
// SpecDigest), so an edited spec given to resume gets a snapshot of its own.
func specBlobName(digest string) string {
	if len(digest) > 16 {
		digest = digest[:16]
	}
	return "spec-" + digest + ".yaml"
}

// reported carries an error whose details were already printed, so main
// picks the exit code from it without printing it twice.
type reported struct{ err error }

func (e reported) Error() string   { return e.err.Error() }
func (e reported) Unwrap() []error { return []error{e.err, errReported} }

func parseParams(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("-p %q: want name=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

var runIDUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// newRunID makes a readable id that sorts by time within a pipeline:
// name-20261127-054016-k3f9.
func newRunID(name string, now time.Time) string {
	slug := strings.Trim(runIDUnsafe.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if slug == "" {
		slug = "run"
	}
	if len(slug) > 40 {
		slug = strings.Trim(slug[:40], "-")
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return fmt.Sprintf("%s-%s-%s", slug, now.UTC().Format("20060102-150405"), b)
}

// newRunState is the first state document of a run. Secret params' values
// are left out; secrets names those the run was given.
func newRunState(id string, sp *spec.Spec, params map[string]string, secrets []string, now time.Time) *state.Run {
	r := &state.Run{
		SchemaVersion: state.SchemaVersion,
		ID:            id,
		Pipeline:      sp.Name,
		SpecFile:      sp.File,
		SpecDigest:    sp.Digest(),
		Params:        secret.Public(sp, params),
		SecretParams:  secrets,
		Status:        state.RunPending,
		Created:       now.UTC(),
		Updated:       now.UTC(),
		Steps:         map[string]*state.Step{},
	}
	// The engine adds the plan's steps to the state before it starts any.
	return r
}

func (a *App) leaseOptions(force bool) state.LeaseOptions {
	return state.LeaseOptions{Force: force}
}

// drive runs a plan under a held journal and closes the journal, whatever
// happened: the final state is saved even after an interrupt or a detach.
func (a *App) drive(ctx context.Context, j *state.Journal, p *plan.Plan, storeURL string, concurrency int, det detachOptions, budget float64) error {
	if concurrency == 0 {
		concurrency = p.Spec.Concurrency
	}
	if budget == 0 {
		budget = p.Spec.Budget
	}
	rep := a.newReporter(p, j.RunID(), storeURL)
	detach, stopDetach := a.startDetach(det)
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	stopBudget := func() {}
	if budget > 0 {
		stopBudget = a.watchBudget(runCtx, stopRun, j, budget, a.cloud().SpotPrices())
	}
	endStartupGC(a.Getenv)
	runErr := engine.Run(runCtx, p, j, engine.Options{
		Registry:    a.registry(),
		Concurrency: concurrency,
		Hard:        a.Hard,
		Env:         environMap(),
		Events:      rep.Event,
		Detach:      detach,
	})
	stopDetach()
	stopBudget()
	var over *BudgetError
	if runErr != nil && errors.As(context.Cause(runCtx), &over) && ctx.Err() == nil {
		// Stopped by the budget, not by the user: a failure (exit 1).
		runErr = over
	}
	if a.local != nil {
		_ = a.local.Close()
	}
	// The run context may be cancelled already; the final save must still happen.
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	closeErr := j.Close(closeCtx)
	rep.Finish(j.Snapshot(), runErr)
	if runErr != nil {
		return reported{runErr}
	}
	if closeErr != nil {
		return fmt.Errorf("save final state of run %s: %w", j.RunID(), closeErr)
	}
	return nil
}

func environMap() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}
