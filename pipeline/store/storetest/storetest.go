// Package storetest is the behaviour every state.Store must show, as one test
// suite: memory, file and S3 stores all run it, so the engine and the Journal
// can rely on the same compare-and-swap, listing, blob and log semantics
// whatever the backend.
//
// Semantics checked here (and relied on elsewhere):
//   - Create fails with ErrExists when the run exists; Load and Save of a
//     missing run fail with ErrNotFound.
//   - Save succeeds only with the version returned by the last Create, Load or
//     Save; otherwise ErrConflict and the stored document is unchanged. Of
//     many concurrent Saves (or Creates) against one version exactly one wins.
//   - A run appears in List once anything is stored for it; each id once.
//   - Blobs are overwritten by PutBlob; GetBlob of a missing blob: ErrNotFound.
//   - AppendLog adds its bytes contiguously; ReadLog returns the bytes from an
//     offset (empty at or past the end), ErrNotFound if nothing was appended.
//     Readers polling while a writer appends see a growing prefix.
//   - Names outside state.CheckName are refused with state.ErrInvalidName.
//
// A store that also implements Deleter is checked for Save after delete; one
// that implements state.Appender, for the journal semantics in journal.go.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// Deleter is implemented by stores that can remove a run (with its blobs and
// logs).
type Deleter interface {
	Delete(ctx context.Context, runID string) error
}

// Run runs the suite; newStore must return an empty store, fresh for each
// subtest.
func Run(t *testing.T, newStore func(t *testing.T) state.Store) {
	RunReopen(t, newStore, func(s state.Store) state.Store { return s })
}

// RunReopen is Run for a store that can be opened again over the same data
// (a directory, a bucket): reopen returns a new Store over s's data, with
// nothing cached, and the journal tests read through it.
func RunReopen(t *testing.T, newStore func(t *testing.T) state.Store, reopen func(s state.Store) state.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s state.Store)
	}{
		{"CreateLoad", testCreateLoad},
		{"SaveCAS", testSaveCAS},
		{"SaveDeleted", testSaveDeleted},
		{"ConcurrentSave", testConcurrentSave},
		{"ConcurrentCreate", testConcurrentCreate},
		{"List", testList},
		{"Blobs", testBlobs},
		{"Logs", testLogs},
		{"LogFollow", testLogFollow},
		{"LogConcurrentAppend", testLogConcurrentAppend},
		{"Names", testNames},
		{"LargeDoc", testLargeDoc},
		{"Cancelled", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
	if _, ok := newStore(t).(state.Appender); !ok {
		return
	}
	for _, tc := range journalTests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t).(state.Appender))
		})
	}
	for _, tc := range journalRunTests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t).(state.Appender), reopen)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func mustLoad(t *testing.T, ctx context.Context, s state.Store, runID string) ([]byte, state.Version) {
	t.Helper()
	doc, v, err := s.Load(ctx, runID)
	if err != nil {
		t.Fatalf("Load %s: %v", runID, err)
	}
	return doc, v
}

func testCreateLoad(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	_, _, err := s.Load(ctx, "missing")
	wantErr(t, "Load of a missing run", err, state.ErrNotFound)

	v, err := s.Create(ctx, "run-1", []byte(`{"a":1}`))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if v == "" {
		t.Fatal("Create returned an empty version")
	}
	doc, lv := mustLoad(t, ctx, s, "run-1")
	if string(doc) != `{"a":1}` || lv != v {
		t.Fatalf("Load = %q, %q; want %q, %q", doc, lv, `{"a":1}`, v)
	}
	_, err = s.Create(ctx, "run-1", []byte(`{"a":2}`))
	wantErr(t, "second Create", err, state.ErrExists)
	if doc, lv := mustLoad(t, ctx, s, "run-1"); string(doc) != `{"a":1}` || lv != v {
		t.Fatalf("after a failed Create: Load = %q, %q; want the first document", doc, lv)
	}
}

