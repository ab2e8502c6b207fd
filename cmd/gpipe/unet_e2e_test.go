package main

// The end-to-end tests run the real specs/unet-brain*.yaml with the gpipe
// binary (the test binary under testscript's "gpipe" name), in CI, without an
// AWS account or a Gaudi card:
//   - provision-stack and teardown talk CloudFormation to the AWS wire fake
//     through AWS_ENDPOINT_URL (the fake checks every request's signature);
//   - fetch-msd downloads a small MSD-style archive from a real versitygw
//     (AWS_ENDPOINT_URL_S3), a private copy given as -p msd_source/msd_md5;
//   - the host steps run with -p host=local: prepare-disk on a fake sysfs
//     with fake mdadm/mkfs/mount (testdata/unet/bin) and $GPIPE_MOVE_ROOT;
//     preprocess, train and evaluate against a fake `docker` that checks its
//     arguments and writes dllogger results; results synced by a fake
//     `aws s3 sync` into the folder versitygw serves, read back through S3.
// The runs share one versitygw and one fake AWS endpoint, and all start at
// once (most of their time is CloudFormation polling and retry backoff; the
// subtests only wait for them, so -parallel does not serialize them).

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// TestUnetBrainE2E runs specs/unet-brain.yaml: provision → prepare-host →
// prepare-disk → (fetch-msd ∥ pull-image) → preprocess → train on 8 HPUs → evaluate →
// teardown, and its failure paths; then specs/unet-brain-5fold.yaml.
func TestUnetBrainE2E(t *testing.T) {
	e := newUnetE2E(t)
	good, goodMD5 := e.putArchive(t, "mirror/"+task01+".tar", msdTask01(t, 3))
	// Entries that would land outside dest after good ones: the step must
	// fail and leave nothing outside dest.
	dotdot, dotdotMD5 := e.putArchive(t, "hostile/dotdot.tar", append(msdTask01(t, 1),
		tarEntry{name: task01 + "/../../escaped-dotdot.txt", typ: tar.TypeReg, data: []byte("pwned")}))
	symlink, symlinkMD5 := e.putArchive(t, "hostile/symlink.tar", append(msdTask01(t, 1),
		tarEntry{name: task01 + "/imagesTr/out", typ: tar.TypeSymlink, link: "../../../.."},
		tarEntry{name: task01 + "/imagesTr/out/escaped-symlink.txt", typ: tar.TypeReg, data: []byte("pwned")}))

	// Every run starts now; each subtest waits for its own.
	success := e.newRun(t, "unet-e2e-success", "FAKE_WANT_HPUS=8")
	waitSuccess := success.start(t, "unet-brain.yaml", good, goodMD5)
	flake := e.newRun(t, "unet-e2e-flake", "FAKE_WANT_HPUS=8")
	flake.env = append(flake.env, "FAKE_FLAKE_ONCE="+filepath.Join(flake.dir, "flaked"))
	waitFlake := flake.start(t, "unet-brain.yaml", good, goodMD5)
	trainFails := e.newRun(t, "unet-e2e-train-fails", "FAKE_TRAIN_FAIL=1")
	waitTrainFails := trainFails.start(t, "unet-brain.yaml", good, goodMD5)
	type hostile struct {
		name, entry string
		r           *unetRun
		wait        func(*testing.T) (int, string)
	}
	var hostiles []hostile
	for _, h := range []struct{ name, source, md5, entry string }{
		{"hostile-dotdot", dotdot, dotdotMD5, "escaped-dotdot.txt"},
		{"hostile-symlink", symlink, symlinkMD5, "imagesTr/out"},
	} {
		r := e.newRun(t, "unet-e2e-"+h.name)
		hostiles = append(hostiles, hostile{h.name, h.entry, r, r.start(t, "unet-brain.yaml", h.source, h.md5)})
	}
	// A host whose Habana driver is of another release (an old DLAMI's 1.13).
	mismatch := e.newRun(t, "unet-e2e-driver-mismatch", "FAKE_HL_DRIVER=1.13.0-6e7ef62")
	waitMismatch := mismatch.start(t, "unet-brain.yaml", good, goodMD5)
	// specs/unet-brain-5fold.yaml: five 1-HPU trainings at once on the
	// 8-card host, each on its own card; cv-dice averages the folds.
	fiveFold := e.newRun(t, "unet-e2e-5fold", "FAKE_WANT_HPUS=1", "FAKE_DICE_BY_FOLD=1", "FAKE_TRAIN_TOGETHER=5")
	waitFiveFold := fiveFold.start(t, "unet-brain-5fold.yaml", good, goodMD5)

	t.Run("success", func(t *testing.T) {
		r := success
		code, out := waitSuccess(t)
		if code != 0 {
			t.Fatalf("gpipe run exited %d, want 0:\n%s", code, out)
		}
		run := r.status(t)
		wantSteps(t, run, out, map[string]state.StepStatus{"provision": state.StepSucceeded, "disk": state.StepSucceeded,
			"fetch": state.StepSucceeded, "host-setup": state.StepSucceeded, "pull-image": state.StepSucceeded, "preprocess": state.StepSucceeded,
			"train": state.StepSucceeded, "evaluate": state.StepSucceeded, "teardown": state.StepSucceeded})
		if got := run.Steps["host-setup"].Outputs["driver_version"]; got != e2eDriver {
			t.Errorf("host-setup driver_version %q, want hl-smi's %q", got, e2eDriver)
		}
		r.wantTornDown(t, run)
		r.wantSuccess(t, run)
		r.wantStackParams(t, map[string]string{"DataBucket": e2eMirrorBucket, "AvailabilityZone": "us-east-1a"})
	})

	t.Run("flake-retried", func(t *testing.T) {
		r := flake
		code, out := waitFlake(t)
		if code != 0 {
			t.Fatalf("gpipe run exited %d, want 0 after a retry:\n%s", code, out)
		}
		run := r.status(t)
		wantSteps(t, run, out, map[string]state.StepStatus{"train": state.StepSucceeded, "evaluate": state.StepSucceeded, "teardown": state.StepSucceeded})
		train := run.Steps["train"]
		if len(train.Attempts) != 2 || train.Attempts[0].Error == "" || train.Attempts[1].Error != "" {
			t.Errorf("train attempts %s, want a failed one, then a successful one", fmtAttempts(train))
		}
		if got := run.Steps["evaluate"].Outputs["mean_dice"]; got != "0.71" {
			t.Errorf("evaluate mean_dice %q, want 0.71", got)
		}
		// The failed attempt's log has what retry.on matched, and the hint.
		if code, logs := r.gpipe(t, "logs", "--state", r.stateURL, r.id, "train"); code != 0 ||
			!strings.Contains(logs, "Expected status == synStatus::synSuccess") || !strings.Contains(logs, "a retry usually succeeds") {
			t.Errorf("gpipe logs %s train (exit %d) lacks the synStatus failure:\n%s", r.id, code, logs)
		}
		r.wantTornDown(t, run)
	})

	t.Run("train-fails", func(t *testing.T) {
		r := trainFails
		code, out := waitTrainFails(t)
		if code != 1 {
			t.Fatalf("gpipe run exited %d, want 1:\n%s", code, out)
		}
		run := r.status(t)
		wantSteps(t, run, out, map[string]state.StepStatus{"preprocess": state.StepSucceeded, "train": state.StepFailed,
			"evaluate": state.StepSkipped, "teardown": state.StepSucceeded})
		// Not the synStatus flake: retry.on does not retry it.
		if n := len(run.Steps["train"].Attempts); n != 1 {
			t.Errorf("train ran %d attempts, want 1: %s", n, fmtAttempts(run.Steps["train"]))
		}
		r.wantTornDown(t, run)
	})

	// The driver is read (hl-smi) and refused before the image is pulled: a
	// permanent error, so no retry, naming both versions and the fix.
	t.Run("driver-mismatch", func(t *testing.T) {
		r := mismatch
		code, out := waitMismatch(t)
		if code != 1 {
			t.Fatalf("gpipe run exited %d, want 1:\n%s", code, out)
		}
		run := r.status(t)
		wantSteps(t, run, out, map[string]state.StepStatus{"provision": state.StepSucceeded, "host-setup": state.StepFailed,
			"disk": state.StepSkipped, "fetch": state.StepSkipped, "pull-image": state.StepSkipped, "preprocess": state.StepSkipped, "train": state.StepSkipped, "teardown": state.StepSucceeded})
		setup := run.Steps["host-setup"]
		if n := len(setup.Attempts); n != 1 {
			t.Errorf("host-setup ran %d attempts, want 1 (a driver mismatch is permanent): %s", n, fmtAttempts(setup))
		}
		msg := lastError(setup)
		for _, want := range []string{"1.13.0-6e7ef62", "release 1.21.0", e2eImage, "Fix:"} {
			if !strings.Contains(msg, want) {
				t.Errorf("host-setup error lacks %q: %s", want, msg)
			}
		}
		if setup.Outputs["driver_version"] != "" && setup.Outputs["driver_version"] != "1.13.0-6e7ef62" {
			t.Errorf("host-setup driver_version %q", setup.Outputs["driver_version"])
		}
		calls, _ := os.ReadFile(filepath.Join(r.fake, "calls"))
		if strings.Contains(string(calls), "docker pull") || fileExists(filepath.Join(r.fake, "pulled")) {
			t.Errorf("the image was pulled onto a host that cannot run it:\n%s", calls)
		}
		r.wantTornDown(t, run)
	})

	for _, h := range hostiles {
		t.Run(h.name, func(t *testing.T) {
			r := h.r
			code, out := h.wait(t)
			if code != 1 {
				t.Fatalf("gpipe run exited %d, want 1:\n%s", code, out)
			}
			run := r.status(t)
			wantSteps(t, run, out, map[string]state.StepStatus{"fetch": state.StepFailed, "preprocess": state.StepSkipped,
				"train": state.StepSkipped, "teardown": state.StepSucceeded})
			if msg := lastError(run.Steps["fetch"]); !strings.Contains(msg, "unsafe archive entry") || !strings.Contains(msg, h.entry) {
				t.Errorf("fetch error %q does not name the unsafe entry %s", msg, h.entry)
			}
			// Nothing escaped: not in the run's folder, not next to it.
			noneNamed(t, filepath.Dir(r.dir), "escaped-")
			// Nor inside it: no half-extracted task, staging or spool is left.
			if ents, err := os.ReadDir(r.data); err != nil || len(ents) != 1 || ents[0].Name() != "moved" {
				t.Errorf("data dir after the failed fetch: %v, %v; want only prepare-disk's moved/", ents, err)
			}
			r.wantTornDown(t, run)
		})
	}

	t.Run("5fold", func(t *testing.T) {
		r := fiveFold
		code, out := waitFiveFold(t)
		if code != 0 {
			t.Fatalf("gpipe run exited %d, want 0:\n%s", code, out)
		}
		run := r.status(t)
		want := map[string]state.StepStatus{"preprocess": state.StepSucceeded, "cv-dice": state.StepSucceeded, "teardown": state.StepSucceeded}
		for f := range 5 {
			want[fmt.Sprintf("train-fold-%d", f)] = state.StepSucceeded
			want[fmt.Sprintf("evaluate-fold-%d", f)] = state.StepSucceeded
		}
		wantSteps(t, run, out, want)
		r.wantStackParams(t, map[string]string{"DataBucket": e2eMirrorBucket, "AvailabilityZone": "us-east-1a"})
		r.wantTornDown(t, run)
		cards := map[string]string{} // card → fold
		for _, argv := range r.dockerRuns(t) {
			if mode(argv) != "train" {
				continue
			}
			card, _ := envArg(argv, "HABANA_VISIBLE_MODULES")
			fold := argAfter(argv, "--fold")
			if other, dup := cards[card]; dup {
				t.Errorf("folds %s and %s trained together on card %q", other, fold, card)
			}
			cards[card] = fold
		}
		if len(cards) != 5 {
			t.Errorf("trainings on cards %v, want five folds on five distinct cards", cards)
		}
		for f := range 5 {
			id := fmt.Sprintf("evaluate-fold-%d", f)
			if got, want := run.Steps[id].Outputs["mean_dice"], fmt.Sprintf("0.7%d1", f); got != want {
				t.Errorf("%s mean_dice %q, want %s", id, got, want)
			}
			key := fmt.Sprintf("unet-brain-5fold/%s/01_2d/fold_%d/checkpoints/last.ckpt", r.id, f)
			if got, err := r.e.getObject(t, key); err != nil || got != fmt.Sprintf("ckpt fold %d epoch 2\n", f) {
				t.Errorf("s3://%s/%s: %q, %v", e2eResultsBucket, key, got, err)
			}
		}
		if got := run.Steps["cv-dice"].Outputs["mean_dice"]; got != "0.721" {
			t.Errorf("cv-dice mean_dice %q, want 0.721 (the mean of 0.701..0.741)", got)
		}
	})
}

