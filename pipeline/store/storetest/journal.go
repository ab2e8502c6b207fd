package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gpipe/gpipe/pipeline/state"
)

// Journal semantics, for stores that implement state.Appender:
//   - Append adds a record only at the current version (ErrConflict
//     otherwise, ErrNotFound for a missing run) and returns a new version;
//     LoadJournal returns the snapshot, the records in order and the version.
//   - Save replaces the snapshot and drops the records, at the current
//     version only; a version Load returned while records followed the
//     snapshot is not current (a Save based on it conflicts).
//   - A version names one state: after a Save of the same snapshot, a new
//     record as long as an old one gets a new version.
//   - Of concurrent writers mixing Appends and Saves, each write that
//     succeeded is in the result exactly once.
var journalTests = []struct {
	name string
	fn   func(t *testing.T, s state.Appender)
}{
	{"JournalAppend", testJournalAppend},
	{"JournalSave", testJournalSave},
	{"JournalConcurrentAppend", testJournalConcurrentAppend},
	{"JournalConcurrentWriters", testJournalConcurrentWriters},
}

func mustLoadJournal(t *testing.T, ctx context.Context, s state.Appender, runID string) (string, []string, state.Version) {
	t.Helper()
	doc, recs, v, err := s.LoadJournal(ctx, runID)
	if err != nil {
		t.Fatalf("LoadJournal %s: %v", runID, err)
	}
	var rs []string
	for _, r := range recs {
		rs = append(rs, string(r))
	}
	return string(doc), rs, v
}

func mustAppend(t *testing.T, ctx context.Context, s state.Appender, runID, rec string, v state.Version) state.Version {
	t.Helper()
	nv, err := s.Append(ctx, runID, []byte(rec), v)
	if err != nil {
		t.Fatalf("Append %q: %v", rec, err)
	}
	if nv == v {
		t.Fatalf("Append %q returned the old version %q", rec, nv)
	}
	return nv
}

func testJournalAppend(t *testing.T, s state.Appender) {
	ctx := ctxFor(t)
	_, err := s.Append(ctx, "missing", []byte("r"), "1")
	wantErr(t, "Append to a missing run", err, state.ErrNotFound)
	_, _, _, err = s.LoadJournal(ctx, "missing")
	wantErr(t, "LoadJournal of a missing run", err, state.ErrNotFound)

	v0, err := s.Create(ctx, "r", []byte("snap"))
	if err != nil {
		t.Fatal(err)
	}
	if doc, recs, v := mustLoadJournal(t, ctx, s, "r"); doc != "snap" || len(recs) != 0 || v != v0 {
		t.Fatalf("LoadJournal after Create = %q, %q, %q; want %q, none, %q", doc, recs, v, "snap", v0)
	}
	v1 := mustAppend(t, ctx, s, "r", `{"n":1}`, v0)
	v2 := mustAppend(t, ctx, s, "r", `{"n":2}`, v1)
	_, err = s.Append(ctx, "r", []byte(`{"n":"stale"}`), v1)
	wantErr(t, "Append with a stale version", err, state.ErrConflict)
	_, err = s.Append(ctx, "r", []byte(`{"n":"first"}`), v0)
	wantErr(t, "Append with the snapshot's version", err, state.ErrConflict)
	_, err = s.Save(ctx, "r", []byte("stale snap"), v1)
	wantErr(t, "Save with a stale version", err, state.ErrConflict)
	doc, recs, v := mustLoadJournal(t, ctx, s, "r")
	if doc != "snap" || !slices.Equal(recs, []string{`{"n":1}`, `{"n":2}`}) || v != v2 {
		t.Fatalf("LoadJournal = %q, %q, %q; want %q, the two records, %q", doc, recs, v, "snap", v2)
	}
}

