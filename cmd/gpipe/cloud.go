package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/aws/lifecycle"
	"github.com/gpipe/gpipe/steps/host"
)

// cloud returns the AWS steps; configuration loads on first use only, by
// internal/awsconfig's rules, reading gpipe's variables through a.Getenv.
func (a *App) cloud() *aws.Steps {
	if a.aws == nil {
		a.aws = aws.New(aws.Options{Getenv: a.Getenv})
	}
	return a.aws
}

func (a *App) registry() pipeline.Registry {
	cloud := a.cloud()
	if a.local == nil {
		a.local = &host.Local{}
		if a.Hard != nil {
			// A second interrupt SIGKILLs running steps' groups at once.
			a.local.Hard = a.Hard.Done()
		}
	}
	ex := &steps.Executors{
		Local: a.local,
		SSM:   cloud.SSMExecutor,
	}
	return steps.NewRegistry(ex, cloud)
}

func (a *App) setupIAMPolicy(fs *flag.FlagSet) handler {
	stateURL := stateFlag(fs)
	var params multiFlag
	fs.Var(&params, "p", "set a parameter, name=value (repeatable); buckets given as params are scoped in the policy")
	trust := fs.String("trust", "", "instead, print the trust policy of the role GitHub Actions assumes: github:OWNER/REPO[:SUBJECT]")
	account := fs.String("account", "", "with --trust: the AWS account id whose GitHub OIDC provider the role trusts")
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if *trust != "" {
			if err := wantArgs(fs, args, 0, 0); err != nil {
				return err
			}
			policy, err := aws.TrustPolicy(*trust, *account)
			if err != nil {
				return fmt.Errorf("--trust: %w", err)
			}
			_, err = fmt.Fprint(a.Stdout, string(policy))
			return err
		}
		if err := wantArgs(fs, args, 1, 1); err != nil {
			return err
		}
		sp, given, err := a.loadSpecParams(ctx, args[0], params)
		if err != nil {
			return err
		}
		if err := withParamsResolved(sp, given); err != nil {
			return err
		}
		// The policy covers an s3:// store; the default local one needs none.
		policy, err := aws.IAMPolicy(sp, a.stateURL(*stateURL, sp.State))
		if err != nil {
			return fmt.Errorf("IAM policy for %s: %w", args[0], err)
		}
		_, err = fmt.Fprintf(a.Stdout, "%s\n", policy)
		return err
	}
}

// stacks is the stack lifecycle policy (package lifecycle) over a store.
func (a *App) stacks(st state.Store, url string) *lifecycle.Stacks {
	return &lifecycle.Stacks{Store: st, URL: url, Clients: a.cloud().Clients, Log: a.Stdout}
}

func (a *App) setupTeardown(fs *flag.FlagSet) handler {
	stateURL := stateFlag(fs)
	region := fs.String("region", "", "AWS region of the stacks (default: the SDK's configured region)")
	keepBuckets := fs.Bool("keep-buckets", false, "do not empty the buckets the stacks own (deletion then fails if they hold objects)")
	force := fs.Bool("force", false, "delete even though a live runner drives the run (it will fail on its instance)")
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 1, 1); err != nil {
			return err
		}
		st, url, err := a.openStore(ctx, *stateURL, "")
		if err != nil {
			return err
		}
		// A run whose state is gone may still have tagged stacks: an id
		// that names no run is taken as typed.
		runID, err := resolveRunID(ctx, st, url, args[0])
		if errors.Is(err, state.ErrNotFound) && args[0] != latestRun {
			runID, err = args[0], nil
		}
		if err != nil {
			return err
		}
		return a.stacks(st, url).Teardown(ctx, runID, lifecycle.TeardownOptions{Region: *region, KeepBuckets: *keepBuckets, Force: *force})
	}
}

func (a *App) setupGC(fs *flag.FlagSet) handler {
	stateURL := stateFlag(fs)
	region := fs.String("region", "", "AWS region to look in (default: the regions the store's runs provisioned in, else the SDK's configured region)")
	yes := fs.Bool("yes", false, "delete the stacks listed (default: only list them)")
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 0, 0); err != nil {
			return err
		}
		st, url, err := a.openStore(ctx, *stateURL, "")
		if err != nil {
			return err
		}
		var runs []*state.Run
		if *region == "" {
			ids, err := st.List(ctx)
			if err != nil {
				return err // the store names itself
			}
			runs = readRuns(ctx, st, ids)
		}
		stacks := a.stacks(st, url)
		stray, err := stacks.Strays(ctx, lifecycle.GCRegions(*region, runs))
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STACK\tRUN ID\tSTACK STATUS\tWHY")
		for _, s := range stray {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.RunID, s.Status, s.Why)
		}
		tw.Flush()
		if !*yes {
			if len(stray) > 0 {
				fmt.Fprintf(a.Stdout, "\n%d stack(s) to delete; run again with --yes to delete them\n", len(stray))
			}
			return nil
		}
		return stacks.Delete(ctx, stray)
	}
}
