package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/gpipe/gpipe/pipeline/state"
)

// The journal (state.Appender). S3 cannot append to an object, so the
// journal is a sequence of numbered slot objects, each created once with
// If-None-Match: *:
//
//	<run>/journal/<journal-id>/<n>    slot n, zero-padded to 10 digits
//
// A slot holds one record (Append) or a whole document (Save, a snapshot),
// told apart by its metadata. The slots are the run's history; state.json is a
// copy of the last snapshot whose metadata (x-amz-meta-gpipe-journal:
// "<journal-id> <n>") names the slot where replay starts, so a load reads
// state.json and the slots from n on, up to the first missing one, and a
// snapshot slot among them replaces the document read so far.
//
// Compare-and-swap is the creation of slot n: a version names state.json's
// ETag, the journal id and the first free slot, and both Append and Save
// create that slot, so of two writers at one version exactly one gets it; the
// other's 412 is a conflict. Save then copies the snapshot to state.json with
// If-Match on the ETag it knew, so a deleted or re-created run (another
// journal id) is noticed. A runner that dies between the two leaves a
// snapshot slot that loads roll forward to: nothing is lost or replayed twice.
//
// Slots before the last snapshot are dead but stay until the run is deleted:
// a deleted slot could be created again by a stale writer holding a version
// that names it, which would then count a write nobody will ever read as done.
//
// An Append after the run was deleted lands in a slot of the deleted run and
// succeeds; the Journal notices at its next Save (ErrNotFound). gpipe deletes
// only runs no live runner holds (or with --force).
const (
	journalFolder = "journal"
	metaJournal   = "gpipe-journal" // on state.json: "<journal-id> <first slot to replay>"
	metaKind      = "gpipe-kind"    // on a slot: kindRecord or kindSnapshot
	metaDigest    = "gpipe-digest"  // on a slot: digest of kind and body, to recognise a retry's own slot
	kindRecord    = "record"
	kindSnapshot  = "snapshot"
	// loadParallel bounds the slot GETs a load has in flight.
	loadParallel = 64
)

// version is what a state.Version of this store says. A run written
// without a journal (by a gpipe before it) has only the ETag.
type version struct {
	etag string // of state.json
	jid  string // journal id in state.json's metadata
	next int64  // first slot not yet written
}

func (v version) String() state.Version {
	if v.jid == "" {
		return state.Version(v.etag)
	}
	return state.Version(v.etag + " " + v.jid + " " + strconv.FormatInt(v.next, 10))
}

