package state_test

import (
	"context"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// churnStore makes every Save find a newer change waiting, as a busy run's
// steps finishing back to back do.
type churnStore struct {
	state.Store
	j     chan *state.Journal
	churn chan struct{} // closed to stop churning
}

func (c *churnStore) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	select {
	case <-c.churn:
	default:
		j := <-c.j
		c.j <- j
		j.Post(func(r *state.Run) { r.Params = map[string]string{"n": time.Now().String()} })
	}
	return c.Store.Save(ctx, runID, doc, v)
}

// A runner busy saving must still renew its lease: a lease left to expire
// while it drives the run lets a second runner take the run over (and lets
// teardown and gc treat it as abandoned).
func TestHeartbeatWhileSavesNeverStop(t *testing.T) {
	cs := &churnStore{Store: newMem(t), j: make(chan *state.Journal, 1), churn: make(chan struct{})}
	opt := opts("me")
	opt.TTL = 30 * time.Millisecond
	j := create(t, cs, "r", opt)
	first := read(t, cs, "r").Lease
	cs.j <- j
	j.Post(func(r *state.Run) { r.Status = state.RunRunning })
	defer close(cs.churn)
	deadline := time.Now().Add(2 * time.Second)
	for {
		l := read(t, cs, "r").Lease
		if l.Renewed.After(first.Renewed) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease not renewed in 2s of continuous saves (TTL %s): %+v", opt.TTL, l)
		}
		time.Sleep(time.Millisecond)
	}
}
