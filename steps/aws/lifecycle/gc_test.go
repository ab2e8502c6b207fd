package lifecycle

import (
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/memory"
)

// TestGCKeepsDetachedRuns: gc must not delete the stack of a run whose
// runner detached: its training still runs there, waiting for a resume.
func TestGCKeepsDetachedRuns(t *testing.T) {
	st := memory.New(t.Name())
	for id, status := range map[string]state.RunStatus{"detached": state.RunDetached, "interrupted": state.RunInterrupted} {
		j, err := state.Create(t.Context(), st, &state.Run{ID: id, Status: state.RunRunning}, state.LeaseOptions{Owner: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Update(t.Context(), func(r *state.Run) { r.Status = status }); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(t.Context()); err != nil { // releases the lease, as gpipe does on exit
			t.Fatal(err)
		}
	}
	if why, err := StrayReason(t.Context(), st, "detached", time.Now()); err != nil || why != "" {
		t.Errorf("detached run: stray %q (%v), want kept", why, err)
	}
	if why, _ := StrayReason(t.Context(), st, "interrupted", time.Now()); why == "" {
		t.Error("interrupted run kept: the check proves nothing")
	}
}
