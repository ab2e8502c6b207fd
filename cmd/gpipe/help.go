package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gpipe/gpipe/internal/suggest"
)

// commandExamples are the examples every command's help ends with (a test
// checks each command has some). They are kept apart from commands() so
// that adding a command touches one line there.
func commandExamples(name string) []string {
	return map[string][]string{
		"run": {
			"gpipe run -p results_bucket=my-results specs/unet-brain.yaml",
			"gpipe run --dry-run specs/unet-brain-5fold.yaml",
			"gpipe run --state s3://my-bucket/gpipe --run-id nightly --resume-existing --yes specs/unet-brain.yaml",
		},
		"resume": {
			"gpipe resume latest",
			"gpipe resume --from train RUN_ID         # rerun train (every matrix copy) and what follows",
			"gpipe resume --plan --spec edited.yaml RUN_ID",
		},
		"validate": {"gpipe validate specs/*.yaml"},
		"plan": {
			"gpipe plan specs/unet-brain.yaml",
			"gpipe plan --format mermaid specs/unet-brain-5fold.yaml",
			"gpipe plan --scripts -p results_bucket=b specs/unet-brain.yaml",
		},
		"status":   {"gpipe status latest", "gpipe status --json unet-brain-2026"},
		"runs":     {"gpipe runs", "gpipe runs --state s3://my-bucket/gpipe", "gpipe runs --prune --older-than 720h"},
		"logs":     {"gpipe logs latest", "gpipe logs --follow RUN_ID train   # every copy of a matrix step"},
		"report":   {"gpipe report latest > summary.md", "gpipe report --format json RUN_ID"},
		"schema":   {"gpipe schema > pipeline.schema.json"},
		"template": {"gpipe template > template.yaml"},
		"teardown": {"gpipe teardown latest", "gpipe teardown --region us-east-1 RUN_ID"},
		"gc":       {"gpipe gc --region us-east-1", "gpipe gc --region us-east-1 --yes"},
		"iam-policy": {
			"gpipe iam-policy -p results_bucket=my-results specs/unet-brain.yaml > policy.json",
		},
		"version": {"gpipe version", "gpipe --version"},
		"rm":      {"gpipe rm RUN_ID", "gpipe rm --state s3://my-bucket/gpipe RUN_ID OTHER_RUN_ID"},
		"completion": {
			"gpipe completion bash > ~/.local/share/bash-completion/completions/gpipe",
			"source <(gpipe completion bash)          # this shell only",
			"gpipe completion zsh > \"${fpath[1]}/_gpipe\"",
			"gpipe completion fish > ~/.config/fish/completions/gpipe.fish",
		},
	}[name]
}

