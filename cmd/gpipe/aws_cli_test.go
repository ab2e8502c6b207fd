//go:build unix

package main

// Tests of `gpipe teardown` and `gpipe gc` as a user runs them: the real
// binary (testscript.Main registers it) in a subprocess, the real AWS SDK
// pointed at the wire fake of steps/aws through AWS_ENDPOINT_URL, S3 on
// versitygw through AWS_ENDPOINT_URL_S3 where a stack owns a bucket, and run
// states in a file store, made by a killed runner or written directly.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store"
)

// awsCLI is one test's fake AWS account, state store and gpipe environment.
type awsCLI struct {
	aws      *awsfake.Server
	gw       *testtool.S3Server // nil: no S3 endpoint (the stacks own no bucket)
	gpipe    string
	dir      string
	stateURL string
	env      []string
}

func newAWSCLI(t *testing.T, withS3 bool) *awsCLI {
	t.Helper()
	gpipe, err := exec.LookPath("gpipe")
	if err != nil {
		t.Fatalf("gpipe is not on PATH (testscript.Main puts the test binary there): %v", err)
	}
	c := &awsCLI{gpipe: gpipe, dir: t.TempDir()}
	c.stateURL = "file://" + filepath.Join(c.dir, "state")
	opt := awsfake.Options{}
	if withS3 {
		// The fake checks every signature, so it and versitygw share keys.
		c.gw = testtool.Versitygw(t)
		opt = awsfake.Options{AccessKey: c.gw.AccessKey, SecretKey: c.gw.SecretKey, S3Endpoint: c.gw.Endpoint}
	}
	c.aws = awsfake.New(t, opt)
	// Stacks take real time here: a phase every 50ms keeps the tests fast.
	c.aws.CFN.PhaseTime = 50 * time.Millisecond
	key, secret := "AKIDGPIPETEST", "gpipe-test-secret" // awsfake's default credentials
	if withS3 {
		key, secret = c.gw.AccessKey, c.gw.SecretKey
	}
	c.env = isolatedAWSEnv(c.dir,
		"AWS_ACCESS_KEY_ID="+key,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_REGION="+awsfake.Region,
		"AWS_ENDPOINT_URL="+c.aws.URL)
	if withS3 {
		c.env = append(c.env, "AWS_ENDPOINT_URL_S3="+c.gw.Endpoint)
	}
	return c
}

// isolatedAWSEnv is an environment in which the SDK finds no configuration
// of the machine's: no shared files, no instance metadata, only what is given.
func isolatedAWSEnv(dir string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"NO_COLOR=1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-aws-credentials"),
	}
	if d := os.Getenv("GOCOVERDIR"); d != "" {
		env = append(env, "GOCOVERDIR="+d)
	}
	return append(env, extra...)
}

// gpipeResult is one finished gpipe process.
type gpipeResult struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r gpipeResult) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout:\n%sstderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// runGpipe runs the binary in dir with env; a process still running after
// limit is a hang and fails the test.
func runGpipe(t *testing.T, bin, dir string, env []string, limit time.Duration, args ...string) gpipeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := gpipeResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("gpipe %s still running after %v (killed)\n%s", strings.Join(args, " "), limit, res)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("gpipe %s: %v", strings.Join(args, " "), err)
	}
	return res
}

func (c *awsCLI) gpipeCmd(t *testing.T, args ...string) gpipeResult {
	t.Helper()
	return runGpipe(t, c.gpipe, c.dir, c.env, time.Minute, args...)
}

// sgTemplate is a stack that owns no bucket, so deleting it needs no S3.
const sgTemplate = `Resources:
  SecurityGroup:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: gpipe test}
`

