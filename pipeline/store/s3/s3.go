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
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

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

// Retry policy of the SDK client: up to 6 attempts with jittered exponential
// backoff capped at 5s, and no client-side retry quota, which would otherwise
// turn a burst of 503 SlowDown into failures of unrelated requests. Each
// attempt is bounded by attemptTimeout so a stalled connection is retried
// rather than waited on forever.
const (
	maxAttempts    = 6
	maxBackoff     = 5 * time.Second
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
	// HTTPClient replaces the SDK's HTTP client (tests put a fault-injecting
	// proxy's transport or counters here).
	HTTPClient aws.HTTPClient
	// PathStyle forces path-style addressing on or off. nil: on whenever a
	// custom endpoint is configured (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
	// endpoint_url in the profile), unless GPIPE_S3_PATH_STYLE=false.
	PathStyle *bool
	// ConfigOptions are passed to config.LoadDefaultConfig after the store's own.
	ConfigOptions []func(*config.LoadOptions) error
}

// Open connects to s3://bucket/prefix with the SDK's standard configuration:
// credentials and region from the environment, profiles, SSO or web identity,
// and the endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.
func Open(ctx context.Context, u string, opt Options) (*Store, error) {
	bucket, prefix, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	loadOpts := []func(*config.LoadOptions) error{
		// The SDK would also log what its error then says (an instance
		// metadata service refusing a token); the error is printed once.
		config.WithLogger(logging.Nop{}),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = maxBackoff
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if opt.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(opt.HTTPClient))
	} else {
		loadOpts = append(loadOpts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(attemptTimeout)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(loadOpts, opt.ConfigOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("open %s: load AWS configuration: %w", u, err)
	}
	if cfg.Region == "" {
		// S3 needs a region to sign; custom endpoints rarely care which.
		cfg.Region = "us-east-1"
	}
	client := s3sdk.NewFromConfig(cfg, func(o *s3sdk.Options) {
		switch {
		case opt.PathStyle != nil:
			o.UsePathStyle = *opt.PathStyle
		case o.BaseEndpoint != nil && *o.BaseEndpoint != "":
			o.UsePathStyle = !strings.EqualFold(os.Getenv("GPIPE_S3_PATH_STYLE"), "false")
		}
	})
	return New(client, bucket, prefix), nil
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
