package host

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
)

// pick serves local hosts with a Local and refuses every other address, as
// steps.Executors does for an address it does not know.
type pick struct{ local *Local }

func (p pick) For(h pipeline.Host) (Executor, error) {
	if IsLocal(h.Address) {
		return p.local, nil
	}
	return nil, errors.New("host " + h.Name + ": unknown address")
}

// TestRunPicksAndNames runs scripts through Run and RunNamed: outputs come
// back (an empty map for none), and the errors are bare or name the step and,
// for a host nothing serves, its address.
func TestRunPicksAndNames(t *testing.T) {
	ctx := context.Background()
	p := pick{local: &Local{BaseEnv: []string{"PATH=" + os.Getenv("PATH")}}}
	t.Cleanup(func() { _ = p.local.Close() })
	sr := &pipeline.StepRun{StepID: "train", Host: pipeline.Host{Name: "local", Address: "local"}, Log: &syncBuffer{}}

	out, err := Run(ctx, p, sr, `echo "n=3" >> "$GPIPE_OUTPUT"`)
	if err != nil || out["n"] != "3" {
		t.Fatalf("Run = %v, %v; want n=3", out, err)
	}
	if out, err := Run(ctx, p, sr, "true"); err != nil || out == nil || len(out) != 0 {
		t.Fatalf("Run without outputs = %#v, %v; want an empty map", out, err)
	}

	_, err = Run(ctx, p, sr, "exit 3")
	var exit *pipeline.ExitError
	if !errors.As(err, &exit) || err.Error() != "exit status 3" {
		t.Errorf("Run exit 3: %v, want the bare exit error", err)
	}
	_, err = RunNamed(ctx, p, sr, "exit 3")
	if !errors.As(err, &exit) || err.Error() != "train: exit status 3" {
		t.Errorf("RunNamed exit 3: %v, want it named", err)
	}

	far := *sr
	far.Host = pipeline.Host{Name: "gaudi", Address: "ssm:i-0abc"}
	if _, err := Run(ctx, p, &far, "true"); err == nil || err.Error() != "host gaudi: unknown address" {
		t.Errorf("Run on an unknown host: %v", err)
	}
	if _, err := RunNamed(ctx, p, &far, "true"); err == nil || err.Error() != "train: host ssm:i-0abc: host gaudi: unknown address" {
		t.Errorf("RunNamed on an unknown host: %v", err)
	}
	if _, err := Run(ctx, nil, &far, "true"); err == nil || err.Error() != "train: no executor for host ssm:i-0abc" {
		t.Errorf("Run without a picker: %v", err)
	}
}

func TestIsLocal(t *testing.T) {
	for addr, want := range map[string]bool{"": true, "local": true, "ssm:i-0abc": false, "localhost": false} {
		if IsLocal(addr) != want {
			t.Errorf("IsLocal(%q) = %v, want %v", addr, !want, want)
		}
	}
}
