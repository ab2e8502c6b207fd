// Package train implements the host step types that turn a fetched MSD task
// into a trained and evaluated Habana UNet: prepare-host (driver and container
// runtime of the container's release), prepare-disk, preprocess, train-unet
// and evaluate.
//
// Each step decodes its `with` into a typed struct with defaults, renders a
// bash script in which every value is a quoted literal (host.Quote), and runs
// it on the step's host through a host.Executor. The scripts are idempotent, so
// a retry or a `gpipe resume` after a crash simply runs them again: finished
// work is detected (mounted disk, preprocessing marker, last checkpoint) and
// skipped or continued.
//
// The UNet steps run HabanaAI/Model-References at a pinned tag inside the
// Gaudi PyTorch container. The first step on a host builds a small derived
// image (base image + that tag's checkout + its requirements) so that
// preprocess, the training folds and evaluate don't each clone and pip-install
// at run time. The container runtime command comes from
// $GPIPE_CONTAINER_RUNTIME (default docker) and the AWS CLI from $GPIPE_AWS_CLI
// (default aws), so tests put fakes on PATH.
//
// Results reach the runner through $GPIPE_OUTPUT, not stdout: evaluate writes
// the dllogger file there verbatim and the Go side parses it, which works the
// same for a local host and for SSM (whose stdout is truncated).
package train

import (
	"context"
	"fmt"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
	"github.com/gpipe/gpipe/steps/internal/param"
	"github.com/gpipe/gpipe/steps/msd"
)

// Executors picks the executor for a step's host.
type Executors = host.Picker

// Step type names.
const (
	TypePrepareDisk = "prepare-disk"
	TypePrepareHost = "prepare-host"
	TypePreprocess  = "preprocess"
	TypeTrainUNet   = "train-unet"
	TypeEvaluate    = "evaluate"
)

// New returns the step types of this package keyed by type name, for the
// registry.
func New(ex Executors) map[string]pipeline.Runner {
	return map[string]pipeline.Runner{
		TypePrepareDisk: &PrepareDisk{Exec: ex},
		TypePrepareHost: &PrepareHost{Exec: ex},
		TypePreprocess:  &Preprocess{Exec: ex},
		TypeTrainUNet:   &TrainUNet{Exec: ex},
		TypeEvaluate:    &Evaluate{Exec: ex},
	}
}

// unetTask decodes the task/dim pair every UNet step has.
type unetTask struct {
	Task msd.Task
	Dim  int
}

func decodeTask(p *param.Reader) unetTask {
	var t unetTask
	if s := p.Required("task"); s != "" {
		task, err := msd.LookupTask(s)
		if err != nil {
			p.Fail("task", "%v", err)
		}
		t.Task = task
	}
	t.Dim = p.Int("dim", 2, 2, 3)
	return t
}

// code is Model-References' name for the preprocessed data: "01_2d".
func (t unetTask) code() string { return fmt.Sprintf("%s_%dd", t.Task.Num, t.Dim) }

// renderAndRun renders r's script for sr and runs it on sr's host.
func renderAndRun(ctx context.Context, ex Executors, sr *pipeline.StepRun, r pipeline.ScriptRenderer) (map[string]string, error) {
	body, err := r.Script(sr)
	if err != nil {
		return nil, err
	}
	return host.RunNamed(ctx, ex, sr, body)
}

// DescribeWith implements the steps' parameter description (see
// steps/internal/param): what the step type's decoder declares about each
// key of with, and the error it returns for with.
func (s *PrepareDisk) DescribeWith(with map[string]any) ([]param.Decl, error) {
	return param.Describe(TypePrepareDisk, with, decodeDisk)
}

// DescribeWith: as PrepareDisk's.
func (s *PrepareHost) DescribeWith(with map[string]any) ([]param.Decl, error) {
	return param.Describe(TypePrepareHost, with, decodeHost)
}

// DescribeWith: as PrepareDisk's.
func (s *Preprocess) DescribeWith(with map[string]any) ([]param.Decl, error) {
	return param.Describe(TypePreprocess, with, decodePreprocess)
}

// DescribeWith: as PrepareDisk's.
func (s *TrainUNet) DescribeWith(with map[string]any) ([]param.Decl, error) {
	return param.Describe(TypeTrainUNet, with, decodeTrain)
}

// DescribeWith: as PrepareDisk's.
func (s *Evaluate) DescribeWith(with map[string]any) ([]param.Decl, error) {
	return param.Describe(TypeEvaluate, with, decodeEvaluate)
}
