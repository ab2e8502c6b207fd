//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// The spot run's training: epochs 0..spotLastEpoch, each a little time, so
// that an interruption lands in the middle of it. A notice takes a while to
// stop the training: the interrupter's poll (50 ms), the wrapper's metadata
// poll (0.1 s in the fake), the training's notice watcher (1 s), the epoch
// under way (0.3 s), more on a loaded machine; each instance trains on for
// that long after its second epoch. The second instance must still have
// epochs left then, or the third has nothing to resume: with 9 as the last
// epoch it had 3 (0.9 s) and CI once saw it finish them all. 19 leaves the
// second instance about 13 epochs (~4 s) of slack.
const (
	spotLastEpoch    = 19
	spotEpochSeconds = "0.3"
	// spotTermination is the time from a notice to the instance's end: two
	// minutes in EC2, enough here for the training to stop and sync.
	spotTermination = 8 * time.Second
)

// TestUnetSpotInterruptedTwice runs specs/unet-brain.yaml with -p
// market=spot on the instances its stacks launch (the SSM fake runs their
// commands on this machine, each instance with folders of its own: its own
// docker images, disks and home; a new filesystem shows nothing of the old
// instance's files), and interrupts the training's instance twice, each time
// once two epochs were checkpointed there. The run must replace the
// instance each time, the second stack in another zone, rerun the host's
// chain (provision, host-setup, disk, fetch, pull-image, preprocess) and
// the training, which resumes from the checkpoint the interrupted instance
// synced to S3 on its notice, and finish: evaluate and teardown once, every
// stack deleted, every epoch trained exactly once.
func TestUnetSpotInterruptedTwice(t *testing.T) {
	t.Parallel()
	e := newUnetE2E(t)
	e.aws.CFN.PhaseTime = 50 * time.Millisecond
	e.aws.SSM.BootPolls = 0
	source, md5 := e.putArchive(t, "mirror/"+task01+".tar", msdTask01(t, 3))
	r := e.newRun(t, "unet-spot", "FAKE_WANT_HPUS=8")
	epochLog := filepath.Join(r.dir, "epochs")
	e.aws.SSM.Env = r.instanceEnv(t, "FAKE_WANT_HPUS=8", "FAKE_LAST_EPOCH="+strconv.Itoa(spotLastEpoch),
		"FAKE_EPOCH_SECONDS="+spotEpochSeconds, "FAKE_EPOCH_LOG="+epochLog)

	spec := filepath.Join(e.repo, "specs", "unet-brain.yaml")
	args := []string{"run", "--state", r.stateURL, "--run-id", r.id,
		"-p", "results_bucket=" + e2eResultsBucket, "-p", "data_dir=" + r.data,
		"-p", "msd_source=" + source, "-p", "msd_md5=" + md5, "-p", "market=spot"}
	r.underPolicy(t, args, spec)
	wait := r.startGpipe(t, append(args, spec)...)

	// Interrupt an instance once it checkpointed two epochs, twice.
	stop := make(chan struct{})
	var mu sync.Mutex
	var lost []string
	var interrupter sync.WaitGroup
	interrupter.Add(1)
	go func() {
		defer interrupter.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			mu.Lock()
			n := len(lost)
			mu.Unlock()
			if n == 2 {
				return
			}
			count := map[string]int{}
			for _, l := range spotEpochs(t, epochLog) {
				count[l.instance]++
			}
			for inst, c := range count {
				mu.Lock()
				if c >= 2 && !slices.Contains(lost, inst) {
					e.aws.EC2.Interrupt(inst, spotTermination)
					lost = append(lost, inst)
				}
				mu.Unlock()
			}
		}
	}()
	code, out := wait(t)
	close(stop)
	interrupter.Wait()
	if code != 0 || len(lost) != 2 {
		t.Fatalf("gpipe run exited %d after %d interruptions, want 0 after 2:\n%s", code, len(lost), out)
	}

	run := r.status(t)
	wantSteps(t, run, out, map[string]state.StepStatus{"provision": state.StepSucceeded, "host-setup": state.StepSucceeded,
		"disk": state.StepSucceeded, "fetch": state.StepSucceeded, "pull-image": state.StepSucceeded, "preprocess": state.StepSucceeded,
		"train": state.StepSucceeded, "evaluate": state.StepSucceeded, "teardown": state.StepSucceeded})
	// The host's chain and the training ran once per instance; nothing else
	// ran twice.
	chain := []string{"provision", "host-setup", "disk", "fetch", "pull-image", "preprocess", "train"}
	for id, st := range run.Steps {
		want := 1
		if slices.Contains(chain, id) {
			want = 3
		}
		if len(st.Attempts) != want {
			t.Errorf("step %s ran %d attempts, want %d: %s", id, len(st.Attempts), want, fmtAttempts(st))
		}
	}
	if len(run.HostLosses) != 2 {
		t.Fatalf("host losses %+v, want 2", run.HostLosses)
	}
	for i, l := range run.HostLosses {
		if l.Step != "train" || l.Address != "ssm:"+lost[i] || l.Failed != "" || !strings.Contains(l.Cause, "spot interruption notice") {
			t.Errorf("loss %d: %+v, want train's on ssm:%s by a spot notice, replaced", i, l, lost[i])
		}
		slices.Sort(l.Rerun)
		if want := slices.Sorted(slices.Values(chain)); !slices.Equal(l.Rerun, want) {
			t.Errorf("loss %d reran %v, want %v", i, l.Rerun, want)
		}
	}

	// Three spot stacks, each instance in another zone than the one lost
	// before it, all deleted.
	var zones []string
	var stacks []string
	for _, f := range e.aws.CFN.Creates() {
		params := map[string]string{}
		for i := 1; f.Get("Parameters.member."+strconv.Itoa(i)+".ParameterKey") != ""; i++ {
			params[f.Get("Parameters.member."+strconv.Itoa(i)+".ParameterKey")] = f.Get("Parameters.member." + strconv.Itoa(i) + ".ParameterValue")
		}
		if params["RunId"] != r.id {
			continue
		}
		if params["MarketType"] != "spot" {
			t.Errorf("stack %s launched in market %q, want spot", f.Get("StackName"), params["MarketType"])
		}
		zones = append(zones, params["AvailabilityZone"])
		stacks = append(stacks, f.Get("StackName"))
	}
	if len(zones) != 3 || zones[1] == zones[0] || zones[2] == zones[1] {
		t.Errorf("stacks %v in zones %v, want three, each in another zone than the one before", stacks, zones)
	}
	for i, inst := range lost {
		if z := e.aws.EC2.Zone(inst); i < len(zones) && z != zones[i] {
			t.Errorf("instance %s of stack %d is in %s, its stack's zone is %s", inst, i+1, z, zones[i])
		}
	}
	for _, st := range e.aws.CFN.Stacks() {
		if st.Tags["gpipe:run-id"] == r.id && st.Status != "DELETE_COMPLETE" {
			t.Errorf("stack %s is %s, want DELETE_COMPLETE", st.Name, st.Status)
		}
	}

	// Every epoch trained exactly once, in order, over three instances; the
	// second and third resumed from the last epoch the one before them
	// checkpointed, which it had synced to S3 on its notice (the new
	// instance's disk starts empty).
	epochs := spotEpochs(t, epochLog)
	var insts []string
	for i, l := range epochs {
		if l.epoch != i {
			t.Fatalf("epoch %d trained as the %dth; epochs: %v", l.epoch, i+1, epochs)
		}
		if len(insts) == 0 || insts[len(insts)-1] != l.instance {
			insts = append(insts, l.instance)
		}
	}
	if len(epochs) != spotLastEpoch+1 || len(insts) != 3 || !slices.Equal(insts[:2], lost) {
		t.Fatalf("epochs %v on instances %v, want 0..%d on the two interrupted (%v) and a third", epochs, insts, spotLastEpoch, lost)
	}
	for i, inst := range insts {
		resumed, err := os.ReadFile(filepath.Join(r.dir, "instances", inst, "docker", "resumed"))
		if i == 0 {
			if err == nil {
				t.Errorf("the first instance resumed a training: %s", resumed)
			}
			continue
		}
		last := -1
		for _, l := range epochs {
			if l.instance == insts[i-1] {
				last = l.epoch
			}
		}
		want := fmt.Sprintf("%s/01_2d/fold_0/checkpoints/last.ckpt: ckpt fold 0 epoch %d\n", filepath.Join(r.data, "results"), last)
		if string(resumed) != want {
			t.Errorf("instance %d (%s) resumed %q, want from epoch %d, the last of %s: %q (%v)", i+1, inst, resumed, last, insts[i-1], want, err)
		}
	}
	if got, err := e.getObject(t, "unet-brain/"+r.id+"/01_2d/fold_0/checkpoints/last.ckpt"); err != nil || got != fmt.Sprintf("ckpt fold 0 epoch %d\n", spotLastEpoch) {
		t.Errorf("last checkpoint in S3: %q, %v", got, err)
	}
	t.Logf("stacks %v in zones %v; epochs %v", stacks, zones, epochs)
	for _, want := range []string{"spot interruption notice", "stopping the training to save its checkpoints"} {
		if !strings.Contains(out, want) {
			t.Errorf("the run's output does not say %q:\n%s", want, out)
		}
	}
}

