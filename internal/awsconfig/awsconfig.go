// Package awsconfig is gpipe's one way to configure the AWS SDK. Every client
// gpipe makes — the AWS steps' CloudFormation, EC2, SSM, CloudWatch Logs and
// S3 clients, the S3 state store, fetch-msd's S3 client — gets its
// configuration from Load, so region, endpoint, path style, response timeout
// and retries follow one set of rules:
//
//   - Region: the caller's, else the SDK's (AWS_REGION, profiles); with
//     neither, ErrNoRegion — except for clients that only need a region to
//     sign S3 requests (Options.AnyRegion), which use S3's default region.
//   - Endpoint: the SDK's own AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
//     (and endpoint_url in a profile), so gpipe runs against LocalStack,
//     versitygw or MinIO.
//   - Path style (S3Options): on whenever a custom endpoint is configured,
//     since emulators have no per-bucket DNS names, unless
//     GPIPE_S3_PATH_STYLE=false.
//   - Response timeout: an API response's headers must arrive within
//     GPIPE_AWS_RESPONSE_TIMEOUT (a Go duration, default 1m); a timeout is
//     retried like any transient error.
//   - Retries: the SDK's standard retryer, DefaultMaxAttempts attempts with
//     jittered backoff capped at MaxBackoff, and no client-side retry quota.
//   - Credentials: the SDK's chain, or none at all for public buckets
//     (Options.Anonymous).
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// Environment variables gpipe reads on top of the SDK's own.
const (
	EnvResponseTimeout = "GPIPE_AWS_RESPONSE_TIMEOUT"
	EnvS3PathStyle     = "GPIPE_S3_PATH_STYLE"
)

// DefaultResponseTimeout bounds the wait for an AWS API response's headers.
// The SDK's default client has no such bound, so an endpoint that accepts
// connections and never answers (a black-holed proxy, an emulator that
// froze) hung gpipe forever, `gpipe teardown` included. API calls answer in
// seconds; long waits (stack creation) are polls, each one call.
const DefaultResponseTimeout = time.Minute

// Retry policy. MaxBackoff caps the jittered exponential wait between
// attempts (the SDK's default is 20 s, longer than gpipe's users wait for a
// transient error to pass).
const (
	DefaultMaxAttempts = 3
	MaxBackoff         = 5 * time.Second
)

// s3SigningRegion is what an S3 client signs with when nothing names a
// region: S3's default region, and custom endpoints rarely care which.
const s3SigningRegion = "us-east-1"

// ErrNoRegion says neither the caller nor the SDK's configuration named a
// region.
var ErrNoRegion = errors.New("no region")

// Options say what a client needs beyond the common rules; the zero value is
// a client of the caller's default region with gpipe's defaults.
type Options struct {
	// Region is the region to use; "" means the SDK's configured one.
	Region string
	// AnyRegion: the client only needs some region to sign S3 requests (the
	// state store, fetch-msd), so no configured region means S3's default
	// region, not ErrNoRegion.
	AnyRegion bool
	// Getenv reads gpipe's own variables (GPIPE_*); nil means os.Getenv. The
	// SDK reads its own (AWS_*) from the process environment.
	Getenv func(string) string
	// MaxAttempts replaces DefaultMaxAttempts (the state store, whose every
	// write a run depends on, tries longer).
	MaxAttempts int
	// AttemptTimeout, when set, bounds a whole attempt, body included, so
	// that a connection that stalls mid-body is retried rather than waited
	// on. Only for clients whose responses are small (the state store):
	// fetch-msd's ranged GETs stream for as long as the data takes.
	AttemptTimeout time.Duration
	// Transport tunes the HTTP transport further (fetch-msd keeps many idle
	// connections for its parallel ranged GETs).
	Transport func(*http.Transport)
	// Anonymous sends unsigned requests: public buckets need no credentials,
	// and a machine without any can still read them.
	Anonymous bool
	// LoadOptions are applied after gpipe's own (tests: a fixed endpoint,
	// static credentials, no shared config files).
	LoadOptions []func(*config.LoadOptions) error
}

// Load returns the SDK configuration for a client, following the package's
// rules. Errors say "load AWS configuration".
func Load(ctx context.Context, opt Options) (aws.Config, error) {
	getenv := opt.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	timeout, err := responseTimeout(getenv)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.ResponseHeaderTimeout = timeout
		if opt.Transport != nil {
			opt.Transport(tr)
		}
	})
	if opt.AttemptTimeout > 0 {
		hc = hc.WithTimeout(opt.AttemptTimeout)
	}
	attempts := opt.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(hc),
		// The SDK logs some failures as it meets them (an instance metadata
		// service refusing a token: "WARN falling back to IMDSv1") and then
		// returns an error saying the same, which gpipe prints: the message
		// appeared twice, the first time not even from gpipe.
		config.WithLogger(logging.Nop{}),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = MaxBackoff
				// The client-side retry quota would turn a burst of 503
				// SlowDown (many parallel ranged GETs, many log chunks) into
				// failures of unrelated requests.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if opt.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opt.Region))
	}
	if opt.Anonymous {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(loadOpts, opt.LoadOptions...)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if !opt.AnyRegion {
			return aws.Config{}, fmt.Errorf("load AWS configuration: %w: set AWS_REGION or the step's region", ErrNoRegion)
		}
		cfg.Region = s3SigningRegion
	}
	return cfg, nil
}

// responseTimeout is GPIPE_AWS_RESPONSE_TIMEOUT, or the default.
func responseTimeout(getenv func(string) string) (time.Duration, error) {
	v := getenv(EnvResponseTimeout)
	if v == "" {
		return DefaultResponseTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 90s", EnvResponseTimeout, v)
	}
	return d, nil
}

// S3Options returns the S3 client option of the path-style rule: buckets are
// addressed by path whenever a custom endpoint is configured
// (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, endpoint_url in the profile), since
// an emulator's endpoint has no per-bucket DNS names, unless
// GPIPE_S3_PATH_STYLE=false. getenv nil means os.Getenv.
func S3Options(getenv func(string) string) func(*s3.Options) {
	if getenv == nil {
		getenv = os.Getenv
	}
	return func(o *s3.Options) {
		if o.BaseEndpoint != nil && *o.BaseEndpoint != "" {
			o.UsePathStyle = !strings.EqualFold(getenv(EnvS3PathStyle), "false")
		}
	}
}
