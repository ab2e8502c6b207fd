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

// URLError says a state store URL is malformed: bad usage, not a failure
// of the store.
type URLError struct {
	URL    string
	Reason string
}

func (e *URLError) Error() string { return fmt.Sprintf("open state store %q: %s", e.URL, e.Reason) }

// Open returns the store named by url. A malformed URL is a *URLError.
func Open(ctx context.Context, url string) (state.Store, error) {
	const want = "want file://DIR, a path, or s3://BUCKET/PREFIX"
	switch {
	case url == "":
		return nil, &URLError{URL: url, Reason: "empty URL (" + want + ")"}
	case strings.HasPrefix(url, "file://"):
		dir := strings.TrimPrefix(url, "file://")
		if dir == "" {
			return nil, &URLError{URL: url, Reason: "no directory (want file://DIR, e.g. " + DefaultURL + ")"}
		}
		return file.New(dir), nil
	case strings.HasPrefix(url, "s3://"):
		if _, _, err := s3.ParseURL(url); err != nil {
			return nil, &URLError{URL: url, Reason: "no bucket (want s3://BUCKET/PREFIX)"}
		}
		s, err := s3.Open(ctx, url, s3.Options{})
		if err != nil {
			return nil, fmt.Errorf("open state store: %w", err)
		}
		return s, nil
	}
	if scheme, _, ok := strings.Cut(url, "://"); ok {
		return nil, &URLError{URL: url, Reason: fmt.Sprintf("unknown scheme %q (supported: file://, s3://, or a plain path)", scheme)}
	}
	return file.New(url), nil
}
