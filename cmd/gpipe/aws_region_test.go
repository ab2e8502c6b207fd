package main

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/pipeline/state"
)

// TestTeardownGCRegionFromState: with no region configured, teardown and gc
// find the stacks in the region the run's provision step recorded (the
// fake checks each request's signing region); a run that recorded none
// fails with one error line and a hint naming --region.
func TestTeardownGCRegionFromState(t *testing.T) {
	t.Parallel()
	c := newAWSCLI(t, false)
	var env []string
	for _, kv := range c.env {
		if !strings.HasPrefix(kv, "AWS_REGION=") {
			env = append(env, kv)
		}
	}
	c.env = env
	provision := func(region string) *state.Step {
		out := map[string]string{"stack_name": "gpipe-r-provision"}
		if region != "" {
			out["region"] = region
		}
		return &state.Step{ID: "provision", Type: "provision-stack", Status: state.StepSucceeded, Outputs: out}
	}
	c.putRun(t, &state.Run{ID: "r1", Status: state.RunFailed, Order: []string{"provision"},
		Steps: map[string]*state.Step{"provision": provision(awsfake.Region)}})
	c.createStack(t, "gpipe-r1-provision", "r1")
	c.putRun(t, &state.Run{ID: "r2", Status: state.RunFailed, Order: []string{"provision"},
		Steps: map[string]*state.Step{"provision": provision("")}})

	res := c.gpipeCmd(t, "gc", "--state", c.stateURL)
	if res.code != 0 || !strings.Contains(res.stdout, "gpipe-r1-provision") {
		t.Errorf("gc without a configured region: want the stack of r1 listed\n%s", res)
	}
	res = c.gpipeCmd(t, "teardown", "--state", c.stateURL, "r1")
	if res.code != 0 || !strings.Contains(res.stdout, "deleting stack gpipe-r1-provision") {
		t.Errorf("teardown r1 without a configured region: want it deleted\n%s", res)
	}
	res = c.gpipeCmd(t, "teardown", "--state", c.stateURL, "r2")
	lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
	if res.code != 1 || len(lines) != 2 || !strings.Contains(lines[0], "no region") ||
		lines[1] != "gpipe: hint: give the region with --region (teardown and gc), or set AWS_REGION" {
		t.Errorf("teardown of a run without a recorded region: want exit 1, the error and a --region hint\n%s", res)
	}
}

// TestNoCredentialsSaidOnce: without credentials, on a machine whose
// instance metadata service refuses (as off EC2 behind some proxies), the
// SDK's message is printed once, in gpipe's error, then the hint: not also
// as the SDK's own "WARN falling back to IMDSv1" log line before it.
func TestNoCredentialsSaidOnce(t *testing.T) {
	t.Parallel()
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	defer imds.Close()
	dir := t.TempDir()
	gpipe, err := exec.LookPath("gpipe")
	if err != nil {
		t.Fatalf("gpipe is not on PATH: %v", err)
	}
	env := isolatedAWSEnv(dir, "AWS_EC2_METADATA_DISABLED=false", "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds.URL,
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL="+imds.URL)
	for _, args := range [][]string{{"gc", "--state", "file://" + filepath.Join(dir, "state")}, {"runs", "--state", "s3://bucket/runs"}} {
		res := runGpipe(t, gpipe, dir, env, 30*time.Second, args...)
		lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
		if res.code != 1 || len(lines) != 2 || !strings.HasPrefix(lines[0], "gpipe: ") ||
			!strings.Contains(lines[0], "IMDS") || !strings.HasPrefix(lines[1], "gpipe: hint: no AWS credentials found") {
			t.Errorf("gpipe %s: want exit 1, one error line with the SDK's message, one hint\n%s", args[0], res)
		}
	}
}