type spotEpoch struct {
	instance string
	epoch    int
}

// spotEpochs reads the fake training's record: instance and epoch per line.
func spotEpochs(t *testing.T, name string) []spotEpoch {
	b, err := os.ReadFile(name)
	if err != nil && !os.IsNotExist(err) {
		t.Error(err)
	}
	var out []spotEpoch
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		inst, ep, ok := strings.Cut(l, " ")
		n, err := strconv.Atoi(ep)
		if ok && err == nil {
			out = append(out, spotEpoch{inst, n})
		}
	}
	return out
}

// instanceEnv returns the SSM fake's environment for the commands of each
// instance: the run's, with folders of the instance's own (docker's images
// and containers, the disks, home, the machine's root that prepare-disk
// moves from), made and booted on its first command, as a new machine.
func (r *unetRun) instanceEnv(t *testing.T, extra ...string) func(string) []string {
	var mu sync.Mutex
	made := map[string]bool{}
	return func(inst string) []string {
		dir := filepath.Join(r.dir, "instances", inst)
		home, root, fake, disk := filepath.Join(dir, "home"), filepath.Join(dir, "root"), filepath.Join(dir, "docker"), filepath.Join(dir, "disk")
		mu.Lock()
		defer mu.Unlock()
		if !made[inst] {
			made[inst] = true
			for name, content := range map[string]string{
				filepath.Join(root, "var/lib/docker/image/db"): "docker data",
				filepath.Join(root, home, ".cache/pip/wheel"):  "wheel",
				filepath.Join(disk, "units", "docker.service"): "",
				filepath.Join(disk, "units", "docker.socket"):  "",
				filepath.Join(home, ".keep"):                   "",
				filepath.Join(fake, ".keep"):                   "",
				filepath.Join(dir, "dev", ".keep"):             "",
				filepath.Join(dir, "tmp", ".keep"):             "",
			} {
				if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
					t.Error(err)
				}
				if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
					t.Error(err)
				}
			}
		}
		env := append([]string(nil), r.env...)
		return append(append(env, "HOME="+home, "TMPDIR="+filepath.Join(dir, "tmp"), "GPIPE_MOVE_ROOT="+root,
			"GPIPE_DEV_DIR="+filepath.Join(dir, "dev"), "FAKE_DIR="+fake, "FAKE_DISK_STATE="+disk), extra...)
	}
}
