package main

import (
	"context"
	"flag"
	"io"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps"
	"github.com/gpipe/gpipe/steps/aws"
)

// reportOptions are the summary options of every report the command writes:
// the store (for the commands it suggests), what the AWS steps provision and
// its prices (runCosts), and the outputs the step types declare worth a
// column.
func reportOptions(storeURL string, prices report.Pricer) report.Options {
	return report.Options{StateURL: storeURL, Resources: aws.Resources{}, Pricer: prices, KeyOutputs: keyOutputs()}
}

// keyOutputs are the outputs the registered step types declare. A registry
// built without executors or clients only answers questions: it runs nothing.
func keyOutputs() []string {
	return steps.NewRegistry(&steps.Executors{}, &aws.Steps{}).KeyOutputs()
}

func (a *App) printStatus(ctx context.Context, w io.Writer, run *state.Run, storeURL string) error {
	return report.Table(w, run, reportOptions(storeURL, a.reportCosts(ctx, run)))
}

func (a *App) setupReport(fs *flag.FlagSet) handler {
	stateURL := stateFlag(fs)
	format := fs.String("format", "markdown", "markdown or json")
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 1, 1); err != nil {
			return err
		}
		run, url, err := a.readRun(ctx, *stateURL, args[0])
		if err != nil {
			return err
		}
		opt := reportOptions(url, a.reportCosts(ctx, run))
		switch *format {
		case "markdown":
			return report.Markdown(a.Stdout, run, opt)
		case "json":
			return report.JSON(a.Stdout, run, opt)
		default:
			return usagef("--format %q: want markdown or json", *format)
		}
	}
}
