package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
)

// TestSecretsMasked: a secret param's value, written by a step in pieces,
// returned as an output or inside an error (of a retried attempt and of the
// last one), is *** in the stored log, the state, the events and what
// dependents see; the step itself gets the real value.
func TestSecretsMasked(t *testing.T) {
	const pin = "TopSecretPin"
	var gotWith, downstream string
	h := newHarness(t, behaviours{
		"leak": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			gotWith = fmt.Sprint(sr.With["pin"])
			fmt.Fprint(sr.Log, "the pin is Top")
			fmt.Fprint(sr.Log, "Secret")
			fmt.Fprint(sr.Log, "Pin, twice: "+pin+"\n")
			return pipeline.Result{Outputs: map[string]string{"echo": "pin=" + pin, "plain": "ok"}}, nil
		},
		"use": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			downstream = fmt.Sprint(sr.With["got"])
			return pipeline.Result{}, nil
		},
		"fail": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			return pipeline.Result{}, fmt.Errorf("login with %s refused (attempt %d)", pin, sr.Attempt)
		},
	})
	leak := step("leak")
	leak.With = map[string]any{"pin": "${{ params.pin }}"}
	use := step("use", "leak")
	use.With = map[string]any{"got": "${{ steps.leak.outputs.echo }}"}
	fail := step("fail", "use")
	fail.Retry = spec.Retry{Attempts: 2, Backoff: time.Millisecond}
	sp := newSpec(leak, use, fail)
	sp.Params = []spec.Param{{Name: "pin", Type: "string", Secret: true}}
	p, err := plan.New(sp, map[string]string{"pin": pin})
	if err != nil {
		t.Fatal(err)
	}
	runErr := h.run(t.Context(), p, Options{Sleep: func(context.Context, time.Duration) error { return nil }})
	if runErr == nil {
		t.Fatal("the failing step did not fail the run")
	}
	if gotWith != pin {
		t.Errorf("the step got %q, want the secret itself", gotWith)
	}
	if downstream != "pin=***" {
		t.Errorf("a dependent saw %q, want the masked output", downstream)
	}
	log, err := h.store.ReadLog(t.Context(), "run-1", "leak.1", 0)
	if err != nil || string(log) != "the pin is ***, twice: ***\n" {
		t.Errorf("stored log %q, %v", log, err)
	}
	doc, err := json.Marshal(h.j.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"state": string(doc), "run error": runErr.Error()} {
		if strings.Contains(text, pin) {
			t.Errorf("%s holds the secret: %s", where, text)
		}
	}
	if !strings.Contains(string(doc), `login with *** refused (attempt 1)`) || !strings.Contains(string(doc), `login with *** refused (attempt 2)`) {
		t.Errorf("attempt errors not masked in state: %s", doc)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.events {
		text := ev.Line + ev.Reason
		if ev.Err != nil {
			text += ev.Err.Error()
		}
		if strings.Contains(text, pin) {
			t.Errorf("event %+v holds the secret", ev)
		}
	}
}

// TestSecretEnvMasked: a GPIPE_SECRET_ variable of the runner is a secret
// even when no param took its value (a -p overrode it); steps inherit it.
func TestSecretEnvMasked(t *testing.T) {
	h := newHarness(t, behaviours{
		"leak": func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
			fmt.Fprintln(sr.Log, "env has EnvOnlySecret")
			return pipeline.Result{}, nil
		},
	})
	env := map[string]string{"GPIPE_SECRET_TOKEN": "EnvOnlySecret", "HOME": "/home/x"}
	if err := h.run(t.Context(), h.plan(newSpec(step("leak"))), Options{Env: env}); err != nil {
		t.Fatal(err)
	}
	log, err := h.store.ReadLog(t.Context(), "run-1", "leak.1", 0)
	if err != nil || string(log) != "env has ***\n" {
		t.Errorf("stored log %q, %v", log, err)
	}
}