// createStack creates a CREATE_COMPLETE stack through the SDK, tagged as
// provision-stack tags its stacks when runID is not empty.
func (c *awsCLI) createStack(t *testing.T, name, runID string) {
	t.Helper()
	api := cloudformation.NewFromConfig(c.aws.Config(nil))
	in := &cloudformation.CreateStackInput{StackName: sdkaws.String(name), TemplateBody: sdkaws.String(sgTemplate)}
	if runID != "" {
		in.Tags = []cfntypes.Tag{{Key: sdkaws.String("gpipe:run-id"), Value: sdkaws.String(runID)},
			{Key: sdkaws.String("gpipe:step"), Value: sdkaws.String("provision")}}
	}
	if _, err := api.CreateStack(t.Context(), in); err != nil {
		t.Fatalf("create stack %s: %v", name, err)
	}
	// The fake's stacks advance with its clock (here the real one).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := api.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: sdkaws.String(name)})
		if err != nil {
			t.Fatalf("describe stack %s: %v", name, err)
		}
		if out.Stacks[0].StackStatus == cfntypes.StackStatusCreateComplete {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("stack %s did not reach CREATE_COMPLETE within 10s", name)
}

// stackStatus is the status of the newest stack of that name in the fake.
func (c *awsCLI) stackStatus(t *testing.T, name string) string {
	t.Helper()
	stacks := c.aws.CFN.Stacks()
	for i := len(stacks) - 1; i >= 0; i-- {
		if stacks[i].Name == name {
			return stacks[i].Status
		}
	}
	t.Fatalf("the fake has no stack %s", name)
	return ""
}

// putRun stores a run document as a runner would have left it.
func (c *awsCLI) putRun(t *testing.T, run *state.Run) {
	t.Helper()
	st, err := store.Open(t.Context(), c.stateURL)
	if err != nil {
		t.Fatal(err)
	}
	run.SchemaVersion = state.SchemaVersion
	run.Created, run.Updated = time.Now().Add(-2*time.Hour).UTC(), time.Now().Add(-time.Hour).UTC()
	doc, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(t.Context(), run.ID, doc); err != nil {
		t.Fatalf("store run %s: %v", run.ID, err)
	}
}

// foreignLease is a lease of a runner on another host, expiring at exp.
func foreignLease(exp time.Time) *state.Lease {
	return &state.Lease{Owner: "ci-runner-7:4242:x1", Host: "ci-runner-7", PID: 4242,
		Acquired: exp.Add(-time.Hour).UTC(), Renewed: exp.Add(-30 * time.Second).UTC(), Expires: exp.UTC()}
}

// gcRun is a run whose stack gc finds: status "" means the store has no
// such run; why "" means gc must keep its stack.
type gcRun struct {
	id     string
	status state.RunStatus
	lease  *state.Lease
	why    string
}

// gcRuns returns, by id, runs of the kinds gc tells apart.
func gcRuns(ids ...string) []gcRun {
	now := time.Now()
	all := []gcRun{
		{"done", state.RunSucceeded, nil, "run succeeded"},
		{"broke", state.RunFailed, nil, "run failed"},
		{"stopped", state.RunInterrupted, nil, "run interrupted"},
		{"abandoned", state.RunRunning, foreignLease(now.Add(-10 * time.Minute)), "runner's lease expired"},
		{"leaseless", state.RunRunning, nil, "run has no runner"},
		{"elsewhere", "", nil, "run not in this state store"},
		{"live", state.RunRunning, foreignLease(now.Add(10 * time.Minute)), ""},
		{"detached", state.RunDetached, nil, ""},
	}
	if len(ids) == 0 {
		return all
	}
	var out []gcRun
	for _, r := range all {
		if slices.Contains(ids, r.id) {
			out = append(out, r)
		}
	}
	return out
}

// TestGCYesDeletesListed: --yes deletes exactly the stacks gc lists. Every
// deletion waits through the stack's deletion polls (seconds), so this
// account has one stray of each kind of reason (finished, abandoned,
// unknown) rather than one of every reason; TestGCListsStrays has those.
func TestGCYesDeletesListed(t *testing.T) {
	t.Parallel()
	testGC(t, true, gcRuns("done", "abandoned", "elsewhere", "live", "detached"))
}

// TestGCListsStrays: gc lists the stacks of runs that are over or abandoned,
// and only those, and deletes nothing without --yes.
func TestGCListsStrays(t *testing.T) {
	t.Parallel()
	testGC(t, false, gcRuns())
}

func testGC(t *testing.T, yes bool, runs []gcRun) {
	t.Helper()
	c := newAWSCLI(t, false)
	var strays []string
	for _, r := range runs {
		if r.status != "" {
			c.putRun(t, &state.Run{ID: r.id, Status: r.status, Lease: r.lease})
		}
		c.createStack(t, "gpipe-"+r.id+"-provision", r.id)
		if r.why != "" {
			strays = append(strays, "gpipe-"+r.id+"-provision")
		}
	}
	c.createStack(t, "not-gpipe", "")

	res := c.gpipeCmd(t, "gc", "--state", c.stateURL)
	if res.code != 0 {
		t.Fatalf("gc: %s", res)
	}
	listed := map[string]string{} // stack → row
	for _, line := range strings.Split(res.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] != "STACK" {
			listed[f[0]] = line
		}
	}
	for _, r := range runs {
		name := "gpipe-" + r.id + "-provision"
		row, ok := listed[name]
		switch {
		case r.why == "" && ok:
			t.Errorf("gc lists the stack of the %s run %s: %q", r.status, r.id, row)
		case r.why != "" && !ok:
			t.Errorf("gc does not list %s (%s)", name, r.why)
		case ok && !(strings.Contains(row, r.id) && strings.Contains(row, r.why) && strings.Contains(row, "CREATE_COMPLETE")):
			t.Errorf("gc row of %s: %q, want run id, CREATE_COMPLETE and %q", name, row, r.why)
		}
	}
	if _, ok := listed["not-gpipe"]; ok {
		t.Error("gc lists a stack gpipe did not tag")
	}
	if want := fmt.Sprintf("%d stack(s) to delete; run again with --yes", len(strays)); !strings.Contains(res.stdout, want) {
		t.Errorf("gc output lacks %q", want)
	}
	if n := c.aws.Calls("CloudFormation.DeleteStack"); n != 0 {
		t.Errorf("gc without --yes sent %d DeleteStack", n)
	}
	if t.Failed() {
		t.Fatalf("gc output:\n%s", res)
	}
	if !yes {
		return
	}

	res = c.gpipeCmd(t, "gc", "--yes", "--state", c.stateURL)
	if res.code != 0 {
		t.Fatalf("gc --yes: %s", res)
	}
	for _, s := range c.aws.CFN.Stacks() {
		want := "CREATE_COMPLETE"
		if slices.Contains(strays, s.Name) {
			want = "DELETE_COMPLETE"
		}
		if s.Status != want {
			t.Errorf("after gc --yes, stack %s is %s, want %s", s.Name, s.Status, want)
		}
	}

	res = c.gpipeCmd(t, "gc", "--state", c.stateURL)
	if res.code != 0 || strings.Contains(res.stdout, "to delete") || strings.Count(strings.TrimSpace(res.stdout), "\n") != 0 {
		t.Errorf("gc after gc --yes: want only the header\n%s", res)
	}
}

