package testtool

import (
	"sync"
	"testing"
	"time"
)

// WaitDeadline is how long a test waits for one thing (goroutines, a
// process, a signal from a fake) before it fails saying what it waited for.
// It is far above what any wait takes on a loaded machine, and far below go
// test's 10-minute timeout, which reports only a goroutine dump.
const WaitDeadline = 60 * time.Second

// Wait waits for wg, failing the test with what when WaitDeadline passes.
func Wait(t testing.TB, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	Recv(t, done, what)
}

// Recv receives from ch, failing the test with what when WaitDeadline passes
// first. A closed channel yields its zero value, as a receive does.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(WaitDeadline)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("waited %v for %s", WaitDeadline, what)
	}
	var zero T
	return zero
}
