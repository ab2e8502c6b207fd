package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// DefaultTTL is how long a lease lives without a heartbeat. The heartbeat
// renews it every TTL/3, so two heartbeats may fail before it expires.
const DefaultTTL = 30 * time.Second

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("journal closed")

// LeaseOptions says who drives a run and how its lease is kept.
type LeaseOptions struct {
	Owner string        // unique per runner process; default host:pid:random
	TTL   time.Duration // default DefaultTTL
	Force bool          // take over a fresh lease held by another runner (dangerous)
	Now   func() time.Time

	// Host and PID identify this runner in the lease; default os.Hostname and
	// os.Getpid. ProcessAlive reports whether a process of this host exists;
	// default kill(pid, 0). Tests override them.
	Host         string
	PID          int
	ProcessAlive func(pid int) bool

	// FlushDelay bounds how long a change saved to a Flusher store waits
	// for its flush to disk when nothing asks for one; default
	// DefaultFlushDelay.
	FlushDelay time.Duration

	// PostDelay bounds how long a posted change (Post, Apply) waits for a
	// save that something awaits to carry it; default DefaultPostDelay.
	PostDelay time.Duration
}

// DefaultFlushDelay is LeaseOptions.FlushDelay's default: what a power loss
// may cost of a run's most recent changes on a local disk (steps that
// finished in that window run again on resume), as PostgreSQL's
// wal_writer_delay bounds it for asynchronous commits.
const DefaultFlushDelay = 200 * time.Millisecond

func (o LeaseOptions) withDefaults() LeaseOptions {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.ProcessAlive == nil {
		o.ProcessAlive = processAlive
	}
	if o.FlushDelay <= 0 {
		o.FlushDelay = DefaultFlushDelay
	}
	if o.PostDelay <= 0 {
		o.PostDelay = DefaultPostDelay
	}
	if o.Owner == "" {
		o.Owner = fmt.Sprintf("%s:%d:%s", o.Host, o.PID, randomSuffix())
	}
	return o
}

// Journal holds a run's state in memory while one runner drives it, and makes
// changes durable in a Store with compare-and-swap. Changes are applied at
// once in memory; one committer goroutine saves them, coalescing all changes
// made while a Save is in flight into the next Save (group commit). A
// heartbeat renews the lease every TTL/3.
//
// The Journal never overwrites a document it did not write last: when a Save
// finds the run changed (another runner took over) or gone, the Journal is
// lost: Lost is closed, Err says why, and every later Update fails.
type Journal struct {
	store Store
	runID string
	opt   LeaseOptions

	mu      sync.Mutex
	run     *Run
	ver     Version
	seq     uint64        // number of changes applied to run
	durable uint64        // changes contained in the last successful Save
	flushed uint64        // changes on disk (= durable unless the store is a Flusher)
	changed chan struct{} // closed and replaced when durable, flushed or err change
	err     error         // terminal: lost or failing saves
	lost    chan struct{}
	closing bool
	kick    chan struct{}
	// A Post waits up to PostDelay for a save that something awaits to
	// carry it (see PostStep); posted says the timer is armed.
	postTimer *time.Timer
	posted    bool
	want      uint64 // the last change something waits for (see urge)
	// With a Flusher store: the last change a Flush waits to see on disk,
	// and the timer that flushes FlushDelay after a save (armed says so;
	// due says it fired).
	flushWant  uint64
	flushTimer *time.Timer
	flushArmed bool
	flushDue   bool
	stop       context.CancelFunc
	done       chan struct{}
	enc        *encoder

	// With an Appender store: bytes of the last snapshot and of the
	// records since, and the Order it held (see saveOnce).
	snap, appended int
	order          orderID
}

// Create stores a new run and returns a Journal holding its lease. Missing
// SchemaVersion, Created, Updated and Steps are filled in. ErrExists if the
// run id is taken.
func Create(ctx context.Context, s Store, run *Run, opt LeaseOptions) (*Journal, error) {
	if run == nil || run.ID == "" {
		return nil, errors.New("create run: no run id")
	}
	opt = opt.withDefaults()
	r := run.Clone()
	now := opt.Now().UTC()
	if r.SchemaVersion == 0 {
		r.SchemaVersion = SchemaVersion
	}
	if r.Created.IsZero() {
		r.Created = now
	}
	r.Updated = now
	if r.Steps == nil {
		r.Steps = make(map[string]*Step)
	}
	r.Lease = newLease(opt, now)
	doc, err := r.appendJSON(nil)
	if err != nil {
		return nil, fmt.Errorf("create run %s: encode state: %w", r.ID, err)
	}
	v, err := s.Create(ctx, r.ID, doc)
	if err != nil {
		return nil, err // stores name the run and themselves in errors
	}
	return start(ctx, s, r, v, len(doc), opt), nil
}

