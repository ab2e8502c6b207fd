package cfn

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/gpipe/gpipe/pipeline"
)

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	cfn   *fakeCFN
	ec2   *fakeEC2
	s3    *fakeS3
	clock *fakeClock
	cl    *Clients
}

func newEnv() *env {
	e := &env{
		cfn:   &fakeCFN{},
		s3:    &fakeS3{objects: map[string][]s3types.ObjectVersion{}},
		clock: &fakeClock{now: base},
	}
	e.cfn.clock = e.clock.clock().Now
	e.ec2 = &fakeEC2{zones: []string{"us-east-1b", "us-east-1a", "us-east-1d"}, images: []ec2types.Image{
		{ImageId: aws.String("ami-old"), Name: aws.String("Deep Learning AMI Habana PyTorch 1.13 SynapseAI 1.9 (Ubuntu 20.04) 20220101"),
			CreationDate: aws.String("2022-01-01T00:00:00.000Z"), RootDeviceName: aws.String("/dev/sda1")},
		{ImageId: aws.String("ami-new"), Name: aws.String("Deep Learning AMI Habana PyTorch 2.0 SynapseAI 1.11 (Ubuntu 20.04) 20230501"),
			CreationDate: aws.String("2023-05-01T00:00:00.000Z"), RootDeviceName: aws.String("/dev/xvda")},
	}}
	e.cl = &Clients{CFN: e.cfn, S3: e.s3, Region: "us-east-1", EC2: e.ec2,
		SSM: &fakeSSM{params: map[string]string{strings.TrimPrefix(DefaultAMI, "resolve:ssm:"): "ami-new"}}}
	return e
}

func (e *env) clients(context.Context, string) (*Clients, error) { return e.cl, nil }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func stepRun(with map[string]any) (*pipeline.StepRun, *syncBuf, map[string]string) {
	log := &syncBuf{}
	saved := map[string]string{}
	var mu sync.Mutex
	return &pipeline.StepRun{RunID: "unet-20260301T120000Z-ab12", StepID: "provision", Type: "provision-stack", Attempt: 1,
		With: with, Log: log, Resume: map[string]string{},
		SaveResume: func(_ context.Context, k, v string) error { mu.Lock(); defer mu.Unlock(); saved[k] = v; return nil },
	}, log, saved
}

func TestProvisionCreatesStack(t *testing.T) {
	e := newEnv()
	e.cfn.throttle = 2 // the first polls are throttled and retried
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, log, saved := stepRun(map[string]any{"root_volume_gib": "300", "max_lifetime": "90m", "results_bucket": "res",
		"tags": map[string]any{"team": "ml"}, "parameters": map[string]any{"SsmLogGroup": "/custom"}})
	res, err := p.Run(context.Background(), sr)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	name := "gpipe-unet-20260301T120000Z-ab12-provision"
	want := map[string]string{"instance_id": "i-0abc", "host": "ssm:i-0abc", "availability_zone": "us-east-1a",
		"region": "us-east-1", "stack_name": name}
	for k, v := range want {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %q", k, res.Outputs[k], v)
		}
	}
	if saved[ResumeStackName] != name || !strings.Contains(saved[ResumeStackID], name) {
		t.Errorf("saved resume = %v", saved)
	}
	if len(e.cfn.creates) != 1 {
		t.Fatalf("%d CreateStack calls", len(e.cfn.creates))
	}
	in := e.cfn.creates[0]
	params := map[string]string{}
	for _, p := range in.Parameters {
		params[*p.ParameterKey] = *p.ParameterValue
	}
	for k, v := range map[string]string{"ImageId": "ami-new", "RootDeviceName": "/dev/xvda", "RootVolumeGiB": "300",
		"MaxLifetimeMinutes": "90", "IdleTimeoutMinutes": "30", "ResultsBucket": "res", "InstanceType": "dl1.24xlarge", "SsmLogGroup": "/custom", "RunId": sr.RunID} {
		if params[k] != v {
			t.Errorf("parameter %s = %q, want %q", k, params[k], v)
		}
	}
	tags := map[string]string{}
	for _, tg := range in.Tags {
		tags[*tg.Key] = *tg.Value
	}
	if tags["gpipe:run-id"] != sr.RunID || tags["gpipe:step"] != "provision" || tags["team"] != "ml" {
		t.Errorf("tags = %v", tags)
	}
	if aws.ToString(in.ClientRequestToken) == "" || len(in.Capabilities) == 0 {
		t.Errorf("token %q, capabilities %v", aws.ToString(in.ClientRequestToken), in.Capabilities)
	}
	if !strings.Contains(log.String(), "Instance AWS::EC2::Instance CREATE_COMPLETE") {
		t.Errorf("events not streamed:\n%s", log)
	}
	if n := strings.Count(log.String(), "Instance AWS::EC2::Instance CREATE_IN_PROGRESS"); n != 1 {
		t.Errorf("event printed %d times:\n%s", n, log)
	}
	if len(e.clock.slept) == 0 {
		t.Error("no backoff between polls")
	}
}