// parseVersion reads a version; one it cannot read is taken as a bare ETag,
// which then matches nothing and conflicts.
func parseVersion(v state.Version) version {
	f := strings.Fields(string(v))
	if len(f) != 3 {
		return version{etag: string(v)}
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || n < 0 {
		return version{etag: string(v)}
	}
	return version{etag: f[0], jid: f[1], next: n}
}

// versionOf is the version of a state.json with this ETag and metadata.
func versionOf(etag string, meta map[string]string) version {
	f := strings.Fields(metaGet(meta, metaJournal))
	if len(f) != 2 {
		return version{etag: etag}
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 0 {
		return version{etag: etag}
	}
	return version{etag: etag, jid: f[0], next: n}
}

func journalMeta(jid string, next int64) map[string]string {
	return map[string]string{metaJournal: jid + " " + strconv.FormatInt(next, 10)}
}

// metaGet reads user metadata; the SDK lowercases the keys, but not every
// server sends them so.
func metaGet(meta map[string]string, key string) string {
	if v, ok := meta[key]; ok {
		return v
	}
	for k, v := range meta {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func newJournalID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func (s *Store) journalPrefix(runID, jid string) string {
	return s.runKey(runID) + journalFolder + "/" + jid + "/"
}

func (s *Store) slotKey(runID, jid string, n int64) string {
	return fmt.Sprintf("%s%0*d", s.journalPrefix(runID, jid), seqDigits, n)
}

// errSlotTaken: another writer created the slot first.
var errSlotTaken = errors.New("journal slot taken")

// writeSlot creates a slot holding body. A retried request whose first
// attempt landed, or a caller retrying after an error, finds the slot holding
// the same kind and bytes (by their digest in the metadata) and counts it as
// its own; any other content is errSlotTaken.
func (s *Store) writeSlot(ctx context.Context, key string, body []byte, kind string) error {
	sum := sha256.Sum256(append([]byte(kind+"\n"), body...))
	digest := hex.EncodeToString(sum[:16])
	meta := map[string]string{metaKind: kind, metaDigest: digest}
	for try := 0; ; try++ {
		_, outcome, err := s.condPut(ctx, key, body, "", meta)
		switch {
		case err != nil:
			return err
		case outcome == "ok":
			return nil
		case outcome == "notfound":
			return fmt.Errorf("write %s: not found (no bucket %s?)", key, s.bucket)
		}
		found, _, m, err := s.head(ctx, key)
		switch {
		case err != nil:
			return fmt.Errorf("reread %s after %s: %w", key, outcome, err)
		case found && metaGet(m, metaDigest) == digest:
			return nil
		case found:
			return errSlotTaken
		case try >= conflictRetries:
			return fmt.Errorf("write %s: conditional writes keep conflicting (%s)", key, outcome)
		}
		// 409 for a write in flight that did not land: try again.
		if err := pause(ctx, try); err != nil {
			return err
		}
	}
}

func (s *Store) head(ctx context.Context, key string) (found bool, etag string, meta map[string]string, err error) {
	out, err := s.api.HeadObject(ctx, &s3sdk.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return false, "", nil, nil
		}
		return false, "", nil, err
	}
	return true, aws.ToString(out.ETag), out.Metadata, nil
}

// Append implements state.Appender: one conditional PUT of a slot.
func (s *Store) Append(ctx context.Context, runID string, rec []byte, v state.Version) (state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return "", err
	}
	if bytes.IndexByte(rec, '\n') >= 0 {
		// Segments hold a record per line.
		return "", fmt.Errorf("append to run %s in %s: record holds a newline", runID, s)
	}
	pv := parseVersion(v)
	if pv.jid == "" {
		var err error
		if pv, err = s.startJournal(ctx, runID, pv); err != nil {
			return "", fmt.Errorf("append to run %s in %s: %w", runID, s, err)
		}
	}
	err := s.writeSlot(ctx, s.slotKey(runID, pv.jid, pv.next), rec, kindRecord)
	if errors.Is(err, errSlotTaken) {
		return "", fmt.Errorf("append to run %s in %s: have version %s, slot %d is taken: %w", runID, s, v, pv.next, state.ErrConflict)
	}
	if err != nil {
		return "", fmt.Errorf("append to run %s in %s: %w", runID, s, err)
	}
	s.noteSlot(ctx, runID, pv.jid, pv.next, rec)
	pv.next++
	return pv.String(), nil
}

// startJournal gives a run stored without a journal (by an older gpipe) one,
// rewriting state.json unchanged but for the metadata, if it is still at
// version v.
func (s *Store) startJournal(ctx context.Context, runID string, v version) (version, error) {
	doc, etag, meta, found, err := s.getMeta(ctx, s.runKey(runID)+stateObject)
	switch {
	case err != nil:
		return version{}, err
	case !found:
		return version{}, state.ErrNotFound
	case etag != v.etag || versionOf(etag, meta).jid != "":
		return version{}, fmt.Errorf("have version %s, stored %s: %w", v.String(), versionOf(etag, meta).String(), state.ErrConflict)
	}
	return s.putState(ctx, runID, doc, v.etag)
}

// saveSnapshot is Save for a run with a journal: the snapshot takes the next
// slot (the compare-and-swap), then state.json becomes its copy.
func (s *Store) saveSnapshot(ctx context.Context, runID string, doc []byte, v version) (version, error) {
	slot := s.slotKey(runID, v.jid, v.next)
	err := s.writeSlot(ctx, slot, doc, kindSnapshot)
	if errors.Is(err, errSlotTaken) {
		return version{}, fmt.Errorf("have version %s, slot %d is taken: %w", v.String(), v.next, state.ErrConflict)
	}
	if err != nil {
		return version{}, err
	}
	s.noteSlot(ctx, runID, v.jid, v.next, nil)
	// The snapshot is durable now: loads roll forward to it. The copy
	// saves them the replay.
	key := s.runKey(runID) + stateObject
	next := v.next + 1
	ifMatch := v.etag
	for try := 0; ; try++ {
		etag, outcome, err := s.condPut(ctx, key, doc, ifMatch, journalMeta(v.jid, next))
		switch {
		case err != nil:
			// A retry of this Save finds its slot and comes back here.
			return version{}, err
		case outcome == "ok":
			return version{etag: etag, jid: v.jid, next: next}, nil
		case outcome == "notfound":
			s.dropSlot(ctx, slot)
			return version{}, state.ErrNotFound
		}
		found, curTag, meta, err := s.head(ctx, key)
		if err != nil {
			return version{}, fmt.Errorf("reread after %s: %w", outcome, err)
		}
		cur := versionOf(curTag, meta)
		switch {
		case !found:
			s.dropSlot(ctx, slot)
			return version{}, state.ErrNotFound
		case cur.jid != v.jid:
			// Deleted and created again, or rewritten by a gpipe without
			// journals: the slot is in a journal nobody reads.
			s.dropSlot(ctx, slot)
			return version{}, fmt.Errorf("have version %s, stored %s: %w", v.String(), cur.String(), state.ErrConflict)
		case cur.next >= next:
			// state.json holds this snapshot (a retried PUT of ours
			// landed) or a later one; a write at next tells which.
			return version{etag: curTag, jid: v.jid, next: next}, nil
		case try >= conflictRetries:
			return version{}, fmt.Errorf("conditional writes keep conflicting (%s)", outcome)
		}
		// An older snapshot's copy landed after this one was read (its
		// writer was slower): ours is later in the journal, so it replaces it.
		ifMatch = curTag
		if outcome == "inflight" {
			if err := pause(ctx, try); err != nil {
				return version{}, err
			}
		}
	}
}

// dropSlot removes a slot this store just wrote into a journal nobody reads
// (its run was deleted), so that a deleted run stays gone. Best effort.
func (s *Store) dropSlot(ctx context.Context, key string) {
	_, _ = s.api.DeleteObject(ctx, &s3sdk.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
}

// LoadJournal implements state.Appender: state.json, then the slots after
// it, fetched in parallel.
func (s *Store) LoadJournal(ctx context.Context, runID string) ([]byte, [][]byte, state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return nil, nil, "", err
	}
	doc, etag, meta, found, err := s.getMeta(ctx, s.runKey(runID)+stateObject)
	if err != nil {
		return nil, nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, err)
	}
	if !found {
		return nil, nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, state.ErrNotFound)
	}
	v := versionOf(etag, meta)
	if doc == nil {
		doc = []byte{}
	}
	if v.jid == "" {
		return doc, nil, v.String(), nil
	}
	slots, err := s.readSlots(ctx, runID, v)
	if err != nil {
		return nil, nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, err)
	}
	s.seedTail(runID, v.jid, v.next, slots)
	var recs [][]byte
	for _, sl := range slots {
		if sl.kind == kindSnapshot {
			doc, recs = sl.body, nil
			continue
		}
		recs = append(recs, sl.body)
	}
	v.next += int64(len(slots))
	return doc, recs, v.String(), nil
}