// wantSuccess checks what a successful unet-brain run left behind.
func (r *unetRun) wantSuccess(t *testing.T, run *state.Run) {
	t.Helper()
	// fetch-msd: verified, extracted, ._ files skipped, counts from dataset.json.
	task := filepath.Join(r.data, task01)
	fetch := run.Steps["fetch"].Outputs
	for k, v := range map[string]string{"data_dir": task, "num_training": "3", "num_test": "3"} {
		if fetch[k] != v {
			t.Errorf("fetch output %s = %q, want %q", k, fetch[k], v)
		}
	}
	if _, err := os.Stat(filepath.Join(task, "imagesTr", "BRATS_003.nii.gz")); err != nil {
		t.Errorf("volume not extracted: %v", err)
	}
	noneNamed(t, task, "._")

	// prepare-disk: RAID0 over the two instance-store disks (not the EBS
	// one), mkfs, mount; docker's data and ~/.cache moved onto the disk.
	calls, _ := os.ReadFile(filepath.Join(r.disk, "calls"))
	dev := filepath.Join(r.dir, "dev")
	for _, want := range []string{
		"mdadm --create " + dev + "/md/gpipe-data --run --level=0 --raid-devices=2 " + dev + "/nvme1n1 " + dev + "/nvme2n1",
		"mkfs.ext4 -F -m 0 -E nodiscard " + dev + "/md/gpipe-data",
		"mount -o noatime " + dev + "/md/gpipe-data " + r.data,
	} {
		if !strings.Contains(string(calls), want) {
			t.Errorf("disk tools were not called with %q:\n%s", want, calls)
		}
	}
	// Docker was stopped to move its data-root and must run again after:
	// the later steps need the daemon (the fake docker fails without it).
	if !strings.Contains(string(calls), "systemctl stop docker docker.socket") {
		t.Errorf("prepare-disk did not stop docker before moving /var/lib/docker:\n%s", calls)
	}
	if !r.unitActive("docker.service") {
		t.Errorf("docker.service is not active after the run:\n%s", calls)
	}
	if got := run.Steps["disk"].Outputs["mount"]; got != r.data {
		t.Errorf("disk output mount %q, want %q", got, r.data)
	}
	for moved, file := range map[string]string{"/var/lib/docker": "image/db", filepath.Join(r.home, ".cache"): "pip/wheel"} {
		link := filepath.Join(r.moveRoot, moved)
		if target, err := os.Readlink(link); err != nil || target != r.data+"/moved"+moved {
			t.Errorf("%s → %q (%v), want a link to the data disk", link, target, err)
		}
		if _, err := os.Stat(filepath.Join(link, file)); err != nil {
			t.Errorf("moved content: %v", err)
		}
	}

	// The container runs: pinned image (the fake checks pull and build),
	// train on all 8 cards with --save_ckpt, evaluate on one.
	if _, err := os.Stat(filepath.Join(r.fake, "pulled")); err != nil {
		t.Error("pull-image did not pull the image")
	}
	var modes []string
	for _, argv := range r.dockerRuns(t) {
		modes = append(modes, mode(argv))
		switch mode(argv) {
		case "train":
			cards, _ := envArg(argv, "HABANA_VISIBLE_MODULES")
			if !slices.Contains(argv, "--save_ckpt") || argAfter(argv, "--hpus") != "8" || cards != "0,1,2,3,4,5,6,7" {
				t.Errorf("train run: --hpus %s, cards %q, --save_ckpt %v: %q", argAfter(argv, "--hpus"), cards,
					slices.Contains(argv, "--save_ckpt"), argv)
			}
		case "evaluate":
			ckpt := filepath.Join(r.data, "results/01_2d/fold_0/checkpoints/epoch=2-step=30.ckpt")
			if got := argAfter(argv, "--ckpt_path"); got != ckpt {
				t.Errorf("evaluate --ckpt_path %q, want train's best %q", got, ckpt)
			}
		}
	}
	slices.Sort(modes)
	if !slices.Equal(modes, []string{"evaluate", "preprocess", "train"}) {
		t.Errorf("container runs %q, want one preprocess, train and evaluate each", modes)
	}

	// Outputs: mean_dice from evaluate's dllogger file, training's best epoch.
	ev := run.Steps["evaluate"].Outputs
	for k, v := range map[string]string{"mean_dice": "0.71", "dice_l1": "0.79", "dice_l2": "0.58", "dice_l3": "0.76"} {
		if ev[k] != v {
			t.Errorf("evaluate output %s = %q, want %q", k, ev[k], v)
		}
	}
	// The fake trains epochs 0..2 and, as main.py, logs 0 and 2.
	tr := run.Steps["train"].Outputs
	for k, v := range map[string]string{"best_mean_dice": "63.5", "best_epoch": "2", "epochs": "3", "best_dice_l1": "70", "best_dice_l3": "65"} {
		if tr[k] != v {
			t.Errorf("train output %s = %q, want %q", k, tr[k], v)
		}
	}

	// Checkpoints and the evaluation reached the results bucket.
	prefix := "unet-brain/" + r.id + "/01_2d/fold_0/"
	if got, err := r.e.getObject(t, prefix+"checkpoints/last.ckpt"); err != nil || got != "ckpt fold 0 epoch 2\n" {
		t.Errorf("s3://%s/%scheckpoints/last.ckpt: %q, %v", e2eResultsBucket, prefix, got, err)
	}
	if got, err := r.e.getObject(t, prefix+"eval/eval_log.json"); err != nil || !strings.Contains(got, `"Mean dice": 0.71`) {
		t.Errorf("s3://%s/%seval/eval_log.json: %q, %v", e2eResultsBucket, prefix, got, err)
	}
}

