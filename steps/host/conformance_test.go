package host_test

import (
	"testing"
	"time"

	"github.com/gpipe/gpipe/steps/host"
	"github.com/gpipe/gpipe/steps/host/hosttest"
)

// TestLocalConformance: Local passes the host-executor suite. It cannot
// reattach (its scripts live in the runner's process tree) and leaves
// timeouts to the engine's context; it does stop a dead runner's leftovers.
func TestLocalConformance(t *testing.T) {
	hosttest.Run(t, hosttest.Host{
		New: func(t *testing.T) host.Executor {
			l := &host.Local{Grace: 200 * time.Millisecond}
			t.Cleanup(func() { _ = l.Close() })
			return l
		},
		Leftover: host.StartLeftover,
	})
}
