package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"sort"
	"text/tabwriter"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/aws/cfn"
	"github.com/gpipe/gpipe/steps/host"
)

// cloud returns the AWS steps; configuration loads on first use only.
func (a *App) cloud() *aws.Steps {
	if a.aws == nil {
		a.aws = aws.New(aws.Options{LoadConfig: a.loadAWSConfig})
	}
	return a.aws
}

// defaultAWSResponseTimeout bounds the wait for an AWS API response's
// headers. The SDK's default client has no such bound, so an endpoint that
// accepts connections and never answers (a black-holed proxy, an emulator
// that froze) hung gpipe forever, `gpipe teardown` included. A timeout is
// retried by the SDK like any transient error. API calls answer in seconds;
// long waits (stack creation) are polls, each one call.
const defaultAWSResponseTimeout = time.Minute

// loadAWSConfig is config.LoadDefaultConfig with that bound;
// GPIPE_AWS_RESPONSE_TIMEOUT (a Go duration) replaces it.
func (a *App) loadAWSConfig(ctx context.Context, region string) (sdkaws.Config, error) {
	timeout := defaultAWSResponseTimeout
	if v := a.Getenv("GPIPE_AWS_RESPONSE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return sdkaws.Config{}, fmt.Errorf("GPIPE_AWS_RESPONSE_TIMEOUT=%q: want a positive duration such as 90s", v)
		}
		timeout = d
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.ResponseHeaderTimeout = timeout })
	// The SDK logs some failures as it meets them (an instance metadata
	// service refusing a token: "WARN falling back to IMDSv1") and then
	// returns an error saying the same, which gpipe prints: the message
	// appeared twice, the first time not even from gpipe. Its error is enough.
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(hc), config.WithLogger(logging.Nop{})}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	return config.LoadDefaultConfig(ctx, opts...)
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
		run, err := state.Read(ctx, st, runID)
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return err // the store names the run and itself
		}
		// This command is for runs whose runner is gone (or detached): a live
		// runner would lose its instance mid-step.
		if run != nil && !*force {
			if err := state.CheckHeld(run, state.LeaseOptions{}); err != nil {
				return err
			}
		}
		// The stacks live where the run provisioned them, which its state
		// records; --region overrides, the SDK's configuration is the last resort.
		where := *region
		if where == "" {
			where = runRegion(run)
		}
		cl, err := a.cloud().Clients(ctx, where)
		if err != nil {
			return err
		}
		names := map[string]bool{}
		if run != nil {
			for _, s := range run.Steps {
				if s.Type != "provision-stack" {
					continue
				}
				for _, n := range []string{s.Outputs["stack_name"], s.Resume["stack_name"]} {
					if n != "" {
						names[n] = true
					}
				}
			}
		}
		// Stacks tagged with the run id cover a provision step that was
		// interrupted before its stack name reached the state.
		tagged, err := cfn.ListGpipeStacks(ctx, cl.CFN)
		if err != nil {
			return fmt.Errorf("list gpipe stacks: %w", err)
		}
		for _, s := range tagged {
			if s.RunID == runID {
				names[s.Name] = true
			}
		}
		if len(names) == 0 {
			fmt.Fprintf(a.Stdout, "run %s has no stacks left\n", runID)
			return nil
		}
		var failed []error
		gone := map[string]bool{}
		for _, n := range sortedKeys(names) {
			fmt.Fprintf(a.Stdout, "deleting stack %s\n", n)
			err := cfn.Teardown(ctx, cl, cfn.TeardownOptions{EmptyBuckets: !*keepBuckets, Log: a.Stdout}, n)
			if err != nil {
				failed = append(failed, fmt.Errorf("delete stack %s: %w", n, err))
				continue
			}
			gone[n] = true
		}
		if run != nil {
			if err := a.recordReleased(ctx, st, runID, gone, *force); err != nil {
				failed = append(failed, err)
			}
		}
		return errors.Join(failed...)
	}
}

// runRegion is the region a run's provision steps reported, "" when none
// did (the run never got that far, or its state is gone).
func runRegion(run *state.Run) string {
	if run == nil {
		return ""
	}
	for _, id := range run.Order {
		if s := run.Steps[id]; s != nil && s.Type == "provision-stack" && s.Outputs["region"] != "" {
			return s.Outputs["region"]
		}
	}
	return ""
}

