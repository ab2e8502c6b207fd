package state

import (
	"context"
	"errors"
	"fmt"
)

// Loaded is a run as read from its store, with the version it was read at,
// so that taking its lease (AcquireLoaded) need not read it again: resume
// reads a run to decide whether there is anything to rerun, and against S3
// every read is a GET of the snapshot and a LIST of the journal.
type Loaded struct {
	Run     *Run
	runID   string
	version Version
}

// RunID is the id the run was read under.
func (l *Loaded) RunID() string { return l.runID }

// ReadLoaded is Read that keeps what AcquireLoaded needs.
func ReadLoaded(ctx context.Context, s Store, runID string) (*Loaded, error) {
	r, v, err := load(ctx, s, runID)
	if err != nil {
		return nil, err
	}
	return &Loaded{Run: r, runID: runID, version: v}, nil
}

// Read loads a run without taking its lease, for status, logs and plans.
func Read(ctx context.Context, s Store, runID string) (*Run, error) {
	r, _, err := load(ctx, s, runID)
	return r, err
}

// Acquire loads a run and takes its lease, following the lease rules: a lease
// of this Owner, an expired lease, or one held by a process of this host that
// no longer exists is taken over; a fresh one of another runner only with
// Force, else *HeldError. A document written by a newer gpipe gives
// *NewerSchemaError, an unreadable one *CorruptError; neither is touched.
func Acquire(ctx context.Context, s Store, runID string, opt LeaseOptions) (*Journal, error) {
	return acquire(ctx, s, runID, nil, opt)
}

// AcquireLoaded is Acquire of a run read before: the lease rules are
// checked against l, and the lease is saved only if the run is still at
// l's version; if it changed since, the run is read again, as Acquire
// would. The Journal takes l.Run over: the caller must not use it after.
func AcquireLoaded(ctx context.Context, s Store, l *Loaded, opt LeaseOptions) (*Journal, error) {
	return acquire(ctx, s, l.runID, l, opt)
}

func acquire(ctx context.Context, s Store, runID string, l *Loaded, opt LeaseOptions) (*Journal, error) {
	opt = opt.withDefaults()
	// Two runners acquiring at once both see a free lease; CAS lets one win
	// and the other rereads, now seeing the winner's lease.
	for attempt := 0; ; attempt++ {
		var r *Run
		var v Version
		if attempt == 0 && l != nil {
			r, v = l.Run, l.version
		} else {
			var err error
			if r, v, err = load(ctx, s, runID); err != nil {
				return nil, err // stores name the run and themselves in errors
			}
		}
		now := opt.Now().UTC()
		if err := mayTakeOver(r, opt, now); err != nil {
			return nil, err
		}
		acquired := now
		if r.Lease != nil && r.Lease.Owner == opt.Owner {
			acquired = r.Lease.Acquired
		}
		r.Lease = newLease(opt, now)
		r.Lease.Acquired = acquired
		r.Updated = now
		out, err := r.appendJSON(nil)
		if err != nil {
			return nil, fmt.Errorf("acquire run %s: encode state: %w", runID, err)
		}
		nv, err := s.Save(ctx, runID, out, v)
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("acquire run %s: %w", runID, err)
		}
		return start(ctx, s, r, nv, len(out), opt), nil
	}
}
