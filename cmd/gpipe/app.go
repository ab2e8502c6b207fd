package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/schemas"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/host"
)

// App holds what every command needs from the outside world, so tests can run
// gpipe in-process with their own streams and environment.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Hard is cancelled by a second interrupt: cleanup steps stop too.
	Hard context.Context

	aws   *aws.Steps   // created on first use
	specs *spec.Loader // created on first use; compiles the schema once
	local *host.Local  // created with the registry; Close removes its files
	// signals lets run/resume --detach-on-signal take the first signal.
	signals *signalRoute
	// stderr is Stderr when runMain made it: the live view routes it (termout.go).
	stderr *routedWriter
	// Terminal says whether a stream is a terminal; nil checks for real
	// (tests pretend, to answer run's confirmation).
	Terminal func(any) bool
}

type handler func(ctx context.Context, fs *flag.FlagSet, args []string) error

type subcommand struct {
	args    string
	summary string
	// setup declares the command's flags and returns what runs it.
	setup func(a *App, fs *flag.FlagSet) handler
}

func (a *App) commands() map[string]subcommand {
	return map[string]subcommand{
		"run":        {"SPEC", "Run a pipeline spec from the start.", (*App).setupRun},
		"resume":     {"RUN_ID", "Continue a run: reuse succeeded steps, rerun the rest.", (*App).setupResume},
		"validate":   {"SPEC...", "Check specs against the schema and the semantic rules.", (*App).setupValidate},
		"plan":       {"SPEC", "Show the steps a spec would run, as text, mermaid, dot or json.", (*App).setupPlan},
		"status":     {"RUN_ID", "Show a run's steps: status, attempts, duration, outputs.", (*App).setupStatus},
		"runs":       {"", "List runs in the state store, newest first.", (*App).setupRuns},
		"logs":       {"RUN_ID [STEP]", "Print the logs of a run's steps; --follow to keep reading.", (*App).setupLogs},
		"report":     {"RUN_ID", "Write a run's summary as markdown or json.", (*App).setupReport},
		"schema":     {"", "Print the JSON Schema of a spec.", setupPrint(schemas.Pipeline)},
		"template":   {"", "Print the built-in CloudFormation template of provision-stack.", setupPrint(aws.Template)},
		"teardown":   {"RUN_ID", "Delete the CloudFormation stacks a run provisioned.", (*App).setupTeardown},
		"gc":         {"", "List (and with --yes delete) stacks of finished or abandoned runs.", (*App).setupGC},
		"iam-policy": {"[SPEC]", "Print the IAM policy a runner needs for a spec (or, with --trust, the GitHub role's trust policy).", (*App).setupIAMPolicy},
		"version":    {"", "Print gpipe's version.", (*App).setupVersion},
		"rm":         {"RUN_ID...", "Delete runs from the state store: state, spec snapshots, logs.", (*App).setupRm},
		"completion": {"SHELL", "Print the shell completion script for bash, zsh or fish.", (*App).setupCompletion},
	}
}

// Main runs one gpipe command line.
func (a *App) Main(ctx context.Context, args []string) error {
	cmds := a.commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			return a.Main(ctx, []string{args[1], "--help"})
		}
		a.usage(a.Stdout, cmds)
		if len(args) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	if args[0] == completeCommand {
		return a.completeMain(ctx, args[1:]) // words, not flags: parsed by the completer
	}
	if args[0] == "--version" {
		args[0] = "version"
	}
	c, ok := cmds[args[0]]
	if !ok {
		return unknownCommand(args[0], visibleCommands(cmds))
	}
	fs := newFlagSet(args[0], c.args, c.summary, io.Discard)
	h := c.setup(a, fs)
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(a.Stdout)
		fs.Usage()
		return nil
	}
	if err != nil {
		return flagError(fs, args[0], err)
	}
	if err := checkArgs(args[0], c.args, pos); err != nil {
		return err
	}
	if strings.HasPrefix(c.args, "RUN_ID") && len(pos) > 0 {
		if err := checkRunID(pos[0]); err != nil {
			return err
		}
	}
	return h(ctx, fs, pos)
}

// checkRunID refuses a run id no store can hold, and one that starts with
// "-", which reads as a flag in every later command that names the run. Both
// are usage errors wherever a run id is given.
func checkRunID(id string) error {
	if strings.HasPrefix(id, "-") {
		return usagef("run id %q starts with \"-\"; run ids start with a letter or digit", id)
	}
	if err := state.CheckName("run id", id); err != nil {
		return usagef("%v", err)
	}
	return nil
}

func (a *App) usage(w io.Writer, cmds map[string]subcommand) {
	names := visibleCommands(cmds)
	fmt.Fprintln(w, "gpipe runs declarative ML training pipelines.\n\nusage: gpipe COMMAND [flags] [args]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'gpipe COMMAND --help' for a command's flags.\n"+
		"Exit codes: 0 success, 1 pipeline failed, 2 bad usage or invalid spec,\n"+
		"3 run held by another runner or changed underneath, 4 detached (steps still\n"+
		"run remotely; resume the run to reattach), 130 interrupted.")
}

// setupPrint is the setup of a command that prints fixed content.
func setupPrint(content func() []byte) func(*App, *flag.FlagSet) handler {
	return func(a *App, fs *flag.FlagSet) handler {
		return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
			if err := wantArgs(fs, args, 0, 0); err != nil {
				return err
			}
			_, err := a.Stdout.Write(content())
			return err
		}
	}
}

// wantArgs checks the count of positional arguments where it depends on the
// flags (iam-policy --trust takes no SPEC); Main has checked them against
// the command's argument line already. Its errors name what is missing.
func wantArgs(fs *flag.FlagSet, args []string, min, max int) error {
	cmd := strings.TrimPrefix(fs.Name(), "gpipe ")
	hint := fmt.Sprintf("gpipe %s --help shows its usage and examples", cmd)
	switch {
	case len(args) < min:
		var names []string
		for _, f := range strings.Fields((&App{}).commands()[cmd].args) {
			names = append(names, strings.TrimSuffix(strings.Trim(f, "[]"), "..."))
		}
		missing := "an argument"
		if len(names) >= min {
			missing = strings.Join(names[len(args):min], " ")
		}
		return &UsageError{Msg: fmt.Sprintf("gpipe %s: missing %s", cmd, missing), Hint: hint}
	case max >= 0 && len(args) > max:
		return &UsageError{Msg: fmt.Sprintf("gpipe %s: unexpected argument %q", cmd, args[max]), Hint: hint}
	}
	return nil
}
