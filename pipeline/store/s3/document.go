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
	out, err := s.api.GetObject(ctx, &s3sdk.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	defer out.Body.Close()
	body, err = io.ReadAll(out.Body)
	if err != nil {
		return nil, "", false, fmt.Errorf("read s3://%s/%s: %w", s.bucket, key, err)
	}
	return body, aws.ToString(out.ETag), true, nil
}

// condPut writes doc to key with If-None-Match: * (ifMatch == "") or
// If-Match: ifMatch. outcome is "ok", "precondition" (412), "notfound" (404)
// or "inflight" (409); err is any other failure.
func (s *Store) condPut(ctx context.Context, key string, doc []byte, ifMatch string) (etag, outcome string, err error) {
	in := &s3sdk.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          bytes.NewReader(doc),
		ContentLength: aws.Int64(int64(len(doc))),
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

// Create implements state.Store.
func (s *Store) Create(ctx context.Context, runID string, doc []byte) (state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return "", err
	}
	key := s.runKey(runID) + stateObject
	for try := 0; ; try++ {
		etag, outcome, err := s.condPut(ctx, key, doc, "")
		if err != nil {
			return "", fmt.Errorf("create run %s in %s: %w", runID, s, err)
		}
		if outcome == "ok" {
			return state.Version(etag), nil
		}
		// 412 or 409: someone wrote the key, or our own earlier attempt did.
		cur, curTag, found, err := s.get(ctx, key)
		if err != nil {
			return "", fmt.Errorf("create run %s in %s: reread after %s: %w", runID, s, outcome, err)
		}
		switch {
		case found && bytes.Equal(cur, doc):
			return state.Version(curTag), nil
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

// Load implements state.Store.
func (s *Store) Load(ctx context.Context, runID string) ([]byte, state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return nil, "", err
	}
	doc, etag, found, err := s.get(ctx, s.runKey(runID)+stateObject)
	if err != nil {
		return nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, err)
	}
	if !found {
		return nil, "", fmt.Errorf("load run %s from %s: %w", runID, s, state.ErrNotFound)
	}
	return doc, state.Version(etag), nil
}

// Save implements state.Store.
func (s *Store) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return "", err
	}
	if v == "" {
		return "", fmt.Errorf("save run %s to %s: empty version: %w", runID, s, state.ErrConflict)
	}
	key := s.runKey(runID) + stateObject
	for try := 0; ; try++ {
		etag, outcome, err := s.condPut(ctx, key, doc, string(v))
		if err != nil {
			return "", fmt.Errorf("save run %s to %s: %w", runID, s, err)
		}
		switch outcome {
		case "ok":
			return state.Version(etag), nil
		case "notfound":
			return "", fmt.Errorf("save run %s to %s: %w", runID, s, state.ErrNotFound)
		}
		cur, curTag, found, err := s.get(ctx, key)
		if err != nil {
			return "", fmt.Errorf("save run %s to %s: reread after %s: %w", runID, s, outcome, err)
		}
		switch {
		case !found:
			return "", fmt.Errorf("save run %s to %s: %w", runID, s, state.ErrNotFound)
		case bytes.Equal(cur, doc):
			// Our write landed: a retried attempt of this PUT, or (409) it
			// was the write in flight.
			return state.Version(curTag), nil
		case curTag != string(v):
			return "", fmt.Errorf("save run %s to %s: have version %s, stored %s: %w", runID, s, v, curTag, state.ErrConflict)
		case try >= conflictRetries:
			return "", fmt.Errorf("save run %s to %s: conditional writes keep conflicting (%s)", runID, s, outcome)
		}
		// Unchanged object: the write in flight (409) did not land, or a 412
		// came from a concurrent writer's attempt that failed. Try again.
		if err := pause(ctx, try); err != nil {
			return "", fmt.Errorf("save run %s to %s: %w", runID, s, err)
		}
	}
}
