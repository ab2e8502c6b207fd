// Package store opens a state.Store by URL: file://dir or a plain path for a
// local folder, s3://bucket/prefix for S3. The CLI resolves which URL to use
// (--state, GPIPE_STATE, the spec's state:, default file://.gpipe); this
// package only turns it into a store.
package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/file"
	"github.com/gpipe/gpipe/pipeline/store/s3"
)

// DefaultURL is where runs live when nothing else is configured.
const DefaultURL = "file://.gpipe"

// Open returns the store named by url.
func Open(ctx context.Context, url string) (state.Store, error) {
	switch {
	case url == "":
		return nil, fmt.Errorf("open state store: empty URL (want file://DIR, a path, or s3://BUCKET/PREFIX)")
	case strings.HasPrefix(url, "file://"):
		dir := strings.TrimPrefix(url, "file://")
		if dir == "" {
			return nil, fmt.Errorf("open state store %q: no directory (want file://DIR, e.g. %s)", url, DefaultURL)
		}
		return file.New(dir), nil
	case strings.HasPrefix(url, "s3://"):
		s, err := s3.Open(ctx, url, s3.Options{})
		if err != nil {
			return nil, fmt.Errorf("open state store: %w", err)
		}
		return s, nil
	}
	if scheme, _, ok := strings.Cut(url, "://"); ok {
		return nil, fmt.Errorf("open state store %q: unknown scheme %q (supported: file://, s3://, or a plain path)", url, scheme)
	}
	return file.New(url), nil
}
