package file

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/gpipe/gpipe/pipeline/state"
)

// The journal (state.Appender) is state.journal beside state.json: a header
// line naming the version of the snapshot it follows and a random id of
// this journal, then one line per
// record, "<crc32c in hex> <record>\n". Append writes a line, Flush fsyncs; Save
// writes a new snapshot (atomically, as before) and then empties the journal.
// A journal whose header names another snapshot is stale (a writer died
// between the two) and is ignored, so its records are never replayed over the
// snapshot that already holds them. A line that is incomplete or fails its
// checksum ends the journal (a writer died mid-write); the next Append cuts it
// off before writing.
//
// The run's version is the snapshot's content hash, followed by "+", the
// journal's id, "." and the byte length of the valid records when there are
// any: any Append or Save changes it, and Append and Save compare it under
// the run's lock. The id keeps a version from naming two states: after a
// Save of the same snapshot, a new journal whose records have the length of
// the old one's is still another journal.
const (
	journalFile   = "state.journal"
	journalHeader = "gpipe-journal 1 "
)

// castagnoli is made on first use rather than at package init: building
// the table costs 0.2 ms that every command would pay at start-up, and only
// those that read or write a journal need it.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// fileID tells whether a file changed since it was last looked at without
// reading it: every write here replaces or grows the file, changing its
// inode, size or times. idOf (per OS) reports false where it cannot tell,
// and the file is then read again.
type fileID struct {
	dev, ino, size uint64
	mtime, ctime   int64
}

// runCache remembers, per run, what this Store last saw of state.json and
// state.journal, so that a writer holding the lock need not reread and rehash
// the whole snapshot (or rescan the journal) on every Append: that is what
// made every save cost as much as the run's size.
type runCache struct {
	snapID  fileID
	snapVer state.Version
	jID     fileID
	jBase   state.Version // the snapshot version in the journal's header
	jNonce  string        // the journal's id in its header
	jValid  int64         // bytes of valid records after the header
	jSize   int64         // bytes of the whole journal file
}

func joinVersion(snap state.Version, nonce string, records int64) state.Version {
	if records == 0 {
		return snap
	}
	return state.Version(string(snap) + "+" + nonce + "." + strconv.FormatInt(records, 10))
}

// current returns the run's version and the valid record bytes of its
// journal (0 when it has none or a stale one), leaving what it saw in the
// cache. The caller holds the lock.
func (s *Store) current(runID, dir string) (state.Version, int64, error) {
	v, records, _, err := s.look(runID, dir)
	return v, records, err
}

// look is current, also returning what it cached.
func (s *Store) look(runID, dir string) (state.Version, int64, runCache, error) {
	// A copy: the entry is replaced, never changed in place, so other
	// goroutines of this Store read it safely under s.mu (the file lock
	// serialises writers, but the race detector cannot know that).
	var c runCache
	s.mu.Lock()
	if p := s.cache[runID]; p != nil {
		c = *p
	}
	s.mu.Unlock()
	id, _, ok, err := statID(filepath.Join(dir, stateFile))
	if err != nil {
		return "", 0, runCache{}, err
	}
	if !ok || id != c.snapID || c.snapVer == "" {
		doc, err := os.ReadFile(filepath.Join(dir, stateFile))
		if err != nil {
			return "", 0, runCache{}, err
		}
		c.snapVer = version(doc)
		// The stat before the read keeps a change between the two from
		// being cached under the old identity; at worst the next call
		// rereads.
		c.snapID = id
	}
	jid, jsize, ok, err := statID(filepath.Join(dir, journalFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.jID, c.jBase, c.jNonce, c.jValid, c.jSize = fileID{}, "", "", 0, 0
	case err != nil:
		return "", 0, runCache{}, err
	default:
		c.jSize = jsize
		if !ok || jid != c.jID || c.jBase == "" {
			b, err := os.ReadFile(filepath.Join(dir, journalFile))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", 0, runCache{}, err
			}
			base, nonce, _, valid := parseJournal(b)
			c.jID, c.jBase, c.jNonce, c.jValid = jid, base, nonce, valid
		}
	}
	records := c.jValid
	if c.jBase != c.snapVer {
		records = 0
	}
	s.mu.Lock()
	s.cache[runID] = &c
	s.mu.Unlock()
	return joinVersion(c.snapVer, c.jNonce, records), records, c, nil
}