func testSaveCAS(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	_, err := s.Save(ctx, "missing", []byte("x"), "1")
	wantErr(t, "Save of a missing run", err, state.ErrNotFound)

	v1, err := s.Create(ctx, "r", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.Save(ctx, "r", []byte("two"), v1)
	if err != nil {
		t.Fatalf("Save with the current version: %v", err)
	}
	if v2 == v1 {
		t.Fatalf("Save returned the old version %q for a changed document", v2)
	}
	_, err = s.Save(ctx, "r", []byte("stale"), v1)
	wantErr(t, "Save with a stale version", err, state.ErrConflict)
	_, err = s.Save(ctx, "r", []byte("bogus"), "no-such-version")
	wantErr(t, "Save with a bogus version", err, state.ErrConflict)
	doc, lv := mustLoad(t, ctx, s, "r")
	if string(doc) != "two" || lv != v2 {
		t.Fatalf("after conflicts: Load = %q, %q; want %q, %q", doc, lv, "two", v2)
	}
	// Saving identical content must keep working (content-hash versions).
	v3, err := s.Save(ctx, "r", []byte("two"), v2)
	if err != nil {
		t.Fatalf("Save of unchanged content: %v", err)
	}
	if _, err := s.Save(ctx, "r", []byte("three"), v3); err != nil {
		t.Fatalf("Save after an unchanged Save: %v", err)
	}
}

func testSaveDeleted(t *testing.T, s state.Store) {
	d, ok := s.(Deleter)
	if !ok {
		t.Skipf("%s cannot delete runs", s)
	}
	ctx := ctxFor(t)
	v, err := s.Create(ctx, "gone", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, "gone", "spec.yaml", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = s.Save(ctx, "gone", []byte("z"), v)
	wantErr(t, "Save of a deleted run", err, state.ErrNotFound)
	_, _, err = s.Load(ctx, "gone")
	wantErr(t, "Load of a deleted run", err, state.ErrNotFound)
	_, err = s.GetBlob(ctx, "gone", "spec.yaml")
	wantErr(t, "GetBlob of a deleted run", err, state.ErrNotFound)
	if _, err := s.Create(ctx, "gone", []byte("again")); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	if err := d.Delete(ctx, "never-was"); err != nil {
		t.Fatalf("Delete of a missing run: %v", err)
	}
}

func testConcurrentSave(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	v, err := s.Create(ctx, "race", []byte("start"))
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	for round := range 3 {
		errs := make([]error, writers)
		vers := make([]state.Version, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				vers[i], errs[i] = s.Save(ctx, "race", fmt.Appendf(nil, "round %d writer %d", round, i), v)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both won against version %q", round, winner, i, v)
				}
				winner = i
			case !errors.Is(err, state.ErrConflict):
				t.Fatalf("round %d: writer %d: got %v, want nil or ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won: %v", round, errs)
		}
		doc, lv := mustLoad(t, ctx, s, "race")
		if want := fmt.Sprintf("round %d writer %d", round, winner); string(doc) != want || lv != vers[winner] {
			t.Fatalf("round %d: Load = %q, %q; want the winner's %q, %q", round, doc, lv, want, vers[winner])
		}
		v = lv
	}
}

func testConcurrentCreate(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Create(ctx, "new", fmt.Appendf(nil, "writer %d", i))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both created the run", winner, i)
			}
			winner = i
		case !errors.Is(err, state.ErrExists):
			t.Fatalf("writer %d: got %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer created the run: %v", errs)
	}
	if doc, _ := mustLoad(t, ctx, s, "new"); string(doc) != fmt.Sprintf("writer %d", winner) {
		t.Fatalf("Load = %q, want writer %d's document", doc, winner)
	}
}

