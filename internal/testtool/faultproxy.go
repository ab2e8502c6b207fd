package testtool

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bucket creates a bucket on the server (versitygw's posix backend keeps a
// bucket as a top-level directory) and returns its name.
func (s *S3Server) Bucket(t testing.TB, name string) string {
	t.Helper()
	if err := os.Mkdir(filepath.Join(s.Dir, name), 0o755); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// Fault kinds a FaultProxy injects.
const (
	Fault500         = "500 InternalError"
	Fault503         = "503 SlowDown"
	FaultResetBefore = "reset before" // connection closed, request never forwarded
	FaultResetAfter  = "reset after"  // request handled by the server, answer lost
	FaultSlow        = "slow"         // forwarded after a delay
)

var faultKinds = []string{Fault500, Fault503, FaultResetBefore, FaultResetAfter, FaultSlow}

// FaultProxy is a reverse proxy in front of an S3 server that answers a share
// of requests with a fault, and counts the PUT requests that reach the server.
type FaultProxy struct {
	URL string

	srv      *httptest.Server
	upstream *httputil.ReverseProxy
	delay    time.Duration
	enabled  atomic.Bool
	puts     atomic.Int64
	requests atomic.Int64

	mu     sync.Mutex
	rng    *rand.Rand
	rate   float64
	faults map[string]int
}

// NewFaultProxy starts a proxy to target that faults a share rate (0..1) of
// requests, choosing among the fault kinds at random from seed. It stops when
// the test ends.
func NewFaultProxy(t testing.TB, target string, rate float64, seed uint64) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{
		upstream: httputil.NewSingleHostReverseProxy(u),
		delay:    300 * time.Millisecond,
		rng:      rand.New(rand.NewPCG(seed, 7)),
		rate:     rate,
		faults:   map[string]int{},
	}
	p.enabled.Store(true)
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// SetEnabled turns fault injection on or off; counting continues.
func (p *FaultProxy) SetEnabled(on bool) { p.enabled.Store(on) }

// Puts is the number of PUT requests forwarded to the server.
func (p *FaultProxy) Puts() int64 { return p.puts.Load() }

// Requests is the number of requests forwarded to the server.
func (p *FaultProxy) Requests() int64 { return p.requests.Load() }

// Faults returns how many faults of each kind were injected.
func (p *FaultProxy) Faults() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.faults))
	for k, v := range p.faults {
		m[k] = v
	}
	return m
}

func (p *FaultProxy) pick() string {
	if !p.enabled.Load() {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() >= p.rate {
		return ""
	}
	f := faultKinds[p.rng.IntN(len(faultKinds))]
	p.faults[f]++
	return f
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test</Message></Error>`, code)
}

func hangUp(w http.ResponseWriter) {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p.pick() {
	case Fault500:
		io.Copy(io.Discard, r.Body)
		s3Error(w, http.StatusInternalServerError, "InternalError")
		return
	case Fault503:
		io.Copy(io.Discard, r.Body)
		s3Error(w, http.StatusServiceUnavailable, "SlowDown")
		return
	case FaultResetBefore:
		hangUp(w)
		return
	case FaultResetAfter:
		p.forward(httptest.NewRecorder(), r)
		hangUp(w)
		return
	case FaultSlow:
		time.Sleep(p.delay)
	}
	p.forward(w, r)
}

func (p *FaultProxy) forward(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	if r.Method == http.MethodPut {
		p.puts.Add(1)
	}
	p.upstream.ServeHTTP(w, r)
}
