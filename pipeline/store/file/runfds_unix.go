//go:build unix

package file

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
)

// runFDs are the descriptors Append keeps open between calls for one run:
// opening and closing the lock file and the journal were four of the ten
// system calls of an Append. They are used by one goroutine at a time (an
// flock is held per open file, so two goroutines sharing the lock's
// descriptor would not exclude each other): Append takes them from the
// Store's fdCache, or opens new ones when another goroutine has them, and
// hands them back when done.
//
// The flock is still taken and released per Append, and released explicitly
// before the descriptor is closed (a child forked meanwhile holds the open
// file until it execs). Both descriptors are closed on exec (openRaw).
type runFDs struct {
	runID   string
	lock    int    // dir/.lock
	lockID  fileID // its dev and ino
	journal int    // dir/state.journal as it was when opened, or -1
	jID     fileID // its dev and ino
	// verified: the lock held is dir/.lock as the path now names it. A
	// descriptor kept from an earlier Append may name a lock file that is
	// gone with its directory (Delete, then maybe Create again, by any
	// process): flocking it excludes nobody.
	verified bool
}

// sameFile tells whether two identities name one file. An open descriptor
// keeps its inode from being reused, so a path whose dev and ino are those
// of a descriptor this Store holds names that very file.
func sameFile(a, b fileID) bool { return a.ino != 0 && a.dev == b.dev && a.ino == b.ino }

func (f *runFDs) close() {
	if f.journal >= 0 {
		syscall.Close(f.journal)
	}
	syscall.Close(f.lock)
}

// verify checks that the lock held is the run directory's lock file.
func (f *runFDs) verify(dir string) error {
	if f.verified {
		return nil
	}
	id, _, ok, err := statID(filepath.Join(dir, lockFile))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	if err != nil || !ok || !sameFile(id, f.lockID) {
		return errStaleLock
	}
	f.verified = true
	return nil
}

// errStaleLock: the lock descriptor kept from an earlier Append is not the
// run directory's lock file any more; Append starts over with a new one.
var errStaleLock = errors.New("the run directory was replaced")

// fdCache keeps the descriptors of at most one run, the one last appended
// to: a runner appends to one run, and a Store used for many runs (a test,
// gpipe status) keeps no more than two descriptors open. A Store has no
// Close: New registers a cleanup that closes them when the Store is
// collected.
type fdCache struct {
	mu   sync.Mutex
	idle *runFDs
}

// take returns the cached descriptors of runID, which the caller then owns,
// or nil.
func (c *fdCache) take(runID string) *runFDs {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.idle
	if f == nil || f.runID != runID {
		return nil
	}
	c.idle = nil
	f.verified = false
	return f
}

// put hands back unlocked descriptors: they replace those of another run,
// and are closed when the cache already holds some of this run (another
// goroutine's).
func (c *fdCache) put(f *runFDs) {
	c.mu.Lock()
	old := c.idle
	if old != nil && old.runID == f.runID {
		old, f = f, old
	}
	c.idle = f
	c.mu.Unlock()
	if old != nil {
		old.close()
	}
}

// drop closes the cached descriptors of runID, or of every run when runID is
// empty.
func (c *fdCache) drop(runID string) {
	c.mu.Lock()
	f := c.idle
	if f != nil && (runID == "" || f.runID == runID) {
		c.idle = nil
	} else {
		f = nil
	}
	c.mu.Unlock()
	if f != nil {
		f.close()
	}
}

// lockAppend takes the run's lock for an Append on descriptors kept from the
// last one, or on a new descriptor when there are none.
func (s *Store) lockAppend(ctx context.Context, runID, dir string) (*runFDs, error) {
	f := s.fds.take(runID)
	if f == nil {
		fd, err := openLock(dir)
		if err != nil {
			return nil, err
		}
		id, _ := fdID(fd)
		f = &runFDs{runID: runID, lock: fd, lockID: id, journal: -1, verified: true}
	}
	if err := flockWait(ctx, f.lock, filepath.Join(dir, lockFile)); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// unlockAppend releases the lock and keeps the descriptors for the next
// Append, or closes them when keep is false (the Append failed: whatever
// went wrong, the next one starts afresh).
func (s *Store) unlockAppend(f *runFDs, keep bool) {
	syscall.Flock(f.lock, syscall.LOCK_UN)
	if keep {
		s.fds.put(f)
	} else {
		f.close()
	}
}

// journalFD returns a descriptor of the run's journal, which the path named
// as jid when current looked under the lock (zero: no journal), opening it
// unless the one kept names the same file; created says it was created now.
func (f *runFDs) journalFD(dir string, jid fileID) (fd int, created bool, err error) {
	if f.journal >= 0 && sameFile(jid, f.jID) {
		// The journal the path names is the one this descriptor
		// holds, and it lives in the directory the lock was opened
		// in (a journal never moves to another run's directory):
		// the lock held is the run's.
		f.verified = true
		return f.journal, false, nil
	}
	if err := f.verify(dir); err != nil {
		return -1, false, err
	}
	if f.journal >= 0 {
		syscall.Close(f.journal)
		f.journal = -1
	}
	path := filepath.Join(dir, journalFile)
	fd, err = openRaw(path, syscall.O_RDWR, 0)
	if errors.Is(err, syscall.ENOENT) {
		fd, err = openRaw(path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL, 0o600)
		created = true
	}
	if err != nil {
		return -1, false, err
	}
	f.journal = fd
	f.jID, _ = fdID(fd)
	return fd, created, nil
}
