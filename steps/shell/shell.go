// Package shell implements the generic `shell` step: a bash script from the
// spec, run on the step's host, writing outputs to $GPIPE_OUTPUT the way GitHub
// Actions steps write to $GITHUB_OUTPUT.
package shell

import (
	"context"
	"fmt"
	"strings"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// Step is the shell step type.
type Step struct {
	Executors host.Picker
}

// Type is the step type name.
const Type = "shell"

type config struct{ run, workdir string }

func decode(p *param.Reader) config {
	return config{run: p.Required("run"), workdir: p.String("working_directory", "")}
}

// DescribeWith implements the steps' parameter description (see
// steps/internal/param): what shell's decoder declares about each key of
// with, and the error it returns for with.
func (s *Step) DescribeWith(with map[string]any) ([]param.Decl, error) {
	return param.Describe(Type, with, decode)
}

// Strictness is the line every shell script starts with. Like GitHub
// Actions' `shell: bash` (bash -eo pipefail), errexit and pipefail are on, so
// a failing command fails the step; nounset is off, so scripts copied from a
// workflow that test optional variables ("$GITHUB_ACTIONS") run unchanged.
// The schema's description of with.run says the same (a test checks).
const Strictness = "set -eo pipefail"

// Script renders what runs: Strictness, then the step's script.
func (s *Step) Script(sr *pipeline.StepRun) (string, error) {
	c, err := param.Decode(Type, sr.With, decode)
	if err != nil {
		return "", err
	}
	run := c.run
	var b strings.Builder
	b.WriteString(Strictness + "\n")
	if c.workdir != "" {
		fmt.Fprintf(&b, "cd -- %s\n", host.Quote(c.workdir))
	}
	b.WriteString(run)
	if !strings.HasSuffix(run, "\n") {
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// Run runs the script on the step's host.
func (s *Step) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	body, err := s.Script(sr)
	if err != nil {
		return pipeline.Result{}, err
	}
	out, err := host.Run(ctx, s.Executors, sr, body)
	if err != nil {
		return pipeline.Result{}, err
	}
	return pipeline.Result{Outputs: out}, nil
}
