package state_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// stuckStore is a store whose Saves hang until their context ends, as a
// request to an unreachable S3 endpoint does.
type stuckStore struct {
	state.Store
	saving chan struct{} // receives once per Save that started
}

func (s *stuckStore) Save(ctx context.Context, _ string, _ []byte, _ state.Version) (state.Version, error) {
	s.saving <- struct{}{}
	<-ctx.Done()
	return "", ctx.Err()
}

// An Update waiting for its change to become durable must not wait forever
// once Close gave up and stopped the committer: nobody will ever save it.
func TestUpdateReturnsWhenCloseStopsCommitter(t *testing.T) {
	ss := &stuckStore{Store: newMem(t), saving: make(chan struct{}, 16)}
	j, err := state.Create(t.Context(), ss, newRun("r"), opts("me"))
	if err != nil {
		t.Fatal(err)
	}
	updated := make(chan error, 1)
	go func() {
		// No deadline of its own, as the engine's saves have none.
		updated <- j.Update(context.WithoutCancel(t.Context()), func(r *state.Run) { r.Status = state.RunFailed })
	}()
	testtool.Recv(t, ss.saving, "the stuck store's Save to begin")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
	defer cancel()
	if err := j.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close against a stuck store: got %v, want DeadlineExceeded", err)
	}
	select {
	case err := <-updated:
		if !errors.Is(err, state.ErrClosed) {
			t.Fatalf("Update after Close gave up: got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Update still waiting 5s after Close stopped the committer")
	}
}
