package ssmhost

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/gpipe/gpipe/pipeline"
)

// TestExecDetachLeavesCommandRunning: the runner detaches mid-command (a CI
// job about to hit its time limit): Exec returns a *pipeline.DetachedError
// without CancelCommand, the command id is saved, and a resume reattaches to
// that same command instead of sending it again.
func TestExecDetachLeavesCommandRunning(t *testing.T) {
	f := &fakeSSM{runFor: 8, status: types.CommandInvocationStatusSuccess, stdout: []string{"epoch 1", "epoch 2"}, outputs: "dice=0.8"}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	ex, _ := setup(f, func(n int) {
		if n == 3 {
			cancel(pipeline.ErrDetached)
		}
	})
	saved := map[string]string{}
	log := &syncBuf{}
	_, err := ex.Exec(ctx, script(log, saved))
	var de *pipeline.DetachedError
	if !errors.As(err, &de) || !strings.Contains(de.Running, "cmd-1") {
		t.Fatalf("err = %v, want a *pipeline.DetachedError naming cmd-1", err)
	}
	if f.cancelled != 0 {
		t.Errorf("CancelCommand called %d times on detach", f.cancelled)
	}
	if saved[ResumeCommandID] != "cmd-1" || saved[ResumeNonce] == "" {
		t.Errorf("saved %v", saved)
	}
	if !strings.Contains(log.String(), "keeps running") {
		t.Errorf("log does not say the command keeps running:\n%s", log)
	}

	ex2, _ := setup(f, nil)
	s := script(&syncBuf{}, map[string]string{})
	s.Resume = saved
	out, err := ex2.Exec(t.Context(), s)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if len(f.sent) != 1 || out["dice"] != "0.8" {
		t.Errorf("resume: %d sends, outputs %v; want 1 send and dice=0.8", len(f.sent), out)
	}
}

// TestExecDetachWhileReattached: a resumed runner that detaches again leaves
// the same command running.
func TestExecDetachWhileReattached(t *testing.T) {
	f := &fakeSSM{runFor: 8, status: types.CommandInvocationStatusSuccess}
	const nonce = "0123456789abcdef01234567"
	f.sent = []*ssm.SendCommandInput{{ // sent by an earlier runner
		InstanceIds: []string{"i-0abc"}, Parameters: map[string][]string{"commands": {"::gpipe-outputs-" + nonce + "::"}}}}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	ex, _ := setup(f, func(n int) {
		if n == 2 {
			cancel(pipeline.ErrDetached)
		}
	})
	s := script(&syncBuf{}, map[string]string{})
	s.Resume = map[string]string{ResumeCommandID: "cmd-1", ResumeNonce: nonce}
	_, err := ex.Exec(ctx, s)
	if !errors.As(err, new(*pipeline.DetachedError)) || f.cancelled != 0 || len(f.sent) != 1 {
		t.Fatalf("err = %v, %d cancels, %d sends", err, f.cancelled, len(f.sent))
	}
}

// detachOnSend detaches while SendCommand is in flight.
type detachOnSend struct {
	*fakeSSM
	detach  func()
	mu      sync.Mutex
	sendErr error // the context error SendCommand saw
}

func (d *detachOnSend) SendCommand(ctx context.Context, in *ssm.SendCommandInput, opts ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	d.detach()
	time.Sleep(5 * time.Millisecond) // let the cancellation propagate, as a slow answer would
	d.mu.Lock()
	d.sendErr = ctx.Err()
	d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err // the SDK gives up on the request; SSM may have run it
	}
	return d.fakeSSM.SendCommand(ctx, in, opts...)
}

// TestExecDetachDuringSendSavesTheCommand: a detach must not cut SendCommand
// short: a command that started without its id saved would be sent again by
// the resume. The send completes, the id is saved, and Exec returns detached.
func TestExecDetachDuringSendSavesTheCommand(t *testing.T) {
	f := &fakeSSM{runFor: 8, status: types.CommandInvocationStatusSuccess}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	d := &detachOnSend{fakeSSM: f, detach: func() { cancel(pipeline.ErrDetached) }}
	f.logs = &fakeLogs{streams: map[string][]string{}}
	fac := NewFactory(func(context.Context) (*Clients, error) { return &Clients{SSM: d, Logs: f.logs}, nil },
		Options{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	ex, err := fac.For(pipeline.Host{Name: "gaudi", Address: "ssm:i-0abc"})
	if err != nil {
		t.Fatal(err)
	}
	saved := map[string]string{}
	_, err = ex.Exec(ctx, script(&syncBuf{}, saved))
	if !errors.As(err, new(*pipeline.DetachedError)) {
		t.Fatalf("err = %v, want detached", err)
	}
	if d.sendErr != nil || len(f.sent) != 1 || saved[ResumeCommandID] != "cmd-1" || f.cancelled != 0 {
		t.Errorf("send saw %v; %d sends, saved %v, %d cancels", d.sendErr, len(f.sent), saved, f.cancelled)
	}
}

// TestExecInterruptDuringSendStillCutsItShort: the shield is for detaching
// only; an interrupt still stops a send.
func TestExecInterruptDuringSendStillCutsItShort(t *testing.T) {
	f := &fakeSSM{runFor: 8, status: types.CommandInvocationStatusSuccess}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	d := &detachOnSend{fakeSSM: f, detach: func() { cancel(errors.New("interrupted by test")) }}
	f.logs = &fakeLogs{streams: map[string][]string{}}
	fac := NewFactory(func(context.Context) (*Clients, error) { return &Clients{SSM: d, Logs: f.logs}, nil },
		Options{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	ex, _ := fac.For(pipeline.Host{Name: "gaudi", Address: "ssm:i-0abc"})
	_, err := ex.Exec(ctx, script(&syncBuf{}, map[string]string{}))
	if err == nil || errors.As(err, new(*pipeline.DetachedError)) || d.sendErr == nil {
		t.Fatalf("err = %v, send saw %v; want the send cancelled", err, d.sendErr)
	}
}

// TestExecDetachBeforeSendSendsNothing: detaching while waiting for the SSM
// agent leaves nothing remote; the step is simply cancelled.
func TestExecDetachBeforeSendSendsNothing(t *testing.T) {
	f := &fakeSSM{offlineFor: 5, runFor: 1, status: types.CommandInvocationStatusSuccess}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	ex, _ := setup(f, func(n int) {
		if n == 1 {
			cancel(pipeline.ErrDetached)
		}
	})
	_, err := ex.Exec(ctx, script(&syncBuf{}, map[string]string{}))
	if err == nil || errors.As(err, new(*pipeline.DetachedError)) || len(f.sent) != 0 {
		t.Fatalf("err = %v, %d sends; want a plain cancellation and nothing sent", err, len(f.sent))
	}
}