// parseJournal returns the snapshot version and journal id in b's header,
// the valid records and their length in bytes (past the header). A torn or
// corrupt line ends the records.
func parseJournal(b []byte) (base state.Version, nonce string, recs [][]byte, valid int64) {
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok || !bytes.HasPrefix(line, []byte(journalHeader)) {
		return "", "", nil, 0
	}
	v, n, ok := bytes.Cut(line[len(journalHeader):], []byte(" "))
	if !ok || len(v) == 0 || len(n) == 0 {
		return "", "", nil, 0
	}
	base, nonce = state.Version(v), string(n)
	for len(rest) > 0 {
		line, next, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			break
		}
		sum, rec, ok := bytes.Cut(line, []byte(" "))
		if !ok || len(sum) != 8 {
			break
		}
		want, err := strconv.ParseUint(string(sum), 16, 32)
		if err != nil || uint32(want) != crc32.Checksum(rec, castagnoli()) {
			break
		}
		recs = append(recs, rec)
		valid += int64(len(line) + 1)
		rest = next
	}
	return base, nonce, recs, valid
}

func headerLen(snap state.Version, nonce string) int64 {
	return int64(len(journalHeader) + len(snap) + 1 + len(nonce) + 1)
}

func journalLine(rec []byte) []byte {
	line := make([]byte, 0, len(rec)+10)
	line = fmt.Appendf(line, "%08x ", crc32.Checksum(rec, castagnoli()))
	line = append(line, rec...)
	return append(line, '\n')
}

// LoadJournal implements state.Appender. Like Load it takes no lock: a
// writer that compacts meanwhile leaves either the old snapshot with a journal
// naming the new one (records ignored: an older but whole view) or the new
// snapshot; compare-and-swap catches a writer acting on the older view.
func (s *Store) LoadJournal(ctx context.Context, runID string) ([]byte, [][]byte, state.Version, error) {
	doc, _, err := s.Load(ctx, runID)
	if err != nil {
		return nil, nil, "", err
	}
	snap := version(doc)
	b, err := os.ReadFile(filepath.Join(s.runDir(runID), journalFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, err)
	}
	base, nonce, recs, valid := parseJournal(b)
	if base != snap {
		return doc, nil, snap, nil
	}
	return doc, recs, joinVersion(snap, nonce, valid), nil
}

