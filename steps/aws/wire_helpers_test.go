package aws

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/aws/cfn"
	"github.com/gpipe/gpipe/steps/aws/ssmhost"
)

var wireBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testClock is the runner's clock: Sleep advances it at once and yields the
// processor for at most a millisecond of real time (remote scripts run for
// real and need a moment), so hours of polling take milliseconds.
type testClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	onWait func(n int) // runs after each sleep; tests cancel contexts here
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	n, hook := len(c.slept), c.onWait
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	t := time.NewTimer(min(d, time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return ctx.Err()
}

func (c *testClock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

func (c *testClock) setHook(f func(int)) { c.mu.Lock(); c.onWait = f; c.mu.Unlock() }

// cutTransport lets a test kill a runner: once cut, nothing the runner sends
// reaches AWS any more, as after kill -9.
type cutTransport struct {
	cut  atomic.Bool
	base http.RoundTripper
}

var errKilled = errors.New("runner killed")

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errKilled
	}
	return c.base.RoundTrip(r)
}

// wireEnv is one fake AWS endpoint and a runner's AWS steps talking to it
// through the real SDK clients.
type wireEnv struct {
	t     *testing.T
	srv   *awsfake.Server
	clock *testClock
	steps *Steps
	net   *cutTransport
	loads atomic.Int32
}

// newWire starts the fake with the service clock skewed from the runner's
// (AWS and a laptop never agree to the millisecond).
func newWire(t *testing.T, skew time.Duration) *wireEnv {
	clock := &testClock{now: wireBase}
	srv := awsfake.New(t, awsfake.Options{Now: func() time.Time { return clock.Now().Add(skew) }})
	// On the runner's fake clock a stack may take as long as a real one.
	srv.CFN.PhaseTime = time.Minute
	srv.EC2.AddImage(awsfake.Image{ID: "ami-0aaa", Name: "Deep Learning AMI Habana PyTorch 1.13 SynapseAI 1.9 (Ubuntu 20.04) 20230101",
		Owner: "amazon", Created: "2023-01-01T00:00:00.000Z", RootDevice: "/dev/sda1"})
	srv.EC2.AddImage(awsfake.Image{ID: "ami-0bbb", Name: "Deep Learning AMI Habana PyTorch 2.0 SynapseAI 1.11 (Ubuntu 20.04) 20230801",
		Owner: "amazon", Created: "2023-08-01T00:00:00.000Z", RootDevice: "/dev/xvda"})
	srv.EC2.AddImage(awsfake.Image{ID: "ami-0ccc", Name: "Someone else's Habana PyTorch SynapseAI Ubuntu 20.04",
		Owner: "999999999999", Created: "2024-01-01T00:00:00.000Z", RootDevice: "/dev/sda1"})
	// The default image: Canonical's Ubuntu 22.04, whose id Canonical publishes
	// as an SSM public parameter (owner 099720109477 is Canonical's account).
	srv.EC2.AddImage(awsfake.Image{ID: "ami-0ddd", Name: "ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20250601",
		Owner: "099720109477", Created: "2025-06-01T00:00:00.000Z", RootDevice: "/dev/sda1"})
	srv.SSM.SetParameter(strings.TrimPrefix(cfn.DefaultAMI, "resolve:ssm:"), "ami-0ddd")
	// Habana's base AMI, a Marketplace image (owner alias aws-marketplace).
	srv.EC2.AddImage(awsfake.Image{ID: "ami-0eee", Name: "habanalabs-base-ubuntu22.04-1.21.0-20250601",
		Owner: "aws-marketplace", Created: "2025-06-01T00:00:00.000Z", RootDevice: "/dev/xvda"})
	return &wireEnv{t: t, srv: srv, clock: clock}
}

// runner builds a runner's AWS steps (a fresh process: new clients, new
// connections) on the real wiring of New.
func (e *wireEnv) runner() *Steps {
	e.net = &cutTransport{base: http.DefaultTransport}
	net := e.net
	e.steps = New(Options{
		LoadConfig: func(ctx context.Context, region string) (sdkaws.Config, error) {
			e.loads.Add(1)
			cfg := e.srv.Config(net)
			if region != "" {
				cfg.Region = region
			}
			return cfg, nil
		},
		SSM:   ssmhost.Options{Now: e.clock.Now, Sleep: e.clock.Sleep},
		Clock: cfn.Clock{Now: e.clock.Now, Sleep: e.clock.Sleep},
	})
	return e.steps
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// stepRun is a StepRun whose SaveResume keeps values in a map, as the
// engine keeps them in the run state.
func stepRun(runID, stepID string, with map[string]any) (*pipeline.StepRun, *syncBuf, map[string]string) {
	log := &syncBuf{}
	saved := map[string]string{}
	var mu sync.Mutex
	return &pipeline.StepRun{RunID: runID, StepID: stepID, Attempt: 1, With: with, Log: log, Resume: map[string]string{},
		SaveResume: func(_ context.Context, k, v string) error { mu.Lock(); defer mu.Unlock(); saved[k] = v; return nil },
	}, log, saved
}
