//go:build unix

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store"
)

// fleetSpec is specs/unet-brain-5fold-fleet.yaml's shape with a shell step
// for the fold's work: a stack per fold (spot, falling back to on demand),
// the fold's step on that fold's instance through SSM, its teardown as soon
// as it is done, at most three stacks at once, and a summary over the folds.
const fleetSpec = `version: 1
name: fleet
fail_fast: false
resources: {stacks: 3}
params:
  fixed: {type: string}
hosts:
  box: {address: "${{ steps.provision.outputs.host }}"}
steps:
  - id: provision
    type: provision-stack
    holds: stacks
    matrix: {fold: [0, 1, 2, 3, 4]}
    with: {market: spot, fallback: on-demand, tags: {fold: "${{ matrix.fold }}"}}
  - id: train
    type: shell
    needs: [provision]
    host: box
    matrix: {fold: [0, 1, 2, 3, 4]}
    env: {FOLD: "${{ matrix.fold }}", FIXED: "${{ params.fixed }}"}
    with:
      run: |
        if [ "$FOLD" = 2 ] && [ ! -e "$FIXED" ]; then echo "fold 2 diverged" >&2; exit 1; fi
        echo "dice=0.7$FOLD" >>"$GPIPE_OUTPUT"
  - id: teardown
    type: teardown
    needs: [train]
    if: always()
    cleans: [provision]
    matrix: {fold: [0, 1, 2, 3, 4]}
    with: {stack: "${{ steps.provision.outputs.stack_name }}"}
  - id: combine
    type: shell
    needs: [train]
    env:
      D0: ${{ steps.train-fold-0.outputs.dice }}
      D1: ${{ steps.train-fold-1.outputs.dice }}
      D2: ${{ steps.train-fold-2.outputs.dice }}
      D3: ${{ steps.train-fold-3.outputs.dice }}
      D4: ${{ steps.train-fold-4.outputs.dice }}
    with:
      run: |
        mean=$(printf '%s\n' "$D0" "$D1" "$D2" "$D3" "$D4" | awk '{ s += $1; n++ } END { printf "%.6g", s / n }')
        echo "mean=$mean" >>"$GPIPE_OUTPUT"
`

// TestFleetOneFoldFails: five stacks against the AWS fake, whose quota
// allows three spot dl1.24xlarge at once. Fold 2 fails: its teardown runs,
// the other four folds finish, the run fails naming train-fold-2, and never
// more than three stacks exist (the quota would have failed a fourth).
// `gpipe resume` then reruns fold 2 alone (a new stack, its work, its
// teardown) and the summary.
func TestFleetOneFoldFails(t *testing.T) {
	t.Parallel()
	c := newAWSCLI(t, false)
	addUbuntuImage(c.aws, "ami-0f1e000000000001")
	c.aws.EC2.Quota("spot", "dl1.24xlarge", 3)
	c.aws.SSM.BootPolls = 0 // instances answer SSM at once: the test waits less
	writeFile(t, filepath.Join(c.dir, "spec.yaml"), fleetSpec)
	fixed := filepath.Join(c.dir, "fold-2-fixed")

	res := runGpipe(t, c.gpipe, c.dir, c.env, 2*time.Minute, "run", "--yes", "--state", c.stateURL, "--run-id", "f1", "-p", "fixed="+fixed, "spec.yaml")
	if res.code != exitFailed || !strings.Contains(res.stdout+res.stderr, "train-fold-2") {
		t.Fatalf("want exit 1 naming train-fold-2\n%s", res)
	}
	run := readRun(t, c, "f1")
	for f := range 5 {
		want := state.StepSucceeded
		if f == 2 {
			want = state.StepFailed
		}
		for id, w := range map[string]state.StepStatus{fmt.Sprintf("train-fold-%d", f): want, fmt.Sprintf("teardown-fold-%d", f): state.StepSucceeded} {
			if got := run.Steps[id].Status; got != w {
				t.Errorf("%s: %s (%s), want %s", id, got, run.Steps[id].Reason, w)
			}
		}
		if m := run.Steps[fmt.Sprintf("provision-fold-%d", f)].Outputs["market_type"]; m != "spot" {
			t.Errorf("fold %d on %q, want spot", f, m)
		}
	}
	if st := run.Steps["combine"].Status; st != state.StepSkipped {
		t.Errorf("combine %s, want skipped", st)
	}
	wantAllDeleted(t, c)
	created := len(c.aws.CFN.Creates())

	writeFile(t, fixed, "")
	res = runGpipe(t, c.gpipe, c.dir, c.env, 2*time.Minute, "resume", "--state", c.stateURL, "f1")
	if res.code != 0 {
		t.Fatalf("resume: want exit 0\n%s", res)
	}
	again := readRun(t, c, "f1")
	for _, st := range again.Steps {
		reran := len(st.Attempts) > len(run.Steps[st.ID].Attempts)
		if want := strings.HasSuffix(st.ID, "-fold-2") || st.ID == "combine"; reran != want {
			t.Errorf("%s ran again: %v, want %v (%s)", st.ID, reran, want, st.Reason)
		}
	}
	if got := again.Steps["combine"].Outputs["mean"]; got != "0.72" {
		t.Errorf("combine mean %q, want 0.72", got)
	}
	if n := len(c.aws.CFN.Creates()) - created; n != 1 {
		t.Errorf("resume created %d stacks, want 1 (fold 2's)", n)
	}
	wantAllDeleted(t, c)
}

func readRun(t *testing.T, c *awsCLI, id string) *state.Run {
	t.Helper()
	st, err := store.Open(t.Context(), c.stateURL)
	if err != nil {
		t.Fatal(err)
	}
	run, err := state.Read(t.Context(), st, id)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func wantAllDeleted(t *testing.T, c *awsCLI) {
	t.Helper()
	for _, s := range c.aws.CFN.Stacks() {
		if s.Status != "DELETE_COMPLETE" {
			t.Errorf("stack %s is %s", s.Name, s.Status)
		}
	}
}
