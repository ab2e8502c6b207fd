package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/memory"
)

// countingStore counts Saves and can delay or fail them.
type countingStore struct {
	state.Store
	saves    atomic.Int64
	delay    time.Duration
	mu       sync.Mutex
	failNext int   // fail this many Saves with failErr
	failErr  error // default errFlaky
}

var errFlaky = errors.New("flaky: connection reset")

func (c *countingStore) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	c.saves.Add(1)
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	c.mu.Lock()
	fail := c.failNext != 0
	if c.failNext > 0 {
		c.failNext--
	}
	ferr := c.failErr
	c.mu.Unlock()
	if fail {
		if ferr == nil {
			ferr = errFlaky
		}
		return "", ferr
	}
	return c.Store.Save(ctx, runID, doc, v)
}

func (c *countingStore) setFail(n int, err error) {
	c.mu.Lock()
	c.failNext, c.failErr = n, err
	c.mu.Unlock()
}

func newRun(id string) *state.Run {
	return &state.Run{ID: id, Pipeline: "p", Status: state.RunRunning, Steps: map[string]*state.Step{}}
}

func opts(owner string) state.LeaseOptions {
	return state.LeaseOptions{Owner: owner, Host: "host-a", PID: 100, ProcessAlive: func(int) bool { return true }}
}

func create(t *testing.T, s state.Store, id string, opt state.LeaseOptions) *state.Journal {
	t.Helper()
	j, err := state.Create(t.Context(), s, newRun(id), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close(context.Background()) })
	return j
}

func read(t *testing.T, s state.Store, id string) *state.Run {
	t.Helper()
	r, err := state.Read(t.Context(), s, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newMem(t *testing.T) *memory.Store { return memory.New(t.Name()) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
