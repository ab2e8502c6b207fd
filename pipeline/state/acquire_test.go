package state_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/gpipe/gpipe/pipeline/state"
)

// loadCounter counts the reads of a run's state.
type loadCounter struct {
	state.Store
	loads atomic.Int64
}

func (c *loadCounter) Load(ctx context.Context, runID string) ([]byte, state.Version, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx, runID)
}

// TestAcquireLoaded: a lease taken from a run read before costs no second
// read while the run is as read, and a run that changed since is read again,
// so the lease rules see what is stored, not what was read.
func TestAcquireLoaded(t *testing.T) {
	t.Run("unchanged: no second read", func(t *testing.T) {
		s := &loadCounter{Store: newMem(t)}
		j0 := create(t, s, "r", opts("creator"))
		if err := j0.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		l, err := state.ReadLoaded(t.Context(), s, "r")
		if err != nil {
			t.Fatal(err)
		}
		before := s.loads.Load()
		j, err := state.AcquireLoaded(t.Context(), s, l, opts("me"))
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close(context.Background())
		if n := s.loads.Load() - before; n != 0 {
			t.Errorf("AcquireLoaded read the run %d times, want 0", n)
		}
		if got := read(t, s, "r").Lease; got == nil || got.Owner != "me" {
			t.Errorf("stored lease %+v, want one of owner me", got)
		}
	})
	t.Run("taken since: held", func(t *testing.T) {
		s := &loadCounter{Store: newMem(t)}
		j0 := create(t, s, "r", opts("creator"))
		if err := j0.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		l, err := state.ReadLoaded(t.Context(), s, "r") // no lease yet
		if err != nil {
			t.Fatal(err)
		}
		other, err := state.Acquire(t.Context(), s, "r", opts("other"))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(context.Background())
		_, err = state.AcquireLoaded(t.Context(), s, l, opts("me"))
		var held *state.HeldError
		if !errors.As(err, &held) || held.Lease.Owner != "other" {
			t.Fatalf("AcquireLoaded of a run taken since it was read: %v, want *HeldError of owner other", err)
		}
	})
}
