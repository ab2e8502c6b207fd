package awsconfig

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// isolate keeps the developer's AWS configuration out of a test: no region,
// endpoint or profile from the environment or ~/.aws.
func isolate(t *testing.T) []func(*config.LoadOptions) error {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
		EnvResponseTimeout, EnvS3PathStyle} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return []func(*config.LoadOptions) error{
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRegion(t *testing.T) {
	iso := isolate(t)
	ctx := t.Context()
	_, err := Load(ctx, Options{LoadOptions: iso})
	if !errors.Is(err, ErrNoRegion) || !strings.Contains(err.Error(), "no region: set AWS_REGION") {
		t.Errorf("no region anywhere: err = %v, want ErrNoRegion saying to set AWS_REGION", err)
	}
	cfg, err := Load(ctx, Options{AnyRegion: true, LoadOptions: iso})
	if err != nil || cfg.Region != s3SigningRegion {
		t.Errorf("AnyRegion without a region: %q, %v; want S3's default region", cfg.Region, err)
	}
	cfg, err = Load(ctx, Options{Region: "eu-west-2", AnyRegion: true, LoadOptions: iso})
	if err != nil || cfg.Region != "eu-west-2" {
		t.Errorf("given region: %q, %v", cfg.Region, err)
	}
	t.Setenv("AWS_REGION", "ap-south-1")
	cfg, err = Load(ctx, Options{LoadOptions: iso})
	if err != nil || cfg.Region != "ap-south-1" {
		t.Errorf("AWS_REGION: %q, %v", cfg.Region, err)
	}
	cfg, err = Load(ctx, Options{Region: "eu-west-2", LoadOptions: iso})
	if err != nil || cfg.Region != "eu-west-2" {
		t.Errorf("the caller's region must win over AWS_REGION: %q, %v", cfg.Region, err)
	}
}

func TestResponseTimeoutVariable(t *testing.T) {
	iso := isolate(t)
	for _, bad := range []string{"soon", "0s", "-1m"} {
		_, err := Load(t.Context(), Options{Region: "us-west-2", Getenv: env(map[string]string{EnvResponseTimeout: bad}), LoadOptions: iso})
		if err == nil || !strings.Contains(err.Error(), EnvResponseTimeout+`="`+bad+`": want a positive duration`) {
			t.Errorf("%s=%s: err = %v", EnvResponseTimeout, bad, err)
		}
	}
}

// TestResponseTimeoutAndRetries: against a server that accepts requests and
// never answers, each attempt gives up after the response timeout and the
// call after DefaultMaxAttempts attempts (MaxAttempts when set).
func TestResponseTimeoutAndRetries(t *testing.T) {
	iso := isolate(t)
	var hits atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	for _, attempts := range []int{0, 4} {
		hits.Store(0)
		cfg, err := Load(t.Context(), Options{Region: "us-west-2", MaxAttempts: attempts,
			Getenv: env(map[string]string{EnvResponseTimeout: "100ms"}),
			LoadOptions: append(iso, config.WithBaseEndpoint(srv.URL),
				config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")))})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = s3.NewFromConfig(cfg, S3Options(env(nil))).ListBuckets(t.Context(), &s3.ListBucketsInput{})
		want := attempts
		if want == 0 {
			want = DefaultMaxAttempts
		}
		if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") {
			t.Errorf("MaxAttempts %d: err = %v, want a response timeout", attempts, err)
		}
		if got := hits.Load(); got != int64(want) {
			t.Errorf("MaxAttempts %d: %d attempts, want %d", attempts, got, want)
		}
		// Backoff is at most MaxBackoff per retry.
		if took := time.Since(start); took > time.Duration(want)*(100*time.Millisecond+MaxBackoff) {
			t.Errorf("MaxAttempts %d: took %v", attempts, took)
		}
	}
}

func TestS3PathStyle(t *testing.T) {
	iso := isolate(t)
	cases := []struct {
		endpoint, variable string
		want               bool
	}{
		{"", "", false},                           // AWS itself: virtual-hosted buckets
		{"http://127.0.0.1:7070", "", true},       // an emulator: no per-bucket DNS names
		{"http://127.0.0.1:7070", "FALSE", false}, // opted out
		{"http://127.0.0.1:7070", "true", true},
	}
	for _, c := range cases {
		lo := iso
		if c.endpoint != "" {
			lo = append(lo[:len(lo):len(lo)], config.WithBaseEndpoint(c.endpoint))
		}
		cfg, err := Load(t.Context(), Options{AnyRegion: true, LoadOptions: lo})
		if err != nil {
			t.Fatal(err)
		}
		got := s3.NewFromConfig(cfg, S3Options(env(map[string]string{EnvS3PathStyle: c.variable}))).Options().UsePathStyle
		if got != c.want {
			t.Errorf("endpoint %q, %s=%q: path style %v, want %v", c.endpoint, EnvS3PathStyle, c.variable, got, c.want)
		}
	}
	// The SDK's own variable names the endpoint too.
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7070")
	cfg, err := Load(t.Context(), Options{AnyRegion: true, LoadOptions: iso})
	if err != nil {
		t.Fatal(err)
	}
	if !s3.NewFromConfig(cfg, S3Options(nil)).Options().UsePathStyle {
		t.Error("AWS_ENDPOINT_URL_S3: want path-style addressing")
	}
}

// TestAnonymous: a public bucket's client signs nothing, so it works on a
// machine without credentials.
func TestAnonymous(t *testing.T) {
	iso := isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	cfg, err := Load(t.Context(), Options{Region: "us-west-2", Anonymous: true, LoadOptions: append(iso, config.WithBaseEndpoint(srv.URL))})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s3.NewFromConfig(cfg, S3Options(env(nil))).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("public"), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("anonymous GET: %v", err)
	}
	out.Body.Close()
	if a, _ := auth.Load().(string); a != "" {
		t.Errorf("anonymous request carried Authorization %q", a)
	}
}
