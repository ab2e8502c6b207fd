package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gpipe/gpipe/internal/suggest"
	"github.com/gpipe/gpipe/pipeline/state"
)

// latestRun is the run id that means the newest run in the store.
const latestRun = "latest"

// resolveRunID turns the RUN_ID a user typed into the id of a run in st: the
// id itself when such a run exists, "latest" for the newest run (by creation
// time), or the one run whose id starts with what was typed. A run literally
// named "latest" wins over the newest run, so no run becomes unreachable.
// An unknown id or an ambiguous prefix is a usage error that names the
// candidates; it wraps state.ErrNotFound when no run matched at all.
// This is the one resolver every command taking a RUN_ID uses.
func resolveRunID(ctx context.Context, st state.Store, storeURL, typed string) (string, error) {
	if _, _, err := st.Load(ctx, typed); err == nil {
		return typed, nil
	} else if !errors.Is(err, state.ErrNotFound) {
		return "", err // the store's error names the run and the store
	}
	ids, err := st.List(ctx)
	if err != nil {
		return "", err // the store names itself
	}
	if typed == latestRun {
		runs := readRuns(ctx, st, ids)
		if len(runs) == 0 {
			return "", &UsageError{Msg: fmt.Sprintf("no runs in %s, so no latest run", storeURL), Err: state.ErrNotFound}
		}
		newestFirst(runs)
		return runs[0].ID, nil
	}
	var matches []string
	for _, id := range ids {
		if strings.HasPrefix(id, typed) {
			matches = append(matches, id)
		}
	}
	slices.Sort(matches)
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", &UsageError{Err: state.ErrNotFound, Msg: fmt.Sprintf(
			"no run %s in %s%s (gpipe runs --state %s lists the runs there)",
			typed, storeURL, suggest.DidYouMean(typed, ids), storeURL)}
	}
	const show = 10
	list := strings.Join(matches[:min(len(matches), show)], ", ")
	if len(matches) > show {
		list += fmt.Sprintf(", and %d more", len(matches)-show)
	}
	return "", usagef("run id %q is ambiguous in %s: %d runs start with it (%s); type more of it", typed, storeURL, len(matches), list)
}