// bucketTemplate is a user template whose stack owns a bucket: CloudFormation
// cannot delete a bucket that holds objects, so teardown empties it first.
const bucketTemplate = `AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  RunId: {Type: String, MinLength: 1}
  ImageId: {Type: "AWS::EC2::Image::Id"}
Resources:
  Results:
    Type: AWS::S3::Bucket
  Instance:
    Type: AWS::EC2::Instance
    Properties: {ImageId: {Ref: ImageId}, InstanceType: dl1.24xlarge}
Outputs:
  InstanceId: {Value: {Ref: Instance}}
  ResultsBucket: {Value: {Ref: Results}}
`

// killedSpec provisions, then blocks in train until the test kills the
// runner; its own teardown (if: always()) therefore never runs.
const killedSpec = `version: 1
name: killed-aws
steps:
  - id: provision
    type: provision-stack
    with: {template: bucket.yaml}
  - id: train
    type: shell
    needs: [provision]
    with:
      run: |
        touch train.started
        sleep 300
  - id: teardown
    type: teardown
    needs: [train]
    if: always()
    with: {stack: "${{ steps.provision.outputs.stack_name }}"}
`

// TestTeardownKilledRunner: the runner is killed with -9 after provisioning;
// `gpipe teardown RUN_ID` finds the stack in the run's state, empties the
// bucket the stack owns, deletes the stack, and a second teardown finds
// nothing left to do.
func TestTeardownKilledRunner(t *testing.T) {
	t.Parallel()
	c := newAWSCLI(t, true)
	addUbuntuImage(c.aws, "ami-0c11000000000001")
	writeFile(t, filepath.Join(c.dir, "bucket.yaml"), bucketTemplate)
	writeFile(t, filepath.Join(c.dir, "spec.yaml"), killedSpec)
	const runID = "killed"

	killed := c.startKillable(t, "run", "--state", c.stateURL, "--run-id", runID, "spec.yaml")
	waitForFile(t, filepath.Join(c.dir, "train.started"), 45*time.Second, killed)
	st, err := store.Open(t.Context(), c.stateURL)
	if err != nil {
		t.Fatal(err)
	}
	// The step's start is saved with the runner's next commit, which a
	// loaded machine may not have made when the script already runs.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r, err := state.Read(t.Context(), st, runID); err == nil && r.Steps["train"] != nil && r.Steps["train"].Status == state.StepRunning {
			break
		}
	}
	out := killed.kill(t)

	run, err := state.Read(t.Context(), st, runID)
	if err != nil {
		t.Fatalf("read the killed run: %v\n%s", err, out)
	}
	stack := run.Steps["provision"].Outputs["stack_name"]
	if run.Status != state.RunRunning || run.Steps["train"].Status != state.StepRunning || stack == "" {
		t.Fatalf("killed run: status %s, train %s, stack %q; want running, running, a stack\n%s",
			run.Status, run.Steps["train"].Status, stack, out)
	}
	if got := c.stackStatus(t, stack); got != "CREATE_COMPLETE" {
		t.Fatalf("stack %s is %s before teardown", stack, got)
	}

	var bucket string
	for _, s := range c.aws.CFN.Stacks() {
		if s.Name == stack {
			bucket = s.Resources["Results"]
		}
	}
	// The fake's CloudFormation created the bucket on versitygw.
	s3c := s3.New(s3.Options{Region: awsfake.Region, BaseEndpoint: sdkaws.String(c.gw.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(c.gw.AccessKey, c.gw.SecretKey, "")})
	for i := range 3 {
		if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket,
			Key: sdkaws.String(fmt.Sprintf("fold-%d/ckpt.pt", i)), Body: strings.NewReader("weights")}); err != nil {
			t.Fatalf("put: %v", err)
		}
	}

	res := c.gpipeCmd(t, "teardown", "--state", c.stateURL, runID)
	if res.code != 0 {
		t.Fatalf("teardown: %s", res)
	}
	for _, want := range []string{"emptied bucket " + bucket + " (3 object versions deleted)", "stack " + stack + " deleted"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("teardown output lacks %q:\n%s", want, res)
		}
	}
	if got := c.stackStatus(t, stack); got != "DELETE_COMPLETE" {
		t.Errorf("stack %s is %s after teardown, want DELETE_COMPLETE", stack, got)
	}
	// CloudFormation deleted the emptied bucket with the stack.
	var nsb *s3types.NoSuchBucket
	if _, err := s3c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: &bucket}); !errors.As(err, &nsb) {
		t.Errorf("bucket %s after teardown: err = %v, want NoSuchBucket", bucket, err)
	}

	// The run's state knows: its cost stops counting, and nothing is held.
	if run.Steps["provision"].Outputs["launch_time"] == "" {
		t.Errorf("provision recorded no launch_time: %v", run.Steps["provision"].Outputs)
	}
	after, err := state.Read(t.Context(), st, runID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Steps["provision"].Released == nil {
		t.Error("gpipe teardown did not record the deletion in the run's state")
	}
	status := c.gpipeCmd(t, "status", "--state", c.stateURL, runID)
	if strings.Contains(status.stdout, "still up") || strings.Contains(status.stdout, "gpipe teardown") {
		t.Errorf("status after teardown still counts the instance or asks for a teardown:\n%s", status)
	}

	deletes := c.aws.Calls("CloudFormation.DeleteStack")
	res = c.gpipeCmd(t, "teardown", "--state", c.stateURL, runID)
	if res.code != 0 || !strings.Contains(res.stdout, "stack "+stack+" does not exist: nothing to delete") {
		t.Errorf("second teardown: want exit 0 and nothing to delete\n%s", res)
	}
	if n := c.aws.Calls("CloudFormation.DeleteStack"); n != deletes {
		t.Errorf("second teardown sent %d DeleteStack", n-deletes)
	}
}

