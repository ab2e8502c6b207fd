package train

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// TrainUNet trains one fold of the Habana UNet with Model-References main.py.
//
// Checkpoints are always saved (--save_ckpt) under <workdir>/<NN>_<dim>d/
// fold_<f>/checkpoints, copied to the `results` S3 URL every
// checkpoint_sync_minutes while training and synced with the whole fold
// directory when the script ends, successfully or not. A rerun (retry,
// resume, or a new instance) first restores the checkpoints from S3 when the
// local disk has none, then continues with --ckpt_path <last.ckpt>
// --resume_training.
//
// main.py truncates its epoch log (logs.json) whenever it starts, so each
// attempt logs into logs-attempt-<n>.json of its own (logs.json links to
// it), synced with the checkpoints and never written again; a rerun brings
// the earlier attempts' files back from S3 (see history.go).
//
// On a spot interruption notice ($GPIPE_INTERRUPT_NOTICE appears, see
// steps/aws/ssmhost) the training is stopped and the fold directory synced
// to S3 at once, within the two minutes before the instance goes; the
// replacement instance resumes from that last checkpoint.
//
// The container's output goes to the step log unchanged, so the known early
// Gaudi failure ("Expected status == synStatus::synSuccess") is there for a
// spec's retry.on: ["synStatus"] to match.
//
// Outputs: ckpt (best checkpoint, else last), last_ckpt, workdir (the fold
// directory), results (the fold's S3 URL, empty without results), and, when
// the attempts logged per-epoch Dice, from their merged history: epochs,
// best_epoch, best_mean_dice and best_dice_l1..best_dice_lN (the labels'
// Dice at the best epoch).
type TrainUNet struct {
	Exec Executors
}

// TrainConfig is the decoded `with` of a train-unet step.
type TrainConfig struct {
	unetTask
	container
	Fold         int
	HPUs         int
	BatchSize    int
	ValBatchSize int
	MinEpochs    int
	MaxEpochs    int
	Precision    string // bf16 | fp32
	Seed         int
	Data         string // preprocessed <NN>_<dim>d directory
	Workdir      string
	Results      string // s3:// URL prefix, optional
	SyncMinutes  int
	ExtraArgs    []string
}

// DecodeTrain applies defaults and checks values.
func DecodeTrain(with map[string]any) (*TrainConfig, error) {
	return param.Decode(TypeTrainUNet, with, decodeTrain)
}

func decodeTrain(p *param.Reader) *TrainConfig {
	c := &TrainConfig{unetTask: decodeTask(p), container: decodeContainer(p)}
	// The README's batch sizes: 64 slices for 2D, 2 volumes for 3D.
	defBatch := 64
	if c.Dim == 3 {
		defBatch = 2
	}
	c.Fold = p.Int("fold", 0, 0, 4)
	c.HPUs = p.Int("hpus", 1, 1, 8)
	c.BatchSize = p.Int("batch_size", defBatch, 1, 4096)
	c.ValBatchSize = p.Int("val_batch_size", defBatch, 1, 4096)
	c.MinEpochs = p.Int("min_epochs", 30, 1, 1<<20)
	c.MaxEpochs = p.Int("max_epochs", 10000, 1, 1<<20)
	c.Precision = p.OneOf("precision", "bf16", "bf16", "fp32")
	c.Seed = p.Int("seed", 1, 0, 1<<31-1)
	c.Data = p.String("data", "") // default: /data/<code>
	if c.Data == "" {
		c.Data = path.Join("/data", c.code())
	}
	c.Workdir = p.String("workdir", "/data/results")
	c.Results = strings.TrimSuffix(p.String("results", ""), "/")
	c.SyncMinutes = p.Int("checkpoint_sync_minutes", 10, 1, 24*60)
	c.ExtraArgs = p.Strings("extra_args", nil)
	if c.MinEpochs > c.MaxEpochs {
		p.Fail("min_epochs", "%d is above max_epochs %d", c.MinEpochs, c.MaxEpochs)
	}
	checkPath(p, "data", c.Data)
	checkPath(p, "workdir", c.Workdir)
	checkS3(p, "results", c.Results)
	return c
}

