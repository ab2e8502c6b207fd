//go:build unix

package file

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// lock takes an exclusive flock on dir/.lock, polling so that a cancelled
// context ends the wait. It fails with fs.ErrNotExist when dir does not exist:
// the lock file is only created inside an existing run directory. The lock is
// released by the kernel if the process dies, so there are no stale locks.
//
// The lock file is a raw descriptor: os.OpenFile tries every file on the
// runtime's poller, five system calls wasted on a regular file per lock.
func lock(ctx context.Context, dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	fd, err := openLock(dir)
	if err != nil {
		return nil, err
	}
	if err := flockWait(ctx, fd, path); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return func() {
		// Explicitly: a child forked meanwhile holds the open
		// file until it execs, and with it the lock.
		syscall.Flock(fd, syscall.LOCK_UN)
		syscall.Close(fd)
	}, nil
}

// openLock opens dir/.lock, creating it in an existing dir.
func openLock(dir string) (int, error) {
	return openRaw(filepath.Join(dir, lockFile), syscall.O_RDWR|syscall.O_CREAT, 0o644)
}

// flockWait takes an exclusive flock on fd (the file at path), polling until
// ctx ends.
func flockWait(ctx context.Context, fd int, path string) error {
	wait := 100 * time.Microsecond
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("lock %s: %w", path, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("lock %s: %w", path, context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}