// storeRegions are the regions the store's runs provisioned in, sorted, so
// gc looks where gpipe made stacks without being told.
func storeRegions(ctx context.Context, st state.Store) ([]string, error) {
	ids, err := st.List(ctx)
	if err != nil {
		return nil, err // the store names itself
	}
	seen := map[string]bool{}
	for _, r := range readRuns(ctx, st, ids) {
		if rg := runRegion(r); rg != "" {
			seen[rg] = true
		}
	}
	return sortedKeys(seen), nil
}

// recordReleased notes in the run's state when the stacks of its provision
// steps were deleted, so that its status and cost stop counting an instance
// that is gone, and a resume provisions again rather than reusing a stack that
// no longer exists.
func (a *App) recordReleased(ctx context.Context, st state.Store, runID string, gone map[string]bool, force bool) error {
	if len(gone) == 0 {
		return nil
	}
	j, err := state.Acquire(ctx, st, runID, a.leaseOptions(force))
	if err != nil {
		return fmt.Errorf("record the deleted stacks in run %s: %w", runID, err)
	}
	now := time.Now().UTC()
	err = j.Update(ctx, func(r *state.Run) {
		for _, s := range r.Steps {
			if s.Type != "provision-stack" || s.Released != nil {
				continue
			}
			if gone[s.Outputs["stack_name"]] || gone[s.Resume["stack_name"]] {
				s.Released = &now
			}
		}
	})
	if cerr := j.Close(context.WithoutCancel(ctx)); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record the deleted stacks in run %s: %w", runID, err)
	}
	return nil
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
		// --region, else the regions the store's runs provisioned in and the
		// SDK's configured one ("", for stacks of runs this store lacks).
		regions := []string{*region}
		if *region == "" {
			rs, err := storeRegions(ctx, st)
			if err != nil {
				return err
			}
			regions = append(rs, "")
		}
		looked := map[string]bool{}
		tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STACK\tRUN ID\tSTACK STATUS\tWHY")
		type strayStack struct {
			cfn.StackInfo
			cl *cfn.Clients
		}
		var stray []strayStack
		for _, rg := range regions {
			cl, err := a.cloud().Clients(ctx, rg)
			if rg == "" && len(regions) > 1 && errors.Is(err, aws.ErrNoRegion) {
				continue // no default region: the recorded ones are all there is
			}
			if err != nil {
				return err
			}
			if looked[cl.Region] {
				continue
			}
			looked[cl.Region] = true
			stacks, err := cfn.ListGpipeStacks(ctx, cl.CFN)
			if err != nil {
				return fmt.Errorf("list gpipe stacks in %s: %w", cl.Region, err)
			}
			for _, s := range stacks {
				why, err := strayReason(ctx, st, s.RunID, time.Now())
				if err != nil {
					return fmt.Errorf("check run %s in %s: %w", s.RunID, url, err)
				}
				if why == "" {
					continue
				}
				stray = append(stray, strayStack{s, cl})
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.RunID, s.Status, why)
			}
		}
		tw.Flush()
		if !*yes {
			if len(stray) > 0 {
				fmt.Fprintf(a.Stdout, "\n%d stack(s) to delete; run again with --yes to delete them\n", len(stray))
			}
			return nil
		}
		var failed []error
		for _, s := range stray {
			if err := cfn.Teardown(ctx, s.cl, cfn.TeardownOptions{EmptyBuckets: true, Log: a.Stdout}, s.Name); err != nil {
				failed = append(failed, fmt.Errorf("delete stack %s: %w", s.Name, err))
			}
		}
		return errors.Join(failed...)
	}
}

// strayReason says why a run's stacks may go, or "" while a runner still
// drives it: the run finished, its lease expired, or the store has no such run.
func strayReason(ctx context.Context, st state.Store, runID string, now time.Time) (string, error) {
	run, err := state.Read(ctx, st, runID)
	if errors.Is(err, state.ErrNotFound) {
		return "run not in this state store", nil
	}
	if err != nil {
		return "", err
	}
	switch {
	case run.Status == state.RunSucceeded || run.Status == state.RunFailed || run.Status == state.RunInterrupted:
		return "run " + string(run.Status), nil
	case run.Status == state.RunDetached:
		// Left running on purpose (--detach-after) for a resume to reattach
		// to; `gpipe teardown RUN_ID` ends it, the instance's max_lifetime
		// guard bounds it.
		return "", nil
	case run.Lease == nil:
		return "run has no runner", nil
	case now.After(run.Lease.Expires):
		return "runner's lease expired " + run.Lease.Expires.UTC().Format(time.RFC3339), nil
	case state.CheckHeld(run, state.LeaseOptions{Now: func() time.Time { return now }}) == nil:
		return fmt.Sprintf("runner (pid %d on this host) is gone", run.Lease.PID), nil
	}
	return "", nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
