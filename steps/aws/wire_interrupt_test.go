package aws

import (
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline"
)

// TestWireSpotNoticeLosesTheHost: the fake interrupts the instance under a
// running command; the wrapper reads the notice from instance metadata
// (IMDSv2) and Exec returns a *pipeline.HostLostError carrying it, long
// before the instance is terminated.
func TestWireSpotNoticeLosesTheHost(t *testing.T) {
	e := newWire(t, 0)
	e.runner()
	e.srv.SSM.AddInstance(instance, 0)
	s, log, _ := remoteScript("echo started\nsleep 20\necho never\n", nil)
	go func() {
		for !strings.Contains(log.String(), "started") {
			time.Sleep(10 * time.Millisecond)
		}
		e.srv.EC2.Interrupt(instance, time.Minute)
	}()
	start := time.Now()
	_, err := e.executor().Exec(t.Context(), s)
	hl := pipeline.AsHostLost(err)
	if hl == nil || hl.Host.Address != "ssm:"+instance || hl.Zone != "us-east-1a" || !strings.Contains(err.Error(), `spot interruption notice from instance metadata: {"action": "terminate", "time": "`) {
		t.Fatalf("err = %v\n%s", err, log)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the notice took %s to be seen", d)
	}
	if st := e.srv.EC2.Instances()[instance]; st != "running" {
		t.Errorf("instance is %s before its two minutes are up", st)
	}
}

// TestWireTerminatedInstanceLosesTheHost: an instance terminated under a
// command whose wrapper sees no notice (metadata unreachable): its
// invocation stays InProgress, as no agent reports its end, and the
// executor's instance check finds it terminated, with the zone.
func TestWireTerminatedInstanceLosesTheHost(t *testing.T) {
	e := newWire(t, 0)
	e.runner()
	e.srv.SSM.AddInstance(instance, 0)
	s, log, _ := remoteScript("echo started\nsleep 20\necho never\n", map[string]string{"GPIPE_IMDS_ENDPOINT": "http://127.0.0.1:9"})
	go func() {
		for !strings.Contains(log.String(), "started") {
			time.Sleep(10 * time.Millisecond)
		}
		e.srv.EC2.Interrupt(instance, 0)
	}()
	_, err := e.executor().Exec(t.Context(), s)
	hl := pipeline.AsHostLost(err)
	if hl == nil || hl.Zone != "us-east-1a" || !strings.Contains(err.Error(), "instance "+instance+" is terminated (Server.SpotInstanceTermination") {
		t.Fatalf("err = %v\n%s", err, log)
	}
	if strings.Contains(log.String(), "never") {
		t.Errorf("the script outlived its instance:\n%s", log)
	}
	if n := e.srv.Calls("EC2.DescribeInstances"); n == 0 {
		t.Error("no DescribeInstances call")
	}
}
