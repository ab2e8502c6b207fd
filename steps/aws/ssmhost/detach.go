package ssmhost

import (
	"context"
	"errors"

	"github.com/gpipe/gpipe/pipeline"
)

// Detaching (pipeline.ErrDetached as the context's cause) is the one
// cancellation that must not cancel the remote command: the runner is about
// to go away (a CI job's time limit) and a later resume reattaches to the
// command through its saved id.

func detaching(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), pipeline.ErrDetached)
}

// shieldDetach returns a context that ends when ctx ends for any reason but
// a detach. Sending a command and saving its id run under it: cutting
// SendCommand short could leave a command running that nobody knows about,
// and a detached runner leaves no cleanup behind to stop it, so a resume
// would send a second copy of the training job.
func shieldDetach(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		if !detaching(ctx) {
			cancel(context.Cause(ctx))
		}
	})
	return sctx, func() {
		stop()
		cancel(nil)
	}
}

func (e *Executor) detached(cmdID string) error {
	return &pipeline.DetachedError{Running: "SSM command " + cmdID + " on " + e.InstanceID}
}
