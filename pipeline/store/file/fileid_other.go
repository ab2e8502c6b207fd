//go:build !linux

package file

import "os"

// statID cannot tell the identity on this OS (the stat fields differ): the
// journal's writer reads state.json and state.journal again on every Append.
func statID(path string) (fileID, int64, bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, 0, false, err
	}
	return fileID{}, fi.Size(), false, nil
}

// fdID cannot tell on this OS either.
func fdID(int) (fileID, bool) { return fileID{}, false }
