// Package testtool finds the external tools that tests need (versitygw,
// shellcheck) and runs versitygw for a test. A missing tool fails the test
// with the install command under CI=true and skips it with that command
// otherwise, so CI can never pass by silently skipping.
package testtool

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Install commands printed when a tool is missing.
const (
	VersitygwInstall  = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	ShellcheckInstall = "sudo apt-get install -y shellcheck"
)

// Find returns the path of the named executable, looked up on PATH and then in
// $(go env GOPATH)/bin. When it is missing the test fails under CI=true and is
// skipped otherwise, in both cases printing install.
func Find(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := lookup(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found on PATH or in $(go env GOPATH)/bin; install it with: %s", name, install)
	Unavailable(t, msg)
	return ""
}

func lookup(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range gopathBins() {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

func gopathBins() []string {
	gopath := ""
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopath = strings.TrimSpace(string(out))
	}
	if gopath == "" {
		gopath = os.Getenv("GOPATH")
	}
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	var bins []string
	for _, p := range filepath.SplitList(gopath) {
		bins = append(bins, filepath.Join(p, "bin"))
	}
	return bins
}

// Shellcheck returns the path of shellcheck (see Find).
func Shellcheck(t testing.TB) string { return Find(t, "shellcheck", ShellcheckInstall) }

// S3Server is a running versitygw.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's directory: one sub-directory per bucket
}

// Env returns environment variables pointing the AWS SDK (and a gpipe child
// process) at the server.
func (s *S3Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Versitygw starts versitygw on a free loopback port with a temporary
// directory, waits until it answers, and stops it when the test ends. Create
// buckets by making directories in Dir or through the SDK.
func Versitygw(t testing.TB) *S3Server {
	t.Helper()
	bin := Find(t, "versitygw", VersitygwInstall)
	// Keys of this server alone: the readiness probe signs with them, so a
	// versitygw of another test process that took the port meanwhile
	// (refusing them) is never mistaken for this one.
	srv := &S3Server{AccessKey: "gpipetest" + randomHex(8), SecretKey: "gpipetestsecret" + randomHex(16), Dir: t.TempDir()}
	var lastErr error
	for range 3 { // another process may grab the port between probe and start
		addr, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		srv.Endpoint = "http://" + addr
		if lastErr = start(t, bin, srv, addr); lastErr == nil {
			return srv
		}
	}
	t.Fatalf("start versitygw: %v", lastErr)
	return nil
}

// signedListBuckets sends ListBuckets (GET /) signed with srv's keys
// (Signature Version 4, as the S3 API Reference requires of authenticated
// requests): only the server started with those keys answers 200.
func signedListBuckets(ctx context.Context, client *http.Client, srv *S3Server) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.Endpoint+"/", nil)
	if err != nil {
		return nil, err
	}
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	creds := aws.Credentials{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptySHA256, "s3", "us-east-1", time.Now()); err != nil {
		return nil, err
	}
	return client.Do(req)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep memory bounded: versitygw logs every request
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t testing.TB, bin string, srv *S3Server, addr string) error {
	cmd := exec.Command(bin, "--access", srv.AccessKey, "--secret", srv.SecretKey, "--port", addr, "posix", srv.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY=", "ROOT_SECRET_KEY=")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw exited: %v\n%s", err, out.String())
		case <-ctx.Done():
			stop()
			return fmt.Errorf("versitygw did not answer on %s within 15s\n%s", addr, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		resp, err := signedListBuckets(ctx, client, srv)
		if err != nil {
			continue // not listening yet
		}
		resp.Body.Close()
		if resp.Header.Get("Server") != "VERSITYGW" || resp.StatusCode != http.StatusOK {
			// Another process's server on the port: ours could not
			// bind it and exits, or will.
			stop()
			return fmt.Errorf("something else answers on %s (Server: %q, %s to this server's keys)", addr, resp.Header.Get("Server"), resp.Status)
		}
		t.Cleanup(stop)
		return nil
	}
}