func testList(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	ids, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List of an empty store: %v", err)
	}
	if len(ids) != 0 {
		t.Fatalf("List of an empty store = %q", ids)
	}
	want := []string{"a", "a.b", "a-b", "a_b", "quickstart-20260101T000000Z-x1y2", "z9"}
	for _, id := range want {
		if _, err := s.Create(ctx, id, []byte(id)); err != nil {
			t.Fatalf("Create %s: %v", id, err)
		}
		// Logs and blobs must not show up as extra runs.
		if err := s.AppendLog(ctx, id, "step.1", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBlob(ctx, id, "spec.yaml", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	ids, err = s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("List = %q, want %q", ids, want)
	}
	for _, id := range want {
		if doc, _ := mustLoad(t, ctx, s, id); string(doc) != id {
			t.Fatalf("run %q holds %q: runs with similar names are mixed up", id, doc)
		}
	}
}

func testBlobs(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	if _, err := s.Create(ctx, "r", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetBlob(ctx, "r", "spec.yaml")
	wantErr(t, "GetBlob of a missing blob", err, state.ErrNotFound)
	_, err = s.GetBlob(ctx, "no-run", "spec.yaml")
	wantErr(t, "GetBlob of a missing run", err, state.ErrNotFound)

	for _, data := range [][]byte{[]byte("name: a\n"), []byte("name: b\n"), {}} {
		if err := s.PutBlob(ctx, "r", "spec.yaml", data); err != nil {
			t.Fatalf("PutBlob: %v", err)
		}
		got, err := s.GetBlob(ctx, "r", "spec.yaml")
		if err != nil {
			t.Fatalf("GetBlob: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("GetBlob = %q, want %q", got, data)
		}
	}
	if err := s.PutBlob(ctx, "r", "spec.yaml.orig", []byte("other")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetBlob(ctx, "r", "spec.yaml"); len(got) != 0 {
		t.Fatalf("spec.yaml = %q after writing spec.yaml.orig", got)
	}
	if doc, _ := mustLoad(t, ctx, s, "r"); string(doc) != "{}" {
		t.Fatalf("a blob changed the state document: %q", doc)
	}
}

func testNames(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	for _, bad := range []string{"", ".", "..", "../x", "a/b", `a\b`, ".hidden", "a b", "a\x00b", "é"} {
		_, err := s.Create(ctx, bad, []byte("x"))
		wantErr(t, fmt.Sprintf("Create(%q)", bad), err, state.ErrInvalidName)
		_, _, err = s.Load(ctx, bad)
		wantErr(t, fmt.Sprintf("Load(%q)", bad), err, state.ErrInvalidName)
		err = s.PutBlob(ctx, "ok", bad, []byte("x"))
		wantErr(t, fmt.Sprintf("PutBlob(ok, %q)", bad), err, state.ErrInvalidName)
		err = s.AppendLog(ctx, "ok", bad, []byte("x"))
		wantErr(t, fmt.Sprintf("AppendLog(ok, %q)", bad), err, state.ErrInvalidName)
		_, err = s.ReadLog(ctx, "ok", bad, 0)
		wantErr(t, fmt.Sprintf("ReadLog(ok, %q)", bad), err, state.ErrInvalidName)
	}
	for _, good := range []string{"a.b.c", "a-b-c", "A_1", "x." + string(bytes.Repeat([]byte{'y'}, 150))} {
		if _, err := s.Create(ctx, good, []byte(good)); err != nil {
			t.Fatalf("Create(%q): %v", good, err)
		}
		if err := s.AppendLog(ctx, good, good, []byte(good)); err != nil {
			t.Fatalf("AppendLog(%q): %v", good, err)
		}
		if got := readLog(t, ctx, s, good, good, 0); got != good {
			t.Fatalf("log %q = %q", good, got)
		}
	}
}

func testLargeDoc(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	rng := rand.New(rand.NewPCG(3, 4))
	doc := make([]byte, 4<<20)
	for i := range doc {
		doc[i] = byte(rng.Uint32())
	}
	v, err := s.Create(ctx, "big", doc)
	if err != nil {
		t.Fatal(err)
	}
	doc[0]++
	if _, err := s.Save(ctx, "big", doc, v); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustLoad(t, ctx, s, "big"); !bytes.Equal(got, doc) {
		t.Fatalf("a 4 MiB document came back different (%d bytes)", len(got))
	}
}

func testCancelled(t *testing.T, s state.Store) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	v, err := s.Create(ctx, "r", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := s.Save(ctx, "r", []byte("y"), v); err == nil {
		t.Fatal("Save with a cancelled context succeeded")
	}
	if doc, _ := mustLoad(t, ctxFor(t), s, "r"); string(doc) != "x" {
		t.Fatalf("a cancelled Save changed the document to %q", doc)
	}
}
