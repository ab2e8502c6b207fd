package train

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// Preprocess runs Model-References' preprocess.py for one task and dimension:
// from <data>/<TaskNN_Name> (what fetch-msd produced) into
// <results>/<NN>_<dim>d. Outputs: data (the preprocessed directory that
// train-unet and evaluate read).
type Preprocess struct {
	Exec Executors
}

// PreprocessConfig is the decoded `with` of a preprocess step.
type PreprocessConfig struct {
	unetTask
	container
	Data    string   // parent of the extracted TaskNN_Name folder
	Results string   // where <NN>_<dim>d is written
	NJobs   int      // preprocess.py --n_jobs; -1: all cores
	Modes   []string // preprocess.py --exec_mode passes
}

// DecodePreprocess applies defaults and checks values.
func DecodePreprocess(with map[string]any) (*PreprocessConfig, error) {
	return param.Decode(TypePreprocess, with, decodePreprocess)
}

func decodePreprocess(p *param.Reader) *PreprocessConfig {
	c := &PreprocessConfig{
		unetTask:  decodeTask(p),
		container: decodeContainer(p),
		Data:      p.String("data", "/data"),
		Results:   p.String("results", "/data"),
		NJobs:     p.Int("n_jobs", -1, -1, 1024),
		// Training and evaluate read only the training pass (evaluate
		// scores a fold's validation split of it); val and test are for
		// predict on the test images.
		Modes: p.Strings("exec_modes", []string{"training"}, "training", "val", "test"),
	}
	checkPath(p, "data", c.Data)
	checkPath(p, "results", c.Results)
	if c.NJobs == 0 {
		p.Fail("n_jobs", "0 jobs: use -1 for all cores")
	}
	return c
}

// Output is where preprocess.py writes for this task and dimension.
func (c *PreprocessConfig) Output() string { return path.Join(c.Results, c.code()) }

// Script renders the preprocess script.
func (s *Preprocess) Script(sr *pipeline.StepRun) (string, error) {
	c, err := DecodePreprocess(sr.With)
	if err != nil {
		return "", err
	}
	return c.render(containerName(sr.RunID, sr.StepID)), nil
}

func (c *PreprocessConfig) render(name string) string {
	var b strings.Builder
	header(&b, "preprocess: Model-References preprocess.py for task "+c.Task.Num)
	assign(&b, "task_dir", path.Join(c.Data, c.Task.Name))
	assign(&b, "results", c.Results)
	assign(&b, "out", c.Output())
	b.WriteString(`
if [ ! -f "$task_dir/dataset.json" ]; then
  echo "gpipe: $task_dir/dataset.json not found: fetch the dataset first (fetch-msd)" >&2
  exit 1
fi
mkdir -p "$results"

`)
	ensureImage(&b, c.container)
	containerPrelude(&b, name)
	for _, mode := range c.Modes {
		assign(&b, "mode", mode)
		b.WriteString(`marker="$out/.gpipe-preprocess-$mode.done"
if [ -f "$marker" ]; then
  echo "gpipe: preprocess $mode already done ($marker)"
else
`)
		writeRunArgs(&b, runSpec{
			Mounts: uniq(c.Data, c.Results),
			Cmd: []string{"python3", "-u", "preprocess.py",
				"--task", c.Task.Num, "--dim", fmt.Sprint(c.Dim),
				"--data", c.Data, "--results", c.Results,
				"--exec_mode", mode, "--n_jobs", fmt.Sprint(c.NJobs)},
		})
		b.WriteString(`  "$runtime" "${run_args[@]}"
  touch "$marker"
fi

`)
	}
	b.WriteString(`echo "data=$out" >>"$GPIPE_OUTPUT"
`)
	return b.String()
}

// Run renders and runs the script.
func (s *Preprocess) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	out, err := renderAndRun(ctx, s.Exec, sr, s)
	if err != nil {
		return pipeline.Result{}, err
	}
	return pipeline.Result{Outputs: out}, nil
}

func uniq(paths ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
