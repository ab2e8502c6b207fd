// Package awsfake is an in-process AWS endpoint for tests: an httptest server
// that speaks the wire protocols of the calls gpipe makes, so that the real
// SDK clients (serializers, deserializers, signing, the retryer) run against
// it. It serves CloudFormation and EC2 (AWS query protocol, XML responses),
// SSM and CloudWatch Logs (JSON 1.1 with X-Amz-Target), from one URL: point
// an aws.Config's BaseEndpoint at it.
//
// It is stateful like the services: stacks move through their statuses as
// the fake's clock (Options.Now) advances, not per poll, and record events; a stack told to fail rolls back
// with the failure in its events; SSM runs each command's script with sh on
// this machine, as the agent would on the instance, and streams its output
// into a CloudWatch log stream. Throttling can be injected per operation, and
// every request's SigV4 signature and date are checked against the test
// credentials and clock, and a bad one is refused as AWS refuses it.
package awsfake

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// The default test credentials every request must be signed with, and the
// account and region the fake is.
const (
	AccessKey = "AKIDGPIPETEST"
	SecretKey = "gpipe-test-secret"
	Region    = "us-east-1"
	Account   = "123456789012"
)

// Options configure a Server.
type Options struct {
	// Now stamps stack events and log events; nil uses time.Now. Tests give
	// it a clock skewed from the runner's to catch code that compares local
	// time with the service's.
	Now func() time.Time
	// AccessKey and SecretKey replace the default credentials (a test that
	// also talks to a real S3 server signs everything with its keys).
	AccessKey, SecretKey string
	// RequestClock is the clock request dates are checked against (and the
	// Date header of responses); nil uses time.Now. It is not Now: tests
	// move Now through hours of stack events while the SDK signs with the
	// real time.
	RequestClock func() time.Time
	// S3Endpoint is a real S3 server (versitygw) on which the stacks'
	// AWS::S3::Bucket resources are created and deleted, signed with the
	// same keys. Empty: a template with a bucket is a violation.
	S3Endpoint string
}

// Server is the fake endpoint. Its exported state is guarded by its own
// methods; tests read it through them.
type Server struct {
	URL string

	t          testing.TB
	key        [2]string // access key, secret key
	reqClock   func() time.Time
	s3Endpoint string
	srv        *httptest.Server
	now        func() time.Time
	mu         sync.Mutex
	seq        int
	ops        map[string]int // "Service.Operation" → requests received
	thr        map[string]int // "Service.Operation" → requests still to throttle
	lost       map[string]int // "Service.Operation" → responses still to lose
	errs       []string       // protocol violations, reported at cleanup
	// policy, when set, is enforced on every call (iam.go); denied records
	// what it refused.
	policy *Policy
	denied []string

	CFN  *CloudFormation
	SSM  *SSM
	Logs *Logs
	EC2  *EC2
	// Secrets are SSM parameters and Secrets Manager secrets (secrets.go).
	Secrets *Secrets
}

// New starts a server that stops when the test ends. Protocol violations
// (a bad signature, a missing required parameter) fail the test.
func New(t testing.TB, opt Options) *Server {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{t: t, now: opt.Now, ops: map[string]int{}, thr: map[string]int{}, lost: map[string]int{}, key: [2]string{AccessKey, SecretKey}}
	if opt.AccessKey != "" {
		s.key = [2]string{opt.AccessKey, opt.SecretKey}
	}
	s.reqClock, s.s3Endpoint = opt.RequestClock, opt.S3Endpoint
	if s.reqClock == nil {
		s.reqClock = time.Now
	}
	s.CFN = newCloudFormation(s)
	s.Logs = &Logs{s: s, streams: map[string]*stream{}}
	s.SSM = newSSM(s)
	s.EC2 = &EC2{s: s, offers: map[string][]string{"dl1.24xlarge": {Region + "a", Region + "b"}}, noCapacity: map[string]bool{}}
	s.Secrets = &Secrets{s: s, params: map[string]parameter{}, secrets: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		s.SSM.stopAll()
		s.srv.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.errs {
			t.Errorf("awsfake: %s", e)
		}
	})
	return s
}