func start(ctx context.Context, s Store, r *Run, v Version, snapBytes int, opt LeaseOptions) *Journal {
	// The committer outlives the call that created the Journal; it stops on
	// Close, keeping ctx's values but not its cancellation.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j := &Journal{
		store:   s,
		runID:   r.ID,
		opt:     opt,
		run:     r,
		ver:     v,
		changed: make(chan struct{}),
		lost:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		stop:    cancel,
		enc:     newEncoder(),
		done:    make(chan struct{}),
		snap:    snapBytes,
	}
	j.order = orderOf(r)
	j.postTimer = time.AfterFunc(time.Hour, j.postDue)
	j.postTimer.Stop()
	j.flushTimer = time.AfterFunc(time.Hour, j.flushTimeUp)
	j.flushTimer.Stop()
	go j.commitLoop(cctx)
	return j
}

// Store is the store the run lives in (for logs and blobs).
func (j *Journal) Store() Store { return j.store }

// RunID is the id of the run.
func (j *Journal) RunID() string { return j.runID }

// Snapshot returns a deep copy of the run as it is in memory (including
// changes not yet durable).
func (j *Journal) Snapshot() *Run {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.run.Clone()
}

// Lost is closed when the Journal can no longer save: the run was changed by
// another writer or deleted (Err wraps ErrConflict or ErrNotFound), or saves
// kept failing for longer than the lease TTL.
func (j *Journal) Lost() <-chan struct{} { return j.lost }

// Err says why the Journal is lost; nil while it is not.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// apply runs fn on the in-memory run and schedules a save: at once when
// urgent, else within PostDelay. It returns the change's sequence number. fn
// runs under the Journal's lock: it must not call the Journal. step names the
// one step fn changes besides the run's own fields, or "" when fn may change
// any step.
func (j *Journal) apply(step string, fn func(*Run), urgent bool) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return 0, j.err
	}
	if j.closing {
		return 0, fmt.Errorf("update run %s: %w", j.runID, ErrClosed)
	}
	fn(j.run)
	j.enc.touch(step)
	j.run.Updated = j.opt.Now().UTC()
	j.seq++
	switch {
	case urgent:
		j.urge()
	case !j.posted:
		j.posted = true
		j.postTimer.Reset(j.opt.PostDelay)
	}
	return j.seq, nil
}

// DefaultPostDelay is LeaseOptions.PostDelay's default. Short steps' starts
// and ends ride along with a save that something awaits instead of costing a
// save each; a runner that dies loses at most this much of what was only
// posted (those steps run again on resume).
const DefaultPostDelay = 50 * time.Millisecond

// postDue saves what was posted when no other save took it along first.
func (j *Journal) postDue() {
	j.mu.Lock()
	due := j.posted
	j.posted = false
	j.mu.Unlock()
	if due {
		j.wake()
	}
}

// urge has the committer save every change applied so far without delay;
// the caller holds the lock.
func (j *Journal) urge() {
	j.want = j.seq
	j.wake()
}

func (j *Journal) wake() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// Update applies fn to the run and returns once a Save containing the change
// is durable: stored, so that a runner dying next loses nothing (with a
// Flusher store, on disk within FlushDelay; Flush waits for that). Concurrent
// Updates share Saves. When ctx ends first, the change
// stays applied and will still be saved; Update returns ctx's error. When
// Close gives up before the change is saved, Update returns ErrClosed.
func (j *Journal) Update(ctx context.Context, fn func(*Run)) error {
	return j.UpdateStep(ctx, "", fn)
}

// UpdateStep is Update for a fn that changes only the step with this id
// (and the run's own fields): the next Save re-encodes just that step.
func (j *Journal) UpdateStep(ctx context.Context, step string, fn func(*Run)) error {
	seq, err := j.apply(step, fn, true)
	if err != nil {
		return err
	}
	return j.waitDurable(ctx, seq)
}

// Post applies fn and lets the committer save it soon, without waiting: with
// the next save of an Update, Sync or Close, or after PostDelay at the
// latest. A Post after the Journal is lost or closed is dropped; Err tells.
func (j *Journal) Post(fn func(*Run)) { j.PostStep("", fn) }

