package ssmhost

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
)

// imds serves the two instance metadata calls the wrapper makes, as IMDSv2
// does (EC2 User Guide "Use the Instance Metadata Service to access instance
// metadata" and "Spot Instance interruption notices"): PUT /latest/api/token
// with X-aws-ec2-metadata-token-ttl-seconds returns a token; a GET without
// a valid token is 401; spot/instance-action is 404 until a notice exists.
type imds struct {
	mu     sync.Mutex
	notice string
	gets   int
}

func (m *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("tok-1"))
	case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/spot/instance-action":
		m.gets++
		if r.Header.Get("X-aws-ec2-metadata-token") != "tok-1" {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		if m.notice == "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(m.notice))
	default:
		http.NotFound(w, r)
	}
}

// TestWrapperReportsSpotNotice runs the wrapper with sh against a metadata
// endpoint: with a notice, the notice is printed on a marker line of its own
// before the outputs; without one, the output is the script's alone.
func TestWrapperReportsSpotNotice(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		testtool.Unavailable(t, "curl missing (apt-get install curl)")
	}
	for _, notice := range []string{`{"action": "terminate", "time": "2026-12-04T19:22:00Z"}`, ""} {
		md := &imds{notice: notice}
		srv := httptest.NewServer(md)
		// The watcher asks at once; a second is ample for a local server.
		w := wrap(host.Script{StepID: "s", Body: "echo working\nsleep 1\necho done\n"}, "n0nce")
		cmd := exec.Command("sh", "-c", w)
		cmd.Env = append(os.Environ(), IMDSEndpointEnv+"="+srv.URL)
		out, err := cmd.Output()
		srv.Close()
		if err != nil {
			t.Fatalf("wrapper: %v\n%s", err, out)
		}
		md.mu.Lock()
		gets := md.gets
		md.mu.Unlock()
		if gets == 0 {
			t.Errorf("the wrapper never asked for a notice")
		}
		got := string(out)
		tail := "\n::gpipe-outputs-n0nce::\n\n::gpipe-end-n0nce::\n"
		if notice == "" {
			if got != "|working\n|done\n"+tail {
				t.Errorf("without a notice: %q", got)
			}
			continue
		}
		if !strings.Contains(got, "\n::gpipe-lost-n0nce:: "+notice+"\n") || !strings.HasSuffix(got, "|done\n"+tail) {
			t.Errorf("with a notice: %q", got)
		}
	}
}

// TestExecSpotNoticeIsHostLost: the notice in the command's output makes
// Exec return a *pipeline.HostLostError at once, without cancelling the
// command (it has two minutes left) and without the marker in the log.
func TestExecSpotNoticeIsHostLost(t *testing.T) {
	notice := `{"action": "terminate", "time": "2026-12-04T19:22:00Z"}`
	f := &fakeSSM{runFor: 9, status: types.CommandInvocationStatusSuccess, stdout: []string{"epoch 1", "epoch 2"}, notice: notice}
	ex, _ := setup(f, nil)
	log := &syncBuf{}
	_, err := ex.Exec(t.Context(), script(log, map[string]string{}))
	hl := pipeline.AsHostLost(err)
	if hl == nil || hl.Host.Name != "gaudi" || hl.Host.Address != "ssm:i-0abc" || !strings.Contains(err.Error(), "spot interruption notice from instance metadata: "+notice) {
		t.Fatalf("err = %v", err)
	}
	if f.cancelled != 0 {
		t.Error("the command was cancelled")
	}
	if strings.Contains(log.String(), "gpipe-lost") || !strings.Contains(log.String(), "epoch 2\n") {
		t.Errorf("log: %q", log)
	}
}