// FoldDir is the fold's local results directory (main.py --results).
func (c *TrainConfig) FoldDir() string {
	return foldDir(c.Workdir, c.unetTask, c.Fold)
}

func foldDir(workdir string, t unetTask, fold int) string {
	return path.Join(workdir, t.code(), fmt.Sprintf("fold_%d", fold))
}

func foldURL(results string, t unetTask, fold int) string {
	if results == "" {
		return ""
	}
	return results + "/" + t.code() + fmt.Sprintf("/fold_%d", fold)
}

// Cards implements pipeline.CardDemander: one card per HPU.
func (s *TrainUNet) Cards(with map[string]any) int {
	c, err := DecodeTrain(with)
	if err != nil {
		// Run reports the error; demand what was asked so the engine's
		// capacity check still sees it.
		p := param.New(TypeTrainUNet, with)
		return p.Int("hpus", 1, 1, 1<<10)
	}
	return c.HPUs
}

// Script renders the training script.
func (s *TrainUNet) Script(sr *pipeline.StepRun) (string, error) {
	c, err := DecodeTrain(sr.With)
	if err != nil {
		return "", err
	}
	if len(sr.Cards) > 0 && len(sr.Cards) != c.HPUs {
		return "", fmt.Errorf("%s: granted %d cards for hpus: %d", sr.StepID, len(sr.Cards), c.HPUs)
	}
	return c.render(containerName(sr.RunID, sr.StepID), sr.Cards), nil
}

