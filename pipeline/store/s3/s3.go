// Package s3 keeps runs in an S3 bucket (s3://bucket/prefix), so a run started
// on one machine can be watched and resumed from another.
//
// Layout under the prefix, one folder per run:
//
//	<prefix>/<run-id>/state.json             the run document (last snapshot)
//	<prefix>/<run-id>/journal/<id>/<n>       journal slots: records and snapshots
//	                                         (journal.go), n zero-padded to 10 digits
//	<prefix>/<run-id>/<blob>                 blobs, e.g. spec.yaml
//	<prefix>/<run-id>/logs/<name>/<seq>      log chunks: one object per AppendLog,
//	                                         seq zero-padded to 10 digits
//
// Compare-and-swap uses S3 conditional writes: Create is a PUT with
// If-None-Match: *, Append and Save create the journal's next slot with
// If-None-Match: *, and Save then replaces state.json with If-Match: <ETag>
// (journal.go). 412 means another writer got there first (ErrExists, ErrConflict),
// 404 on If-Match that the run is gone (ErrNotFound). 409
// ConditionalRequestConflict means a concurrent conditional write to the key
// is in flight: the store reads the object again, and retries only while it is
// unchanged.
//
// The SDK retries 5xx, throttling and connection errors. A retried PUT whose
// first attempt did land answers 412 to its own write; so on every 412 (and
// 409) the store rereads the object and, if it holds exactly the bytes being
// written, counts the write as done instead of reporting a false conflict.
//
// S3 cannot append, so each AppendLog (the engine buffers about a second of
// output) becomes a new chunk object, created with If-None-Match so that two
// writers never replace each other's chunk. ReadLog lists the chunks after the
// last one it already knows (sizes come with the listing and are cached per
// log) and fetches only those covering the requested offset.
package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/gpipe/gpipe/internal/awsconfig"
	"github.com/gpipe/gpipe/pipeline/state"
)

// API is the part of the S3 client the store uses.
type API interface {
	GetObject(ctx context.Context, in *s3sdk.GetObjectInput, optFns ...func(*s3sdk.Options)) (*s3sdk.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3sdk.PutObjectInput, optFns ...func(*s3sdk.Options)) (*s3sdk.PutObjectOutput, error)
	HeadObject(ctx context.Context, in *s3sdk.HeadObjectInput, optFns ...func(*s3sdk.Options)) (*s3sdk.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3sdk.DeleteObjectInput, optFns ...func(*s3sdk.Options)) (*s3sdk.DeleteObjectOutput, error)
	DeleteObjects(ctx context.Context, in *s3sdk.DeleteObjectsInput, optFns ...func(*s3sdk.Options)) (*s3sdk.DeleteObjectsOutput, error)
	ListObjectsV2(ctx context.Context, in *s3sdk.ListObjectsV2Input, optFns ...func(*s3sdk.Options)) (*s3sdk.ListObjectsV2Output, error)
}

// Retry policy of the store's client (internal/awsconfig supplies the rest):
// up to 6 attempts, twice the default, since a run's every step depends on
// its writes. Each attempt is bounded by attemptTimeout, body included, so a
// stalled connection is retried rather than waited on forever.
const (
	maxAttempts    = 6
	attemptTimeout = 60 * time.Second
)

// Store is a state.Store in an S3 bucket.
type Store struct {
	api    API
	bucket string
	prefix string // "" or "a/b" (no leading or trailing slash)

	mu    sync.Mutex
	logs  map[string]*logCache // by run id + "/" + log name
	tails map[string]*tail     // by run id: the journal segment being filled
}

// New returns a store over api. prefix may be empty.
func New(api API, bucket, prefix string) *Store {
	return &Store{api: api, bucket: bucket, prefix: strings.Trim(prefix, "/"), logs: make(map[string]*logCache),
		tails: make(map[string]*tail)}
}

// ParseURL splits s3://bucket/prefix.
func ParseURL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("parse store URL %q: not an s3:// URL", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("parse store URL %q: no bucket (want s3://bucket/prefix)", u)
	}
	return bucket, strings.Trim(prefix, "/"), nil
}

// Options adjust Open; zero values mean the defaults.
type Options struct {
	// ConfigOptions are passed to config.LoadDefaultConfig after the store's
	// own (tests: an endpoint, static credentials, no shared config files).
	ConfigOptions []func(*config.LoadOptions) error
}

// Open connects to s3://bucket/prefix with gpipe's AWS configuration
// (internal/awsconfig): credentials and region from the environment,
// profiles, SSO or web identity, the endpoint from AWS_ENDPOINT_URL_S3 /
// AWS_ENDPOINT_URL, path-style addressing on a custom endpoint. S3 needs a
// region only to sign, so none configured is no error.
func Open(ctx context.Context, u string, opt Options) (*Store, error) {
	bucket, prefix, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{
		AnyRegion:      true,
		MaxAttempts:    maxAttempts,
		AttemptTimeout: attemptTimeout,
		LoadOptions:    opt.ConfigOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", u, err)
	}
	return New(s3sdk.NewFromConfig(cfg, awsconfig.S3Options(nil)), bucket, prefix), nil
}

func (s *Store) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

func (s *Store) runKey(runID string) string {
	if s.prefix == "" {
		return runID + "/"
	}
	return s.prefix + "/" + runID + "/"
}

func (s *Store) listPrefix() string {
	if s.prefix == "" {
		return ""
	}
	return s.prefix + "/"
}

// httpStatus returns the HTTP status of a failed S3 call, 0 if there was no
// response.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	return httpStatus(err) == http.StatusNotFound || errorCode(err) == "NoSuchKey"
}

func isPreconditionFailed(err error) bool {
	return httpStatus(err) == http.StatusPreconditionFailed || errorCode(err) == "PreconditionFailed"
}

// isConditionalConflict: 409 ConditionalRequestConflict, a concurrent
// conditional write to the same key is in flight.
func isConditionalConflict(err error) bool {
	return httpStatus(err) == http.StatusConflict || errorCode(err) == "ConditionalRequestConflict"
}

func checkBlobName(name string) error {
	if err := state.CheckName("blob name", name); err != nil {
		return err
	}
	if name == stateObject || name == logsFolder || name == journalFolder {
		return fmt.Errorf("%w: blob name %q is reserved", state.ErrInvalidName, name)
	}
	return nil
}