// TestExecNoticeAfterTheEndIsHostLost: when the step stops on the notice
// (train-unet saving its checkpoints) and its status reads Failed before the
// notice reaches the log, the step still lost its host: the failure is not
// the script's, and the engine replaces the host instead of failing the run.
func TestExecNoticeAfterTheEndIsHostLost(t *testing.T) {
	notice := `{"action": "terminate", "time": "2026-12-04T19:22:00Z"}`
	f := &fakeSSM{runFor: 3, status: types.CommandInvocationStatusFailed, code: 137, stdout: []string{"epoch 1"},
		notice: notice, lagged: true}
	ex, _ := setup(f, nil)
	log := &syncBuf{}
	_, err := ex.Exec(t.Context(), script(log, map[string]string{}))
	if hl := pipeline.AsHostLost(err); hl == nil || !strings.Contains(err.Error(), "spot interruption notice from instance metadata: "+notice) {
		t.Fatalf("err = %v, want a host loss", err)
	}
	if !strings.Contains(log.String(), "the step ended (Failed) after a spot interruption notice") {
		t.Errorf("log: %q", log)
	}
}

type fakeEC2 struct {
	mu     sync.Mutex
	calls  int
	states []ec2types.InstanceStateName // per call; the last one repeats
	err    error
}

func (f *fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	st := f.states[min(f.calls, len(f.states))-1]
	inst := ec2types.Instance{InstanceId: aws.String(in.InstanceIds[0]), State: &ec2types.InstanceState{Name: st},
		Placement: &ec2types.Placement{AvailabilityZone: aws.String("us-east-1a")}}
	if st != ec2types.InstanceStateNameRunning {
		inst.StateReason = &ec2types.StateReason{Code: aws.String("Server.SpotInstanceTermination"), Message: aws.String("Server.SpotInstanceTermination: Spot instance termination")}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{inst}}}}, nil
}

// TestExecTerminatedInstanceIsHostLost: a command whose instance was
// terminated stays InProgress (its agent is gone); the periodic instance
// check finds the instance shutting down and Exec returns a
// *pipeline.HostLostError naming the zone. A command that fails on a
// running instance is the script's failure; so is one EC2 cannot describe.
func TestExecTerminatedInstanceIsHostLost(t *testing.T) {
	f := &fakeSSM{runFor: 1 << 20, status: types.CommandInvocationStatusFailed,
		ec2: &fakeEC2{states: []ec2types.InstanceStateName{ec2types.InstanceStateNameRunning, ec2types.InstanceStateNameShuttingDown}}}
	ex, slept := setup(f, nil)
	_, err := ex.Exec(t.Context(), script(&syncBuf{}, map[string]string{}))
	hl := pipeline.AsHostLost(err)
	if hl == nil || hl.Zone != "us-east-1a" || !strings.Contains(err.Error(), "instance i-0abc is shutting-down (Server.SpotInstanceTermination") {
		t.Fatalf("err = %v", err)
	}
	if s := sum(*slept); s < 2*instanceCheckEvery || s > 3*instanceCheckEvery {
		t.Errorf("found after %s of polling, want the second check", s)
	}

	for _, e2 := range []*fakeEC2{{states: []ec2types.InstanceStateName{ec2types.InstanceStateNameRunning}}, {err: errors.New("boom")}} {
		f = &fakeSSM{runFor: 2, status: types.CommandInvocationStatusFailed, code: 3, ec2: e2}
		ex, _ = setup(f, nil)
		_, err = ex.Exec(t.Context(), script(&syncBuf{}, map[string]string{}))
		var xe *pipeline.ExitError
		if !errors.As(err, &xe) || xe.Code != 3 || pipeline.AsHostLost(err) != nil {
			t.Errorf("failure on a running instance: %v", err)
		}
		if e2.calls != 1 {
			t.Errorf("EC2 asked %d times after a failure, want 1", e2.calls)
		}
	}
}

