package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/gpipe/gpipe/internal/awsconfig"
	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/memory"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// clock is the fake's and the policy's time: each sleep moves it on, so the
// fake's stacks finish deleting without real waits.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

type env struct {
	t       *testing.T
	srv     *awsfake.Server
	clock   *clock
	st      state.Store
	log     bytes.Buffer
	regions []string // asked of Clients, in order
	stacks  *Stacks
}

// sgTemplate is a stack that owns no bucket, so deleting it needs no S3.
const sgTemplate = "Resources:\n  SecurityGroup:\n    Type: AWS::EC2::SecurityGroup\n    Properties: {GroupDescription: gpipe test}\n"

func newEnv(t *testing.T) *env {
	e := &env{t: t, clock: &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, st: memory.New(t.Name())}
	e.srv = awsfake.New(t, awsfake.Options{Now: e.clock.Now})
	clients := func(ctx context.Context, region string) (*cfn.Clients, error) {
		e.regions = append(e.regions, region)
		if region == "" {
			return nil, awsconfig.ErrNoRegion // as on a machine without AWS_REGION
		}
		// The fake is one region: the clients of another would sign for a
		// region it does not serve, so they are refused here.
		if region != awsfake.Region {
			t.Errorf("clients asked for region %q; the runs provisioned in %s", region, awsfake.Region)
			return nil, errors.New("unexpected region")
		}
		cfg := e.srv.Config(nil)
		return &cfn.Clients{CFN: cloudformation.NewFromConfig(cfg), S3: s3.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg),
			SSM: ssm.NewFromConfig(cfg), Region: region}, nil
	}
	e.stacks = &Stacks{Store: e.st, URL: "memory://" + t.Name(), Clients: clients, Log: &e.log,
		Clock: cfn.Clock{Now: e.clock.Now, Sleep: e.clock.Sleep}}
	return e
}

// createStack creates a stack tagged as provision-stack tags its stacks.
func (e *env) createStack(name, runID string) {
	e.t.Helper()
	api := cloudformation.NewFromConfig(e.srv.Config(nil))
	_, err := api.CreateStack(e.t.Context(), &cloudformation.CreateStackInput{StackName: sdkaws.String(name),
		TemplateBody: sdkaws.String(sgTemplate), Tags: []cfntypes.Tag{
			{Key: sdkaws.String("gpipe:run-id"), Value: sdkaws.String(runID)},
			{Key: sdkaws.String("gpipe:step"), Value: sdkaws.String("provision")}}})
	if err != nil {
		e.t.Fatalf("create stack %s: %v", name, err)
	}
}

func (e *env) status(name string) string {
	for _, s := range e.srv.CFN.Stacks() {
		if s.Name == name {
			return s.Status
		}
	}
	return ""
}