// TestUnetSpecsValidateAndPlan: both specs validate and plan, with the
// defaults (an instance of their own) and with host=local, as the README
// shows them.
func TestUnetSpecsValidateAndPlan(t *testing.T) {
	repo := repoRoot(t)
	specs := []string{filepath.Join(repo, "specs", "unet-brain.yaml"), filepath.Join(repo, "specs", "unet-brain-5fold.yaml")}
	gpipe := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := runMain(args, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }); code != 0 {
			t.Fatalf("gpipe %s exited %d:\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	out := gpipe(append([]string{"validate"}, specs...)...)
	if strings.Count(out, ": valid") != 2 {
		t.Errorf("gpipe validate:\n%s", out)
	}
	for _, sp := range specs {
		for _, args := range [][]string{
			{"plan", "-p", "results_bucket=my-results", sp},
			{"plan", "--format", "mermaid", sp},
			{"plan", "-p", "results_bucket=my-results", "-p", "host=local", "-p", "data_dir=/scratch", sp},
		} {
			out := gpipe(args...)
			for _, step := range []string{"provision", "disk", "host-setup", "fetch", "pull-image", "preprocess", "train", "evaluate", "teardown"} {
				if !strings.Contains(out, step) {
					t.Errorf("gpipe %s: no step %s:\n%s", strings.Join(args, " "), step, out)
				}
			}
		}
	}
}

// TestUnetFakesShellcheck keeps the fake tools of the e2e test honest bash.
func TestUnetFakesShellcheck(t *testing.T) {
	sc := testtool.Shellcheck(t)
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "testdata", "unet", "bin", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fakes in testdata/unet/bin: %v", err)
	}
	if out, err := exec.Command(sc, append([]string{"--shell=bash", "--severity=style"}, files...)...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