func TestProvisionFailureNamesRootCause(t *testing.T) {
	for _, tc := range []struct {
		reason string
		kind   error
		hint   string
	}{
		{"You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to.", ErrQuotaExceeded, "Running On-Demand DL instances"},
		{"We currently do not have sufficient dl1.24xlarge capacity in the Availability Zone you requested (us-east-1a). (Service: Ec2, Status Code: 500, InsufficientInstanceCapacity)", ErrInsufficientCapacity, "availability_zone"},
		{"The parameter groupName cannot be used with the parameter subnet", nil, ""},
	} {
		e := newEnv()
		e.cfn.failWith = tc.reason
		p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
		// A zone of the user's: gpipe reports its capacity failure rather
		// than trying another zone.
		sr, log, _ := stepRun(map[string]any{"availability_zone": "us-east-1a"})
		_, err := p.Run(context.Background(), sr)
		var fe *StackFailedError
		if !errors.As(err, &fe) {
			t.Fatalf("err = %v, want *StackFailedError\n%s", err, log)
		}
		if fe.Resource != "Instance" || fe.Reason != tc.reason || fe.Status != "ROLLBACK_COMPLETE" {
			t.Errorf("failure = %+v", fe)
		}
		if tc.kind != nil && !errors.Is(err, tc.kind) {
			t.Errorf("err %v is not %v", err, tc.kind)
		}
		if !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("error lacks hint %q: %v", tc.hint, err)
		}
	}
}

func TestProvisionDeletesRolledBackStackBeforeRetry(t *testing.T) {
	e := newEnv()
	e.cfn.failWith = "boom"
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, _, _ := stepRun(nil)
	if _, err := p.Run(context.Background(), sr); err == nil {
		t.Fatal("first attempt succeeded")
	}
	sr, log, _ := stepRun(nil)
	sr.Attempt = 2
	res, err := p.Run(context.Background(), sr)
	if err != nil {
		t.Fatalf("retry: %v\n%s", err, log)
	}
	if e.cfn.deletes != 1 || len(e.cfn.creates) != 2 {
		t.Errorf("deletes %d creates %d", e.cfn.deletes, len(e.cfn.creates))
	}
	if res.Outputs["instance_id"] != "i-0abc" {
		t.Errorf("outputs %v", res.Outputs)
	}
	if *e.cfn.creates[0].ClientRequestToken == *e.cfn.creates[1].ClientRequestToken {
		t.Error("retry reused the request token")
	}
}

func TestProvisionResumeAttachesToExistingStack(t *testing.T) {
	e := newEnv()
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	// The first runner sent CreateStack and died.
	ctx, cancel := context.WithCancel(context.Background())
	e.clock.onWait = func(int) { cancel() }
	sr, _, saved := stepRun(nil)
	if _, err := p.Run(ctx, sr); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	e.clock.onWait = nil
	sr2, log, _ := stepRun(nil)
	sr2.Resume = saved
	res, err := p.Run(context.Background(), sr2)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, log)
	}
	if len(e.cfn.creates) != 1 {
		t.Errorf("resume sent CreateStack again (%d calls)", len(e.cfn.creates))
	}
	if res.Outputs["instance_id"] != "i-0abc" {
		t.Errorf("outputs %v", res.Outputs)
	}
}

