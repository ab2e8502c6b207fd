package state

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Retry policy for saves that fail for other reasons than a conflict or a
// missing run (network, throttling, a full disk): exponential backoff with
// jitter from retryMin to retryMax, for as long as the lease TTL. Past the TTL
// the lease may have expired and been taken, so the Journal gives up and
// reports the last error instead of hanging.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
)

// commitLoop is the committer: it saves whenever there are changes newer than
// the last durable Save, and renews the lease every TTL/3.
func (j *Journal) commitLoop(ctx context.Context) {
	defer close(j.done)
	heartbeat := time.NewTicker(j.opt.TTL / 3)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			j.renew()
		case <-j.kick:
		}
		for j.saveOnce(ctx) {
			// A busy run keeps this loop saving; the lease must still be
			// renewed, or it expires while its runner drives the run, and
			// what waits for the disk must not wait for a quiet moment.
			select {
			case <-heartbeat.C:
				j.renew()
			default:
			}
			j.flushIfDue(ctx)
		}
		j.flushIfDue(ctx)
	}
}

// flushTimeUp runs FlushDelay after a save to a Flusher store that nothing
// flushed since.
func (j *Journal) flushTimeUp() {
	j.mu.Lock()
	j.flushDue = true
	j.mu.Unlock()
	j.wake()
}

// flushIfDue flushes a Flusher store when a Flush waits or the flush timer
// fired, and otherwise arms the timer for changes saved but not flushed. It
// runs in the committer between saves: a save waits for a flush (once per
// FlushDelay at most) rather than race it.
func (j *Journal) flushIfDue(ctx context.Context) {
	f, ok := j.store.(Flusher)
	if !ok {
		return
	}
	j.mu.Lock()
	target := j.durable
	if j.err != nil || target <= j.flushed {
		j.mu.Unlock()
		return
	}
	if j.flushWant <= j.flushed && !j.flushDue {
		if !j.flushArmed {
			j.flushArmed = true
			j.flushTimer.Reset(j.opt.FlushDelay)
		}
		j.mu.Unlock()
		return
	}
	j.flushDue, j.flushArmed = false, false
	j.flushTimer.Stop()
	j.mu.Unlock()
	if err := f.Flush(ctx, j.runID); err != nil {
		if ctx.Err() == nil {
			// Not retried: after a failed fsync the kernel may have
			// dropped the pages it could not write, and a second fsync
			// would report success for data that is gone.
			j.fail(fmt.Errorf("flush run %s to disk: %w", j.runID, err))
		}
		return
	}
	j.mu.Lock()
	j.flushed = max(j.flushed, target)
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

func (j *Journal) renew() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil || j.closing || j.run.Lease == nil {
		return
	}
	now := j.opt.Now().UTC()
	j.run.Lease.Renewed = now
	j.run.Lease.Expires = now.Add(j.opt.TTL)
	j.seq++
	j.urge()
}

// saveOnce saves pending changes, retrying transient errors. It reports
// whether more changes arrived meanwhile and another Save is due.
func (j *Journal) saveOnce(ctx context.Context) bool {
	j.mu.Lock()
	if j.err != nil || j.seq == j.durable {
		j.mu.Unlock()
		return false
	}
	target, ver := j.seq, j.ver
	// This save carries whatever was posted: its timer has nothing left to do.
	if j.posted {
		j.posted = false
		j.postTimer.Stop()
	}
	app, journaled := j.store.(Appender)
	// A record carries steps and the run's own fields; a whole-run change
	// (a new Order, steps added or dropped) takes a snapshot, and so do
	// records that outweigh the last snapshot, so that replaying stays
	// cheap and the bytes written per change stay constant.
	journaled = journaled && !j.enc.allDirty && orderOf(j.run) == j.order &&
		j.appended < max(j.snap, minCompact)
	var doc []byte
	var err error
	if journaled {
		doc, err = j.enc.record(j.run)
	} else {
		doc, err = j.enc.encode(j.run)
	}
	order := orderOf(j.run)
	j.mu.Unlock()
	if err != nil {
		j.fail(fmt.Errorf("save run %s: encode state: %w", j.runID, err))
		return false
	}

	var first time.Time
	wait := retryMin
	for {
		var nv Version
		var err error
		if journaled {
			nv, err = app.Append(ctx, j.runID, doc, ver)
		} else {
			nv, err = j.store.Save(ctx, j.runID, doc, ver)
		}
		if err == nil {
			j.mu.Lock()
			if journaled {
				j.appended += len(doc)
			} else {
				j.snap, j.appended, j.order = len(doc), 0, order
			}
			j.ver, j.durable = nv, target
			if _, deferred := j.store.(Flusher); !deferred || !journaled {
				j.flushed = target // on disk already: a Save, or a store without Flusher
			}
			close(j.changed)
			j.changed = make(chan struct{})
			// Only what something waits for is saved at once; what was
			// posted meanwhile waits for the next such save, or its timer.
			more := j.want > j.durable
			if !more && j.seq != j.durable && !j.posted {
				j.posted = true
				j.postTimer.Reset(j.opt.PostDelay)
			}
			j.mu.Unlock()
			return more
		}
		switch {
		// Stores name the run and themselves in errors.
		case errors.Is(err, ErrConflict):
			j.fail(fmt.Errorf("another runner changed the run; this one stops driving it: %w", err))
			return false
		case errors.Is(err, ErrNotFound):
			j.fail(fmt.Errorf("the run's state is gone (deleted?); this runner stops driving it: %w", err))
			return false
		case ctx.Err() != nil:
			// Close gave up waiting; Close reports its own context's error.
			return false
		}
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		if now.Sub(first) >= j.opt.TTL {
			j.fail(fmt.Errorf("save run %s to %s: failing for %s, giving up: %w",
				j.runID, j.store, now.Sub(first).Round(time.Second), err))
			return false
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
}

// minCompact is the journal size below which no snapshot is taken however
// small the last one was: a run's first records would otherwise each take one.
const minCompact = 64 << 10

// orderID identifies a Run's Order slice without comparing its elements:
// Order is only ever replaced whole (see engine's initState).
type orderID struct {
	n     int
	first *string
}

func orderOf(r *Run) orderID {
	if len(r.Order) == 0 {
		return orderID{}
	}
	return orderID{len(r.Order), &r.Order[0]}
}

func (j *Journal) fail(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	j.err = err
	close(j.lost)
	close(j.changed)
	j.changed = make(chan struct{})
}
