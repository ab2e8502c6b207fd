package s3

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/storetest"
)

// testConfig points the SDK at srv (or at endpoint, e.g. a proxy in front).
func testConfig(srv *testtool.S3Server, endpoint string) []func(*config.LoadOptions) error {
	return []func(*config.LoadOptions) error{
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")),
		config.WithBaseEndpoint(endpoint),
		// Keep the developer's ~/.aws out of the tests.
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	}
}

func openTest(t testing.TB, srv *testtool.S3Server, endpoint, url string, opt Options) *Store {
	t.Helper()
	opt.ConfigOptions = append(testConfig(srv, endpoint), opt.ConfigOptions...)
	s, err := Open(context.Background(), url, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func makeBucket(t testing.TB, s *Store) {
	t.Helper()
	_, err := s.api.(*s3sdk.Client).CreateBucket(context.Background(), &s3sdk.CreateBucketInput{Bucket: &s.bucket})
	if err != nil {
		t.Fatalf("create bucket %s: %v", s.bucket, err)
	}
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

func TestStore(t *testing.T) {
	srv := testtool.Versitygw(t)
	makeBucket(t, openTest(t, srv, srv.Endpoint, "s3://suite", Options{}))
	storetest.RunReopen(t, func(t *testing.T) state.Store {
		// A fresh prefix per subtest; the prefix has a slash to check nesting.
		return openTest(t, srv, srv.Endpoint, "s3://suite/gpipe/"+unsafe.ReplaceAllString(t.Name(), "-"), Options{})
	}, reopen)
}

func TestStoreNoPrefix(t *testing.T) {
	srv := testtool.Versitygw(t)
	n := 0
	storetest.RunReopen(t, func(t *testing.T) state.Store {
		n++
		s := openTest(t, srv, srv.Endpoint, fmt.Sprintf("s3://bare-%d", n), Options{})
		makeBucket(t, s)
		return s
	}, reopen)
}

// reopen is a new Store over s's bucket and prefix, with nothing cached.
func reopen(s state.Store) state.Store {
	o := s.(*Store)
	return New(o.api, o.bucket, o.prefix)
}

func TestLayout(t *testing.T) {
	srv := testtool.Versitygw(t)
	s := openTest(t, srv, srv.Endpoint, "s3://lay/team/gpipe/", Options{})
	makeBucket(t, s)
	ctx := t.Context()
	if s.String() != "s3://lay/team/gpipe" {
		t.Fatalf("String() = %q", s.String())
	}
	if _, err := s.Create(ctx, "r-1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, "r-1", "spec.yaml", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []string{"a", "b"} {
		if err := s.AppendLog(ctx, "r-1", "train.1", []byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := s.api.ListObjectsV2(ctx, &s3sdk.ListObjectsV2Input{Bucket: aws.String("lay")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
	}
	want := "team/gpipe/r-1/logs/train.1/0000000000 team/gpipe/r-1/logs/train.1/0000000001 " +
		"team/gpipe/r-1/spec.yaml team/gpipe/r-1/state.json"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("keys:\n%s\nwant:\n%s", got, want)
	}
}

// TestOpenFromEnvironment: the SDK's own variables select the endpoint and
// credentials, and a custom endpoint turns on path-style addressing (the
// bucket is not a DNS name on 127.0.0.1).
func TestOpenFromEnvironment(t *testing.T) {
	srv := testtool.Versitygw(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_PROFILE", "")
	s, err := Open(t.Context(), "s3://envbucket/p", Options{})
	if err != nil {
		t.Fatal(err)
	}
	makeBucket(t, s)
	if _, err := s.Create(t.Context(), "r", []byte("x")); err != nil {
		t.Fatalf("Create through the environment's endpoint: %v", err)
	}
	if !s.api.(*s3sdk.Client).Options().UsePathStyle {
		t.Fatal("path-style addressing is off with a custom endpoint")
	}
	t.Setenv("GPIPE_S3_PATH_STYLE", "false")
	s2, err := Open(t.Context(), "s3://envbucket/p", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s2.api.(*s3sdk.Client).Options().UsePathStyle {
		t.Fatal("GPIPE_S3_PATH_STYLE=false did not turn path-style addressing off")
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct{ in, bucket, prefix, err string }{
		{in: "s3://b", bucket: "b"},
		{in: "s3://b/", bucket: "b"},
		{in: "s3://b/p/q/", bucket: "b", prefix: "p/q"},
		{in: "s3:///p", err: "no bucket"},
		{in: "gs://b", err: "not an s3:// URL"},
	}
	for _, tc := range tests {
		b, p, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q): error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v", tc.in, b, p, err)
		}
	}
}

// lostFirstResponse makes the first conditional PUT land but fail as if the
// connection dropped before the answer, like a reset after the server
// committed. The SDK then retries the same request.
type lostFirstResponse struct {
	API
	n atomic.Int32
}

func (l *lostFirstResponse) PutObject(ctx context.Context, in *s3sdk.PutObjectInput, optFns ...func(*s3sdk.Options)) (*s3sdk.PutObjectOutput, error) {
	out, err := l.API.PutObject(ctx, in, optFns...)
	if err != nil || l.n.Add(1) > 1 {
		return out, err
	}
	// Replay the identical request, as the SDK's retryer would.
	in.Body.(interface {
		Seek(int64, int) (int64, error)
	}).Seek(0, 0)
	return l.API.PutObject(ctx, in, optFns...)
}

// TestRetriedWriteIsNotAConflict: a conditional PUT repeated after its first
// attempt succeeded gets 412; the store must see its own write, not report
// someone else's.
func TestRetriedWriteIsNotAConflict(t *testing.T) {
	srv := testtool.Versitygw(t)
	base := openTest(t, srv, srv.Endpoint, "s3://retry/p", Options{})
	makeBucket(t, base)
	ctx := t.Context()
	for _, op := range []string{"create", "save", "append", "record", "snapshot"} {
		t.Run(op, func(t *testing.T) {
			s := New(&lostFirstResponse{API: base.api}, "retry", "p/"+op)
			var err error
			switch op {
			case "create":
				_, err = s.Create(ctx, "r", []byte("doc"))
			case "save":
				v, cerr := New(base.api, "retry", "p/"+op).Create(ctx, "r", []byte("doc"))
				if cerr != nil {
					t.Fatal(cerr)
				}
				_, err = s.Save(ctx, "r", []byte("doc2"), v)
			case "record", "snapshot":
				// The journal's slots: Append's, and the one a Save
				// writes before state.json.
				v, cerr := New(base.api, "retry", "p/"+op).Create(ctx, "r", []byte("doc"))
				if cerr != nil {
					t.Fatal(cerr)
				}
				if op == "record" {
					_, err = s.Append(ctx, "r", []byte("rec"), v)
				} else {
					_, err = s.Save(ctx, "r", []byte("doc2"), v)
				}
			case "append":
				if err = s.AppendLog(ctx, "r", "l", []byte("once")); err == nil {
					var b []byte
					b, err = s.ReadLog(ctx, "r", "l", 0)
					if string(b) != "once" {
						t.Fatalf("log = %q, want the chunk once", b)
					}
				}
			}
			if err != nil {
				t.Fatalf("%s with a retried request: %v", op, err)
			}
		})
	}
	// And a real conflict is still one.
	s := New(base.api, "retry", "p/real")
	v, err := s.Create(ctx, "r", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "r", []byte("b"), v); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "r", []byte("c"), v); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("stale Save: got %v, want ErrConflict", err)
	}
}