func (c *TrainConfig) render(name string, cards []int) string {
	var b strings.Builder
	header(&b, fmt.Sprintf("train-unet: task %s, %dD, fold %d on %d HPU(s)", c.Task.Num, c.Dim, c.Fold, c.HPUs))
	assign(&b, "data", c.Data)
	assign(&b, "fold_dir", c.FoldDir())
	assign(&b, "results_url", foldURL(c.Results, c.unetTask, c.Fold))
	fmt.Fprintf(&b, "sync_seconds=%d\n", c.SyncMinutes*60)
	b.WriteString(`aws="${GPIPE_AWS_CLI:-aws}"

if [ ! -f "$data/config.pkl" ]; then
  echo "gpipe: $data/config.pkl not found: preprocess the dataset first" >&2
  exit 1
fi
mkdir -p "$fold_dir/checkpoints"
`)
	b.WriteString(restoreCheckpoints)
	b.WriteString(attemptLog)
	b.WriteString(`
resume_args=()
if [ -f "$fold_dir/checkpoints/last.ckpt" ]; then
  echo "gpipe: resuming from $fold_dir/checkpoints/last.ckpt"
  resume_args=(--ckpt_path "$fold_dir/checkpoints/last.ckpt" --resume_training)
fi
`)
	if c.HPUs > 1 {
		b.WriteString(`
# Multi-card training talks HCCL over the Gaudi NICs, which must be up.
for dev in /sys/class/net/*; do
  drv=$(readlink -f "$dev/device/driver" 2>/dev/null || true)
  if [ "${drv##*/}" = habanalabs ]; then
    ip link set "${dev##*/}" up || echo "gpipe: warning: cannot bring up ${dev##*/}" >&2
  fi
done
`)
	}
	b.WriteString("\n")
	ensureImage(&b, c.container)
	containerPrelude(&b, name)
	b.WriteString(`sync_pid=""
if [ -n "$results_url" ]; then
  # Copy checkpoints while training, so losing the instance loses at most
  # sync_seconds of work.
  (
    # The sleep must die with the loop: it holds the script's output open.
    trap 'kill "$sleep_pid" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "$sync_seconds" &
      sleep_pid=$!
      wait "$sleep_pid"
      "$aws" s3 sync --only-show-errors "$fold_dir/checkpoints" "$results_url/checkpoints" ||
        echo "gpipe: warning: checkpoint sync failed" >&2
      "$aws" s3 sync --only-show-errors --exclude '*' --include "$attempt_log" "$fold_dir" "$results_url" ||
        echo "gpipe: warning: epoch log sync failed" >&2
    done
  ) &
  sync_pid=$!
fi
notice_pid=""
if [ -n "$results_url" ] && [ -n "${GPIPE_INTERRUPT_NOTICE:-}" ]; then
  # A spot interruption notice (the SSM wrapper creates the file; EC2
  # terminates the instance two minutes later): stop the training, so that
  # finish saves its checkpoints to S3 while the instance is still there.
  (
    notice_sleep=""
    trap 'kill "$notice_sleep" 2>/dev/null; exit 0' TERM
    while [ ! -e "$GPIPE_INTERRUPT_NOTICE" ]; do
      sleep 1 &
      notice_sleep=$!
      wait "$notice_sleep"
    done
    echo "gpipe: spot interruption notice ($(cat "$GPIPE_INTERRUPT_NOTICE")): stopping the training to save its checkpoints" >&2
    stop_container
  ) &
  notice_pid=$!
fi
finish() {
  rc=$?
  for pid in $sync_pid $notice_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  stop_container
  if [ -n "$results_url" ]; then
    echo "gpipe: syncing $fold_dir to $results_url"
    # logs.json is only the link to this attempt's file.
    "$aws" s3 sync --only-show-errors --exclude logs.json "$fold_dir" "$results_url" ||
      echo "gpipe: warning: results sync failed" >&2
  fi
  exit "$rc"
}
trap finish EXIT

`)
	cmd := []string{"python3", "-u", "main.py",
		"--results", c.FoldDir(), "--task", c.Task.Num, "--fold", fmt.Sprint(c.Fold),
		"--hpus", fmt.Sprint(c.HPUs), "--gpus", "0", "--data", c.Data, "--seed", fmt.Sprint(c.Seed),
		"--num_workers", "8", "--affinity", "disabled", "--norm", "instance", "--dim", fmt.Sprint(c.Dim),
		"--optimizer", "fusedadamw", "--exec_mode", "train", "--learning_rate", "0.001",
		"--deep_supervision", "--batch_size", fmt.Sprint(c.BatchSize), "--val_batch_size", fmt.Sprint(c.ValBatchSize),
		"--min_epochs", fmt.Sprint(c.MinEpochs), "--max_epochs", fmt.Sprint(c.MaxEpochs),
		"--train_batches", "0", "--test_batches", "0", "--use_torch_compile", "--save_ckpt"}
	if c.Precision == "bf16" {
		cmd = append(cmd, "--autocast")
	}
	cmd = append(cmd, c.ExtraArgs...)
	writeRunArgs(&b, runSpec{
		Cards:  cards,
		Mounts: uniq(c.Data, c.FoldDir()),
		Env:    [][2]string{{"PT_HPU_LAZY_MODE", "0"}},
		Cmd:    cmd,
	})
	b.WriteString(`
console_log="$fold_dir/train-$(date -u +%Y%m%dT%H%M%SZ).log"
set +e
"$runtime" "${run_args[@]}" "${resume_args[@]}" 2>&1 | tee "$console_log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  if grep -q 'synStatus' "$console_log"; then
    echo "gpipe: training hit the known early Gaudi failure (synStatus); a retry usually succeeds" >&2
  fi
  exit "$rc"
fi
`)
	b.WriteString(pickCheckpoint)
	b.WriteString(`{
  echo "ckpt=$ckpt"
  echo "last_ckpt=$fold_dir/checkpoints/last.ckpt"
  echo "workdir=$fold_dir"
  echo "results=$results_url"
  echo "dllogger<<GPIPE_DLLOGGER_EOF"
  for ((n = 1; n <= attempt; n++)); do
    f="$fold_dir/logs-attempt-$n.json"
    if [ -f "$f" ]; then
      echo "gpipe-attempt $n"
      cat "$f"
      # A killed attempt may have left its last line unfinished.
      if [ -n "$(tail -c 1 "$f")" ]; then echo; fi
    fi
  done
  echo "GPIPE_DLLOGGER_EOF"
} >>"$GPIPE_OUTPUT"
`)
	return b.String()
}

