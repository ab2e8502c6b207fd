package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store"
	"github.com/gpipe/gpipe/steps"
)

// TestReadmeFromTrainFiveFold: the README's `gpipe resume --from train RUN_ID`
// works on specs/unet-brain-5fold.yaml, whose train step is a matrix: every
// train-fold-* copy reruns with what follows, and what came before is reused.
func TestReadmeFromTrainFiveFold(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "gpipe resume --from train RUN_ID") {
		t.Fatal("README no longer shows gpipe resume --from train RUN_ID; update this test")
	}
	specPath := filepath.Join(repoRoot(t), "specs", "unet-brain-5fold.yaml")
	src, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	runID := "fivefold-1"
	// The runner was stopped before teardown, so the stack still stands and
	// what came before train is reused.
	run := writeSucceededRun(t, ctx, dir, runID, specPath, src, map[string]string{"results_bucket": "b"},
		map[string]state.StepStatus{"teardown": state.StepCancelled})
	if len(run.Steps) != 18 {
		t.Fatalf("the 5-fold run has %d steps, want 18 (five train and five evaluate copies)", len(run.Steps))
	}

	var out, errb bytes.Buffer
	code := runMain([]string{"resume", "--plan", "--state", dir, "--from", "train", runID}, nil, &out, &errb, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("resume --plan --from train: exit %d\n%s", code, errb.String())
	}
	actions := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 2 {
			actions[f[0]] = f[1]
		}
	}
	for f := range 5 {
		for _, id := range []string{"train-fold-", "evaluate-fold-"} {
			if got := actions[id+string(rune('0'+f))]; got != "rerun" {
				t.Errorf("%s%d: %q, want rerun\n%s", id, f, got, out.String())
			}
		}
	}
	for _, id := range []string{"preprocess", "fetch", "provision"} {
		if got := actions[id]; got != "reuse" {
			t.Errorf("%s: %q, want reuse\n%s", id, got, out.String())
		}
	}
	if ok, _ := regexp.MatchString(`(?m)^train `, out.String()); ok {
		t.Errorf("the plan lists the spec id train as a step of its own:\n%s", out.String())
	}
}

// writeSucceededRun stores a run of the spec at specPath in which every step
// succeeded but those given another status, with the spec snapshot a resume
// reads.
func writeSucceededRun(t *testing.T, ctx context.Context, dir, runID, specPath string, src []byte, params map[string]string,
	other map[string]state.StepStatus) *state.Run {
	t.Helper()
	sp, err := spec.NewLoader(steps.SpecOptions()).Parse(specPath, src)
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := spec.ResolveParams(sp, params)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.New(sp, resolved)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(-time.Hour)
	end := now.Add(time.Minute)
	run := &state.Run{SchemaVersion: state.SchemaVersion, ID: runID, Pipeline: sp.Name, SpecFile: specPath,
		SpecDigest: sp.Digest(), Params: params, Status: state.RunSucceeded, Created: now, Updated: end,
		Steps: map[string]*state.Step{}}
	for _, s := range p.Steps {
		run.Order = append(run.Order, s.ID)
		status := state.StepSucceeded
		if o, ok := other[s.ID]; ok {
			status = o
			run.Status = state.RunFailed
		}
		run.Steps[s.ID] = &state.Step{ID: s.ID, Type: s.Spec.Type, Status: status, DefDigest: s.DefDigest,
			Attempts: []state.Attempt{{N: 1, Start: now, End: &end}}}
	}
	st, err := store.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, runID, doc); err != nil {
		t.Fatal(err)
	}
	if err := st.PutBlob(ctx, runID, specBlobName(sp.Digest()), src); err != nil {
		t.Fatal(err)
	}
	return run
}
