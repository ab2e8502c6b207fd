//go:build linux

package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// The descriptors Append keeps (runfds_unix.go) must never make it write
// where the path does not lead now. Each case changes the run behind the
// back of a Store that has appended (so holds the lock and journal open),
// then appends through it and reads the run back through a fresh Store.

func mustRecords(t *testing.T, s *Store, runID, wantDoc string, want ...string) state.Version {
	t.Helper()
	doc, recs, v, err := New(s.dir).LoadJournal(t.Context(), runID)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(recs))
	for i, r := range recs {
		got[i] = string(r)
	}
	if string(doc) != wantDoc || !slices.Equal(got, want) {
		t.Fatalf("run %s: snapshot %q, records %q; want %q, %q", runID, doc, got, wantDoc, want)
	}
	return v
}

func mustAppendTo(t *testing.T, s *Store, runID, rec string, v state.Version) state.Version {
	t.Helper()
	nv, err := s.Append(t.Context(), runID, []byte(rec), v)
	if err != nil {
		t.Fatalf("Append %q: %v", rec, err)
	}
	return nv
}

// A Save (of another process, or this Store) empties or replaces what the
// journal holds; the next Append starts a new journal in the same file.
func TestKeptJournalAfterSave(t *testing.T) {
	ctx := t.Context()
	s := New(t.TempDir())
	v, err := s.Create(ctx, "r", []byte("snap-0"))
	if err != nil {
		t.Fatal(err)
	}
	v = mustAppendTo(t, s, "r", "a", v)
	for i, saver := range []*Store{New(s.dir), s} {
		snap := []string{"snap-1", "snap-2"}[i]
		if v, err = saver.Save(ctx, "r", []byte(snap), v); err != nil {
			t.Fatal(err)
		}
		v = mustAppendTo(t, s, "r", "b", v)
		if got := mustRecords(t, s, "r", snap, "b"); got != v {
			t.Fatalf("version %q, Append returned %q", got, v)
		}
		v = mustAppendTo(t, s, "r", "c", v)
		mustRecords(t, s, "r", snap, "b", "c")
	}
	// The same snapshot again: the journal is emptied, not replaced.
	if v, err = New(s.dir).Save(ctx, "r", []byte("snap-2"), v); err != nil {
		t.Fatal(err)
	}
	v = mustAppendTo(t, s, "r", "d", v)
	mustRecords(t, s, "r", "snap-2", "d")
}

// Another process appending to the same file: the kept descriptor writes
// after its records, and a stale version still conflicts.
func TestKeptJournalAfterOtherAppender(t *testing.T) {
	ctx := t.Context()
	s := New(t.TempDir())
	other := New(s.dir)
	v, err := s.Create(ctx, "r", []byte("snap"))
	if err != nil {
		t.Fatal(err)
	}
	v = mustAppendTo(t, s, "r", "a", v)
	ov := mustAppendTo(t, other, "r", "b", v)
	if _, err := s.Append(ctx, "r", []byte("stale"), v); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Append at a version another process moved on from: %v, want ErrConflict", err)
	}
	v = mustAppendTo(t, s, "r", "c", ov)
	v = mustAppendTo(t, other, "r", "d", v)
	mustAppendTo(t, s, "r", "e", v)
	mustRecords(t, s, "r", "snap", "a", "b", "c", "d", "e")
}

// The journal file replaced by another (a restore, a copy over it): the
// kept descriptor names the old file and must not be written.
func TestKeptJournalReplacedFile(t *testing.T) {
	ctx := t.Context()
	s := New(t.TempDir())
	v, err := s.Create(ctx, "r", []byte("snap"))
	if err != nil {
		t.Fatal(err)
	}
	v = mustAppendTo(t, s, "r", "a", v)
	jpath := filepath.Join(s.runDir("r"), journalFile)
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jpath+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(jpath+".new", jpath); err != nil {
		t.Fatal(err)
	}
	mustAppendTo(t, s, "r", "b", v)
	mustRecords(t, s, "r", "snap", "a", "b")
}

// Delete and Create of the same run id, by this Store or another process:
// the kept descriptors name the deleted directory's files, and an Append
// through them would take a lock that excludes nobody.
func TestKeptFDsAfterDeleteCreate(t *testing.T) {
	for _, by := range []string{"this store", "another process"} {
		t.Run(by, func(t *testing.T) {
			ctx := t.Context()
			s := New(t.TempDir())
			other := s
			if by == "another process" {
				other = New(s.dir)
			}
			v, err := s.Create(ctx, "r", []byte("snap"))
			if err != nil {
				t.Fatal(err)
			}
			mustAppendTo(t, s, "r", "a", v)
			if err := other.Delete(ctx, "r"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, "r", []byte("gone"), v); !errors.Is(err, state.ErrNotFound) {
				t.Fatalf("Append to a deleted run: %v, want ErrNotFound", err)
			}
			// Kept again, then the run is recreated with the same
			// snapshot (so at the same version) behind s's back.
			if v, err = other.Create(ctx, "r", []byte("snap")); err != nil {
				t.Fatal(err)
			}
			mustAppendTo(t, s, "r", "a", v)
			if err := other.Delete(ctx, "r"); err != nil {
				t.Fatal(err)
			}
			if _, err = other.Create(ctx, "r", []byte("snap")); err != nil {
				t.Fatal(err)
			}
			v = mustAppendTo(t, s, "r", "b", v)
			mustRecords(t, s, "r", "snap", "b")
			// The lock Append took is the new directory's: one held
			// there now excludes it.
			unlock, err := lock(ctx, s.runDir("r"))
			if err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, err = s.Append(short, "r", []byte("c"), v)
			cancel()
			unlock()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Append while another holds the run's lock: %v, want it to wait", err)
			}
			mustAppendTo(t, s, "r", "c", v)
			mustRecords(t, s, "r", "snap", "b", "c")
		})
	}
}

// The kept lock descriptor is flocked only during an Append: between
// Appends another process takes the lock at once.
func TestKeptLockReleased(t *testing.T) {
	ctx := t.Context()
	s := New(t.TempDir())
	v, err := s.Create(ctx, "r", []byte("snap"))
	if err != nil {
		t.Fatal(err)
	}
	mustAppendTo(t, s, "r", "a", v)
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	unlock, err := lock(short, s.runDir("r"))
	if err != nil {
		t.Fatalf("lock after an Append: %v", err)
	}
	unlock()
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// A Store keeps the descriptors of one run at most, and a Store nobody
// holds any more closes them when collected.
func TestKeptFDsBounded(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	before := openFDs(t)
	s := New(dir)
	for i := range 50 {
		id := "r" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		v, err := s.Create(ctx, id, []byte("snap"))
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range []string{"a", "b"} {
			if v, err = s.Append(ctx, id, []byte(rec), v); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Flush(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := openFDs(t) - before; n > 2 {
		t.Errorf("one Store appending to 50 runs holds %d more descriptors, want at most 2 (one run's lock and journal)", n)
	}
	for range 50 {
		o := New(dir)
		_, _, v, err := o.LoadJournal(ctx, "raa")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Append(ctx, "raa", []byte("c"), v); err != nil {
			t.Fatal(err)
		}
	}
	runtime.KeepAlive(s)
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		n := openFDs(t) - before
		if n <= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors still open after the Stores holding them were collected", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
