package ssmhost

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
	"github.com/gpipe/gpipe/steps/host/hosttest"
)

// fastClock lets the executor's polling backoff (seconds to minutes) pass in
// milliseconds of real time while the fake's commands run for real.
type fastClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fastClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fastClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	t := time.NewTimer(min(d, 5*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return ctx.Err()
}

// TestSSMConformance: the SSM executor, through the real SDK clients and the
// AWS wire fake (which runs commands with sh on this machine, as the agent
// does), passes the host-executor suite. It reattaches to a command after a
// detach and enforces Script.Timeout remotely (executionTimeout); a rerun
// handed an earlier runner's command (Script.Previous) cancels it if it
// still runs, rather than running beside it.
func TestSSMConformance(t *testing.T) {
	const instance = "i-0c0f0a11ce5e7e570"
	srv := awsfake.New(t, awsfake.Options{})
	srv.SSM.AddInstance(instance, 0)
	clock := &fastClock{now: time.Now()}
	newExec := func(t *testing.T) host.Executor {
		cfg := srv.Config(nil)
		fac := NewFactory(func(context.Context) (*Clients, error) {
			return &Clients{SSM: ssm.NewFromConfig(cfg), Logs: cloudwatchlogs.NewFromConfig(cfg)}, nil
		}, Options{Now: clock.Now, Sleep: clock.Sleep})
		ex, err := fac.For(pipeline.Host{Name: "gaudi", Address: "ssm:" + instance})
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	hosttest.Run(t, hosttest.Host{
		New:           newExec,
		Reattach:      true,
		ScriptTimeout: true,
		// A runner that sent the command and was killed: it detaches the
		// moment the command id is saved, and never comes back.
		Leftover: func(t *testing.T, body string, env map[string]string) map[string]string {
			ctx, stop := context.WithCancelCause(t.Context())
			defer stop(nil)
			var mu sync.Mutex
			saved := map[string]string{}
			s := host.Script{StepID: "leftover", Body: body, Env: env, SaveResume: func(_ context.Context, k, v string) error {
				mu.Lock()
				defer mu.Unlock()
				saved[k] = v
				if saved[ResumeCommandID] != "" && saved[ResumeNonce] != "" {
					stop(pipeline.ErrDetached)
				}
				return nil
			}}
			if _, err := newExec(t).Exec(ctx, s); !errors.As(err, new(*pipeline.DetachedError)) {
				t.Fatalf("leftover attempt: %v, want it detached", err)
			}
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(saved)
		},
	})
}
