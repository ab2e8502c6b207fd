//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// interruptedSpec stands in for the unet chain on a spot instance: provision, a
// step that prepares the machine, one on the runner, and a training that
// resumes from its checkpoint (a file here, as S3 is for train-unet: every
// fake instance is this machine) and records each epoch with the instance
// it ran on.
const interruptedSpec = `version: 1
name: spot
max_host_losses: MAX
params:
  dir: {type: string}
hosts:
  box: {address: "${{ steps.provision.outputs.host }}"}
env:
  DIR: ${{ params.dir }}
steps:
  - id: provision
    type: provision-stack
    with: {market: spot, availability_zones: [us-east-1a, us-east-1b]}
  - id: prepare
    type: shell
    needs: [provision]
    host: box
    with: {run: 'echo "$AWS_SSM_INSTANCE_ID" >>"$DIR/prepare"'}
  - id: local
    type: shell
    needs: [provision]
    with: {run: 'echo ran >>"$DIR/local"'}
  - id: train
    type: shell
    needs: [prepare, local]
    host: box
    with:
      run: |
        epoch=$(cat "$DIR/ckpt" 2>/dev/null || echo 0)
        echo "resuming after epoch $epoch"
        while [ "$epoch" -lt 15 ]; do
          epoch=$((epoch + 1))
          sleep 0.2
          echo "$epoch" >"$DIR/ckpt"
          echo "$AWS_SSM_INSTANCE_ID $epoch" >>"$DIR/epochs"
        done
        echo "epochs=$epoch" >>"$GPIPE_OUTPUT"
  - id: teardown
    type: teardown
    needs: [train]
    if: always()
    cleans: [provision]
    with: {stack: "${{ steps.provision.outputs.stack_name }}"}
`

// epochLines reads the training's record: instance and epoch per line.
func epochLines(t *testing.T, dir string) [][2]string {
	b, err := os.ReadFile(filepath.Join(dir, "epochs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out [][2]string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if inst, ep, ok := strings.Cut(l, " "); ok {
			out = append(out, [2]string{inst, ep})
		}
	}
	return out
}

// runSpotInterrupted runs interruptedSpec and interrupts the training's instance
// twice, each time once it trained two epochs there, and returns gpipe's
// result and the instances interrupted.
func runSpotInterrupted(t *testing.T, maxLosses int) (*awsCLI, gpipeResult, []string, string) {
	c := newAWSCLI(t, false)
	addUbuntuImage(c.aws, "ami-0f1e000000000001")
	c.aws.SSM.BootPolls = 0
	work := filepath.Join(c.dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.dir, "spec.yaml"), strings.Replace(interruptedSpec, "MAX", strconv.Itoa(maxLosses), 1))

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.gpipe, "run", "--yes", "--state", c.stateURL, "--run-id", "s1", "-p", "dir="+work, "spec.yaml")
	cmd.Dir, cmd.Env = c.dir, c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var lost []string
	var err error
	waiting := true
	for waiting {
		select {
		case err = <-exited:
			waiting = false
			continue
		case <-time.After(50 * time.Millisecond):
		}
		if len(lost) == 2 {
			continue
		}
		// Two epochs on an instance not interrupted yet: interrupt it.
		n := 0
		var inst string
		for _, l := range epochLines(t, work) {
			if !slices.Contains(lost, l[0]) {
				inst = l[0]
				n++
			}
		}
		if n >= 2 {
			c.aws.EC2.Interrupt(inst, 300*time.Millisecond)
			lost = append(lost, inst)
		}
	}
	res := gpipeResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("gpipe run still running after 3m (killed)\n%s", res)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return c, res, lost, work
}

// TestSpotInterruptedTwiceFinishes: the training's instance is interrupted
// twice (a spot notice, then termination); with max_host_losses: 2 the run
// re-provisions each time, the second stack in the other zone, reruns the
// machine's preparation and the training, which goes on from its
// checkpoint, and succeeds. The step on the runner runs once, every stack
// is deleted at the end, and each loss is in the run state.
func TestSpotInterruptedTwiceFinishes(t *testing.T) {
	t.Parallel()
	c, res, lost, work := runSpotInterrupted(t, 2)
	if res.code != 0 || len(lost) != 2 {
		t.Fatalf("want exit 0 after two interruptions (made %d)\n%s", len(lost), res)
	}
	run := readRun(t, c, "s1")
	attempts := map[string]int{}
	for id, st := range run.Steps {
		attempts[id] = len(st.Attempts)
	}
	if want := map[string]int{"provision": 3, "prepare": 3, "train": 3, "local": 1, "teardown": 1}; !mapsEqual(attempts, want) {
		t.Errorf("attempts %v, want %v", attempts, want)
	}
	if len(run.HostLosses) != 2 {
		t.Fatalf("host losses %+v", run.HostLosses)
	}
	zones := []string{run.HostLosses[0].Zone, run.HostLosses[1].Zone}
	if zones[0] != "us-east-1a" || zones[1] != "us-east-1b" {
		t.Errorf("lost in zones %v, want the first stack in us-east-1a and the second in the other zone", zones)
	}
	for i, l := range run.HostLosses {
		if l.Step != "train" || l.Address != "ssm:"+lost[i] || !slices.Equal(l.Rerun, []string{"provision", "prepare", "train"}) || l.Failed != "" {
			t.Errorf("loss %d: %+v", i, l)
		}
	}
	// The training went on from its checkpoint on each new instance.
	lines := epochLines(t, work)
	for i := 1; i < len(lines); i++ {
		cur, _ := strconv.Atoi(lines[i][1])
		if lines[i][0] != lines[i-1][0] && cur <= 2 {
			t.Errorf("training restarted from scratch on %s: %v", lines[i][0], lines)
		}
	}
	if last := lines[len(lines)-1]; last[1] != "15" || slices.Contains(lost, last[0]) {
		t.Errorf("last epoch %v", last)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "local")); string(b) != "ran\n" {
		t.Errorf("the runner's step ran %q", b)
	}
	wantAllDeleted(t, c)
	if out := res.stdout + res.stderr; !strings.Contains(out, "host box") || !strings.Contains(out, "lost") {
		t.Errorf("the console does not mention the losses:\n%s", res)
	}
	wantSpotCost(t, c, res)
}

// TestSpotInterruptedBeyondLimitFails: with max_host_losses: 1 the second
// interruption fails the run (exit 5) naming the limit; teardown still
// deletes every stack.
func TestSpotInterruptedBeyondLimitFails(t *testing.T) {
	t.Parallel()
	c, res, lost, _ := runSpotInterrupted(t, 1)
	if res.code != exitHostLost || len(lost) != 2 || !strings.Contains(res.stdout+res.stderr, "not replaced: this is host loss 2 and max_host_losses is 1") {
		t.Fatalf("want exit %d naming the limit after two interruptions (made %d)\n%s", exitHostLost, len(lost), res)
	}
	run := readRun(t, c, "s1")
	if len(run.HostLosses) != 2 || run.HostLosses[1].Failed == "" || run.Steps["teardown"].Status != "succeeded" {
		t.Errorf("losses %+v, teardown %s", run.HostLosses, run.Steps["teardown"].Status)
	}
	wantAllDeleted(t, c)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
