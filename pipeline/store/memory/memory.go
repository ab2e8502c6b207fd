// Package memory is an in-memory state.Store: the fake that other packages'
// unit tests drive instead of a folder or a bucket. It implements the same
// compare-and-swap and log semantics as the real stores (it passes
// pipeline/store/storetest) and is safe for concurrent use.
package memory

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/gpipe/gpipe/pipeline/state"
)

// Store keeps runs in memory. The zero value is not usable; call New.
type Store struct {
	name string

	mu   sync.Mutex
	gen  uint64 // store-wide, so a deleted and re-created run never reuses a version
	runs map[string]*run
}

type run struct {
	doc   []byte   // nil until Create
	recs  [][]byte // journal records after doc (state.Appender)
	ver   state.Version
	sver  state.Version // version when doc was written: Load's, so a Save based on it conflicts after records
	blobs map[string][]byte
	logs  map[string][]byte
}

// New returns an empty store. name appears in String() as "memory://name", so
// tests with several stores can tell them apart in messages.
func New(name string) *Store {
	return &Store{name: name, runs: make(map[string]*run)}
}

func (s *Store) String() string { return "memory://" + s.name }

func (s *Store) get(runID string, create bool) *run {
	r := s.runs[runID]
	if r == nil && create {
		r = &run{blobs: make(map[string][]byte), logs: make(map[string][]byte)}
		s.runs[runID] = r
	}
	return r
}

func (s *Store) nextVersion() state.Version {
	s.gen++
	return state.Version(strconv.FormatUint(s.gen, 10))
}

func check(runID string, names ...string) error {
	if err := state.CheckName("run id", runID); err != nil {
		return err
	}
	for _, n := range names {
		if err := state.CheckName("name", n); err != nil {
			return err
		}
	}
	return nil
}

// Create implements state.Store.
func (s *Store) Create(ctx context.Context, runID string, doc []byte) (state.Version, error) {
	if err := check(runID); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.get(runID, true)
	if r.doc != nil {
		return "", fmt.Errorf("create run %s in %s: %w", runID, s, state.ErrExists)
	}
	r.doc = slices.Clone(doc)
	if r.doc == nil {
		r.doc = []byte{}
	}
	r.ver = s.nextVersion()
	r.sver = r.ver
	return r.ver, nil
}

// Load implements state.Store.
func (s *Store) Load(ctx context.Context, runID string) ([]byte, state.Version, error) {
	if err := check(runID); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.get(runID, false)
	if r == nil || r.doc == nil {
		return nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, state.ErrNotFound)
	}
	return slices.Clone(r.doc), r.sver, nil
}

// Save implements state.Store.
func (s *Store) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	r, err := s.existing(ctx, runID, func() string { return fmt.Sprintf("save run %s to %s", runID, s) })
	if err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if r.ver != v {
		return "", fmt.Errorf("save run %s to %s: have version %s, stored %s: %w", runID, s, v, r.ver, state.ErrConflict)
	}
	r.doc = slices.Clone(doc)
	if r.doc == nil {
		r.doc = []byte{}
	}
	r.recs = nil
	r.ver = s.nextVersion()
	r.sver = r.ver
	return r.ver, nil
}

// LoadJournal implements state.Appender.
func (s *Store) LoadJournal(ctx context.Context, runID string) ([]byte, [][]byte, state.Version, error) {
	r, err := s.existing(ctx, runID, func() string { return fmt.Sprintf("load run %s from %s", runID, s) })
	if err != nil {
		return nil, nil, "", err
	}
	defer s.mu.Unlock()
	recs := make([][]byte, len(r.recs))
	for i, rec := range r.recs {
		recs[i] = slices.Clone(rec)
	}
	return slices.Clone(r.doc), recs, r.ver, nil
}

// Append implements state.Appender.
func (s *Store) Append(ctx context.Context, runID string, rec []byte, v state.Version) (state.Version, error) {
	r, err := s.existing(ctx, runID, func() string { return fmt.Sprintf("append to run %s in %s", runID, s) })
	if err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if r.ver != v {
		return "", fmt.Errorf("append to run %s in %s: have version %s, stored %s: %w", runID, s, v, r.ver, state.ErrConflict)
	}
	r.recs = append(r.recs, slices.Clone(rec))
	r.ver = s.nextVersion()
	return r.ver, nil
}

// Delete removes a run with its blobs and logs. Deleting a missing run is not
// an error.
func (s *Store) Delete(ctx context.Context, runID string) error {
	if err := check(runID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.runs, runID)
	return nil
}

// List implements state.Store. Like the other stores it lists every run for
// which anything (state, blob or log) is stored.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.runs))
	for id := range s.runs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// PutBlob implements state.Store.
func (s *Store) PutBlob(ctx context.Context, runID, name string, data []byte) error {
	if err := check(runID, name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := slices.Clone(data)
	if b == nil {
		b = []byte{}
	}
	s.get(runID, true).blobs[name] = b
	return nil
}

// GetBlob implements state.Store.
func (s *Store) GetBlob(ctx context.Context, runID, name string) ([]byte, error) {
	if err := check(runID, name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.get(runID, false); r != nil {
		if b, ok := r.blobs[name]; ok {
			return slices.Clone(b), nil
		}
	}
	return nil, fmt.Errorf("get %s of run %s from %s: %w", name, runID, s, state.ErrNotFound)
}

// AppendLog implements state.Store. Appending nothing stores nothing.
func (s *Store) AppendLog(ctx context.Context, runID, name string, p []byte) error {
	if err := check(runID, name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.get(runID, true)
	r.logs[name] = append(r.logs[name], p...)
	return nil
}

// ReadLog implements state.Store: the log's bytes from offset on; empty when
// offset is at or past the end; ErrNotFound when nothing was ever appended.
func (s *Store) ReadLog(ctx context.Context, runID, name string, offset int64) ([]byte, error) {
	if err := check(runID, name); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("read log %s of run %s: negative offset %d", name, runID, offset)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var l []byte
	ok := false
	if r := s.get(runID, false); r != nil {
		l, ok = r.logs[name]
	}
	if !ok {
		return nil, fmt.Errorf("read log %s of run %s from %s: %w", name, runID, s, state.ErrNotFound)
	}
	if offset >= int64(len(l)) {
		return []byte{}, nil
	}
	return slices.Clone(l[offset:]), nil
}

// existing returns an existing run with s.mu held (the caller unlocks), or,
// with the lock released, the error of a missing run prefixed by what().
func (s *Store) existing(ctx context.Context, runID string, what func() string) (*run, error) {
	if err := check(runID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	r := s.get(runID, false)
	if r == nil || r.doc == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", what(), state.ErrNotFound)
	}
	return r, nil
}