// TestWrapperWritesNoticeFile: on a notice the step finds the notice
// document in the file $GPIPE_INTERRUPT_NOTICE names, which is absent
// before; the wrapper removes it with its folder.
func TestWrapperWritesNoticeFile(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		testtool.Unavailable(t, "curl missing (apt-get install curl)")
	}
	notice := `{"action": "terminate", "time": "2026-12-04T19:22:00Z"}`
	md := &imds{}
	srv := httptest.NewServer(md)
	defer srv.Close()
	body := `[ ! -e "$GPIPE_INTERRUPT_NOTICE" ] && echo "no notice yet"
echo "notice_file=$GPIPE_INTERRUPT_NOTICE" >>"$GPIPE_OUTPUT"
touch "$GPIPE_OUTPUT.ready"
for _ in $(seq 100); do [ -e "$GPIPE_INTERRUPT_NOTICE" ] && break; sleep 0.05; done
echo "notice: $(cat "$GPIPE_INTERRUPT_NOTICE")"
`
	w := wrap(host.Script{StepID: "s", Body: body}, "n0nce")
	cmd := exec.Command("sh", "-c", w)
	cmd.Env = append(os.Environ(), IMDSEndpointEnv+"="+srv.URL, IMDSPollEnv+"=0.05")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The notice comes while the step runs, after it looked once.
	time.Sleep(300 * time.Millisecond)
	md.mu.Lock()
	md.notice = notice
	md.mu.Unlock()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wrapper: %v\n%s", err, out.String())
	}
	got := out.String()
	if !strings.HasPrefix(got, "|no notice yet\n") || !strings.Contains(got, "|notice: "+notice+"\n") {
		t.Errorf("the step did not find the notice in its file:\n%s", got)
	}
	_, outs, _ := strings.Cut(got, "::gpipe-outputs-n0nce::\n")
	file := strings.TrimSpace(strings.TrimPrefix(strings.Split(outs, "\n")[0], "|notice_file="))
	if !strings.HasSuffix(file, "/interrupt-notice") {
		t.Fatalf("GPIPE_INTERRUPT_NOTICE = %q", file)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the notice file outlives the step: %v", err)
	}
}

// TestExecNoticeGrace: after a notice the executor follows the step for at
// most NoticeGrace, relaying what it prints while it saves its work, and
// returns the loss when the step ends, when EC2 says the instance is going,
// or when the grace runs out, whichever comes first; it never cancels the
// command.
func TestExecNoticeGrace(t *testing.T) {
	notice := `{"action": "terminate", "time": "2026-12-04T19:22:00Z"}`
	running := []ec2types.InstanceStateName{ec2types.InstanceStateNameRunning}
	for name, c := range map[string]struct {
		runFor     int
		states     []ec2types.InstanceStateName
		minS, maxS time.Duration // time from the notice to the loss
		want       string
	}{
		"step ends":      {runFor: 12, states: running, maxS: 30 * time.Second, want: "the step ended (Failed)"},
		"instance goes":  {runFor: 1 << 20, states: append(running, running[0], running[0], running[0], ec2types.InstanceStateNameShuttingDown), maxS: 30 * time.Second},
		"grace runs out": {runFor: 1 << 20, states: running, minS: DefaultNoticeGrace, maxS: DefaultNoticeGrace + 5*time.Second, want: "still runs 1m30s after"},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeSSM{runFor: c.runFor, status: types.CommandInvocationStatusFailed, code: 137,
				stdout: []string{"epoch 1", "", "saving checkpoints"}, notice: notice, early: true, ec2: &fakeEC2{states: c.states}}
			ex, slept := setup(f, nil)
			log := &syncBuf{}
			_, err := ex.Exec(t.Context(), script(log, map[string]string{}))
			if hl := pipeline.AsHostLost(err); hl == nil || !strings.Contains(err.Error(), notice) {
				t.Fatalf("err = %v", err)
			}
			if f.cancelled != 0 {
				t.Error("the command was cancelled")
			}
			l := log.String()
			if !strings.Contains(l, "the step has up to 1m30s to save its work ($GPIPE_INTERRUPT_NOTICE)") || !strings.Contains(l, c.want) {
				t.Errorf("log: %q", l)
			}
			if s := sum(*slept); s < c.minS || s > c.maxS+instanceCheckEvery {
				t.Errorf("lost after %s of polling, want %s..%s", s, c.minS, c.maxS)
			}
		})
	}
}
