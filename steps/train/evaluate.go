package train

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// Evaluate scores a fold's checkpoint on that fold's validation split with
// main.py --exec_mode evaluate. The script hands the evaluation's dllogger
// file back through $GPIPE_OUTPUT; Go parses it. Outputs: mean_dice,
// dice_l1..dice_lN, ckpt, eval_log (the file on the host). Fails with a
// *DiceError when mean_dice is below min_dice.
type Evaluate struct {
	Exec Executors
}

// DiceError reports an evaluation below the spec's min_dice.
type DiceError struct {
	Mean, Min float64
}

func (e *DiceError) Error() string {
	return fmt.Sprintf("mean Dice %v is below min_dice %v", e.Mean, e.Min)
}

// EvalConfig is the decoded `with` of an evaluate step.
type EvalConfig struct {
	unetTask
	container
	Fold         int
	BatchSize    int
	ValBatchSize int
	Precision    string
	Seed         int
	Data         string
	Workdir      string
	Results      string
	Ckpt         string // "": the fold's best checkpoint
	MinDice      float64
}

// DecodeEvaluate applies defaults and checks values.
func DecodeEvaluate(with map[string]any) (*EvalConfig, error) {
	return param.Decode(TypeEvaluate, with, decodeEvaluate)
}

func decodeEvaluate(p *param.Reader) *EvalConfig {
	c := &EvalConfig{unetTask: decodeTask(p), container: decodeContainer(p)}
	defBatch := 64
	if c.Dim == 3 {
		defBatch = 2
	}
	c.Fold = p.Int("fold", 0, 0, 4)
	c.BatchSize = p.Int("batch_size", defBatch, 1, 4096)
	c.ValBatchSize = p.Int("val_batch_size", defBatch, 1, 4096)
	c.Precision = p.OneOf("precision", "bf16", "bf16", "fp32")
	c.Seed = p.Int("seed", 1, 0, 1<<31-1)
	c.Data = p.String("data", "") // default: /data/<code>
	if c.Data == "" {
		c.Data = path.Join("/data", c.code())
	}
	c.Workdir = p.String("workdir", "/data/results")
	c.Results = strings.TrimSuffix(p.String("results", ""), "/")
	c.Ckpt = p.String("ckpt", "")
	c.MinDice = p.Number("min_dice", 0, 0, 1)
	checkPath(p, "data", c.Data)
	checkPath(p, "workdir", c.Workdir)
	if c.Ckpt != "" {
		checkPath(p, "ckpt", c.Ckpt)
	}
	checkS3(p, "results", c.Results)
	return c
}

// Cards implements pipeline.CardDemander: evaluation runs on one card.
func (s *Evaluate) Cards(map[string]any) int { return 1 }

// Script renders the evaluation script.
func (s *Evaluate) Script(sr *pipeline.StepRun) (string, error) {
	c, err := DecodeEvaluate(sr.With)
	if err != nil {
		return "", err
	}
	return c.render(containerName(sr.RunID, sr.StepID), sr.Cards), nil
}

