package train

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// mountsOf returns the host side of every -v in a rendered script.
func mountsOf(script string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^  -v '?([^':]+):`).FindAllStringSubmatch(script, -1) {
		out = append(out, m[1])
	}
	return out
}

// A checkpoint outside the fold's directory is mounted on its own. Mounting its
// directory mounted the host's root for a checkpoint at the top of a disk, and
// `gpipe plan --scripts` showed `-v /:/` for every evaluate, whose ckpt is the
// placeholder /<steps.train.outputs.ckpt> there.
func TestEvaluateMountsTheCheckpointNotItsDirectory(t *testing.T) {
	for _, c := range []struct {
		ckpt string
		want []string
	}{
		{"/best.ckpt", []string{"/data/01_2d", "/data/results/01_2d/fold_0", "/best.ckpt"}},
		{"/<steps.train.outputs.ckpt>", []string{"/data/01_2d", "/data/results/01_2d/fold_0", "/<steps.train.outputs.ckpt>"}},
		{"/models/best.ckpt", []string{"/data/01_2d", "/data/results/01_2d/fold_0", "/models/best.ckpt"}},
		{"/data/results/01_2d/fold_0/checkpoints/x.ckpt", []string{"/data/01_2d", "/data/results/01_2d/fold_0"}},
	} {
		sr := stepRun(TypeEvaluate, "evaluate", map[string]any{"task": "01", "ckpt": c.ckpt}, nil, nil)
		script, err := (&Evaluate{}).Script(sr)
		if err != nil {
			t.Fatal(err)
		}
		got := mountsOf(script)
		if slices.Contains(got, "/") || strings.Contains(script, "-v /:/") {
			t.Errorf("ckpt %s: the host's root is mounted: %v", c.ckpt, got)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("ckpt %s: mounts %v, want %v", c.ckpt, got, c.want)
		}
	}
}

// baseImageEnv is the environment the Gaudi PyTorch image sets that the
// derived image must keep. Source: HabanaAI/Setup_and_Install,
// dockerfiles/pytorch/Dockerfile.ubuntu ("ENV PYTHONPATH=/root:/usr/lib/habanalabs/"),
// the layer the pytorch-installer images are built from.
var baseImageEnv = map[string]string{"PYTHONPATH": "/root:/usr/lib/habanalabs/"}

// dockerfileEnv applies a Dockerfile's ENV lines to env the way docker does:
// $VAR and ${VAR} expand to the value so far (the base image's, or an earlier
// ENV's), an unset variable to "".
func dockerfileEnv(t *testing.T, dockerfile string, env map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	ref := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
	for _, line := range strings.Split(dockerfile, "\n") {
		rest, ok := strings.CutPrefix(line, "ENV ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			t.Fatalf("ENV line %q: want KEY=value", line)
		}
		out[k] = ref.ReplaceAllStringFunc(v, func(m string) string {
			name := strings.Trim(m, "${}")
			return out[name]
		})
	}
	return out
}

// The derived image adds Model-References to PYTHONPATH and keeps what the
// base image has there: /usr/lib/habanalabs holds Habana's Python modules.
func TestDerivedImageKeepsHabanaPythonPath(t *testing.T) {
	sr := stepRun(TypePreprocess, "preprocess", map[string]any{"task": "01"}, nil, nil)
	script, err := (&Preprocess{}).Script(sr)
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(script, "<<'DOCKERFILE'\n")
	end := strings.Index(script, "\nDOCKERFILE\n")
	if start < 0 || end < start {
		t.Fatal("no Dockerfile in the rendered script")
	}
	env := dockerfileEnv(t, script[start:end], baseImageEnv)
	parts := strings.Split(env["PYTHONPATH"], ":")
	for _, want := range []string{"/Model-References", "/root", "/usr/lib/habanalabs/"} {
		if !slices.Contains(parts, want) {
			t.Errorf("PYTHONPATH in the derived image = %q, lacks %s", env["PYTHONPATH"], want)
		}
	}
}