// TestTeardownFindsStackByTag: a provision step interrupted before the stack
// name reached the state leaves a stack only its gpipe:run-id tag ties to
// the run; teardown finds it that way and deletes it alone.
func TestTeardownFindsStackByTag(t *testing.T) {
	t.Parallel()
	c := newAWSCLI(t, false)
	c.putRun(t, &state.Run{ID: "halfway", Status: state.RunRunning, Lease: foreignLease(time.Now().Add(-time.Hour)),
		Steps: map[string]*state.Step{"provision": {ID: "provision", Type: "provision-stack", Status: state.StepRunning}},
		Order: []string{"provision"}})
	c.createStack(t, "gpipe-halfway-provision", "halfway")
	c.createStack(t, "gpipe-other-provision", "other") // another run's
	c.createStack(t, "not-gpipe", "")

	res := c.gpipeCmd(t, "teardown", "--state", c.stateURL, "halfway")
	if res.code != 0 || !strings.Contains(res.stdout, "stack gpipe-halfway-provision deleted") {
		t.Fatalf("teardown: want exit 0 and the tagged stack deleted\n%s", res)
	}
	for name, want := range map[string]string{"gpipe-halfway-provision": "DELETE_COMPLETE",
		"gpipe-other-provision": "CREATE_COMPLETE", "not-gpipe": "CREATE_COMPLETE"} {
		if got := c.stackStatus(t, name); got != want {
			t.Errorf("stack %s: %s, want %s", name, got, want)
		}
	}

	res = c.gpipeCmd(t, "teardown", "--state", c.stateURL, "halfway")
	if res.code != 0 || !strings.Contains(res.stdout, "run halfway has no stacks left") {
		t.Errorf("second teardown: want exit 0 and no stacks left\n%s", res)
	}
}

