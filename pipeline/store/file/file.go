// Package file is the default state.Store: runs kept in a local folder
// (file://.gpipe).
//
// Layout under the store's directory:
//
//	runs/<run-id>/state.json           the run document (a snapshot)
//	runs/<run-id>/state.journal        changes since the snapshot (see journal.go)
//	runs/<run-id>/<blob>               blobs, e.g. spec.yaml
//	runs/<run-id>/logs/<name>.log      step logs, e.g. logs/train.1.log
//	runs/<run-id>/.lock                flock(2) target serialising writers
//
// The version of state.json is a hash of its content, so there is no sidecar
// that could disagree with the document after a crash. Writers take an
// exclusive flock on .lock around read-compare-write; the document is replaced
// by writing a temporary file, fsyncing it, renaming it over state.json and
// fsyncing the directory, so a kill -9 (or power loss) at any moment leaves
// either the old or the new document, never a torn one; the temporary file a
// killed writer leaves (.state.json.tmp-*) goes with the run's next Save.
// Appends to the journal keep the run's lock file and journal open between
// calls (see runFDs), still taking and releasing the flock each time.
//
// Logs are appended with O_APPEND (one write per AppendLog, so concurrent
// appenders do not interleave within a chunk) and are not fsynced: they
// survive a killed process, and losing a log tail on power loss is an
// accepted trade for speed.
package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/gpipe/gpipe/pipeline/state"
)

const (
	stateFile = "state.json"
	logsDir   = "logs"
	lockFile  = ".lock"
)

// Store is a state.Store in a local directory. It is safe for concurrent use
// by goroutines and by processes sharing the directory.
type Store struct {
	dir  string
	name string

	mu    sync.Mutex
	cache map[string]*runCache // see runCache
	fds   *fdCache             // see runFDs
}

// New returns a store rooted at dir. Nothing is created until the first write,
// so read-only commands do not leave an empty .gpipe behind.
func New(dir string) *Store {
	s := &Store{dir: dir, name: "file://" + dir, cache: map[string]*runCache{}, fds: &fdCache{}}
	// A Store has no Close; what it keeps open goes with it.
	runtime.AddCleanup(s, func(c *fdCache) { c.drop("") }, s.fds)
	return s
}

func (s *Store) String() string { return s.name }

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) runDir(runID string) string { return filepath.Join(s.dir, "runs", runID) }

func version(doc []byte) state.Version {
	h := sha256.Sum256(doc)
	return state.Version(hex.EncodeToString(h[:16]))
}

func checkBlobName(name string) error {
	if err := state.CheckName("blob name", name); err != nil {
		return err
	}
	if name == stateFile || name == logsDir || name == journalFile {
		return fmt.Errorf("%w: blob name %q is reserved", state.ErrInvalidName, name)
	}
	return nil
}

