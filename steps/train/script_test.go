package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
)

// renderer is what every host step type here implements.
type renderer interface {
	pipeline.Runner
	pipeline.ScriptRenderer
}

func TestScriptsGoldenAndShellcheck(t *testing.T) {
	steps := New(localExecutors{})
	cases := []struct {
		golden, typ string
		with        map[string]any
		cards       []int
	}{
		{"prepare-host.sh", TypePrepareHost, map[string]any{}, nil},
		{"prepare-disk.sh", TypePrepareDisk, map[string]any{"min_free_gib": 500}, nil},
		{"prepare-disk-xfs.sh", TypePrepareDisk, map[string]any{"mount": "/mnt/scratch", "fs_type": "xfs", "move": []any{"/var/lib/docker"}}, nil},
		{"preprocess.sh", TypePreprocess, map[string]any{"task": "01", "dim": 2}, nil},
		{"preprocess-3d.sh", TypePreprocess, map[string]any{"task": "Task04_Hippocampus", "dim": "3", "exec_modes": []any{"training", "val", "test"}, "n_jobs": 16}, nil},
		{"train-unet-8hpu.sh", TypeTrainUNet, map[string]any{"task": "01", "dim": 2, "hpus": 8, "results": "s3://bucket/runs/r1"}, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"train-unet-fold3.sh", TypeTrainUNet, map[string]any{"task": "1", "dim": 3, "fold": "3", "precision": "fp32", "seed": 7, "max_epochs": 50, "extra_args": []any{"--tta"}}, []int{3}},
		{"evaluate.sh", TypeEvaluate, map[string]any{"task": "01", "dim": 2, "fold": 0, "results": "s3://bucket/runs/r1", "min_dice": 0.6}, []int{5}},
		{"evaluate-ckpt.sh", TypeEvaluate, map[string]any{"task": "01", "dim": 2, "ckpt": "/models/best.ckpt"}, nil},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			sr := stepRun(c.typ, strings.TrimSuffix(c.golden, ".sh"), c.with, nil, nil)
			sr.Cards = c.cards
			r, ok := steps[c.typ].(renderer)
			if !ok {
				t.Fatalf("%s is not a ScriptRenderer", c.typ)
			}
			got, err := r.Script(sr)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got, "set -euo pipefail\n") {
				t.Error("script lacks set -euo pipefail")
			}
			golden(t, c.golden, got)
			shellcheck(t, got)
		})
	}
}

func TestCardsDemand(t *testing.T) {
	tr := &TrainUNet{}
	if n := tr.Cards(map[string]any{"task": "01", "hpus": 8}); n != 8 {
		t.Errorf("Cards(hpus 8) = %d", n)
	}
	if n := tr.Cards(map[string]any{"task": "01", "hpus": "1"}); n != 1 {
		t.Errorf("Cards(hpus \"1\") = %d", n)
	}
	if n := tr.Cards(map[string]any{"task": "01"}); n != 1 {
		t.Errorf("Cards(default) = %d", n)
	}
	var _ pipeline.CardDemander = tr
	var _ pipeline.CardDemander = &Evaluate{}
	sr := stepRun(TypeTrainUNet, "train", map[string]any{"task": "01", "hpus": 2}, nil, nil)
	sr.Cards = []int{4}
	if _, err := tr.Script(sr); err == nil {
		t.Error("2 HPUs with 1 granted card: want an error")
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		typ  string
		with map[string]any
		want string
	}{
		{TypeTrainUNet, map[string]any{}, "with.task: required"},
		{TypeTrainUNet, map[string]any{"task": "01", "hpus": 9}, "with.hpus: 9 is outside 1..8"},
		{TypeTrainUNet, map[string]any{"task": "01", "fold": "x"}, `with.fold: want an integer, got "x"`},
		{TypeTrainUNet, map[string]any{"task": "01", "precision": "fp16"}, `"fp16" is not one of bf16, fp32`},
		{TypeTrainUNet, map[string]any{"task": "01", "results": "/local"}, "want an s3:// URL"},
		{TypeTrainUNet, map[string]any{"task": "01", "colour": "red"}, "with.colour: unknown parameter"},
		{TypeTrainUNet, map[string]any{"task": "11"}, "unknown MSD task"},
		{TypePreprocess, map[string]any{"task": "01", "data": "/a:b"}, "cannot contain ':'"},
		{TypeEvaluate, map[string]any{"task": "01", "min_dice": 1.5}, "with.min_dice: 1.5 is outside 0..1"},
		{TypePrepareDisk, map[string]any{"mount": "/"}, "want an absolute path other than /"},
		{TypePrepareDisk, map[string]any{"move": []any{"relative"}}, "want an absolute or ~/ path"},
		{TypePrepareDisk, map[string]any{"move": []any{"/data/x"}}, "overlaps the mount point"},
	}
	steps := New(localExecutors{})
	for _, c := range cases {
		_, err := steps[c.typ].(renderer).Script(stepRun(c.typ, "s", c.with, nil, nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: error %v, want it to contain %q", c.typ, c.with, err, c.want)
		}
	}
}

// TestInjection renders values full of shell syntax and checks that bash
// sees them as the literal values they are.
func TestInjection(t *testing.T) {
	hostile := []string{`x'; touch PWNED; echo '`, `$(touch PWNED)`, "`touch PWNED`", "a\ntouch PWNED", `"; touch PWNED #`}
	f := newFakeEnv(t)
	for i, h := range hostile {
		work := t.TempDir()
		data := filepath.Join(work, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "config.pkl"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		with := map[string]any{
			"task": "01", "data": data, "workdir": filepath.Join(work, "w"),
			"image": "img" + h, "model_references": h, "extra_args": []any{h, "--tta"},
		}
		log := &syncBuf{}
		sr := stepRun(TypeTrainUNet, "train", with, f.Env, log)
		tr := &TrainUNet{Exec: localExecutors{}}
		script, err := tr.Script(sr)
		if err != nil {
			t.Fatal(err)
		}
		shellcheck(t, script)
		if _, err := tr.Run(t.Context(), sr); err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, log)
		}
		runs := f.runs(t)
		argv := runs[len(runs)-1]
		if argv[len(argv)-2] != h || argv[len(argv)-1] != "--tta" {
			t.Errorf("case %d: extra args arrived as %q", i, argv[len(argv)-2:])
		}
		if _, err := os.Stat("PWNED"); err == nil {
			t.Fatalf("case %d: injected command ran", i)
		}
		if _, err := os.Stat(filepath.Join(work, "PWNED")); err == nil {
			t.Fatalf("case %d: injected command ran", i)
		}
		if matches, _ := filepath.Glob(filepath.Join(f.Dir, "images", "gpipe-unet*")); len(matches) == 0 {
			t.Errorf("case %d: derived image not built", i)
		}
	}
}
