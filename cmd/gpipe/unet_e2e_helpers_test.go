package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// unetE2E is the shared fixture of the end-to-end runs.
type unetE2E struct {
	s3     *testtool.S3Server
	aws    *awsfake.Server
	client *s3.Client
	gpipe  string // the gpipe binary
	bin    string // testdata/unet/bin
	repo   string
}

const (
	e2eResultsBucket = "unet-results"
	e2eMirrorBucket  = "msd-mirror"
	// What the specs pin; the fake docker checks that pull, build and run use them.
	e2eImage   = "vault.habana.ai/gaudi-docker/1.21.0/ubuntu22.04/habanalabs/pytorch-installer-2.6.0:latest"
	e2eModRefs = "1.21.0"
	// The fake hl-smi's driver version: of the image's release, as on a
	// prepared host (a run may override FAKE_HL_DRIVER).
	e2eDriver = "1.21.0-fake001"
)

func newUnetE2E(t *testing.T) *unetE2E {
	t.Helper()
	srv := testtool.Versitygw(t)
	gpipe, err := exec.LookPath("gpipe")
	if err != nil {
		t.Fatalf("gpipe is not on PATH (testscript.Main puts the test binary there): %v", err)
	}
	repo := repoRoot(t)
	e := &unetE2E{
		s3:    srv,
		aws:   awsfake.New(t, awsfake.Options{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}),
		gpipe: gpipe,
		bin:   filepath.Join(repo, "testdata", "unet", "bin"),
		repo:  repo,
	}
	addUbuntuImage(e.aws, "ami-0e2e0000000000001")
	e.client = s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: sdkaws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	for _, b := range []string{e2eResultsBucket, e2eMirrorBucket} {
		if _, err := e.client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: sdkaws.String(b)}); err != nil {
			t.Fatalf("create bucket %s: %v", b, err)
		}
	}
	return e
}

// putArchive uploads entries as a tar to the mirror bucket and returns its
// s3:// URL and MD5.
func (e *unetE2E) putArchive(t *testing.T, key string, entries []tarEntry) (string, string) {
	t.Helper()
	tarball, md5 := buildTar(t, entries)
	if _, err := e.client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: sdkaws.String(e2eMirrorBucket), Key: sdkaws.String(key), Body: bytes.NewReader(tarball),
	}); err != nil {
		t.Fatalf("upload %s: %v", key, err)
	}
	return "s3://" + e2eMirrorBucket + "/" + key, md5
}

