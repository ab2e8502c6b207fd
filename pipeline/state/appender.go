package state

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Appender is a Store that can make a change durable by appending a record to
// the run's journal instead of rewriting the whole document, so that a save
// costs what changed rather than what the run holds. Save still writes a
// whole document (a snapshot) and drops the records before it; the Journal
// writes one when the records since the last snapshot outweigh it, which
// keeps the bytes written per change constant.
//
// Records are opaque to the store; the state package replays them over the
// snapshot in order. A store guards Append with the same compare-and-swap as
// Save: one version covers the snapshot and every record after it.
type Appender interface {
	Store
	// LoadJournal returns the run's snapshot, the records appended after it
	// (in order) and the version covering both. ErrNotFound if absent.
	LoadJournal(ctx context.Context, runID string) (doc []byte, records [][]byte, v Version, err error)
	// Append adds rec after the run's last record only if the run is still
	// at version v: ErrConflict when someone else wrote since, ErrNotFound
	// when the run is gone. rec holds no newline.
	Append(ctx context.Context, runID string, rec []byte, v Version) (Version, error)
}

// Flusher is an Appender whose Append reaches the operating system at once,
// so that a runner killed the next moment (kill -9, a panic, OOM) loses
// nothing, but reaches the disk only on Flush: an fsync per change was the
// largest cost of a run of short steps on a local disk. Create and Save are
// on disk when they return. The Journal flushes at most FlushDelay after an
// Append, at once for Flush and on Close, so a power loss or kernel crash
// loses at most the last FlushDelay of changes that nothing asked to flush.
// The journal is read back as a prefix (a lost or torn record ends it), so
// what survives is always an earlier state of the run, never a mix.
type Flusher interface {
	Appender
	// Flush makes everything Append wrote for the run durable on disk.
	Flush(ctx context.Context, runID string) error
}

// record is one journal record: the run's own fields (without steps and
// order) and the steps that changed, a null step meaning removed.
type record struct {
	Run   json.RawMessage            `json:"run"`
	Steps map[string]json.RawMessage `json:"steps"`
}

// load reads a run: its document, or with an Appender its snapshot with the
// journal's records replayed.
func load(ctx context.Context, s Store, runID string) (*Run, Version, error) {
	a, ok := s.(Appender)
	if !ok {
		doc, v, err := s.Load(ctx, runID)
		if err != nil {
			return nil, "", err // stores name the run and themselves in errors
		}
		r, err := decode(s, runID, doc)
		return r, v, err
	}
	doc, recs, v, err := a.LoadJournal(ctx, runID)
	if err != nil {
		return nil, "", err
	}
	r, err := decode(s, runID, doc)
	if err != nil {
		return nil, "", err
	}
	for i, rec := range recs {
		if err := replay(r, rec); err != nil {
			return nil, "", &CorruptError{RunID: runID, Store: s.String(), Size: len(rec),
				Err: fmt.Errorf("journal record %d: %w", i+1, err)}
		}
	}
	return r, v, nil
}

// replay applies one record to r.
func replay(r *Run, rec []byte) error {
	var x record
	if err := json.Unmarshal(rec, &x); err != nil {
		return err
	}
	if len(x.Run) == 0 {
		return fmt.Errorf("no run fields")
	}
	var head Run
	if err := json.Unmarshal(x.Run, &head); err != nil {
		return err
	}
	if head.SchemaVersion > SchemaVersion {
		return &NewerSchemaError{RunID: r.ID, Version: head.SchemaVersion}
	}
	if head.ID != r.ID {
		return fmt.Errorf("record is for run %q", head.ID)
	}
	head.Steps, head.Order = r.Steps, r.Order
	*r = head
	for id, doc := range x.Steps {
		if bytes.Equal(doc, []byte("null")) {
			delete(r.Steps, id)
			continue
		}
		var st Step
		if err := json.Unmarshal(doc, &st); err != nil {
			return fmt.Errorf("step %s: %w", id, err)
		}
		r.Steps[id] = &st
	}
	return nil
}