func (c *EvalConfig) render(name string, cards []int) string {
	var b strings.Builder
	fold := foldDir(c.Workdir, c.unetTask, c.Fold)
	header(&b, fmt.Sprintf("evaluate: task %s, %dD, fold %d", c.Task.Num, c.Dim, c.Fold))
	assign(&b, "data", c.Data)
	assign(&b, "fold_dir", fold)
	assign(&b, "eval_dir", path.Join(fold, "eval"))
	assign(&b, "results_url", foldURL(c.Results, c.unetTask, c.Fold))
	assign(&b, "ckpt", c.Ckpt)
	b.WriteString(`aws="${GPIPE_AWS_CLI:-aws}"

if [ ! -f "$data/config.pkl" ]; then
  echo "gpipe: $data/config.pkl not found: preprocess the dataset first" >&2
  exit 1
fi
if [ -z "$ckpt" ]; then
  mkdir -p "$fold_dir/checkpoints"
`)
	b.WriteString(restoreCheckpoints)
	b.WriteString(pickCheckpoint)
	b.WriteString(`elif [ ! -f "$ckpt" ]; then
  echo "gpipe: checkpoint $ckpt not found" >&2
  exit 1
fi
echo "gpipe: evaluating $ckpt"
# A failed evaluation must not leave the previous one's result to be read.
mkdir -p "$eval_dir"
rm -f "$eval_dir/eval_log.json"
# main.py --exec_mode evaluate rebuilds the model from the checkpoint
# (NNUnet.load_from_checkpoint), with the training's saved arguments, and its
# __init__ opens the dllogger of the training's --results, the directory that
# holds checkpoints/: <that>/logs.json, mode "w" (Model-References 1.21.0
# models/nn_unet.py, utils/utils.py get_dllogger). There logs.json links to
# the last training attempt's epoch log: drop the link, so the evaluation
# truncates a file of its own instead of the training's history.
train_results=$(dirname "$(dirname "$ckpt")")
if [ -L "$train_results/logs.json" ]; then rm -f "$train_results/logs.json"; fi

`)
	ensureImage(&b, c.container)
	containerPrelude(&b, name)
	cmd := []string{"python3", "-u", "main.py", "--exec_mode", "evaluate",
		"--data", c.Data, "--hpus", "1", "--gpus", "0", "--fold", fmt.Sprint(c.Fold), "--seed", fmt.Sprint(c.Seed),
		"--batch_size", fmt.Sprint(c.BatchSize), "--val_batch_size", fmt.Sprint(c.ValBatchSize),
		"--task", c.Task.Num, "--dim", fmt.Sprint(c.Dim), "--results", path.Join(fold, "eval"),
		"--logname", "eval_log.json", "--use_torch_compile"}
	if c.Precision == "bf16" {
		cmd = append(cmd, "--autocast")
	}
	mounts := []string{c.Data, fold}
	if c.Ckpt != "" && !strings.HasPrefix(c.Ckpt, fold+"/") {
		// The file, not its directory: a checkpoint at the top of a disk (or
		// the plan's placeholder /<steps.train.outputs.ckpt>) would otherwise
		// mount the host's whole root, which docker refuses ("-v /:/").
		mounts = append(mounts, c.Ckpt)
	}
	writeRunArgs(&b, runSpec{
		Cards:  cards,
		Mounts: uniq(mounts...),
		Env:    [][2]string{{"PT_HPU_LAZY_MODE", "0"}},
		Cmd:    cmd,
	})
	b.WriteString(`"$runtime" "${run_args[@]}" --ckpt_path "$ckpt"
if [ ! -s "$eval_dir/eval_log.json" ]; then
  echo "gpipe: evaluation wrote no $eval_dir/eval_log.json" >&2
  exit 1
fi
if [ -n "$results_url" ]; then
  "$aws" s3 sync --only-show-errors "$eval_dir" "$results_url/eval"
fi
{
  echo "ckpt=$ckpt"
  echo "eval_log=$eval_dir/eval_log.json"
  echo "dllogger<<GPIPE_DLLOGGER_EOF"
  cat "$eval_dir/eval_log.json"
  echo "GPIPE_DLLOGGER_EOF"
} >>"$GPIPE_OUTPUT"
`)
	return b.String()
}

// Run renders and runs the script, parses the evaluation and checks min_dice.
func (s *Evaluate) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	c, err := DecodeEvaluate(sr.With)
	if err != nil {
		return pipeline.Result{}, err
	}
	out, err := renderAndRun(ctx, s.Exec, sr, s)
	if err != nil {
		return pipeline.Result{}, err
	}
	logs := out["dllogger"]
	delete(out, "dllogger")
	recs, err := ParseDLLogger(strings.NewReader(logs))
	if err != nil {
		return pipeline.Result{}, fmt.Errorf("%s: %s: %w", sr.StepID, out["eval_log"], err)
	}
	res, err := EvalDice(recs)
	if err != nil {
		return pipeline.Result{}, fmt.Errorf("%s: %s: %w", sr.StepID, out["eval_log"], err)
	}
	out["mean_dice"] = formatFloat(res.MeanDice)
	for i, d := range res.Labels {
		out[fmt.Sprintf("dice_l%d", i+1)] = formatFloat(d)
	}
	if c.MinDice > 0 && res.MeanDice < c.MinDice {
		return pipeline.Result{Outputs: out}, fmt.Errorf("%s: %w", sr.StepID, &DiceError{Mean: res.MeanDice, Min: c.MinDice})
	}
	return pipeline.Result{Outputs: out}, nil
}

// KeyOutputs are the outputs a report shows of an evaluate step.
func (s *Evaluate) KeyOutputs() []string { return []string{"mean_dice"} }