func (e *unetE2E) getObject(t *testing.T, key string) (string, error) {
	t.Helper()
	out, err := e.client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: sdkaws.String(e2eResultsBucket), Key: sdkaws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

// stack returns the fake's stack of a run (the provision step tags it).
func (e *unetE2E) stack(runID string) (awsfake.StackInfo, bool) {
	for _, st := range e.aws.CFN.Stacks() {
		if st.Tags["gpipe:run-id"] == runID {
			return st, true
		}
	}
	return awsfake.StackInfo{}, false
}

// unetRun is one `gpipe run` of a spec in its own folders.
type unetRun struct {
	e        *unetE2E
	id       string
	dir      string // everything of this run lives below
	data     string // -p data_dir
	moveRoot string // $GPIPE_MOVE_ROOT
	home     string
	fake     string // $FAKE_DIR of the fake docker
	disk     string // $FAKE_DISK_STATE of the fake disk tools
	stateURL string
	env      []string
}

func (e *unetE2E) newRun(t *testing.T, id string, fakeEnv ...string) *unetRun {
	t.Helper()
	dir := t.TempDir()
	r := &unetRun{e: e, id: id, dir: dir, data: filepath.Join(dir, "data"), moveRoot: filepath.Join(dir, "root"),
		home: filepath.Join(dir, "home"), fake: filepath.Join(dir, "docker"), disk: filepath.Join(dir, "disk"),
		stateURL: "file://" + filepath.Join(dir, "state")}
	sys := filepath.Join(dir, "sys", "block")
	for dev, model := range map[string]string{
		"nvme0n1": "Amazon Elastic Block Store",
		"nvme1n1": "Amazon EC2 NVMe Instance Storage",
		"nvme2n1": "Amazon EC2 NVMe Instance Storage",
	} {
		// sysfs pads the NVMe model field with spaces.
		writeFile(t, filepath.Join(sys, dev, "device", "model"), model+"      \n")
	}
	// What prepare-disk moves onto the data disk, on a machine rooted at moveRoot.
	writeFile(t, filepath.Join(r.moveRoot, "var/lib/docker/image/db"), "docker data")
	writeFile(t, filepath.Join(r.moveRoot, r.home, ".cache/pip/wheel"), "wheel")
	for _, d := range []string{r.home, r.fake, r.disk, filepath.Join(dir, "dev"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.bootDocker(t)
	r.env = []string{
		"PATH=" + e.bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + r.home,
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"NO_COLOR=1",
		"AWS_ACCESS_KEY_ID=" + e.s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + e.s3.SecretKey,
		"AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL=" + e.aws.URL,
		"AWS_ENDPOINT_URL_S3=" + e.s3.Endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-aws-credentials"),
		"GPIPE_SYS_BLOCK=" + sys,
		"GPIPE_DEV_DIR=" + filepath.Join(dir, "dev"),
		"GPIPE_MOVE_ROOT=" + r.moveRoot,
		"FAKE_DIR=" + r.fake,
		"FAKE_DISK_STATE=" + r.disk,
		"FAKE_S3_DIR=" + e.s3.Dir,
		"FAKE_WANT_IMAGE=" + e2eImage,
		"FAKE_WANT_MODEL_REFS=" + e2eModRefs,
		"FAKE_HL_DRIVER=" + e2eDriver,
	}
	if d := os.Getenv("GOCOVERDIR"); d != "" {
		r.env = append(r.env, "GOCOVERDIR="+d)
	}
	r.env = append(r.env, fakeEnv...)
	return r
}

// bootDocker starts the fake systemctl's docker.service and docker.socket,
// as on a host that has just booted.
func (r *unetRun) bootDocker(t *testing.T) {
	t.Helper()
	for _, u := range []string{"docker.service", "docker.socket"} {
		writeFile(t, filepath.Join(r.disk, "units", u), "")
	}
}

// unitActive says whether the fake systemctl has the unit active.
func (r *unetRun) unitActive(unit string) bool {
	_, err := os.Stat(filepath.Join(r.disk, "units", unit))
	return err == nil
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gpipe runs the binary and returns its exit code and combined output.
func (r *unetRun) gpipe(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return r.startGpipe(t, args...)(t)
}

// startGpipe starts the binary; the returned function waits for it and
// returns its exit code and combined output.
func (r *unetRun) startGpipe(t *testing.T, args ...string) func(*testing.T) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, r.e.gpipe, args...)
	cmd.Dir = r.dir
	cmd.Env = r.env
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start gpipe: %v", err)
	}
	return func(t *testing.T) (int, string) {
		t.Helper()
		defer cancel()
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, out.String()
		case errors.As(err, &ee) && ctx.Err() == nil:
			return ee.ExitCode(), out.String()
		}
		t.Fatalf("gpipe %s: %v\n%s", strings.Join(args, " "), err, out.String())
		return 0, ""
	}
}

// start runs the spec, with the params every e2e run needs and more, in the
// background: the returned function waits for it.
func (r *unetRun) start(t *testing.T, spec, source, md5 string, params ...string) func(*testing.T) (int, string) {
	t.Helper()
	args := []string{"run", "--state", r.stateURL, "--run-id", r.id,
		"-p", "results_bucket=" + e2eResultsBucket, "-p", "host=local", "-p", "data_dir=" + r.data,
		"-p", "msd_source=" + source, "-p", "msd_md5=" + md5}
	for _, p := range params {
		args = append(args, "-p", p)
	}
	r.underPolicy(t, args, filepath.Join(r.e.repo, "specs", spec))
	return r.startGpipe(t, append(args, filepath.Join(r.e.repo, "specs", spec))...)
}