// flagName is how help and errors spell a flag: --name, or -p for a
// one-letter flag, as the README does. Go's flag package takes both.
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// printHelp writes a command's help: usage, summary, flags and examples.
func printHelp(w io.Writer, fs *flag.FlagSet, name, args, summary string) {
	fmt.Fprintf(w, "usage: gpipe %s [flags] %s\n\n%s\n", name, args, summary)
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	if len(flags) > 0 {
		fmt.Fprintln(w, "\nflags:")
	}
	for _, f := range flags {
		arg, usage := flag.UnquoteUsage(f)
		line := "  " + flagName(f.Name)
		if arg != "" {
			line += " " + flagArgName(f.Name, arg)
		}
		fmt.Fprintln(w, line)
		if !isZeroDefault(f.DefValue) {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "      %s\n", usage)
	}
	if ex := commandExamples(name); len(ex) > 0 {
		fmt.Fprintln(w, "\nexamples:")
		for _, e := range ex {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// flagArgName names a flag's value in help: the README's word for the
// flags it shows, the `NAME` its usage quotes, else one from its type.
func flagArgName(name, typ string) string {
	if w, ok := map[string]string{
		"state": "URL", "from": "STEP", "spec": "FILE", "p": "NAME=VALUE", "run-id": "ID", "budget": "DOLLARS",
		"region": "REGION", "format": "FORMAT", "detach-after": "DURATION", "older-than": "DURATION",
	}[name]; ok {
		return w
	}
	switch typ {
	case "string", "value":
		return "VALUE"
	case "int", "uint":
		return "N"
	case "float":
		return "NUMBER"
	case "duration":
		return "DURATION"
	}
	return typ // a `NAME` in the flag's usage
}

func isZeroDefault(v string) bool {
	switch v {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// unknownCommand is the error for a command gpipe does not have.
func unknownCommand(name string, names []string) error {
	return &UsageError{Msg: fmt.Sprintf("unknown command %q%s", name, suggest.DidYouMean(name, names)),
		Hint: "gpipe --help lists the commands"}
}

// flagError rewrites an error of Go's flag package as one line in the
// README's spelling, with a did-you-mean for an unknown flag; the hint
// points at the command's help instead of printing it all.
func flagError(fs *flag.FlagSet, cmd string, err error) error {
	msg := err.Error()
	hint := fmt.Sprintf("gpipe %s --help lists its flags", cmd)
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var known []string
		fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
		name = strings.TrimPrefix(name, "-")
		mean := ""
		if best := suggest.Closest(name, known); best != "" {
			mean = fmt.Sprintf(" (did you mean %s?)", flagName(best))
		}
		return &UsageError{Msg: fmt.Sprintf("gpipe %s: unknown flag %s%s", cmd, flagName(name), mean), Hint: hint}
	}
	// The other messages name the flag as -name; say --name.
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) > 1 {
			msg = strings.Replace(msg, "flag -"+f.Name+":", "flag "+flagName(f.Name)+":", 1)
			msg = strings.Replace(msg, "for -"+f.Name+":", "for "+flagName(f.Name)+":", 1)
			msg = strings.Replace(msg, "argument: -"+f.Name, "argument: "+flagName(f.Name), 1)
		}
	})
	return &UsageError{Msg: fmt.Sprintf("gpipe %s: %s", cmd, msg), Hint: hint}
}

// checkArgs checks positional arguments against a command's argument line
// ("RUN_ID [STEP]", "SPEC...", "RUN_ID..."): a missing one is named, an
// extra one quoted.
func checkArgs(cmd, spec string, pos []string) error {
	var required []string
	optional, variadic := 0, false
	for _, w := range strings.Fields(spec) {
		switch {
		case strings.HasPrefix(w, "["):
			optional++
			variadic = variadic || strings.HasSuffix(w, "...]")
		case strings.HasSuffix(w, "..."):
			required = append(required, strings.TrimSuffix(w, "..."))
			variadic = true
		default:
			required = append(required, w)
		}
	}
	hint := fmt.Sprintf("gpipe %s --help shows its usage and examples", cmd)
	if len(pos) < len(required) {
		return &UsageError{Msg: fmt.Sprintf("gpipe %s: missing %s", cmd, strings.Join(required[len(pos):], " ")), Hint: hint}
	}
	if !variadic && len(pos) > len(required)+optional {
		extra := pos[len(required)+optional]
		takes := fmt.Sprintf("usage: gpipe %s [flags] %s", cmd, spec)
		if spec == "" {
			takes = fmt.Sprintf("gpipe %s takes no arguments", cmd)
		}
		return &UsageError{Msg: fmt.Sprintf("gpipe %s: unexpected argument %q (%s)", cmd, extra, takes), Hint: hint}
	}
	return nil
}

// usageHint is the hint a usage error carries, if any.
func usageHint(err error) string {
	var u *UsageError
	if errors.As(err, &u) {
		return u.Hint
	}
	return ""
}

// visibleCommands are the command names help lists and suggests, sorted.
// (The hidden __complete is not among the commands.)
func visibleCommands(cmds map[string]subcommand) []string {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
