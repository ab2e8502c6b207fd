package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

func TestOutputsFlowDownstream(t *testing.T) {
	var got sync.Map
	capture := func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		got.Store(sr.StepID, sr)
		return pipeline.Result{}, nil
	}
	h := newHarness(t, behaviours{
		"make": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			return pipeline.Result{Outputs: map[string]string{"path": "/data/x", "n": "3"}}, nil
		},
		"use-fold-0": capture, "use-fold-1": capture,
	})
	use := step("use", "make")
	use.Matrix = []spec.MatrixAxis{{Name: "fold", Values: []any{0, 1}}}
	use.With = map[string]any{
		"file":  "${{ steps.make.outputs.path }}/fold${{ matrix.fold }}",
		"list":  []any{"${{ params.size }}", 7},
		"run":   "${{ run.id }}",
		"token": "${{ env.TOKEN }}",
	}
	use.Env = []spec.KV{{Key: "N", Value: "${{ steps.make.outputs.n }}"}, {Key: "WHERE", Value: "${{ env.REGION }}-${{ env.N }}"}}
	use.Host = "gaudi"
	sp := newSpec(step("make"), use)
	sp.Params = []spec.Param{{Name: "size", Type: "string", Default: "big"}}
	sp.Env = []spec.KV{{Key: "REGION", Value: "eu-${{ params.size }}"}}
	sp.Hosts = []spec.HostDecl{{Name: "gaudi", Address: "ssm:${{ steps.make.outputs.n }}", Cards: 8}}
	if err := h.run(t.Context(), h.plan(sp), Options{Env: map[string]string{"TOKEN": "t0k"}}); err != nil {
		t.Fatal(err)
	}
	v, ok := got.Load("use-fold-1")
	if !ok {
		t.Fatal("use-fold-1 did not run")
	}
	sr := v.(*pipeline.StepRun)
	want := map[string]any{"file": "/data/x/fold1", "list": []any{"big", 7}, "run": "run-1", "token": "t0k"}
	if fmt.Sprint(sr.With) != fmt.Sprint(want) {
		t.Errorf("With = %v, want %v", sr.With, want)
	}
	if wantEnv := map[string]string{"REGION": "eu-big", "N": "3", "WHERE": "eu-big-3"}; !maps.Equal(sr.Env, wantEnv) {
		t.Errorf("Env = %v, want %v", sr.Env, wantEnv)
	}
	if sr.Host != (pipeline.Host{Name: "gaudi", Address: "ssm:3", Cards: 8}) {
		t.Errorf("Host = %+v", sr.Host)
	}
	if _, ok := got.Load("use-fold-0"); !ok {
		t.Error("use-fold-0 did not run")
	}
}

func TestMissingOutputFailsStep(t *testing.T) {
	h := newHarness(t, nil)
	use := step("use", "make")
	use.With = map[string]any{"x": "${{ steps.make.outputs.nope }}"}
	err := h.run(t.Context(), h.plan(newSpec(step("make"), use)), Options{})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want a missing output error", err)
	}
	h.wantStatus(map[string]state.StepStatus{"use": state.StepFailed})
}

func TestResumeReusesOutputs(t *testing.T) {
	var firstRuns, useRuns atomic.Int32
	fail := atomic.Bool{}
	fail.Store(true)
	var seen atomic.Value
	h := newHarness(t, behaviours{
		"first": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			firstRuns.Add(1)
			return pipeline.Result{Outputs: map[string]string{"v": "42"}}, nil
		},
		"use": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			useRuns.Add(1)
			seen.Store(sr.With["v"])
			if fail.Load() {
				return pipeline.Result{}, errors.New("boom")
			}
			return pipeline.Result{}, nil
		},
	})
	use := step("use", "first")
	use.With = map[string]any{"v": "${{ steps.first.outputs.v }}"}
	sp := newSpec(step("first"), use)
	if err := h.run(t.Context(), h.plan(sp), Options{}); err == nil {
		t.Fatal("first run should fail")
	}

	// Resume: a new plan from the same spec, decided against the saved state.
	fail.Store(false)
	p := h.plan(sp)
	if err := p.ForResume(h.j.Snapshot(), ""); err != nil {
		t.Fatal(err)
	}
	if p.Step("first").Action != plan.Reuse || p.Step("use").Action != plan.Run {
		t.Fatalf("resume plan: first %s, use %s", p.Step("first").Action, p.Step("use").Action)
	}
	if err := h.run(t.Context(), p, Options{}); err != nil {
		t.Fatal(err)
	}
	if firstRuns.Load() != 1 || useRuns.Load() != 2 {
		t.Errorf("first ran %d times, use %d; want 1 and 2", firstRuns.Load(), useRuns.Load())
	}
	if seen.Load() != "42" {
		t.Errorf("use saw v=%v after resume", seen.Load())
	}
	st := h.stepState("use")
	if len(st.Attempts) != 2 || st.Attempts[1].N != 2 || st.Attempts[1].Log != "use.2" {
		t.Errorf("use attempts %+v: numbering must continue across runs", st.Attempts)
	}
	if got := h.eventsOf(StepReused, "first"); len(got) != 1 {
		t.Errorf("reused events %+v", got)
	}
}

