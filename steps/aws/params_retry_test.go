package aws

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/memory"
)

// countingRunner counts the attempts the engine makes and keeps their errors.
type countingRunner struct {
	pipeline.Runner
	calls atomic.Int32
	errs  chan error
}

func (c *countingRunner) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	c.calls.Add(1)
	res, err := c.Runner.Run(ctx, sr)
	c.errs <- err
	return res, err
}

// TestProvisionBadParameterNotRetried: a provision-stack value that only
// turns out bad at run time (through an expression the schema cannot check)
// fails the step once, permanently, whatever its retry policy, and before
// any AWS call: no configuration is loaded and no stack is created.
func TestProvisionBadParameterNotRetried(t *testing.T) {
	for _, c := range []struct{ name, with, want string }{
		{"root volume below the schema's minimum", "root_volume_gib: ${{ params.v }}", "provision-stack: with.root_volume_gib: 4 is outside 8..16384"},
		{"max_lifetime no duration", "max_lifetime: ${{ params.v }}", `provision-stack: with.max_lifetime: "4": want a duration`},
		{"market unknown", "market: ${{ params.v }}", `provision-stack: with.market: "4" is not one of on-demand, spot`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := `version: 1
name: bad-param
params:
  v: {default: "4"}
steps:
  - id: provision
    type: provision-stack
    retry: {attempts: 3, backoff: 1s}
    with:
      ` + c.with + "\n"
			sp, err := specLoader().Parse("bad-param.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			p, err := plan.New(sp, nil)
			if err != nil {
				t.Fatal(err)
			}
			e := newWire(t, 0)
			prov := &countingRunner{Runner: e.runner().ProvisionStack(), errs: make(chan error, 3)}
			j, err := state.Create(t.Context(), memory.New(t.Name()), &state.Run{ID: "bad-param-1", Pipeline: "bad-param"}, state.LeaseOptions{Owner: "r"})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close(context.WithoutCancel(t.Context()))
			err = engine.Run(t.Context(), p, j, engine.Options{Registry: registry{"provision-stack": prov}, Concurrency: 1})
			var fe *engine.FailedError
			if !errors.As(err, &fe) {
				t.Fatalf("run: %v, want the step failed", err)
			}
			if n := prov.calls.Load(); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
			if n := len(j.Snapshot().Steps["provision"].Attempts); n != 1 {
				t.Errorf("state records %d attempts, want 1", n)
			}
			stepErr := <-prov.errs
			if !pipeline.IsPermanent(stepErr) || !strings.Contains(stepErr.Error(), c.want) {
				t.Errorf("step error %v (permanent %t), want a permanent %q", stepErr, pipeline.IsPermanent(stepErr), c.want)
			}
			if n := e.loads.Load(); n != 0 {
				t.Errorf("AWS configuration loaded %d times for a step with a bad parameter", n)
			}
			if n := len(e.srv.CFN.Creates()); n != 0 {
				t.Errorf("%d stacks created", n)
			}
		})
	}
}