// Flush implements state.Flusher: one fsync of the run's journal. A run
// without a journal has nothing to flush (Create and Save fsync their
// snapshot).
func (s *Store) Flush(ctx context.Context, runID string) error {
	if err := state.CheckName("run id", runID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	path := filepath.Join(s.runDir(runID), journalFile)
	fd, err := openRaw(path, syscall.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("flush run %s in %s: %w", runID, s, err)
	}
	defer syscall.Close(fd)
	if err := retryEINTR(func() error { return syscall.Fsync(fd) }); err != nil {
		return fmt.Errorf("flush run %s in %s: %w", runID, s, &os.PathError{Op: "sync", Path: path, Err: err})
	}
	return nil
}

// Append implements state.Appender: one write of the journal, which reaches
// the disk on Flush (state.Flusher).
func (s *Store) Append(ctx context.Context, runID string, rec []byte, v state.Version) (state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return "", err
	}
	if bytes.IndexByte(rec, '\n') >= 0 {
		return "", fmt.Errorf("append to run %s in %s: record holds a newline", runID, s)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dir := s.runDir(runID)
	// Twice at most: descriptors kept from an earlier Append may name a
	// run directory that was replaced since (errStaleLock); new ones name
	// the one there now, as every other write's do.
	for attempt := 0; ; attempt++ {
		f, err := s.lockAppend(ctx, runID, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("append to run %s in %s: %w", runID, s, state.ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("append to run %s in %s: %w", runID, s, err)
		}
		nv, err := s.append(ctx, runID, dir, f, rec, v)
		if err != nil {
			s.forget(runID)
		}
		// Without an identity (fdID) the kept lock cannot be
		// verified: nothing is kept then.
		s.unlockAppend(f, err == nil && f.lockID.ino != 0)
		if errors.Is(err, errStaleLock) && attempt == 0 {
			continue
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = state.ErrNotFound
			}
			return "", fmt.Errorf("append to run %s in %s: %w", runID, s, err)
		}
		return nv, nil
	}
}

func (s *Store) append(ctx context.Context, runID, dir string, f *runFDs, rec []byte, v state.Version) (state.Version, error) {
	cur, records, c, err := s.look(runID, dir)
	if err == nil && cur != v {
		err = fmt.Errorf("have version %s, stored %s: %w", v, cur, state.ErrConflict)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		// What current saw counts only under the run's own lock.
		if verr := f.verify(dir); verr != nil {
			return "", verr
		}
		return "", err
	}
	snap, nonce, size := c.snapVer, c.jNonce, c.jSize
	// Raw descriptors: os.OpenFile tries every file on the runtime's
	// poller, five system calls wasted on a regular file.
	path := filepath.Join(dir, journalFile)
	fd, created, err := f.journalFD(dir, c.jID)
	if err != nil {
		return "", err
	}
	var buf []byte
	var off int64
	if records == 0 {
		// No journal for this snapshot yet, or a stale or torn one: a new
		// journal, with a new id.
		nonce = newNonce()
		buf = []byte(journalHeader + string(snap) + " " + nonce + "\n")
	} else {
		off = headerLen(snap, nonce) + records
	}
	line := journalLine(rec)
	buf = append(buf, line...)
	// Only a torn tail or a stale journal leaves bytes past off (the
	// writer holds the lock, so the size seen in current still holds).
	if !created && size != off {
		if err := retryEINTR(func() error { return syscall.Ftruncate(fd, off) }); err != nil {
			return "", &os.PathError{Op: "truncate", Path: path, Err: err}
		}
	}
	if err := pwriteAll(fd, buf, off); err != nil {
		return "", &os.PathError{Op: "write", Path: path, Err: err}
	}
	// The record is in the page cache, safe from the runner's death; the
	// disk gets it on Flush. A new journal goes to disk at once, with its
	// directory entry, so that a Flush never has to find it.
	if created {
		if err := retryEINTR(func() error { return syscall.Fsync(fd) }); err != nil {
			return "", &os.PathError{Op: "sync", Path: path, Err: err}
		}
		if err := syncDir(dir); err != nil {
			return "", err
		}
	}
	jid, _ := fdID(fd)
	valid := records + int64(len(line))
	s.mu.Lock()
	if p := s.cache[runID]; p != nil {
		c := *p
		c.jID = jid
		c.jBase, c.jNonce, c.jValid, c.jSize = snap, nonce, valid, off+int64(len(buf))
		s.cache[runID] = &c
	}
	s.mu.Unlock()
	return joinVersion(snap, nonce, valid), nil
}

// openRaw opens path as a raw descriptor, closed on exec.
func openRaw(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := syscall.Open(path, flags|syscall.O_CLOEXEC, perm)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

func retryEINTR(call func() error) error {
	for {
		if err := call(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// pwriteAll writes all of b at off.
func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := syscall.Pwrite(fd, b, off)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// emptyJournal drops the records after the snapshot durably. Save needs it
// only when the new snapshot is byte for byte the old one; otherwise the
// journal names the old snapshot and readers ignore it.
func emptyJournal(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, journalFile), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		return err
	}
	return f.Sync()
}

// createJournal makes an empty journal for a run being created; the caller
// fsyncs the directory. An empty journal holds no records, as none does.
func createJournal(dir string) error {
	fd, err := openRaw(filepath.Join(dir, journalFile), syscall.O_RDWR|syscall.O_CREAT|syscall.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	return syscall.Close(fd)
}

func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func (s *Store) forget(runID string) {
	s.mu.Lock()
	delete(s.cache, runID)
	s.mu.Unlock()
}

// The Journal flushes this store's journal to disk in batches, not per Append.
var _ state.Flusher = (*Store)(nil)