// PostStep is Post for a fn that changes only the step with this id.
func (j *Journal) PostStep(step string, fn func(*Run)) {
	j.apply(step, fn, false) //nolint:errcheck // Err() reports a lost journal
}

// Mark is a change's place in the sequence of changes applied to a Journal:
// the change is durable once Durable reports a Mark at least as high.
type Mark uint64

// Apply is PostStep that returns the change's Mark, or why the change was
// not applied (the Journal is lost or closed). It does not wait: the change
// is saved with the next save something waits for, when Hurry asks for it,
// or within PostDelay. A caller that must not act before the change is
// stored (start a step that depends on it) watches Durable.
func (j *Journal) Apply(step string, fn func(*Run)) (Mark, error) {
	seq, err := j.apply(step, fn, false)
	return Mark(seq), err
}

// Durable returns the Mark of the last durable change and a channel that is
// closed when that (or Err) changes.
func (j *Journal) Durable() (Mark, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Mark(j.durable), j.changed
}

// Hurry has the committer save every change up to m at once rather than
// within PostDelay: something is about to wait for it.
func (j *Journal) Hurry(m Mark) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if uint64(m) > j.durable && uint64(m) > j.want {
		j.want = min(uint64(m), j.seq)
		j.wake()
	}
}

// Sync returns once every change applied before the call is durable (as
// Update would for them), saving posted changes at once.
func (j *Journal) Sync(ctx context.Context) error {
	j.mu.Lock()
	seq := j.seq
	if seq != j.durable {
		j.urge()
	}
	j.mu.Unlock()
	return j.waitDurable(ctx, seq)
}

// Flush is Sync that also waits for the changes to be on disk with a Flusher
// store. Call it before acting on something outside this machine that a
// resume must know about even after a power loss (a stack created, a
// command sent).
func (j *Journal) Flush(ctx context.Context) error {
	j.mu.Lock()
	seq := j.seq
	j.requestFlush(seq)
	j.mu.Unlock()
	return j.waitFlushed(ctx, seq)
}

// requestFlush has the committer save and flush every change up to seq at
// once; the caller holds the lock.
func (j *Journal) requestFlush(seq uint64) {
	j.flushWant = max(j.flushWant, seq)
	if seq != j.durable {
		j.urge()
	} else {
		j.wake()
	}
}

func (j *Journal) waitDurable(ctx context.Context, seq uint64) error {
	return j.waitFor(ctx, seq, func() uint64 { return j.durable })
}

func (j *Journal) waitFlushed(ctx context.Context, seq uint64) error {
	return j.waitFor(ctx, seq, func() uint64 { return j.flushed })
}

// waitFor returns once reached (read under the lock) is at least seq.
func (j *Journal) waitFor(ctx context.Context, seq uint64, reached func() uint64) error {
	for {
		j.mu.Lock()
		durable, err, ch := reached(), j.err, j.changed
		j.mu.Unlock()
		if durable >= seq {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("save run %s: %w", j.runID, context.Cause(ctx))
		case <-ch:
		case <-j.done:
			// Close gave up and stopped the committer: nothing will save
			// the change any more, unless its last Save just did.
			j.mu.Lock()
			durable, err = reached(), j.err
			j.mu.Unlock()
			switch {
			case durable >= seq:
				return nil
			case err != nil:
				return err
			}
			return fmt.Errorf("save run %s: closed before the change was saved: %w", j.runID, ErrClosed)
		}
	}
}

// Close saves what is pending with the lease released, flushes it to disk, and
// stops the heartbeat. It returns Err if the Journal was lost. Close is idempotent.
func (j *Journal) Close(ctx context.Context) error {
	j.mu.Lock()
	if j.closing {
		j.mu.Unlock()
		<-j.done
		return j.Err()
	}
	j.closing = true
	var err error
	if j.err == nil {
		j.run.Lease = nil
		j.run.Updated = j.opt.Now().UTC()
		j.seq++
		seq := j.seq
		j.requestFlush(seq)
		j.mu.Unlock()
		err = j.waitFlushed(ctx, seq)
	} else {
		j.mu.Unlock()
	}
	j.stop()
	<-j.done
	j.postTimer.Stop()
	j.flushTimer.Stop()
	if lerr := j.Err(); lerr != nil {
		return lerr
	}
	return err
}
