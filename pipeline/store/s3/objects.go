package s3

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/gpipe/gpipe/pipeline/state"
)

// List implements state.Store: one entry per run folder under the prefix.
func (s *Store) List(ctx context.Context) ([]string, error) {
	prefix := s.listPrefix()
	var ids []string
	p := s3sdk.NewListObjectsV2Paginator(s.api, &s3sdk.ListObjectsV2Input{
		Bucket: &s.bucket, Prefix: aws.String(prefix), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list runs in %s: %w", s, err)
		}
		for _, cp := range page.CommonPrefixes {
			id := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if state.CheckName("run id", id) == nil {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// Delete removes every object of a run. Deleting a missing run is not an
// error.
func (s *Store) Delete(ctx context.Context, runID string) error {
	if err := state.CheckName("run id", runID); err != nil {
		return err
	}
	prefix := s.runKey(runID)
	// The state document goes first, so a half-done Delete leaves no run
	// that a runner could keep driving.
	stateKey := prefix + stateObject
	if _, err := s.api.DeleteObject(ctx, &s3sdk.DeleteObjectInput{Bucket: &s.bucket, Key: &stateKey}); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete run %s from %s: %w", runID, s, err)
	}
	// The rest (blobs, log chunks, journal slots: thousands for a long run)
	// goes a listing page, at most 1000 keys, per DeleteObjects request.
	p := s3sdk.NewListObjectsV2Paginator(s.api, &s3sdk.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("delete run %s from %s: %w", runID, s, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := s.api.DeleteObjects(ctx, &s3sdk.DeleteObjectsInput{
			Bucket: &s.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("delete run %s from %s: %w", runID, s, err)
		}
		for _, e := range out.Errors {
			if aws.ToString(e.Code) != "NoSuchKey" {
				return fmt.Errorf("delete run %s from %s: %s: %s %s", runID, s, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
			}
		}
	}
	s.mu.Lock()
	delete(s.tails, runID)
	for k := range s.logs {
		if strings.HasPrefix(k, runID+"/") {
			delete(s.logs, k)
		}
	}
	s.mu.Unlock()
	return nil
}

// PutBlob implements state.Store.
func (s *Store) PutBlob(ctx context.Context, runID, name string, data []byte) error {
	if err := state.CheckName("run id", runID); err != nil {
		return err
	}
	if err := checkBlobName(name); err != nil {
		return err
	}
	key := s.runKey(runID) + name
	_, err := s.api.PutObject(ctx, &s3sdk.PutObjectInput{
		Bucket: &s.bucket, Key: &key, Body: strings.NewReader(string(data)), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
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
	b, _, found, err := s.get(ctx, s.runKey(runID)+name)
	if err != nil {
		return nil, fmt.Errorf("get %s of run %s from %s: %w", name, runID, s, err)
	}
	if !found {
		return nil, fmt.Errorf("get %s of run %s from %s: %w", name, runID, s, state.ErrNotFound)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
