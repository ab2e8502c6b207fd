package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/pipeline/state"
)

const (
	stateObject = "state.json"
	logsFolder  = "logs"
	// conflictRetries bounds rereads after 409 ConditionalRequestConflict.
	conflictRetries = 8
)

// get returns an object's body and ETag; found is false on 404.
func (s *Store) get(ctx context.Context, key string) (body []byte, etag string, found bool, err error) {
	body, etag, _, found, err = s.getMeta(ctx, key)
	return body, etag, found, err
}

// getMeta is get that also returns the object's user metadata.
func (s *Store) getMeta(ctx context.Context, key string) (body []byte, etag string, meta map[string]string, found bool, err error) {
	out, err := s.api.GetObject(ctx, &s3sdk.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return nil, "", nil, false, nil
		}
		return nil, "", nil, false, err
	}
	defer out.Body.Close()
	body, err = io.ReadAll(out.Body)
	if err != nil {
		return nil, "", nil, false, fmt.Errorf("read s3://%s/%s: %w", s.bucket, key, err)
	}
	return body, aws.ToString(out.ETag), out.Metadata, true, nil
}

// condPut writes doc to key with If-None-Match: * (ifMatch == "") or
// If-Match: ifMatch, and user metadata meta (may be nil). outcome is "ok",
// "precondition" (412), "notfound" (404) or "inflight" (409); err is any
// other failure.
func (s *Store) condPut(ctx context.Context, key string, doc []byte, ifMatch string, meta map[string]string) (etag, outcome string, err error) {
	in := &s3sdk.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          bytes.NewReader(doc),
		ContentLength: aws.Int64(int64(len(doc))),
		Metadata:      meta,
	}
	if ifMatch == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := s.api.PutObject(ctx, in)
	switch {
	case err == nil:
		return aws.ToString(out.ETag), "ok", nil
	case isPreconditionFailed(err):
		return "", "precondition", nil
	case isConditionalConflict(err):
		return "", "inflight", nil
	case isNotFound(err):
		return "", "notfound", nil
	}
	return "", "", err
}

func pause(ctx context.Context, try int) error {
	t := time.NewTimer(time.Duration(try+1) * 50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Create implements state.Store. The run starts with an empty journal.
func (s *Store) Create(ctx context.Context, runID string, doc []byte) (state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return "", err
	}
	key := s.runKey(runID) + stateObject
	jid := newJournalID()
	for try := 0; ; try++ {
		etag, outcome, err := s.condPut(ctx, key, doc, "", journalMeta(jid, 0))
		if err != nil {
			return "", fmt.Errorf("create run %s in %s: %w", runID, s, err)
		}
		if outcome == "ok" {
			return version{etag: etag, jid: jid}.String(), nil
		}
		// 412 or 409: someone wrote the key, or our own earlier attempt did.
		cur, curTag, meta, found, err := s.getMeta(ctx, key)
		if err != nil {
			return "", fmt.Errorf("create run %s in %s: reread after %s: %w", runID, s, outcome, err)
		}
		switch {
		case found && bytes.Equal(cur, doc):
			return versionOf(curTag, meta).String(), nil
		case found:
			return "", fmt.Errorf("create run %s in %s: %w", runID, s, state.ErrExists)
		case try >= conflictRetries:
			return "", fmt.Errorf("create run %s in %s: conditional writes keep conflicting (%s)", runID, s, outcome)
		}
		if err := pause(ctx, try); err != nil {
			return "", fmt.Errorf("create run %s in %s: %w", runID, s, err)
		}
	}
}

// Load implements state.Store: the last snapshot copied to state.json,
// without the journal after it (LoadJournal has both). Its version is not
// current while records follow the snapshot: a Save based on it conflicts.
func (s *Store) Load(ctx context.Context, runID string) ([]byte, state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return nil, "", err
	}
	doc, etag, meta, found, err := s.getMeta(ctx, s.runKey(runID)+stateObject)
	if err != nil {
		return nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, err)
	}
	if !found {
		return nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, state.ErrNotFound)
	}
	return doc, versionOf(etag, meta).String(), nil
}

// Save implements state.Store: a snapshot in the next journal slot, then
// copied to state.json (see journal.go). A run stored without a journal gets
// one.
func (s *Store) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return "", err
	}
	if v == "" {
		return "", fmt.Errorf("save run %s to %s: empty version: %w", runID, s, state.ErrConflict)
	}
	pv := parseVersion(v)
	var nv version
	var err error
	if pv.jid == "" {
		nv, err = s.putState(ctx, runID, doc, pv.etag)
	} else {
		nv, err = s.saveSnapshot(ctx, runID, doc, pv)
	}
	if err != nil {
		return "", fmt.Errorf("save run %s to %s: %w", runID, s, err)
	}
	return nv.String(), nil
}

// putState replaces state.json if its ETag is still ifMatch, starting a new
// empty journal.
func (s *Store) putState(ctx context.Context, runID string, doc []byte, ifMatch string) (version, error) {
	key := s.runKey(runID) + stateObject
	jid := newJournalID()
	for try := 0; ; try++ {
		etag, outcome, err := s.condPut(ctx, key, doc, ifMatch, journalMeta(jid, 0))
		if err != nil {
			return version{}, err
		}
		switch outcome {
		case "ok":
			return version{etag: etag, jid: jid}, nil
		case "notfound":
			return version{}, state.ErrNotFound
		}
		cur, curTag, meta, found, err := s.getMeta(ctx, key)
		if err != nil {
			return version{}, fmt.Errorf("reread after %s: %w", outcome, err)
		}
		switch {
		case !found:
			return version{}, state.ErrNotFound
		case bytes.Equal(cur, doc) && versionOf(curTag, meta).jid == jid:
			// Our write landed: a retried attempt of this PUT, or (409) it
			// was the write in flight.
			return versionOf(curTag, meta), nil
		case curTag != ifMatch:
			return version{}, fmt.Errorf("have version %s, stored %s: %w", ifMatch, versionOf(curTag, meta).String(), state.ErrConflict)
		case try >= conflictRetries:
			return version{}, fmt.Errorf("conditional writes keep conflicting (%s)", outcome)
		}
		// Unchanged object: the write in flight (409) did not land, or a 412
		// came from a concurrent writer's attempt that failed. Try again.
		if err := pause(ctx, try); err != nil {
			return version{}, err
		}
	}
}