func TestReattachGetsResumeDataOnlyOnFirstAttempt(t *testing.T) {
	var resumes []map[string]string
	var mu sync.Mutex
	h := newHarness(t, behaviours{"remote": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		mu.Lock()
		resumes = append(resumes, maps.Clone(sr.Resume))
		n := len(resumes)
		mu.Unlock()
		if err := sr.SaveResume(ctx, "command_id", fmt.Sprint("cmd-", n+1)); err != nil {
			return pipeline.Result{}, err
		}
		if n == 1 {
			return pipeline.Result{}, errors.New("remote failed")
		}
		return pipeline.Result{}, nil
	}})
	// The previous runner died while remote ran, after saving a command id.
	if err := h.j.Update(t.Context(), func(r *state.Run) {
		r.Steps["remote"] = &state.Step{ID: "remote", Status: state.StepRunning, Resume: map[string]string{"command_id": "cmd-1"},
			Attempts: []state.Attempt{{N: 1, Log: "remote.1"}}}
	}); err != nil {
		t.Fatal(err)
	}
	s := step("remote")
	s.Retry.Attempts = 2
	sp := newSpec(s)
	p := h.plan(sp)
	h.j.Update(t.Context(), func(r *state.Run) { r.Steps["remote"].DefDigest = p.Step("remote").DefDigest })
	if err := p.ForResume(h.j.Snapshot(), ""); err != nil {
		t.Fatal(err)
	}
	if !p.Step("remote").Reattach {
		t.Fatalf("plan does not reattach: %+v", p.Step("remote"))
	}
	if err := h.run(t.Context(), p, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(resumes) != 2 || resumes[0]["command_id"] != "cmd-1" || len(resumes[1]) != 0 {
		t.Errorf("resume data per attempt %v: want the saved id, then nothing", resumes)
	}
	st := h.stepState("remote")
	if st.Resume["command_id"] != "cmd-3" || st.Attempts[len(st.Attempts)-1].N != 3 {
		t.Errorf("state %+v", st)
	}
}

func TestCardsNeverOversubscribed(t *testing.T) {
	const hostCards, cardsPerStep = 4, 2
	var mu sync.Mutex
	holder := map[int]string{}
	peak, inUse, started := 0, 0, 0
	var problems []string
	work := fn(func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		mu.Lock()
		// Never oversubscribed must not mean "given none": each step gets
		// exactly the cards it asked for.
		if len(sr.Cards) != cardsPerStep {
			problems = append(problems, fmt.Sprintf("%s got cards %v, asked for %d", sr.StepID, sr.Cards, cardsPerStep))
		}
		for _, c := range sr.Cards {
			if c < 0 || c >= hostCards {
				problems = append(problems, fmt.Sprintf("%s got card %d", sr.StepID, c))
			}
			if h, busy := holder[c]; busy {
				problems = append(problems, fmt.Sprintf("card %d given to %s while %s holds it", c, sr.StepID, h))
			}
			holder[c] = sr.StepID
		}
		inUse += len(sr.Cards)
		peak = max(peak, inUse)
		started++
		mu.Unlock()
		// Hold the cards until the host is full (or nothing else can start),
		// so that steps really compete for cards. Every step takes 2 of 4
		// cards, so a waiting step always leaves room for the next one.
		waitFor(ctx, func() bool { mu.Lock(); defer mu.Unlock(); return inUse == hostCards || started == 6 })
		mu.Lock()
		for _, c := range sr.Cards {
			delete(holder, c)
		}
		inUse -= len(sr.Cards)
		mu.Unlock()
		return pipeline.Result{}, nil
	})
	h := newHarness(t, nil)
	h.reg["train"] = carded{work}
	var steps []spec.Step
	for i := range 6 {
		s := spec.Step{ID: fmt.Sprint("train", i), Type: "train", Host: "gaudi", With: map[string]any{"cards": cardsPerStep}}
		steps = append(steps, s)
	}
	sp := newSpec(steps...)
	sp.Hosts = []spec.HostDecl{{Name: "gaudi", Address: "local", Cards: hostCards}}
	if err := h.run(t.Context(), h.plan(sp), Options{Concurrency: 6}); err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Error(strings.Join(problems, "\n"))
	}
	if peak != hostCards {
		t.Errorf("peak cards in use %d (host has %d)", peak, hostCards)
	}
}

