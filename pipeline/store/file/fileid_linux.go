package file

import (
	"errors"
	"os"
	"syscall"
)

func idOfStat(st *syscall.Stat_t) fileID {
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: uint64(st.Size),
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// statID returns the identity and size of the file at path; a raw stat
// allocates nothing, and current makes two per Append.
func statID(path string) (fileID, int64, bool, error) {
	var st syscall.Stat_t
	for {
		err := syscall.Stat(path, &st)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fileID{}, 0, false, &os.PathError{Op: "stat", Path: path, Err: err}
		}
		return idOfStat(&st), st.Size, true, nil
	}
}

// fdID returns the identity of an open file.
func fdID(fd int) (fileID, bool) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fileID{}, false
	}
	return idOfStat(&st), true
}
