package s3

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// TestJournalRecordsThroughFlakyS3: step changes (journal records, and the
// snapshots they lead to) through an endpoint that fails a quarter of the
// requests, some after the server handled them. Every change reported
// durable is in what a fresh store reads, replayed from slots and segments.
// (The records outweigh the 64 kB below which no snapshot is taken.)
func TestJournalRecordsThroughFlakyS3(t *testing.T) {
	direct, flaky, proxy := flakyStores(t, "s3://flakyrec/runs", 3)
	ctx := t.Context()

	const workers, each = 8, 20
	r := &state.Run{ID: "r", Status: state.RunRunning, Steps: map[string]*state.Step{}}
	for w := range workers {
		for i := range each {
			id := fmt.Sprintf("w%d-%02d", w, i)
			r.Steps[id] = &state.Step{ID: id, Type: "shell", Status: state.StepPending}
			r.Order = append(r.Order, id)
		}
	}
	j, err := state.Create(ctx, flaky, r, state.LeaseOptions{TTL: 20 * time.Second})
	if err != nil {
		t.Fatalf("Create through the flaky proxy: %v", err)
	}
	var mu sync.Mutex
	var durable []string
	var failed []error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%02d", w, i)
				err := j.UpdateStep(ctx, id, func(r *state.Run) {
					r.Steps[id].Status = state.StepSucceeded
					r.Steps[id].Outputs = map[string]string{"pad": strings.Repeat("x", 600)}
				})
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					durable = append(durable, id)
				}
				mu.Unlock()
			}
		})
	}
	testtool.Wait(t, &wg, "the step updates through the flaky endpoint")
	closeErr := j.Close(ctx)
	proxy.SetEnabled(false)
	t.Logf("faults injected: %v; %d updates durable, %d failed; %d PUTs reached the server",
		proxy.Faults(), len(durable), len(failed), proxy.Puts())
	for _, err := range append(failed, closeErr) {
		switch {
		case errors.Is(err, state.ErrConflict):
			// Only this runner writes: a retried request met its own slot.
			t.Errorf("false conflict: %v", err)
		case err != nil && !strings.Contains(err.Error(), "run r"):
			t.Errorf("unclear error: %v", err)
		}
	}
	got, err := state.Read(ctx, New(direct.api, direct.bucket, direct.prefix), "r")
	if err != nil {
		t.Fatalf("stored state does not load after the faults: %v", err)
	}
	for _, id := range durable {
		if got.Steps[id].Status != state.StepSucceeded {
			t.Errorf("update of %s was reported durable but reads as %s", id, got.Steps[id].Status)
		}
	}
	if closeErr == nil && len(failed) == 0 && got.Lease != nil {
		t.Errorf("clean finish but the stored run holds a lease: %+v", got.Lease)
	}
}
