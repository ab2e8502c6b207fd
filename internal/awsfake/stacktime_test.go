package awsfake

import (
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
func status(t *testing.T, cf *cloudformation.Client) cfntypes.StackStatus {
	t.Helper()
	out, err := cf.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	return out.Stacks[0].StackStatus
}

// TestStacksAdvanceWithTime: polling does not move a stack on; the fake's
// clock does, and the events carry the times things happened.
func TestStacksAdvanceWithTime(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	srv := New(t, Options{Now: clock.Now})
	srv.CFN.PhaseTime = 2 * time.Minute
	cf := cloudformation.NewFromConfig(srv.Config(nil))
	if _, err := cf.CreateStack(t.Context(), &cloudformation.CreateStackInput{StackName: aws.String("s"), TemplateBody: aws.String(topicTemplate)}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if st := status(t, cf); st != cfntypes.StackStatusCreateInProgress {
			t.Fatalf("status %s after polls alone", st)
		}
	}
	clock.Advance(3 * time.Minute)
	if st := status(t, cf); st != cfntypes.StackStatusCreateInProgress {
		t.Fatalf("status %s after 3 of 4 minutes", st)
	}
	clock.Advance(time.Minute)
	if st := status(t, cf); st != cfntypes.StackStatusCreateComplete {
		t.Fatalf("status %s after 4 minutes", st)
	}
	ev, err := cf.DescribeStackEvents(t.Context(), &cloudformation.DescribeStackEventsInput{StackName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	if at := aws.ToTime(ev.StackEvents[0].Timestamp); !at.Equal(time.Date(2026, 3, 1, 12, 4, 0, 0, time.UTC)) {
		t.Errorf("CREATE_COMPLETE stamped %v, want when it was due (12:04)", at)
	}
}
