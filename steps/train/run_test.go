package train

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUNetFlow runs preprocess, train-unet and evaluate against the fake
// container runtime and AWS CLI, as the unet-brain spec chains them.
func TestUNetFlow(t *testing.T) {
	f := newFakeEnv(t)
	root := t.TempDir()
	taskDir := filepath.Join(root, "Task01_BrainTumour")
	if err := os.MkdirAll(taskDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(taskDir, "dataset.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := New(localExecutors{})
	log := &syncBuf{}

	pre, err := steps[TypePreprocess].Run(t.Context(), stepRun(TypePreprocess, "preprocess",
		map[string]any{"task": "01", "dim": 2, "data": root, "results": filepath.Join(root, "pp")}, f.Env, log))
	if err != nil {
		t.Fatalf("preprocess: %v\n%s", err, log)
	}
	data := filepath.Join(root, "pp", "01_2d")
	if pre.Outputs["data"] != data {
		t.Errorf("preprocess data = %q, want %q", pre.Outputs["data"], data)
	}
	// A rerun finds the marker and runs nothing.
	if _, err := steps[TypePreprocess].Run(t.Context(), stepRun(TypePreprocess, "preprocess",
		map[string]any{"task": "01", "data": root, "results": filepath.Join(root, "pp")}, f.Env, log)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.runs(t)); n != 1 {
		t.Errorf("preprocess ran %d containers over two runs, want 1", n)
	}

	trainWith := map[string]any{"task": "01", "dim": 2, "fold": 2, "hpus": 2, "data": data,
		"workdir": filepath.Join(root, "w"), "results": "s3://bucket/run1/"}
	sr := stepRun(TypeTrainUNet, "train-fold-2", trainWith, f.Env, log)
	sr.Cards = []int{5, 6}
	tr, err := steps[TypeTrainUNet].Run(t.Context(), sr)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, log)
	}
	runs := f.runs(t)
	argv := runs[len(runs)-1]
	for _, want := range []string{"--save_ckpt", "--autocast", "--use_torch_compile", "HABANA_VISIBLE_MODULES=5,6", "HABANA_VISIBLE_DEVICES=all", "--runtime=habana"} {
		if !hasArg(argv, want) {
			t.Errorf("train argv lacks %q: %q", want, argv)
		}
	}
	if hasArg(argv, "--resume_training") {
		t.Error("first training resumed from nothing")
	}
	if got := argAfter(argv, "--hpus"); got != "2" {
		t.Errorf("--hpus %s", got)
	}
	foldDir := filepath.Join(root, "w", "01_2d", "fold_2")
	wantOut := map[string]string{
		"ckpt":           filepath.Join(foldDir, "checkpoints", "epoch=2-step=30.ckpt"),
		"last_ckpt":      filepath.Join(foldDir, "checkpoints", "last.ckpt"),
		"workdir":        foldDir,
		"results":        "s3://bucket/run1/01_2d/fold_2",
		"best_mean_dice": "63.5",
		"best_epoch":     "2",
		"best_dice_l1":   "70",
		"best_dice_l3":   "43.5",
		"epochs":         "3",
	}
	for k, v := range wantOut {
		if tr.Outputs[k] != v {
			t.Errorf("train output %s = %q, want %q", k, tr.Outputs[k], v)
		}
	}
	if _, err := os.Stat(filepath.Join(f.S3, "bucket/run1/01_2d/fold_2/checkpoints/last.ckpt")); err != nil {
		t.Errorf("checkpoint not synced to S3: %v", err)
	}

	// A new instance (empty disk): the rerun restores from S3 and resumes.
	if err := os.RemoveAll(foldDir); err != nil {
		t.Fatal(err)
	}
	tr, err = steps[TypeTrainUNet].Run(t.Context(), sr)
	if err != nil {
		t.Fatalf("train rerun: %v\n%s", err, log)
	}
	runs = f.runs(t)
	argv = runs[len(runs)-1]
	if argAfter(argv, "--ckpt_path") != filepath.Join(foldDir, "checkpoints", "last.ckpt") || !hasArg(argv, "--resume_training") {
		t.Errorf("rerun did not resume from the restored checkpoint: %q", argv)
	}
	// The resumed main.py truncated logs.json and logged epoch 4 only (worse
	// than epoch 2): the outputs come from both attempts' logs, the first
	// one's back from S3 with the checkpoints.
	for k, v := range map[string]string{"epochs": "5", "best_mean_dice": "63.5", "best_epoch": "2", "best_dice_l1": "70"} {
		if tr.Outputs[k] != v {
			t.Errorf("train output %s after the resume = %q, want %q", k, tr.Outputs[k], v)
		}
	}
	s3Fold := filepath.Join(f.S3, "bucket/run1/01_2d/fold_2")
	for name, epochs := range map[string][]string{"logs-attempt-1.json": {`"step": 0`, `"step": 2`}, "logs-attempt-2.json": {`"step": 4`}} {
		for _, dir := range []string{foldDir, s3Fold} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			for _, e := range epochs {
				if err != nil || !strings.Contains(string(b), e) {
					t.Errorf("%s/%s lacks %s (%v):\n%s", dir, name, e, err, b)
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(s3Fold, "logs.json")); err == nil {
		t.Error("logs.json, the link to the current attempt's log, was synced to S3")
	}

	evalWith := map[string]any{"task": "01", "dim": 2, "fold": 2, "data": data,
		"workdir": filepath.Join(root, "w"), "results": "s3://bucket/run1", "min_dice": 0.5}
	ev, err := steps[TypeEvaluate].Run(t.Context(), stepRun(TypeEvaluate, "evaluate-fold-2", evalWith, f.Env, log))
	if err != nil {
		t.Fatalf("evaluate: %v\n%s", err, log)
	}
	for k, v := range map[string]string{"mean_dice": "0.71", "dice_l1": "0.79", "dice_l2": "0.58", "dice_l3": "0.76", "ckpt": wantOut["ckpt"]} {
		if ev.Outputs[k] != v {
			t.Errorf("evaluate output %s = %q, want %q", k, ev.Outputs[k], v)
		}
	}
	if _, ok := ev.Outputs["dllogger"]; ok {
		t.Error("raw dllogger left in outputs")
	}
	runs = f.runs(t)
	if got := argAfter(runs[len(runs)-1], "--ckpt_path"); got != wantOut["ckpt"] {
		t.Errorf("evaluate --ckpt_path %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.S3, "bucket/run1/01_2d/fold_2/eval/eval_log.json")); err != nil {
		t.Errorf("evaluation not synced: %v", err)
	}
	// Evaluate's main.py truncates the training's logs.json: not through
	// the link into the last attempt's history.
	if b, err := os.ReadFile(filepath.Join(foldDir, "logs-attempt-2.json")); err != nil || !strings.Contains(string(b), `"step": 4`) {
		t.Errorf("the last training attempt's log after evaluate: %q, %v", b, err)
	}

	// Below min_dice: a typed failure, outputs still reported.
	f.Env["FAKE_DICE"] = "0.41"
	evalWith["min_dice"] = "0.6"
	ev, err = steps[TypeEvaluate].Run(t.Context(), stepRun(TypeEvaluate, "evaluate-fold-2", evalWith, f.Env, log))
	var de *DiceError
	if !errors.As(err, &de) || de.Mean != 0.41 || de.Min != 0.6 {
		t.Errorf("evaluate below min_dice: err %v", err)
	}
	if ev.Outputs["mean_dice"] != "0.41" {
		t.Errorf("mean_dice output %q", ev.Outputs["mean_dice"])
	}
}

// TestTrainFlakeInLog checks that the known Gaudi failure text reaches the
// step log, where the spec's retry.on matches it.
func TestTrainFlakeInLog(t *testing.T) {
	f := newFakeEnv(t)
	f.Env["FAKE_FLAKE"] = "1"
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "config.pkl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	log := &syncBuf{}
	_, err := (&TrainUNet{Exec: localExecutors{}}).Run(t.Context(), stepRun(TypeTrainUNet, "train",
		map[string]any{"task": "01", "data": data, "workdir": t.TempDir()}, f.Env, log))
	if err == nil {
		t.Fatal("flaky training succeeded")
	}
	if !strings.Contains(log.String(), "Expected status == synStatus::synSuccess") {
		t.Errorf("flake text not in the step log:\n%s", log)
	}
}

// TestTrainSavesCheckpointsOnNotice: when the spot interruption notice
// appears ($GPIPE_INTERRUPT_NOTICE, which the SSM wrapper creates), the
// training is stopped at once and its checkpoints and epoch log go to S3
// before the step ends, well within the two minutes the instance has left.
func TestTrainSavesCheckpointsOnNotice(t *testing.T) {
	f := newFakeEnv(t)
	f.Env["FAKE_TRAIN_BLOCK"] = "1"
	notice := filepath.Join(t.TempDir(), "interrupt-notice")
	f.Env["GPIPE_INTERRUPT_NOTICE"] = notice
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "config.pkl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	log := &syncBuf{}
	done := make(chan error, 1)
	go func() {
		_, err := (&TrainUNet{Exec: localExecutors{}}).Run(t.Context(), stepRun(TypeTrainUNet, "train",
			map[string]any{"task": "01", "data": data, "workdir": t.TempDir(), "results": "s3://bucket/run1"}, f.Env, log))
		done <- err
	}()
	for !strings.Contains(log.String(), "epoch 0 done") {
		select {
		case err := <-done:
			t.Fatalf("training ended before the notice: %v\n%s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := os.WriteFile(notice, []byte(`{"action": "terminate", "time": "2026-12-05T08:20:00Z"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the training still runs 30 s after the notice:\n%s", log)
	}
	if err == nil {
		t.Errorf("a training stopped by the notice succeeded")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stopped %s after the notice", took)
	}
	if !strings.Contains(log.String(), `gpipe: spot interruption notice ({"action": "terminate", "time": "2026-12-05T08:20:00Z"}): stopping the training`) {
		t.Errorf("the log does not say why the training stopped:\n%s", log)
	}
	fold := filepath.Join(f.S3, "bucket", "run1", "01_2d", "fold_0")
	for _, name := range []string{"checkpoints/last.ckpt", "logs-attempt-1.json"} {
		if _, err := os.Stat(filepath.Join(fold, name)); err != nil {
			t.Errorf("%s not synced to S3 on the notice: %v", name, err)
		}
	}
}