func TestProvisionRefusesOtherRunsStack(t *testing.T) {
	e := newEnv()
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, _, _ := stepRun(map[string]any{"stack_name": "shared"})
	if _, err := p.Run(context.Background(), sr); err != nil {
		t.Fatal(err)
	}
	sr, _, _ = stepRun(map[string]any{"stack_name": "shared"})
	sr.RunID = "other-run"
	if _, err := p.Run(context.Background(), sr); err == nil || !strings.Contains(err.Error(), "belongs to run") {
		t.Fatalf("err = %v", err)
	}
}

func TestTeardownDeletesStackInCreation(t *testing.T) {
	e := newEnv()
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	ctx, cancel := context.WithCancel(context.Background())
	e.clock.onWait = func(int) { cancel() } // Ctrl-C while CREATE_IN_PROGRESS
	sr, _, _ := stepRun(nil)
	res, err := p.Run(ctx, sr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	e.clock.onWait = nil
	name := res.Outputs["stack_name"]
	if st := e.cfn.status(name); st != types.StackStatusCreateInProgress {
		t.Fatalf("status %s", st)
	}
	e.cfn.resources = []types.StackResourceSummary{{LogicalResourceId: aws.String("Bucket"), ResourceType: aws.String("AWS::S3::Bucket"),
		PhysicalResourceId: aws.String("owned"), ResourceStatus: types.ResourceStatusCreateComplete}}
	for i := range 5 {
		k := aws.String(string(rune('a' + i)))
		e.s3.objects["owned"] = append(e.s3.objects["owned"], s3types.ObjectVersion{Key: k, VersionId: aws.String("v1")})
	}
	td := &TeardownStep{Clients: e.clients, Clock: e.clock.clock()}
	tsr, log, _ := stepRun(map[string]any{"stack": name})
	if _, err := td.Run(context.Background(), tsr); err != nil {
		t.Fatalf("teardown: %v\n%s", err, log)
	}
	if st := e.cfn.status(name); st != types.StackStatusDeleteComplete {
		t.Errorf("status after teardown %s", st)
	}
	if n := len(e.s3.objects["owned"]); n != 0 {
		t.Errorf("%d objects left in the stack's bucket", n)
	}
	// Idempotent: the stack is gone, teardown again succeeds.
	if _, err := td.Run(context.Background(), tsr); err != nil {
		t.Fatalf("second teardown: %v", err)
	}
}

func TestTeardownWithoutStackFindsRunStacks(t *testing.T) {
	e := newEnv()
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, _, _ := stepRun(nil)
	if _, err := p.Run(context.Background(), sr); err != nil {
		t.Fatal(err)
	}
	td := &TeardownStep{Clients: e.clients, Clock: e.clock.clock()}
	tsr, _, _ := stepRun(map[string]any{"stack": ""})
	res, err := td.Run(context.Background(), tsr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["deleted"] != StackName(sr.RunID, "provision") {
		t.Errorf("deleted %q", res.Outputs["deleted"])
	}
}

func TestTeardownDeleteFailed(t *testing.T) {
	e := newEnv()
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, _, _ := stepRun(nil)
	res, err := p.Run(context.Background(), sr)
	if err != nil {
		t.Fatal(err)
	}
	e.cfn.deleteFails = "The bucket you tried to delete is not empty"
	err = Teardown(context.Background(), e.cl, TeardownOptions{Clock: e.clock.clock(), EmptyBuckets: false}, res.Outputs["stack_name"])
	var fe *StackFailedError
	if !errors.As(err, &fe) || fe.Status != "DELETE_FAILED" || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestListGpipeStacks(t *testing.T) {
	e := newEnv()
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, _, _ := stepRun(nil)
	if _, err := p.Run(context.Background(), sr); err != nil {
		t.Fatal(err)
	}
	e.cfn.stacks = append(e.cfn.stacks, &fakeStack{name: "not-ours", id: "x", status: types.StackStatusCreateComplete})
	got, err := ListGpipeStacks(context.Background(), e.cfn)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].RunID != sr.RunID || got[0].Step != "provision" || got[0].Status != "CREATE_COMPLETE" || got[0].Created.IsZero() {
		t.Fatalf("got %+v", got)
	}
}

func TestStackName(t *testing.T) {
	long := strings.Repeat("r", 200)
	for _, tc := range []struct{ run, step, want string }{
		{"unet-20260301T120000Z-ab12", "provision", "gpipe-unet-20260301T120000Z-ab12-provision"},
		{"a_b.c", "x y", "gpipe-a-b-c-x-y"},
	} {
		if got := StackName(tc.run, tc.step); got != tc.want {
			t.Errorf("StackName(%q, %q) = %q, want %q", tc.run, tc.step, got, tc.want)
		}
	}
	a, b := StackName(long+"1", "p"), StackName(long+"2", "p")
	if len(a) > 128 || a == b {
		t.Errorf("long names: %q (%d) vs %q", a, len(a), b)
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"InstanceId": "instance_id", "PrivateIp": "private_ip", "SSMLogGroup": "ssm_log_group", "Region": "region", "Gpu2Count": "gpu2_count"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestProvisionReportsLaunchTime: the cost estimate counts the instance from
// when it ran, which the provision step reads from its stack's events.
func TestProvisionReportsLaunchTime(t *testing.T) {
	e := newEnv()
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, log, _ := stepRun(nil)
	res, err := p.Run(context.Background(), sr)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	var want time.Time
	for _, ev := range e.cfn.find(res.Outputs["stack_name"]).events {
		if aws.ToString(ev.ResourceType) == "AWS::EC2::Instance" && ev.ResourceStatus == types.ResourceStatusCreateComplete {
			want = *ev.Timestamp
		}
	}
	if want.IsZero() {
		t.Fatal("the fake stack has no instance CREATE_COMPLETE event")
	}
	got, err := time.Parse(time.RFC3339, res.Outputs[OutputLaunchTime])
	if err != nil || !got.Equal(want.Truncate(time.Second)) {
		t.Errorf("launch_time = %q, want %s", res.Outputs[OutputLaunchTime], want.Format(time.RFC3339))
	}
}

// TestTeardownFailureOutputs: a teardown that could not delete its stack
// does not say it deleted it, and gives no deletion time.
func TestTeardownFailureOutputs(t *testing.T) {
	e := newEnv()
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, _, _ := stepRun(nil)
	res, err := p.Run(context.Background(), sr)
	if err != nil {
		t.Fatal(err)
	}
	name := res.Outputs["stack_name"]
	e.cfn.deleteFails = "The bucket you tried to delete is not empty"
	td := &TeardownStep{Clients: e.clients, Clock: e.clock.clock()}
	tsr, _, _ := stepRun(map[string]any{"stack": name, "empty_buckets": false})
	out, err := td.Run(context.Background(), tsr)
	if err == nil {
		t.Fatal("teardown of a stack in DELETE_FAILED succeeded")
	}
	if out.Outputs["deleted"] != "" || out.Outputs[OutputDeletedAt] != "" || out.Outputs["not_deleted"] != name {
		t.Errorf("outputs after a failed teardown: %v", out.Outputs)
	}
	e.cfn.deleteFails = ""
	out, err = td.Run(context.Background(), tsr)
	if err != nil {
		t.Fatal(err)
	}
	if out.Outputs["deleted"] != name || out.Outputs[OutputDeletedAt] != e.clock.clock().Now().UTC().Format(time.RFC3339) {
		t.Errorf("outputs after the teardown: %v", out.Outputs)
	}
}