// underPolicy makes the AWS fake enforce the policy `gpipe iam-policy`
// prints for the spec with the run's params (runArgs: the run command's
// arguments), as a real runner's role would, and fails the test if anything
// was refused: the printed policy must be enough for the whole run.
func (r *unetRun) underPolicy(t *testing.T, runArgs []string, spec string) {
	t.Helper()
	args := []string{"iam-policy"}
	for i := 0; i+1 < len(runArgs); i++ {
		if runArgs[i] == "-p" {
			args = append(args, "-p", runArgs[i+1])
		}
	}
	code, out := r.gpipe(t, append(args, spec)...)
	if code != 0 {
		t.Fatalf("gpipe iam-policy: exit %d\n%s", code, out)
	}
	if err := r.e.aws.SetPolicy([]byte(out)); err != nil {
		t.Fatalf("the fake cannot evaluate the printed policy: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if d := r.e.aws.Denied(); len(d) > 0 {
			t.Errorf("the policy iam-policy printed refused %v", d)
		}
	})
}

// status is `gpipe status --json`.
func (r *unetRun) status(t *testing.T) *state.Run {
	t.Helper()
	code, out := r.gpipe(t, "status", "--json", "--state", r.stateURL, r.id)
	if code != 0 {
		t.Fatalf("gpipe status exited %d:\n%s", code, out)
	}
	var run state.Run
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("gpipe status --json: %v\n%s", err, out)
	}
	return &run
}

// dockerRuns returns the argv of every `docker run` of the fake.
func (r *unetRun) dockerRuns(t *testing.T) [][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(r.fake, "runs", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var runs [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"))
	}
	return runs
}

// wantSteps checks each step's status, and prints the run's output when one differs.
func wantSteps(t *testing.T, run *state.Run, out string, want map[string]state.StepStatus) {
	t.Helper()
	bad := false
	for id, st := range want {
		s := run.Steps[id]
		switch {
		case s == nil:
			t.Errorf("step %s is not in the run", id)
			bad = true
		case s.Status != st:
			t.Errorf("step %s: %s, want %s (%s)", id, s.Status, st, lastError(s))
			bad = true
		}
	}
	if bad {
		t.Logf("gpipe output:\n%s", out)
	}
}

func lastError(s *state.Step) string {
	if n := len(s.Attempts); n > 0 {
		return s.Attempts[n-1].Error
	}
	return s.Reason
}

// wantTornDown checks that the run's stack was created and deleted, and that
// the teardown step reported it.
func (r *unetRun) wantTornDown(t *testing.T, run *state.Run) {
	t.Helper()
	st, ok := r.e.stack(r.id)
	if !ok {
		t.Fatalf("the fake AWS has no stack tagged with run %s", r.id)
	}
	if st.Status != "DELETE_COMPLETE" {
		t.Errorf("stack %s is %s, want DELETE_COMPLETE", st.Name, st.Status)
	}
	if got := run.Steps["provision"].Outputs["stack_name"]; got != st.Name {
		t.Errorf("provision output stack_name %q, the fake's stack %q", got, st.Name)
	}
	if got := run.Steps["teardown"].Outputs["deleted"]; got != st.Name {
		t.Errorf("teardown output deleted %q, want %q", got, st.Name)
	}
	if r.e.aws.Calls("CloudFormation.DeleteStack") == 0 {
		t.Error("the fake AWS saw no DeleteStack")
	}
}

func argAfter(argv []string, flag string) string {
	if i := slices.Index(argv, flag); i >= 0 && i+1 < len(argv) {
		return argv[i+1]
	}
	return ""
}

// envArg returns the value of `-e NAME=value` in a docker argv.
func envArg(argv []string, name string) (string, bool) {
	for i, a := range argv {
		if i > 0 && argv[i-1] == "-e" && strings.HasPrefix(a, name+"=") {
			return strings.TrimPrefix(a, name+"="), true
		}
	}
	return "", false
}

// mode is the argv's --exec_mode, or "preprocess".
func mode(argv []string) string {
	if slices.Contains(argv, "preprocess.py") {
		return "preprocess"
	}
	return argAfter(argv, "--exec_mode")
}

// noneNamed fails when a file whose name starts with prefix exists below dir.
// Other runs may be changing files below dir meanwhile.
func noneNamed(t *testing.T, dir, prefix string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), prefix) {
			t.Errorf("%s exists", p)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func fmtAttempts(s *state.Step) string {
	var b strings.Builder
	for _, a := range s.Attempts {
		fmt.Fprintf(&b, "[%d: %s] ", a.N, a.Error)
	}
	return b.String()
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
