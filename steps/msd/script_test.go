package msd

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
)

var update = flag.Bool("update", false, "rewrite golden files")

// bashHost runs a script with local bash as a remote host would, with
// GPIPE_OUTPUT and the step's env.
type bashHost struct{}

func (bashHost) For(pipeline.Host) (host.Executor, error) { return bashHost{}, nil }

func (bashHost) Exec(ctx context.Context, s host.Script) (map[string]string, error) {
	out := filepath.Join(os.TempDir(), "gpipe-msd-out-"+strings.ReplaceAll(s.StepID, "/", "_"))
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(out)
	cmd := exec.CommandContext(ctx, "bash", "-c", s.Body)
	cmd.Env = append(os.Environ(), "GPIPE_OUTPUT="+out)
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return host.ParseOutputs(f)
}

func TestRemoteScript(t *testing.T) {
	sc := testtool.Shellcheck(t)
	data, sum := buildTar(t, msdArchive(t, "Task04_Hippocampus", 3, 5000))
	s3dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(s3dir, "msd-for-monai-eu"), 0o755); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(s3dir, "msd-for-monai-eu", "Task04_Hippocampus.tar")
	if err := os.WriteFile(obj, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A fake AWS CLI that streams s3://bucket/key from a directory and records
	// its arguments.
	fake := filepath.Join(t.TempDir(), "aws")
	body := "#!/usr/bin/env bash\necho \"$*\" >>\"$FAKE_S3/.calls\"\nfor a; do case \"$a\" in s3://*) src=\"$FAKE_S3/${a#s3://}\";; esac; done\ncat \"$src\"\n"
	if err := os.WriteFile(fake, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "data dir")
	f := New(bashHost{})
	sr := fetchRun(map[string]any{"task": "04", "source": "s3://msd-for-monai-eu/Task04_Hippocampus.tar", "md5": sum, "dest": dest})
	sr.Host = pipeline.Host{Name: "gaudi", Address: "ssm:i-0123456789abcdef0"}
	sr.Env = map[string]string{"GPIPE_AWS_CLI": fake, "FAKE_S3": s3dir}

	script, err := f.Script(sr)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "fetch-msd-remote.sh")
	rendered := strings.ReplaceAll(strings.ReplaceAll(script, dest, "/DEST"), sum, "MD5")
	if *update {
		if err := os.WriteFile(golden, []byte(rendered), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if want, err := os.ReadFile(golden); err != nil || string(want) != rendered {
		t.Errorf("rendered script differs from %s (go test -update rewrites it):\n%s", golden, rendered)
	}
	cmd := exec.Command(sc, "--shell=bash", "--exclude=SC2016", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}

	res, err := f.Run(t.Context(), sr)
	if err != nil {
		t.Fatalf("%v\n%s", err, sr.Log)
	}
	want := map[string]string{"data_dir": filepath.Join(dest, "Task04_Hippocampus"), "num_training": "3", "num_test": "3", "md5": sum, "skipped": "false"}
	for k, v := range want {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %q", k, res.Outputs[k], v)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dest, "Task04_Hippocampus", "*", "._*")); len(m) > 0 {
		t.Errorf("._ files extracted: %v", m)
	}
	calls, _ := os.ReadFile(filepath.Join(s3dir, ".calls"))
	if !strings.Contains(string(calls), "--region eu-west-2 --no-sign-request") {
		t.Errorf("aws called with %q", calls)
	}
	// The script's marker is the one the in-process fetch checks, and vice versa.
	if _, ok := verified(filepath.Join(dest, "Task04_Hippocampus"), sum); !ok {
		t.Error("marker written by the script is not recognised in-process")
	}
	res, err = f.Run(t.Context(), sr)
	if err != nil || res.Outputs["skipped"] != "true" {
		t.Errorf("rerun: %v %v", res.Outputs, err)
	}

	// A wrong MD5 keeps nothing.
	dest2 := t.TempDir()
	sr.With = map[string]any{"task": "04", "source": "s3://msd-for-monai-eu/Task04_Hippocampus.tar", "md5": strings.Repeat("a", 32), "dest": dest2}
	if _, err := f.Run(t.Context(), sr); err == nil {
		t.Error("wrong md5 succeeded")
	}
	if entries, _ := os.ReadDir(dest2); len(entries) != 0 {
		t.Errorf("wrong md5 left %v", entries)
	}
}
