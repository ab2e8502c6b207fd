package host

import (
	"context"
	"fmt"

	"github.com/gpipe/gpipe/pipeline"
)

// LocalAddress is the address of this machine; a host with no address is
// this machine too.
const LocalAddress = "local"

// IsLocal reports whether address names this machine.
func IsLocal(address string) bool { return address == "" || address == LocalAddress }

// Picker picks the executor for a host by its address (steps.Executors).
type Picker interface {
	For(h pipeline.Host) (Executor, error)
}

// Run picks the executor of sr's host through p and runs body there for
// this attempt of the step (ScriptFor), returning the outputs the script
// wrote (an empty map for none). Errors come as the picker and the executor
// give them: the shell step's failure reads "exit status 3", and the engine
// names the step.
func Run(ctx context.Context, p Picker, sr *pipeline.StepRun, body string) (map[string]string, error) {
	return run(ctx, p, sr, body, false)
}

// RunNamed is Run whose errors start with the step's id, and for a host no
// executor can serve, with its address too ("train: host ssm:i-0abc: …"):
// the messages of the step types that render their own scripts.
func RunNamed(ctx context.Context, p Picker, sr *pipeline.StepRun, body string) (map[string]string, error) {
	return run(ctx, p, sr, body, true)
}

func run(ctx context.Context, p Picker, sr *pipeline.StepRun, body string, named bool) (map[string]string, error) {
	if p == nil {
		return nil, fmt.Errorf("%s: no executor for host %s", sr.StepID, sr.Host.Address)
	}
	ex, err := p.For(sr.Host)
	if err != nil {
		if named {
			return nil, fmt.Errorf("%s: host %s: %w", sr.StepID, sr.Host.Address, err)
		}
		return nil, err
	}
	out, err := ex.Exec(ctx, ScriptFor(sr, body))
	if err != nil {
		if named {
			return nil, fmt.Errorf("%s: %w", sr.StepID, err)
		}
		return nil, err
	}
	if out == nil {
		out = map[string]string{}
	}
	return out, nil
}