type slot struct {
	kind string
	body []byte
}

// readSlots returns the slots from v.next on, up to the first missing one.
func (s *Store) readSlots(ctx context.Context, runID string, v version) ([]slot, error) {
	prefix := s.journalPrefix(runID, v.jid)
	in := &s3sdk.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix}
	if v.next > 0 {
		in.StartAfter = aws.String(s.slotKey(runID, v.jid, v.next-1))
	}
	var keys []string
	p := s3sdk.NewListObjectsV2Paginator(s.api, in)
list:
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			n, err := strconv.ParseInt(aws.ToString(o.Key)[len(prefix):], 10, 64)
			if err != nil || n != v.next+int64(len(keys)) {
				break list // a gap: a slot being written; what follows is later
			}
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slots := make([]slot, len(keys))
	found := make([]bool, len(keys))
	if len(keys) > 1 {
		for n, rec := range s.readSegments(ctx, runID, v.jid, v.next, v.next+int64(len(keys))) {
			i := n - v.next
			slots[i], found[i] = slot{kind: kindRecord, body: rec}, true
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadParallel)
	for i, key := range keys {
		if found[i] {
			continue
		}
		g.Go(func() error {
			body, _, meta, ok, err := s.getMeta(gctx, key)
			if err != nil {
				return err
			}
			if body == nil {
				body = []byte{}
			}
			slots[i], found[i] = slot{kind: metaGet(meta, metaKind), body: body}, ok
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, ok := range found {
		if !ok { // deleted since the listing: the run is going away
			return slots[:i], nil
		}
	}
	return slots, nil
}