// Config returns an SDK configuration for the server: its URL as the base
// endpoint, the test credentials, and a standard retryer whose backoff is a
// millisecond, so throttling exercises the SDK's retries without slowing the
// tests. Transport, when not nil, replaces the HTTP transport (tests cut it to
// simulate a runner that died).
func (s *Server) Config(transport http.RoundTripper) aws.Config {
	cfg := aws.Config{
		Region:       Region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(s.key[0], s.key[1], ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 4
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
				o.RateLimiter = ratelimit.None
			})
		},
		HTTPClient: &http.Client{Transport: transport},
	}
	if transport == nil {
		cfg.HTTPClient = s.srv.Client()
	}
	return cfg
}

// Throttle makes the next n requests of op ("CloudFormation.DescribeStacks",
// "SSM.GetCommandInvocation", "Logs.GetLogEvents", "EC2.DescribeImages") fail
// with the service's throttling error.
func (s *Server) Throttle(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.thr[op] += n
}

// Calls returns how many requests of op arrived, throttled ones included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[op]
}

func (s *Server) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("req-%08d-0000-4000-8000-000000000000", s.seq)
}

// count records a request and says whether to throttle it.
func (s *Server) count(op string) (throttle bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops[op]++
	if s.thr[op] > 0 {
		s.thr[op]--
		return true
	}
	return false
}

func (s *Server) requestNow() time.Time { return s.reqClock() }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", s.requestNow().UTC().Format(http.TimeFormat))
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(r.URL.Path, IMDSPath) {
		s.EC2.serveIMDS(w, r) // instance metadata: no signature, as on the instance
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		s.violation("%s %s: want POST /", r.Method, r.URL.Path)
		http.Error(w, "unsupported", http.StatusNotFound)
		return
	}
	if s.takeLost(opName(r, body)) {
		// The service does the work; the answer never arrives.
		s.dispatch(httptest.NewRecorder(), r, body)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	s.dispatch(w, r, body)
}

// opName names a request's operation as Throttle and LoseResponses do.
func opName(r *http.Request, body []byte) string {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		svc, op, _ := strings.Cut(target, ".")
		return map[string]string{"AmazonSSM": "SSM", "Logs_20140328": "Logs", "secretsmanager": "SecretsManager"}[svc] + "." + op
	}
	form, _ := url.ParseQuery(string(body))
	return map[string]string{cfnVersion: "CloudFormation", ec2Version: "EC2"}[form.Get("Version")] + "." + form.Get("Action")
}

// LoseResponses makes the next n requests of op succeed at the service while
// their connection is reset before the answer: the case where a retry must
// not do the work twice.
func (s *Server) LoseResponses(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost[op] += n
}

func (s *Server) takeLost(op string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost[op] > 0 {
		s.lost[op]--
		return true
	}
	return false
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, body []byte) {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			s.violation("%s: Content-Type %q, want application/x-amz-json-1.1", target, ct)
		}
		svc, op, _ := strings.Cut(target, ".")
		switch svc {
		case "AmazonSSM":
			if s.authorize(w, r, body, "ssm", protoJSON) && !s.denyJSON(w, "ssm", op, body) {
				s.SSM.serve(w, op, body)
			}
		case "Logs_20140328":
			if s.authorize(w, r, body, "logs", protoJSON) && !s.denyJSON(w, "logs", op, body) {
				s.Logs.serve(w, op, body)
			}
		case "secretsmanager":
			if s.authorize(w, r, body, "secretsmanager", protoJSON) && !s.denyJSON(w, "secretsmanager", op, body) {
				s.Secrets.serve(w, op, body)
			}
		default:
			s.violation("unknown X-Amz-Target %q", target)
			jsonError(w, http.StatusBadRequest, "UnknownOperationException", "")
		}
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		s.violation("query request with Content-Type %q", ct)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.violation("query body %q: %v", body, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch v := form.Get("Version"); v {
	case cfnVersion:
		if s.authorize(w, r, body, "cloudformation", protoQuery) && !s.denyQuery(w, form) {
			s.CFN.serve(w, form)
		}
	case ec2Version:
		if s.authorize(w, r, body, "ec2", protoEC2) && !s.denyQuery(w, form) {
			s.EC2.serve(w, form)
		}
	default:
		s.violation("query request %s with unknown Version %q", form.Get("Action"), v)
		http.Error(w, "unknown version", http.StatusBadRequest)
	}
}
