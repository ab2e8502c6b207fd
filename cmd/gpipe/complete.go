package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gpipe/gpipe/pipeline/state"
)

// The shell completion scripts (gpipe completion bash|zsh|fish) only pass
// the words typed so far to the hidden command `gpipe __complete WORD...`,
// whose last word is the one being completed (possibly empty), and offer
// the lines it prints. All the logic is here, in Go, where it is tested.
// A candidate ending in "/" is a directory: the scripts add no space after
// it, so the user can go on into it.

// completeCommand is the hidden command the completion scripts call.
const completeCommand = "__complete"

func (a *App) completeMain(ctx context.Context, words []string) error {
	for _, c := range a.complete(ctx, words) {
		fmt.Fprintln(a.Stdout, c)
	}
	return nil
}

// complete returns the candidates for the last of words (the words after
// "gpipe"), in the order to offer them.
func (a *App) complete(ctx context.Context, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur := words[len(words)-1]
	cmds := a.commands()
	if len(words) == 1 {
		if strings.HasPrefix(cur, "-") {
			return withPrefix(cur, []string{"--help", "--version"})
		}
		return withPrefix(cur, visibleCommands(cmds))
	}
	name := words[0]
	if name == "help" {
		if len(words) == 2 {
			return withPrefix(cur, visibleCommands(cmds))
		}
		return nil
	}
	c, ok := cmds[name]
	if !ok {
		return nil
	}
	fs := newFlagSet(name, c.args, c.summary, io.Discard)
	c.setup(a, fs)
	typed := words[1 : len(words)-1]
	// Walk what was typed: positional arguments, and whether the word before
	// the current one is a flag waiting for its value.
	var pos []string
	var pending *flag.Flag
	stateURL := ""
	for i := 0; i < len(typed); i++ {
		w := typed[i]
		if w == "--" {
			pos = append(pos, typed[i+1:]...)
			break
		}
		if !strings.HasPrefix(w, "-") || w == "-" {
			pos = append(pos, w)
			continue
		}
		fname, val, hasVal := strings.Cut(strings.TrimLeft(w, "-"), "=")
		f := fs.Lookup(fname)
		if f == nil {
			continue
		}
		if isBoolFlag(f) || hasVal {
			if fname == "state" {
				stateURL = val
			}
			continue
		}
		if i+1 == len(typed) {
			pending = f
			break
		}
		if fname == "state" {
			stateURL = typed[i+1]
		}
		i++
	}
	if pending != nil {
		return a.completeFlagValue(ctx, name, pending.Name, cur, stateURL, pos)
	}
	if strings.HasPrefix(cur, "-") {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, flagName(f.Name)) })
		return withPrefix(cur, names)
	}
	return a.completeArg(ctx, name, argKind(c.args, len(pos)), cur, stateURL, pos)
}

// argKind is the name of the n-th positional argument in a command's
// argument line ("RUN_ID [STEP]" → RUN_ID, STEP), or "" past the end.
func argKind(spec string, n int) string {
	for i, f := range strings.Fields(spec) {
		name, variadic := strings.CutSuffix(strings.Trim(f, "[]"), "...")
		if i == n || (variadic && i < n) {
			return name
		}
	}
	return ""
}

func (a *App) completeArg(ctx context.Context, cmd, kind, cur, stateURL string, pos []string) []string {
	switch kind {
	case "SPEC":
		return specFiles(cur)
	case "RUN_ID":
		return withPrefix(cur, a.completeRunIDs(ctx, stateURL))
	case "STEP":
		if len(pos) > 0 {
			return withPrefix(cur, a.completeStepIDs(ctx, stateURL, pos[0]))
		}
	case "SHELL":
		return withPrefix(cur, completionShells())
	}
	return nil
}

func (a *App) completeFlagValue(ctx context.Context, cmd, flagName, cur, stateURL string, pos []string) []string {
	switch {
	case flagName == "spec":
		return specFiles(cur)
	case flagName == "from" && len(pos) > 0:
		return withPrefix(cur, a.completeStepIDs(ctx, stateURL, pos[0]))
	case flagName == "format" && cmd == "plan":
		return withPrefix(cur, []string{"text", "mermaid", "dot", "json"})
	case flagName == "format" && cmd == "report":
		return withPrefix(cur, []string{"markdown", "json"})
	case flagName == "state" && !strings.Contains(cur, "://"):
		return dirs(cur)
	}
	return nil
}

// completeRunIDs lists the store's runs, newest first, then "latest".
// Completion must never fail loudly: an unreachable store offers nothing.
func (a *App) completeRunIDs(ctx context.Context, stateURL string) []string {
	st, _, err := a.openStore(ctx, stateURL, "")
	if err != nil {
		return nil
	}
	ids, err := st.List(ctx)
	if err != nil {
		return nil
	}
	runs := readRuns(ctx, st, ids)
	newestFirst(runs)
	out := make([]string, 0, len(runs)+1)
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return append(out, latestRun)
}

// completeStepIDs lists a run's steps: the matrix steps' spec ids (which
// stand for all their copies) and every expanded id, in the run's order.
func (a *App) completeStepIDs(ctx context.Context, stateURL, typedRun string) []string {
	st, url, err := a.openStore(ctx, stateURL, "")
	if err != nil {
		return nil
	}
	runID, err := resolveRunID(ctx, st, url, typedRun)
	if err != nil {
		return nil
	}
	run, err := state.Read(ctx, st, runID)
	if err != nil {
		return nil
	}
	var out []string
	if sp := a.runSpec(ctx, st, run); sp != nil {
		for i := range sp.Steps {
			if len(sp.Steps[i].Matrix) > 0 {
				out = append(out, sp.Steps[i].ID)
			}
		}
	}
	for _, id := range run.Order {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// specFiles offers the *.yaml and *.yml files and the directories that
// complete cur, as the shell would name them.
func specFiles(cur string) []string {
	return listDir(cur, func(name string) bool {
		return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
	})
}

func dirs(cur string) []string { return listDir(cur, func(string) bool { return false }) }

func listDir(cur string, want func(string) bool) []string {
	dir, base := filepath.Split(cur)
	readDir := dir
	if readDir == "" {
		readDir = "."
	}
	ents, err := os.ReadDir(readDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, base) || (strings.HasPrefix(name, ".") && !strings.HasPrefix(base, ".")) {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if fi, err := os.Stat(filepath.Join(readDir, name)); err == nil {
				isDir = fi.IsDir()
			}
		}
		switch {
		case isDir:
			out = append(out, dir+name+"/")
		case want(name):
			out = append(out, dir+name)
		}
	}
	return out
}

func withPrefix(cur string, cands []string) []string {
	var out []string
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			out = append(out, c)
		}
	}
	return out
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
