//go:build !linux

package file

import "io/fs"

// idOf cannot tell on this OS (the stat fields differ): the journal's
// writer reads state.json and state.journal again on every Append.
func idOf(fs.FileInfo) (fileID, bool) { return fileID{}, false }