// TestTeardownGCAWSErrors: without a reachable endpoint, an endpoint that
// answers, credentials or a region, teardown and gc fail with exit 1 and an
// error that says what is wrong, promptly: no panic, no hang.
func TestTeardownGCAWSErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gpipe, err := exec.LookPath("gpipe")
	if err != nil {
		t.Fatalf("gpipe is not on PATH: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() // nothing listens there once closed
	l.Close()
	creds := []string{"AWS_ACCESS_KEY_ID=AKIDGPIPETEST", "AWS_SECRET_ACCESS_KEY=gpipe-test-secret", "AWS_REGION=us-east-1"}
	silent := blackHole(t)
	cases := []struct {
		name string
		env  []string
		want []string
	}{
		{"unreachable", append([]string{"AWS_ENDPOINT_URL=" + closed}, creds...),
			[]string{"list gpipe stacks", "connection refused"}},
		// Without a bound on the response, this one hung until killed.
		{"never answers", append([]string{"AWS_ENDPOINT_URL=" + silent, "GPIPE_AWS_RESPONSE_TIMEOUT=200ms"}, creds...),
			[]string{"list gpipe stacks", "timeout awaiting response headers"}},
		{"bad response timeout", append([]string{"AWS_ENDPOINT_URL=" + silent, "GPIPE_AWS_RESPONSE_TIMEOUT=soon"}, creds...),
			[]string{`GPIPE_AWS_RESPONSE_TIMEOUT="soon": want a positive duration`}},
		{"no credentials", []string{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + closed},
			[]string{"list gpipe stacks", "get credentials", "hint: no AWS credentials found"}},
		{"no region", []string{"AWS_ENDPOINT_URL=" + closed, "AWS_ACCESS_KEY_ID=AKIDGPIPETEST", "AWS_SECRET_ACCESS_KEY=gpipe-test-secret"},
			[]string{"no region: set AWS_REGION"}},
	}
	for _, tc := range cases {
		for _, args := range [][]string{{"teardown", "r1"}, {"gc"}, {"gc", "--yes"}} {
			t.Run(tc.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				args = append(args[:1:1], append([]string{"--state", "file://" + filepath.Join(dir, "state")}, args[1:]...)...)
				res := runGpipe(t, gpipe, dir, isolatedAWSEnv(dir, tc.env...), 30*time.Second, args...)
				if res.code != 1 {
					t.Errorf("exit %d, want 1", res.code)
				}
				// One error line, optionally followed by one hint line.
				msg := strings.TrimSpace(res.stderr)
				lines := strings.Split(msg, "\n")
				if !strings.HasPrefix(msg, "gpipe: ") || len(lines) > 2 ||
					(len(lines) == 2 && !strings.HasPrefix(lines[1], "gpipe: hint: ")) {
					t.Errorf("want one line of error on stderr, beginning gpipe:, and at most a hint")
				}
				for _, w := range tc.want {
					if !strings.Contains(msg, w) {
						t.Errorf("error lacks %q", w)
					}
				}
				if strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine ") {
					t.Error("gpipe panicked")
				}
				if res.took > 15*time.Second {
					t.Errorf("took %v to give up", res.took)
				}
				if t.Failed() {
					t.Logf("%s", res)
				}
			})
		}
	}
}

