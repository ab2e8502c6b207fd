package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Each Local keeps its scripts' output files in a directory of its own under
// the temp directory, removed by Close. A runner killed with SIGKILL never
// closes it, so Local also removes the directories of dead runners: each
// holds a lock file that its runner flocks from the moment the directory has
// its final name until the runner exits (the kernel drops the lock of a dead
// process), so a directory whose lock is free belongs to nobody alive, unless
// a step process of the dead runner still writes into it, which
// $GPIPE_OUTPUT in its environment tells.
const (
	workDirPrefix = "gpipe-work-"
	// newDirPrefix names a directory not yet locked; it gets the final name
	// once it is. Only a runner killed in between leaves one behind.
	newDirPrefix = ".gpipe-new-"
	// newDirAge is how old an unlocked new directory must be to be taken
	// for a dead runner's: locking it takes microseconds.
	newDirAge  = time.Minute
	workDirLck = ".lock"
)

// workDir makes the executor's directory on first use, after removing those
// of dead runners.
func (l *Local) workDir() (string, error) {
	l.dirOnce.Do(func() {
		tmp := l.tempDir()
		sweepWorkDirs(tmp)
		l.dir, l.dirLock, l.dirErr = makeWorkDir(tmp)
		if l.dirErr != nil {
			l.dirErr = fmt.Errorf("make step directory: %w", l.dirErr)
		}
	})
	return l.dir, l.dirErr
}

func (l *Local) tempDir() string {
	if l.TempDir != "" {
		return l.TempDir
	}
	return os.TempDir()
}

// Close removes the executor's directory, and those of dead runners whose
// last steps were still running when it started.
func (l *Local) Close() error {
	if l.nullErr == nil && l.nullFD > 0 {
		syscall.Close(l.nullFD)
		l.nullFD, l.nullErr = -1, errors.New("host: executor closed")
	}
	if l.dir == "" {
		return nil
	}
	err := os.RemoveAll(l.dir)
	l.dirLock.Close()
	sweepWorkDirs(l.tempDir())
	return err
}

// makeWorkDir makes a locked directory under tmp and returns it with its
// held lock file.
func makeWorkDir(tmp string) (string, *os.File, error) {
	for range 100 {
		dir, err := os.MkdirTemp(tmp, newDirPrefix)
		if err != nil {
			return "", nil, err
		}
		f, err := os.OpenFile(filepath.Join(dir, workDirLck), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		}
		if err != nil {
			if f != nil {
				f.Close()
			}
			os.RemoveAll(dir)
			return "", nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		final := filepath.Join(tmp, workDirPrefix+strings.TrimPrefix(filepath.Base(dir), newDirPrefix))
		// A directory with .lock in it is never empty, so the rename
		// cannot replace another executor's; it fails instead.
		if err := os.Rename(dir, final); err == nil {
			return final, f, nil
		}
		f.Close()
		os.RemoveAll(dir)
	}
	return "", nil, errors.New("no free directory name")
}

// sweepWorkDirs removes, best effort, the directories under tmp that dead
// runners of this user left.
func sweepWorkDirs(tmp string) {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	uid := uint32(os.Getuid())
	var dead []string
	var unlock []*os.File
	defer func() {
		for _, f := range unlock {
			f.Close()
		}
	}()
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !(strings.HasPrefix(name, workDirPrefix) || strings.HasPrefix(name, newDirPrefix)) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != uid {
			continue
		}
		isNew := strings.HasPrefix(name, newDirPrefix)
		if isNew && time.Since(fi.ModTime()) < newDirAge {
			continue // its runner may be about to lock it
		}
		dir := filepath.Join(tmp, name)
		f, err := os.Open(filepath.Join(dir, workDirLck))
		switch {
		case err == nil:
			if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
				f.Close() // held: its runner lives
				continue
			}
			// Held until removed, so that two sweepers agree.
			unlock = append(unlock, f)
		case !isNew || !errors.Is(err, fs.ErrNotExist):
			// A final directory without its lock file is being removed.
			continue
		}
		dead = append(dead, dir)
	}
	if len(dead) == 0 {
		return
	}
	used := outputDirsInUse(uid)
	for _, dir := range dead {
		if !used[dir] {
			_ = os.RemoveAll(dir)
		}
	}
}