func testJournalSave(t *testing.T, s state.Appender) {
	ctx := ctxFor(t)
	v0, err := s.Create(ctx, "r", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	v1 := mustAppend(t, ctx, s, "r", "rec-a", v0)
	if _, lv := mustLoad(t, ctx, s, "r"); lv == v1 {
		t.Fatalf("Load returned the journal's version %q with the snapshot alone", lv)
	} else if _, err := s.Save(ctx, "r", []byte("from load"), lv); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Save based on Load while records follow the snapshot: got %v, want ErrConflict (it would drop them)", err)
	}
	v2, err := s.Save(ctx, "r", []byte("two"), v1)
	if err != nil {
		t.Fatalf("Save at the journal's version: %v", err)
	}
	if doc, recs, v := mustLoadJournal(t, ctx, s, "r"); doc != "two" || len(recs) != 0 || v != v2 {
		t.Fatalf("after Save: LoadJournal = %q, %q, %q; want %q, none, %q", doc, recs, v, "two", v2)
	}
	v3 := mustAppend(t, ctx, s, "r", "rec-b", v2)
	// The same snapshot again: the records go, and a record as long as the
	// dropped one must not bring back the version a stale writer holds.
	v4, err := s.Save(ctx, "r", []byte("two"), v3)
	if err != nil {
		t.Fatalf("Save of the same snapshot: %v", err)
	}
	if doc, recs, v := mustLoadJournal(t, ctx, s, "r"); doc != "two" || len(recs) != 0 || v != v4 {
		t.Fatalf("after a Save of the same snapshot: LoadJournal = %q, %q, %q; want %q, none, %q", doc, recs, v, "two", v4)
	}
	v5 := mustAppend(t, ctx, s, "r", "rec-c", v4)
	if v5 == v3 {
		t.Fatalf("version %q names two states: snapshot+rec-b and snapshot+rec-c", v5)
	}
	_, err = s.Append(ctx, "r", []byte("rec-d"), v3)
	wantErr(t, "Append with the version of a dropped journal", err, state.ErrConflict)
	if doc, recs, _ := mustLoadJournal(t, ctx, s, "r"); doc != "two" || !slices.Equal(recs, []string{"rec-c"}) {
		t.Fatalf("LoadJournal = %q, %q; want %q, [rec-c]", doc, recs, "two")
	}
}

func testJournalConcurrentAppend(t *testing.T, s state.Appender) {
	ctx := ctxFor(t)
	v, err := s.Create(ctx, "race", []byte("start"))
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var want []string
	for round := range 4 {
		errs := make([]error, writers)
		vers := make([]state.Version, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				vers[i], errs[i] = s.Append(ctx, "race", fmt.Appendf(nil, "round %d writer %d", round, i), v)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both appended at version %q", round, winner, i, v)
				}
				winner = i
			case !errors.Is(err, state.ErrConflict):
				t.Fatalf("round %d: writer %d: got %v, want nil or ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won: %v", round, errs)
		}
		want = append(want, fmt.Sprintf("round %d writer %d", round, winner))
		_, recs, lv := mustLoadJournal(t, ctx, s, "race")
		if !slices.Equal(recs, want) || lv != vers[winner] {
			t.Fatalf("round %d: records %q at %q; want %q at the winner's %q", round, recs, lv, want, vers[winner])
		}
		v = lv
	}
}

// testJournalConcurrentWriters has writers that read the run, then append
// one entry or (every few writes) save a snapshot holding every entry so far,
// retrying on conflict. Every write that succeeded must be in the end result
// exactly once: no Append lands on a snapshot that dropped it, no Save drops
// an Append it did not see.
func testJournalConcurrentWriters(t *testing.T, s state.Appender) {
	ctx := ctxFor(t)
	if _, err := s.Create(ctx, "mix", []byte("[]")); err != nil {
		t.Fatal(err)
	}
	const writers, writes = 4, 12
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				entry := fmt.Sprintf("w%d-%d", w, i)
				for {
					doc, recs, v, err := s.LoadJournal(ctx, "mix")
					if err != nil {
						errs <- err
						return
					}
					if i%4 == 3 {
						var all []string
						if err := json.Unmarshal(doc, &all); err != nil {
							errs <- fmt.Errorf("snapshot %q: %w", doc, err)
							return
						}
						for _, r := range recs {
							all = append(all, string(r))
						}
						b, _ := json.Marshal(append(all, entry))
						_, err = s.Save(ctx, "mix", b, v)
					} else {
						_, err = s.Append(ctx, "mix", []byte(entry), v)
					}
					if err == nil {
						break
					}
					if !errors.Is(err, state.ErrConflict) {
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	doc, recs, _ := mustLoadJournal(t, ctx, s, "mix")
	var all []string
	if err := json.Unmarshal([]byte(doc), &all); err != nil {
		t.Fatalf("snapshot %q: %v", doc, err)
	}
	all = append(all, recs...)
	seen := map[string]int{}
	for _, e := range all {
		seen[e]++
	}
	for w := range writers {
		for i := range writes {
			if e := fmt.Sprintf("w%d-%d", w, i); seen[e] != 1 {
				t.Errorf("entry %s is in the result %d times, want once", e, seen[e])
			}
		}
	}
	if len(all) != writers*writes {
		t.Errorf("%d entries, want %d: %q", len(all), writers*writes, all)
	}
}