// blackHole returns the URL of a server that accepts connections and never
// answers.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []net.Conn)
	go func() {
		var conns []net.Conn // held open, unanswered
		for {
			c, err := l.Accept()
			if err != nil {
				done <- conns
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for _, c := range <-done {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// killable is a gpipe in its own process group, so that kill -9 takes its
// step's processes (train's sleep) with it, as a lost machine would.
type killable struct {
	cmd  *exec.Cmd
	out  *lockedBuffer // lockedBuffer is s3cli_test.go's
	done chan error
}

func (c *awsCLI) startKillable(t *testing.T, args ...string) *killable {
	t.Helper()
	cmd := exec.Command(c.gpipe, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	k := &killable{cmd: cmd, out: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = k.out, k.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gpipe: %v", err)
	}
	go func() { k.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	})
	return k
}

// kill sends SIGKILL to the process group and returns gpipe's output.
func (k *killable) kill(t *testing.T) string {
	t.Helper()
	if err := syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill gpipe: %v", err)
	}
	err := <-k.done
	k.done <- err // for the cleanup
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("gpipe ended with %v before the kill:\n%s", err, k.out)
	}
	return k.out.String()
}

// waitForFile waits until path exists; it fails early when gpipe exits first.
func waitForFile(t *testing.T, path string, limit time.Duration, k *killable) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-k.done:
			k.done <- err
			t.Fatalf("gpipe exited (%v) before %s appeared:\n%s", err, filepath.Base(path), k.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not appear within %v:\n%s", filepath.Base(path), limit, k.out)
}

// TestTeardownRefusesLiveRun: teardown is for runs whose runner is gone; a
// live runner's stack stays unless --force, and the refusal exits 3 naming
// the holder.
func TestTeardownRefusesLiveRun(t *testing.T) {
	t.Parallel()
	c := newAWSCLI(t, false)
	c.putRun(t, &state.Run{ID: "busy", Status: state.RunRunning, Lease: foreignLease(time.Now().Add(10 * time.Minute))})
	c.createStack(t, "gpipe-busy-provision", "busy")

	res := c.gpipeCmd(t, "teardown", "--state", c.stateURL, "busy")
	if res.code != exitHeld || !strings.Contains(res.stderr, "host ci-runner-7, pid 4242") {
		t.Fatalf("teardown of a live run: want exit %d naming the holder\n%s", exitHeld, res)
	}
	if got := c.stackStatus(t, "gpipe-busy-provision"); got != "CREATE_COMPLETE" {
		t.Fatalf("stack of a live run: %s, want CREATE_COMPLETE", got)
	}
	res = c.gpipeCmd(t, "teardown", "--force", "--state", c.stateURL, "busy")
	if res.code != 0 || c.stackStatus(t, "gpipe-busy-provision") != "DELETE_COMPLETE" {
		t.Fatalf("teardown --force: want exit 0 and the stack deleted\n%s", res)
	}
}