func TestCardDemandAboveHostFailsBeforeRunning(t *testing.T) {
	var ran atomic.Bool
	h := newHarness(t, behaviours{"a": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		ran.Store(true)
		return pipeline.Result{}, nil
	}})
	h.reg["train"] = carded{func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		return pipeline.Result{}, nil
	}}
	sp := newSpec(step("a"), spec.Step{ID: "big", Type: "train", Host: "gaudi", With: map[string]any{"cards": 9}})
	sp.Hosts = []spec.HostDecl{{Name: "gaudi", Address: "local", Cards: 8}}
	err := h.run(t.Context(), h.plan(sp), Options{})
	if err == nil || !strings.Contains(err.Error(), "needs 9 accelerator cards but host gaudi declares 8") {
		t.Fatalf("err = %v", err)
	}
	if ran.Load() {
		t.Error("a step ran although the plan could not be satisfied")
	}
}

func TestUnknownTypeFailsBeforeRunning(t *testing.T) {
	h := newHarness(t, nil)
	err := h.run(t.Context(), h.plan(newSpec(step("a"), spec.Step{ID: "b", Type: "nope"})), Options{})
	if err == nil || !strings.Contains(err.Error(), `step b: unknown step type "nope"`) {
		t.Fatalf("err = %v", err)
	}
	if st := h.j.Snapshot().Steps["a"]; st != nil && st.Status != "" && st.Status != state.StepPending {
		t.Errorf("a has status %s", st.Status)
	}
}

func TestJournalLostStopsRun(t *testing.T) {
	h := newHarness(t, nil)
	var longCancelled atomic.Bool
	longStarted := make(chan struct{})
	h.reg["fake"] = behaviours{
		"long": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			close(longStarted)
			<-ctx.Done()
			longCancelled.Store(true)
			return pipeline.Result{}, ctx.Err()
		},
		"thief": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			if !recv(ctx, longStarted) {
				return pipeline.Result{}, errors.New("long never started")
			}
			// Another runner writes the run behind our back.
			doc, v, err := h.store.Load(ctx, "run-1")
			if err != nil {
				return pipeline.Result{}, err
			}
			if _, err := h.store.Save(ctx, "run-1", doc, v); err != nil {
				return pipeline.Result{}, err
			}
			return pipeline.Result{}, nil
		},
	}.runner()
	sp := newSpec(step("long"), step("thief"), withIf(step("cleanup", "long"), "always()"))
	err := h.run(t.Context(), h.plan(sp), Options{})
	if !errors.Is(err, state.ErrConflict) {
		t.Fatalf("err = %v, want state.ErrConflict", err)
	}
	if !longCancelled.Load() {
		t.Error("running step not cancelled")
	}
}

func TestLogsAndOutputEvents(t *testing.T) {
	h := newHarness(t, behaviours{"talk": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		fmt.Fprint(sr.Log, "one\ntw")
		fmt.Fprint(sr.Log, "o\r\nthree")
		return pipeline.Result{}, nil
	}})
	if err := h.run(t.Context(), h.plan(newSpec(step("talk"))), Options{}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range h.eventsOf(StepOutput, "talk") {
		lines = append(lines, e.Line)
	}
	if strings.Join(lines, "|") != "one|two|three" {
		t.Errorf("output lines %q", lines)
	}
	log, err := h.store.ReadLog(t.Context(), "run-1", "talk.1", 0)
	if err != nil || string(log) != "one\ntwo\r\nthree" {
		t.Errorf("stored log %q, %v", log, err)
	}
	// Event order for one step: started, output..., finished.
	var kinds []string
	for _, e := range h.events {
		if e.Step == "talk" {
			kinds = append(kinds, e.Kind.String())
		}
	}
	if strings.Join(kinds, ",") != "started,output,output,output,finished" {
		t.Errorf("events %v", kinds)
	}
}

func TestManySteps(t *testing.T) {
	// A wide and deep plan: 20 layers of 30 steps, each needing two steps of
	// the layer before. Checks bookkeeping, not speed.
	const layers, width = 20, 30
	var steps []spec.Step
	for l := range layers {
		for w := range width {
			s := step(fmt.Sprintf("s%d-%d", l, w))
			if l > 0 {
				s.Needs = []string{fmt.Sprintf("s%d-%d", l-1, w), fmt.Sprintf("s%d-%d", l-1, (w+1)%width)}
			}
			steps = append(steps, s)
		}
	}
	var ran atomic.Int32
	h := newHarness(t, nil)
	h.reg["fake"] = fn(func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		ran.Add(1)
		return pipeline.Result{}, nil
	})
	if err := h.run(t.Context(), h.plan(newSpec(steps...)), Options{Concurrency: 16}); err != nil {
		t.Fatal(err)
	}
	if ran.Load() != layers*width {
		t.Errorf("%d steps ran, want %d", ran.Load(), layers*width)
	}
	for id, st := range h.j.Snapshot().Steps {
		if st.Status != state.StepSucceeded {
			t.Fatalf("step %s: %s", id, st.Status)
		}
	}
}

