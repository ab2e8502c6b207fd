package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// More journal semantics, some through state.Journal as the engine uses it:
//   - A Save and an Append at one version: exactly one wins, and the loser
//     changed nothing.
//   - A runner whose run was taken over loses: its next write conflicts and
//     the new runner's state has none of the old runner's later changes.
//   - What a Journal made durable (records and snapshots mixed) is what a
//     fresh store over the same backing data reads, and a runner resuming
//     there goes on appending.
var journalRunTests = []struct {
	name string
	fn   func(t *testing.T, s state.Appender, reopen func(state.Store) state.Store)
}{
	{"JournalSaveAppendRace", func(t *testing.T, s state.Appender, _ func(state.Store) state.Store) {
		testJournalSaveAppendRace(t, s)
	}},
	{"JournalStaleRunnerLoses", testJournalStaleRunnerLoses},
	{"JournalReopen", testJournalReopen},
}

func testJournalSaveAppendRace(t *testing.T, s state.Appender) {
	ctx := ctxFor(t)
	v, err := s.Create(ctx, "race", []byte("snap-0"))
	if err != nil {
		t.Fatal(err)
	}
	v = mustAppend(t, ctx, s, "race", "rec-0", v)
	for round := 1; round <= 6; round++ {
		var wg sync.WaitGroup
		var saveV, appendV state.Version
		var saveErr, appendErr error
		start := make(chan struct{})
		snap, rec := fmt.Sprintf("snap-%d", round), fmt.Sprintf("rec-%d", round)
		wg.Go(func() { <-start; saveV, saveErr = s.Save(ctx, "race", []byte(snap), v) })
		wg.Go(func() { <-start; appendV, appendErr = s.Append(ctx, "race", []byte(rec), v) })
		close(start)
		wg.Wait()
		doc, recs, lv := mustLoadJournal(t, ctx, s, "race")
		switch {
		case saveErr == nil && appendErr == nil:
			t.Fatalf("round %d: Save and Append both won at version %q", round, v)
		case saveErr == nil:
			wantErr(t, fmt.Sprintf("round %d: Append that lost to a Save", round), appendErr, state.ErrConflict)
			if doc != snap || len(recs) != 0 || lv != saveV {
				t.Fatalf("round %d: Save won, LoadJournal = %q, %q, %q; want %q, none, %q", round, doc, recs, lv, snap, saveV)
			}
		case appendErr == nil:
			wantErr(t, fmt.Sprintf("round %d: Save that lost to an Append", round), saveErr, state.ErrConflict)
			if len(recs) == 0 || recs[len(recs)-1] != rec || lv != appendV {
				t.Fatalf("round %d: Append won, LoadJournal = %q, %q, %q; want %q last, at %q", round, doc, recs, lv, rec, appendV)
			}
		default:
			t.Fatalf("round %d: neither won: Save %v, Append %v", round, saveErr, appendErr)
		}
		v = lv
	}
}

func journalRun(id string, steps int) *state.Run {
	r := &state.Run{ID: id, Pipeline: "p", Status: state.RunRunning, Steps: map[string]*state.Step{}}
	for i := range steps {
		sid := fmt.Sprintf("s%03d", i)
		r.Steps[sid] = &state.Step{ID: sid, Type: "shell", Status: state.StepPending}
		r.Order = append(r.Order, sid)
	}
	return r
}

func leaseOpts(owner string, force bool) state.LeaseOptions {
	return state.LeaseOptions{Owner: owner, TTL: time.Minute, Force: force, Host: "storetest", PID: 1,
		ProcessAlive: func(int) bool { return true }}
}

func setStatus(id string, st state.StepStatus, note string) func(*state.Run) {
	return func(r *state.Run) {
		r.Steps[id].Status = st
		r.Steps[id].Outputs = map[string]string{"note": note}
	}
}

func testJournalStaleRunnerLoses(t *testing.T, s state.Appender, _ func(state.Store) state.Store) {
	ctx := ctxFor(t)
	old, err := state.Create(ctx, s, journalRun("taken", 4), leaseOpts("old", false))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctx)
	if err := old.UpdateStep(ctx, "s000", setStatus("s000", state.StepSucceeded, "old")); err != nil {
		t.Fatal(err)
	}
	taker, err := state.Acquire(ctx, s, "taken", leaseOpts("new", true))
	if err != nil {
		t.Fatalf("take over: %v", err)
	}
	err = old.UpdateStep(ctx, "s001", setStatus("s001", state.StepSucceeded, "old"))
	wantErr(t, "the old runner's write after a takeover", err, state.ErrConflict)
	if err := taker.UpdateStep(ctx, "s002", setStatus("s002", state.StepSucceeded, "new")); err != nil {
		t.Fatalf("the new runner's write: %v", err)
	}
	if err := taker.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := state.Read(ctx, s, "taken")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Steps["s001"].Status; got != state.StepPending {
		t.Errorf("s001 is %s: the old runner's write after the takeover landed", got)
	}
	if r.Steps["s000"].Status != state.StepSucceeded || r.Steps["s002"].Status != state.StepSucceeded {
		t.Errorf("s000 %s, s002 %s: want both succeeded", r.Steps["s000"].Status, r.Steps["s002"].Status)
	}
}

// testJournalReopen drives a run through a Journal (records, and snapshots
// when the steps change), then reads it from a fresh store over the same
// data, resumes it there and reads it again.
func testJournalReopen(t *testing.T, s state.Appender, reopen func(state.Store) state.Store) {
	ctx := ctxFor(t)
	j, err := state.Create(ctx, s, journalRun("re", 20), leaseOpts("first", false))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for i := range 20 {
			sid := fmt.Sprintf("s%03d", i)
			if err := j.UpdateStep(ctx, sid, setStatus(sid, state.StepRunning, fmt.Sprint(round))); err != nil {
				t.Fatal(err)
			}
		}
		// A whole-run change: the Journal takes a snapshot.
		if err := j.Update(ctx, func(r *state.Run) {
			id := fmt.Sprintf("extra%d", round)
			r.Steps[id] = &state.Step{ID: id, Type: "shell", Status: state.StepPending}
			r.Order = append(append([]string(nil), r.Order...), id)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.UpdateStep(ctx, "s005", setStatus("s005", state.StepFailed, "last")); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := j.Snapshot()
	s2 := reopen(s)
	checkSame(t, "after reopening", s2, want)

	j2, err := state.Acquire(ctx, s2, "re", leaseOpts("second", false))
	if err != nil {
		t.Fatalf("resume on the reopened store: %v", err)
	}
	for _, sid := range []string{"s005", "s006"} {
		if err := j2.UpdateStep(ctx, sid, setStatus(sid, state.StepSucceeded, "resumed")); err != nil {
			t.Fatal(err)
		}
	}
	if err := j2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkSame(t, "after resuming", reopen(s2), j2.Snapshot())
}

func checkSame(t *testing.T, when string, s state.Store, want *state.Run) {
	t.Helper()
	got, err := state.Read(ctxFor(t), s, want.ID)
	if err != nil {
		t.Fatalf("%s: read: %v", when, err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("%s: read\n%s\nwant what the Journal held\n%s", when, gb, wb)
	}
}
