package state_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// diskStore is a Flusher over the memory store that models a page cache:
// Append reaches "written" at once, and only Flush copies what was written
// to "disk" (Save, a snapshot, is on disk when it returns).
type diskStore struct {
	state.Appender
	mu       sync.Mutex
	written  int // records appended
	onDisk   int // records flushed
	flushes  int
	block    chan struct{} // when set, Flush waits for it
	flushErr error
}

func (d *diskStore) Append(ctx context.Context, runID string, rec []byte, v state.Version) (state.Version, error) {
	nv, err := d.Appender.Append(ctx, runID, rec, v)
	if err == nil {
		d.mu.Lock()
		d.written++
		d.mu.Unlock()
	}
	return nv, err
}

func (d *diskStore) Flush(ctx context.Context, runID string) error {
	d.mu.Lock()
	block, ferr := d.block, d.flushErr
	d.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushes++
	if ferr != nil {
		return ferr
	}
	d.onDisk = d.written
	return nil
}

func (d *diskStore) counts() (written, onDisk, flushes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.written, d.onDisk, d.flushes
}

func newDisk(t *testing.T) *diskStore {
	return &diskStore{Appender: newMem(t)}
}

// An Update returns once its record is written, without waiting for the disk;
// a Flush waits for the disk; nothing waits longer than FlushDelay for it.
func TestFlushLevels(t *testing.T) {
	d := newDisk(t)
	opt := opts("me")
	opt.FlushDelay = time.Hour // only Flush and Close flush here
	j := create(t, d, "r", opt)
	firstUpdate(t, j) // a snapshot, on disk by itself
	block := make(chan struct{})
	var unblock sync.Once
	t.Cleanup(func() { unblock.Do(func() { close(block) }) }) // before Close's flush
	d.mu.Lock()
	d.block = block
	d.mu.Unlock()
	for i := range 3 {
		// Would hang on the blocked Flush if Update waited for the disk.
		if err := stepUpdate(t, j, string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if w, disk, _ := d.counts(); w != 3 || disk != 0 {
		t.Fatalf("after 3 Updates: %d records written, %d on disk; want 3, 0", w, disk)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- j.Flush(t.Context()) }()
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned (%v) before the store flushed", err)
	case <-time.After(50 * time.Millisecond):
	}
	unblock.Do(func() { close(block) })
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if w, disk, _ := d.counts(); disk != w {
		t.Fatalf("after Flush: %d records written, %d on disk", w, disk)
	}
	// Close flushes the lease's release with it.
	if err := stepUpdate(t, j, "z"); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w, disk, _ := d.counts(); disk != w {
		t.Fatalf("after Close: %d records written, %d on disk", w, disk)
	}
}

func TestFlushWithinDelay(t *testing.T) {
	d := newDisk(t)
	opt := opts("me")
	opt.FlushDelay = 20 * time.Millisecond
	j := create(t, d, "r", opt)
	defer j.Close(context.Background())
	firstUpdate(t, j)
	for i := range 20 {
		if err := stepUpdate(t, j, string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w, disk, flushes := d.counts()
		if disk == w {
			// One flush per FlushDelay, not one per change.
			if flushes > 5 {
				t.Fatalf("%d records took %d flushes", w, flushes)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records written, %d on disk 5s later: nothing flushed them", w, disk)
		}
		time.Sleep(time.Millisecond)
	}
}

// A failed flush loses the Journal: after a failed fsync the kernel may have
// dropped what it could not write, so retrying could only lie.
func TestFlushErrorLosesJournal(t *testing.T) {
	d := newDisk(t)
	d.flushErr = errors.New("input/output error")
	j := create(t, d, "r", opts("me"))
	firstUpdate(t, j)
	if err := stepUpdate(t, j, "a"); err != nil {
		t.Fatal(err)
	}
	err := j.Flush(t.Context())
	if err == nil || !strings.Contains(err.Error(), "flush run r to disk: input/output error") {
		t.Fatalf("Flush = %v, want the flush error", err)
	}
	select {
	case <-j.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("the Journal is not lost after a failed flush")
	}
	if err := j.Update(t.Context(), func(*state.Run) {}); err == nil {
		t.Fatal("an Update after a failed flush succeeded")
	}
}

// firstUpdate makes the Journal's first save, a whole snapshot (Save, on disk
// when it returns); records follow it.
func firstUpdate(t *testing.T, j *state.Journal) {
	t.Helper()
	if err := j.Update(t.Context(), func(r *state.Run) { r.Pipeline = "flushed" }); err != nil {
		t.Fatal(err)
	}
}

// stepUpdate changes one step: a journal record (an Update of the whole run
// takes a snapshot).
func stepUpdate(t *testing.T, j *state.Journal, id string) error {
	return j.UpdateStep(t.Context(), id, func(r *state.Run) {
		r.Steps[id] = &state.Step{ID: id, Status: state.StepSucceeded}
	})
}