// Create implements state.Store.
func (s *Store) Create(ctx context.Context, runID string, doc []byte) (state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dir := s.runDir(runID)
	if err := mkdirDurable(dir); err != nil {
		return "", fmt.Errorf("create run %s in %s: %w", runID, s, err)
	}
	unlock, err := lock(ctx, dir)
	if err != nil {
		return "", fmt.Errorf("create run %s in %s: %w", runID, s, err)
	}
	defer unlock()
	if _, err := os.Lstat(filepath.Join(dir, stateFile)); err == nil {
		return "", fmt.Errorf("create run %s in %s: %w", runID, s, state.ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("create run %s in %s: %w", runID, s, err)
	}
	// The journal's file is made now, empty, so that the directory fsync
	// that makes state.json durable covers its name too: the run's first
	// Append then writes to a file that is already on disk, where it had to
	// fsync the new file and the directory.
	if err := createJournal(dir); err != nil {
		return "", fmt.Errorf("create run %s in %s: %w", runID, s, err)
	}
	if err := writeAtomic(dir, stateFile, doc); err != nil {
		return "", fmt.Errorf("create run %s in %s: %w", runID, s, err)
	}
	return version(doc), nil
}

// Load implements state.Store. It returns the snapshot alone: when records
// follow it, the version returned is not the run's, so a Save based on it
// conflicts rather than drops them (state reads with LoadJournal).
func (s *Store) Load(ctx context.Context, runID string) ([]byte, state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	doc, err := os.ReadFile(filepath.Join(s.runDir(runID), stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, state.ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, err)
	}
	return doc, version(doc), nil
}

// Save implements state.Store.
func (s *Store) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dir := s.runDir(runID)
	unlock, err := lock(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("save run %s to %s: %w", runID, s, state.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("save run %s to %s: %w", runID, s, err)
	}
	defer unlock()
	cv, records, err := s.current(runID, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("save run %s to %s: %w", runID, s, state.ErrNotFound)
	}
	if err != nil {
		s.forget(runID)
		return "", fmt.Errorf("save run %s to %s: %w", runID, s, err)
	}
	if cv != v {
		return "", fmt.Errorf("save run %s to %s: have version %s, stored %s: %w", runID, s, v, cv, state.ErrConflict)
	}
	sweep(dir)
	// A cancelled caller must not see its write land after it gave up.
	if err := ctx.Err(); err != nil {
		return "", err
	}
	nv := version(doc)
	s.forget(runID)
	if records > 0 && strings.HasPrefix(string(cv), string(nv)+"+") {
		// The same snapshot again: emptying the journal is the whole
		// change, and a journal naming this snapshot must not survive it.
		if err := emptyJournal(dir); err != nil {
			return "", fmt.Errorf("save run %s to %s: %w", runID, s, err)
		}
		return nv, nil
	}
	if err := writeAtomic(dir, stateFile, doc); err != nil {
		return "", fmt.Errorf("save run %s to %s: %w", runID, s, err)
	}
	if records > 0 {
		// Not needed for correctness (the journal names the old
		// snapshot), but it spares readers a stale journal.
		_ = os.Truncate(filepath.Join(dir, journalFile), 0)
	}
	return nv, nil
}

// Delete removes a run with its blobs and logs. The run directory is first
// renamed away, so that no writer ever sees half of it.
func (s *Store) Delete(ctx context.Context, runID string) error {
	if err := state.CheckName("run id", runID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := s.runDir(runID)
	// Under the lock, so no Save is between its compare and its write.
	unlock, err := lock(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete run %s from %s: %w", runID, s, err)
	}
	defer unlock()
	// The journal kept open would keep the deleted run's blocks.
	s.fds.drop(runID)
	trash, err := os.MkdirTemp(filepath.Dir(dir), ".deleted-")
	if err != nil {
		return fmt.Errorf("delete run %s from %s: %w", runID, s, err)
	}
	defer os.RemoveAll(trash)
	if err := os.Rename(dir, filepath.Join(trash, runID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete run %s from %s: %w", runID, s, err)
	}
	return nil
}

// List implements state.Store.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, "runs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list runs in %s: %w", s, err)
	}
	ids := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() && state.CheckName("run id", e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// PutBlob implements state.Store; the blob is replaced atomically and durably.
func (s *Store) PutBlob(ctx context.Context, runID, name string, data []byte) error {
	if err := state.CheckName("run id", runID); err != nil {
		return err
	}
	if err := checkBlobName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := s.runDir(runID)
	if err := mkdirDurable(dir); err != nil {
		return fmt.Errorf("put %s of run %s in %s: %w", name, runID, s, err)
	}
	// Under the lock like every write, so that a temporary file is only
	// ever seen without the lock held when its writer died (see sweep).
	unlock, err := lock(ctx, dir)
	if err != nil {
		return fmt.Errorf("put %s of run %s in %s: %w", name, runID, s, err)
	}
	defer unlock()
	// A blob of a run not created yet (gpipe run puts the spec snapshot
	// first) needs no directory fsync of its own: Create's, after its
	// rename of state.json, makes both names durable, and until then a
	// power loss loses the run anyway. Its data is fsynced before its
	// rename all the same, and the rename comes first: filesystems that
	// journal the namespace (ext4, xfs, btrfs) commit renames in order, so
	// state.json never reaches the disk without the blob.
	_, err = os.Lstat(filepath.Join(dir, stateFile))
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("put %s of run %s in %s: %w", name, runID, s, err)
	}
	if err := replaceFile(dir, name, data, exists); err != nil {
		return fmt.Errorf("put %s of run %s in %s: %w", name, runID, s, err)
	}
	return nil
}

// GetBlob implements state.Store.
func (s *Store) GetBlob(ctx context.Context, runID, name string) ([]byte, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return nil, err
	}
	if err := checkBlobName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.runDir(runID), name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s of run %s from %s: %w", name, runID, s, state.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s of run %s from %s: %w", name, runID, s, err)
	}
	return b, nil
}

func (s *Store) logPath(runID, name string) string {
	return filepath.Join(s.runDir(runID), logsDir, name+".log")
}

// AppendLog implements state.Store.
func (s *Store) AppendLog(ctx context.Context, runID, name string, p []byte) error {
	if err := state.CheckName("run id", runID); err != nil {
		return err
	}
	if err := state.CheckName("log name", name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	path := s.logPath(runID, name)
	// Logs are as private as the state (0600): a step's output may hold what
	// it was given, and masking only covers the values gpipe knows.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
			f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		}
	}
	if err != nil {
		return fmt.Errorf("append to log %s of run %s in %s: %w", name, runID, s, err)
	}
	_, err = f.Write(p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append to log %s of run %s in %s: %w", name, runID, s, err)
	}
	return nil
}

// ReadLog implements state.Store.
func (s *Store) ReadLog(ctx context.Context, runID, name string, offset int64) ([]byte, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return nil, err
	}
	if err := state.CheckName("log name", name); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("read log %s of run %s: negative offset %d", name, runID, offset)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.logPath(runID, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read log %s of run %s from %s: %w", name, runID, s, state.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read log %s of run %s from %s: %w", name, runID, s, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<62))
	if err != nil {
		return nil, fmt.Errorf("read log %s of run %s from %s: %w", name, runID, s, err)
	}
	return b, nil
}

// tmpInfix is in the name of every temporary file writeAtomic makes:
// ".state.json.tmp-123".
const tmpInfix = ".tmp-"

// sweep removes the temporary files that writers killed in writeAtomic left
// in a run's directory. The caller holds the run's lock, and every writer
// makes and removes its temporary file under that lock, so any such file
// there now is a dead writer's. Save calls it: listing a directory of a few
// entries costs microseconds next to its fsyncs. Failing to remove a file is
// not worth failing a save for; the next save tries again.
func sweep(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		// Stored names never start with a dot (state.CheckName).
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, ".") && strings.Contains(n, tmpInfix) {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
}

// writeAtomic replaces dir/name with data so that a crash leaves either the
// old or the new content: temp file, fsync, rename, fsync of the directory.
func writeAtomic(dir, name string, data []byte) error {
	return replaceFile(dir, name, data, true)
}

// replaceFile is writeAtomic, leaving the directory's fsync to a later
// write when syncDirectory is false.
func replaceFile(dir, name string, data []byte, syncDirectory bool) (err error) {
	f, err := os.CreateTemp(dir, "."+name+tmpInfix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	if !syncDirectory {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirDurable creates dir and its missing parents, fsyncing each parent whose
// entries changed so that a new run directory survives a power loss.
func mkdirDurable(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}