// putRun stores a run whose provision step recorded stack (and region), with
// a lease held by a runner on another host when held.
func (e *env) putRun(id string, status state.RunStatus, stack, region string, held bool) {
	e.t.Helper()
	out := map[string]string{"stack_name": stack}
	if region != "" {
		out["region"] = region
	}
	r := &state.Run{ID: id, Status: status, Order: []string{"provision"}, Steps: map[string]*state.Step{
		"provision": {ID: "provision", Type: aws.TypeProvisionStack, Status: state.StepSucceeded, Outputs: out}}}
	j, err := state.Create(e.t.Context(), e.st, r, state.LeaseOptions{Owner: "runner", Host: "elsewhere", PID: 4242, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	if !held {
		if err := j.Close(e.t.Context()); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestTeardown: a run's stacks are those its provision step recorded and
// those tagged with its id, in the region its state records; a live runner's
// run is refused unless forced; deleted stacks are recorded as released.
func TestTeardown(t *testing.T) {
	e := newEnv(t)
	e.putRun("r1", state.RunFailed, "gpipe-r1-provision", awsfake.Region, false)
	e.createStack("gpipe-r1-provision", "r1")
	e.createStack("gpipe-r1-interrupted", "r1") // its name never reached the state
	e.createStack("gpipe-r2-provision", "r2")
	e.putRun("live", state.RunRunning, "gpipe-live-provision", awsfake.Region, true)
	e.createStack("gpipe-live-provision", "live")
	ctx := t.Context()

	if err := e.stacks.Teardown(ctx, "r1", TeardownOptions{}); err != nil {
		t.Fatalf("teardown r1: %v\n%s", err, e.log.String())
	}
	for name, want := range map[string]string{"gpipe-r1-provision": "DELETE_COMPLETE", "gpipe-r1-interrupted": "DELETE_COMPLETE",
		"gpipe-r2-provision": "CREATE_COMPLETE", "gpipe-live-provision": "CREATE_COMPLETE"} {
		if got := e.status(name); got != want {
			t.Errorf("after teardown r1: stack %s is %s, want %s", name, got, want)
		}
	}
	if e.regions[0] != awsfake.Region {
		t.Errorf("teardown r1 asked for region %q, want the recorded %s", e.regions[0], awsfake.Region)
	}
	if !strings.Contains(e.log.String(), "deleting stack gpipe-r1-interrupted\n") {
		t.Errorf("log does not say what it deletes:\n%s", e.log.String())
	}
	r, err := state.Read(ctx, e.st, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if rel := r.Steps["provision"].Released; rel == nil || !rel.Equal(e.clock.Now().UTC()) {
		t.Errorf("provision step's Released = %v, want the time of deletion %v", rel, e.clock.Now())
	}
	// Again: the recorded stack is gone already, which is success.
	e.log.Reset()
	if err := e.stacks.Teardown(ctx, "r1", TeardownOptions{}); err != nil ||
		!strings.Contains(e.log.String(), "stack gpipe-r1-provision does not exist: nothing to delete") {
		t.Errorf("second teardown of r1: %v, log %q", err, e.log.String())
	}

	var held *state.HeldError
	if err := e.stacks.Teardown(ctx, "live", TeardownOptions{}); !errors.As(err, &held) {
		t.Errorf("teardown of a run a live runner drives: err = %v, want *state.HeldError", err)
	}
	if got := e.status("gpipe-live-provision"); got != "CREATE_COMPLETE" {
		t.Errorf("refused teardown left the stack %s", got)
	}
	if err := e.stacks.Teardown(ctx, "live", TeardownOptions{Force: true}); err != nil {
		t.Fatalf("forced teardown: %v", err)
	}
	if got := e.status("gpipe-live-provision"); got != "DELETE_COMPLETE" {
		t.Errorf("forced teardown: stack is %s", got)
	}

	// A run whose state is gone and that recorded no region: the SDK's
	// region, whose absence is the caller's ErrNoRegion.
	if err := e.stacks.Teardown(ctx, "gone", TeardownOptions{}); !errors.Is(err, awsconfig.ErrNoRegion) {
		t.Errorf("teardown of an unknown run without a region: %v, want ErrNoRegion", err)
	}
	e.log.Reset()
	if err := e.stacks.Teardown(ctx, "gone", TeardownOptions{Region: awsfake.Region}); err != nil ||
		e.log.String() != "run gone has no stacks left\n" {
		t.Errorf("teardown of an unknown run with a region: %v, log %q", err, e.log.String())
	}
}

// TestGC: gc looks in the regions the runs recorded (and skips an
// unconfigured default region), and lists the stacks of finished, abandoned
// and unknown runs, not those of live or detached ones.
func TestGC(t *testing.T) {
	e := newEnv(t)
	e.putRun("done", state.RunSucceeded, "gpipe-done-provision", awsfake.Region, false)
	e.putRun("live", state.RunRunning, "gpipe-live-provision", awsfake.Region, true)
	e.putRun("detached", state.RunDetached, "gpipe-detached-provision", "", false)
	for _, id := range []string{"done", "live", "detached", "unknown"} {
		e.createStack("gpipe-"+id+"-provision", id)
	}
	ctx := t.Context()
	runs := []*state.Run{}
	for _, id := range []string{"done", "live", "detached"} {
		r, err := state.Read(ctx, e.st, id)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if got := GCRegions("", runs); len(got) != 2 || got[0] != awsfake.Region || got[1] != "" {
		t.Errorf("GCRegions = %q, want the recorded region, then the SDK's", got)
	}
	if got := GCRegions("ap-south-1", runs); len(got) != 1 || got[0] != "ap-south-1" {
		t.Errorf("GCRegions with --region = %q", got)
	}
	stray, err := e.stacks.Strays(ctx, GCRegions("", runs))
	if err != nil {
		t.Fatal(err)
	}
	why := map[string]string{}
	for _, s := range stray {
		why[s.Name] = s.Why
		if s.Region() != awsfake.Region {
			t.Errorf("stray %s in region %q", s.Name, s.Region())
		}
	}
	want := map[string]string{"gpipe-done-provision": "run succeeded", "gpipe-unknown-provision": "run not in this state store"}
	if len(why) != len(want) {
		t.Errorf("strays %v, want %v", why, want)
	}
	for name, w := range want {
		if why[name] != w {
			t.Errorf("stray %s: why %q, want %q", name, why[name], w)
		}
	}
	// Once the live runner's lease expires, its stacks are strays too.
	e.clock.Sleep(ctx, 2*state.DefaultTTL)
	stray, err = e.stacks.Strays(ctx, []string{awsfake.Region})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range stray {
		found = found || (s.Name == "gpipe-live-provision" && strings.HasPrefix(s.Why, "runner's lease expired"))
	}
	if !found {
		t.Errorf("stack of a run whose lease expired is not a stray: %v", stray)
	}
	if err := e.stacks.Delete(ctx, stray); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gpipe-done-provision", "gpipe-unknown-provision", "gpipe-live-provision"} {
		if got := e.status(name); got != "DELETE_COMPLETE" {
			t.Errorf("after Delete: stack %s is %s", name, got)
		}
	}
	if got := e.status("gpipe-detached-provision"); got != "CREATE_COMPLETE" {
		t.Errorf("the detached run's stack is %s, want kept", got)
	}
	// Without any region, the SDK's missing one is the error.
	if _, err := e.stacks.Strays(ctx, []string{""}); !errors.Is(err, awsconfig.ErrNoRegion) {
		t.Errorf("gc with no region at all: %v, want ErrNoRegion", err)
	}
}