// restoreCheckpoints brings the fold's checkpoints back from S3 when this
// disk has none (a new instance, or the NVMe store lost on stop).
const restoreCheckpoints = `if [ -n "$results_url" ] && [ ! -f "$fold_dir/checkpoints/last.ckpt" ]; then
  echo "gpipe: looking for checkpoints in $results_url/checkpoints"
  "$aws" s3 sync --only-show-errors "$results_url/checkpoints" "$fold_dir/checkpoints"
fi
`

// attemptLog numbers this attempt after every earlier one (those of other
// instances come back from S3) and points logs.json, which main.py truncates
// when it starts (utils/utils.py get_dllogger: dllogger's JSONStreamBackend
// opens it with mode "w", following the link), at a new file of its own. The
// link is relative: the fold directory is mounted at the same path.
const attemptLog = `if [ -n "$results_url" ]; then
  "$aws" s3 sync --only-show-errors --exclude '*' --include 'logs-attempt-*.json' "$results_url" "$fold_dir"
fi
attempt=1
for f in "$fold_dir"/logs-attempt-*.json; do
  n=${f##*/logs-attempt-}
  n=${n%.json}
  case "$n" in '' | *[!0-9]*) continue ;; esac
  if [ "$((10#$n))" -ge "$attempt" ]; then attempt=$((10#$n + 1)); fi
done
attempt_log="logs-attempt-$attempt.json"
: >"$fold_dir/$attempt_log"
ln -sfn "$attempt_log" "$fold_dir/logs.json"
echo "gpipe: training attempt $attempt logs to $fold_dir/$attempt_log"
`

// pickCheckpoint sets ckpt to the best checkpoint ModelCheckpoint kept (the
// newest *.ckpt other than last.ckpt), else last.ckpt.
const pickCheckpoint = `ckpt=$(find "$fold_dir/checkpoints" -maxdepth 1 -name '*.ckpt' ! -name last.ckpt -printf '%T@ %p\n' |
  sort -n | tail -n 1 | cut -d' ' -f2-)
if [ -z "$ckpt" ]; then ckpt="$fold_dir/checkpoints/last.ckpt"; fi
if [ ! -f "$ckpt" ]; then
  echo "gpipe: no checkpoint in $fold_dir/checkpoints" >&2
  exit 1
fi
`

// Run renders and runs the script, then reads the per-epoch dice from the
// dllogger output.
func (s *TrainUNet) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	out, err := renderAndRun(ctx, s.Exec, sr, s)
	if err != nil {
		return pipeline.Result{}, err
	}
	logs := out["dllogger"]
	delete(out, "dllogger")
	atts, err := ParseAttempts(strings.NewReader(logs))
	if err != nil {
		return pipeline.Result{}, fmt.Errorf("%s: epoch logs: %w", sr.StepID, err)
	}
	if sum, ok := Summarize(History(atts)); ok {
		out["epochs"] = fmt.Sprint(sum.Epochs)
		out["best_epoch"] = fmt.Sprint(sum.BestEpoch)
		out["best_mean_dice"] = formatFloat(sum.BestMeanDice)
		for i, d := range sum.BestLabels {
			out[fmt.Sprintf("best_dice_l%d", i+1)] = formatFloat(d)
		}
	}
	return pipeline.Result{Outputs: out}, nil
}

// KeyOutputs are the outputs a report shows of a training step: the
// checkpoint, when the step's spec names one.
func (s *TrainUNet) KeyOutputs() []string { return []string{"ckpt"} }