// A step on a declared host whose address names an output that nothing else
// in the step refers to still gets that output resolved.
func TestDeclaredHostAddressSeesUpstreamOutputs(t *testing.T) {
	var host pipeline.Host
	h := newHarness(t, behaviours{
		"provision": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			return pipeline.Result{Outputs: map[string]string{"instance_id": "i-0abc"}}, nil
		},
		"train": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			host = sr.Host
			return pipeline.Result{}, nil
		},
	})
	train := step("train", "provision")
	train.Host = "gaudi"
	sp := newSpec(step("provision"), train)
	sp.Hosts = []spec.HostDecl{{Name: "gaudi", Address: "ssm:${{ steps.provision.outputs.instance_id }}", Cards: 8}}
	if err := h.run(t.Context(), h.plan(sp), Options{}); err != nil {
		t.Fatal(err)
	}
	if host.Address != "ssm:i-0abc" {
		t.Errorf("host = %+v, want address ssm:i-0abc", host)
	}
}

// An attempt a dead runner left open is closed when the run resumes, so the
// record shows it ended without an outcome instead of running forever.
func TestResumeClosesAbandonedAttempt(t *testing.T) {
	h := newHarness(t, nil)
	sp := newSpec(step("train"))
	p := h.plan(sp)
	start := time.Unix(100, 0).UTC()
	if err := h.j.Update(t.Context(), func(r *state.Run) {
		r.Steps = map[string]*state.Step{"train": {ID: "train", Type: "fake", Status: state.StepRunning, DefDigest: p.Step("train").DefDigest,
			Attempts: []state.Attempt{{N: 1, Start: start, Log: "train.1"}}}}
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.ForResume(h.j.Snapshot(), ""); err != nil {
		t.Fatal(err)
	}
	if err := h.run(t.Context(), p, Options{}); err != nil {
		t.Fatal(err)
	}
	st := h.stepState("train")
	if len(st.Attempts) != 2 {
		t.Fatalf("attempts %+v, want the abandoned one and a new one", st.Attempts)
	}
	if a := st.Attempts[0]; a.End == nil || !strings.Contains(a.Error, "runner stopped") {
		t.Errorf("abandoned attempt %+v: want it closed with a reason", a)
	}
	if a := st.Attempts[1]; a.N != 2 || a.End == nil || a.Error != "" {
		t.Errorf("new attempt %+v", a)
	}
}

// A step that reruns rather than reattaches (here: --from) still gets what
// the earlier runner saved, as Previous and on its first attempt only, so a
// local host can stop that runner's leftovers; Resume stays empty.
func TestRerunGetsPreviousNotResume(t *testing.T) {
	var mu sync.Mutex
	var got []*pipeline.StepRun
	h := newHarness(t, behaviours{"train": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		mu.Lock()
		got = append(got, sr)
		n := len(got)
		mu.Unlock()
		if n == 1 {
			return pipeline.Result{}, errors.New("first attempt fails")
		}
		return pipeline.Result{}, nil
	}})
	train := step("train")
	train.Retry = spec.Retry{Attempts: 2}
	sp := newSpec(train)
	p := h.plan(sp)
	if err := h.j.Update(t.Context(), func(r *state.Run) {
		r.Steps = map[string]*state.Step{"train": {ID: "train", Type: "fake", Status: state.StepRunning, DefDigest: p.Step("train").DefDigest,
			Resume: map[string]string{"local_pgroup": "host:boot:123:456:tok"}, Attempts: []state.Attempt{{N: 1, Log: "train.1"}}}}
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.ForResume(h.j.Snapshot(), "train"); err != nil {
		t.Fatal(err)
	}
	if err := h.run(t.Context(), p, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d attempts, want 2", len(got))
	}
	if got[0].Previous["local_pgroup"] == "" || len(got[0].Resume) != 0 {
		t.Errorf("first attempt: Previous %v, Resume %v; want the saved data as Previous only", got[0].Previous, got[0].Resume)
	}
	if got[1].Previous != nil {
		t.Errorf("retry got Previous %v", got[1].Previous)
	}
}
