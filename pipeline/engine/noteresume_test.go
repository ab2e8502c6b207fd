package engine

import (
	"context"
	"maps"
	"sync"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/memory"
)

// A note is saved with a later commit, without the step waiting for it, and
// a resume of the step left running gets it back; the attempt after that does
// not.
func TestNoteResumeReachesResumeOfStepLeftRunning(t *testing.T) {
	noted := make(chan struct{})
	h := newHarness(t, behaviours{"local": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		sr.NoteResume("pgroup", "host:4242")
		close(noted)
		<-ctx.Done()
		return pipeline.Result{}, context.Cause(ctx)
	}})
	s := step("local")
	s.Retry.Attempts = 2
	sp := newSpec(s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- h.run(ctx, h.plan(sp), Options{}) }()
	await(t, noted, "the step to note its resume data")
	// What a runner killed now leaves behind: the state as last saved.
	var saved *state.Run
	if !waitFor(t.Context(), func() bool {
		r, err := state.Read(t.Context(), h.store, "run-1")
		if err == nil && r.Steps["local"] != nil && r.Steps["local"].Resume["pgroup"] != "" {
			saved = r
		}
		return saved != nil
	}) {
		t.Fatal("the note was never saved")
	}
	cancel()
	await(t, first, "the first run to end after its cancel")
	if st := saved.Steps["local"]; st.Status != state.StepRunning || st.Resume["pgroup"] != "host:4242" {
		t.Fatalf("saved step %+v", st)
	}

	// The next runner resumes from that state.
	store := memory.New(t.Name() + "-resume")
	j, err := state.Create(t.Context(), store, saved, state.LeaseOptions{Owner: "next"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close(context.WithoutCancel(t.Context())) })
	var mu sync.Mutex
	var got []map[string]string
	reg := registry{"fake": fn(func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, maps.Clone(sr.Resume))
		if len(got) == 1 {
			return pipeline.Result{}, &pipeline.ExitError{Code: 1}
		}
		return pipeline.Result{}, nil
	})}
	p := h.plan(sp)
	if err := p.ForResume(saved, ""); err != nil {
		t.Fatal(err)
	}
	if ps := p.Step("local"); !ps.Reattach || ps.Reason != "running when the previous runner stopped; resuming with its saved data" {
		t.Fatalf("resume plan %+v", ps)
	}
	if err := Run(t.Context(), p, j, h.options(Options{Registry: reg})); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["pgroup"] != "host:4242" || len(got[1]) != 0 {
		t.Errorf("resume data per attempt %v: want the note, then nothing", got)
	}
}
