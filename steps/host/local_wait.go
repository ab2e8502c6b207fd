package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// outputDrain bounds the wait for the log pipe to close after the script's
// process group was killed. Only a process that left the group (setsid, a
// daemon) can still hold it, and the step must not wait for that to end.
const outputDrain = time.Second

// noteGroupAfter is how long a script runs before Exec notes its process
// group (see noteGroup), and watches for its exit apart from its output.
const noteGroupAfter = 20 * time.Millisecond

// exitAfterEOF is how long Exec's goroutine waits in a system call for bash
// to exit once its output pipe closed, before it hands the wait to the
// runtime's poller: the pipe closes a moment before the exit is reported,
// and only a script that closed its output itself lives on much longer.
const exitAfterEOF = 5 * time.Millisecond

// scriptWait follows one script of Exec to its end with one poller
// registration for a short script instead of two: Exec's goroutine reads the
// output until the pipe closes, which for most scripts is when bash exits,
// and then sees the exit with one waitid. Only a script that runs for
// noteGroupAfter gets a watcher of its pidfd besides (longRunning): its
// background children may hold the pipe open after it exits, and are killed
// then; a script that closed its output and runs on is awaited once the pipe
// closed.
type scriptWait struct {
	l      *Local
	s      Script
	c      *child
	token  string
	pr     *os.File
	timer  *time.Timer
	exited chan struct{} // closed once the script has exited

	mu       sync.Mutex
	ended    bool          // the script has exited: nothing more to note
	reading  bool          // copyOutput has returned: it awaits the exit itself
	watching chan struct{} // closed by the watcher once it saw the exit; nil without one
	copied   chan struct{} // closed when copyOutput returns (made by newScriptWait)
}

func newScriptWait(l *Local, s Script, c *child, token string, pr *os.File) *scriptWait {
	return &scriptWait{l: l, s: s, c: c, token: token, pr: pr, exited: make(chan struct{}), copied: make(chan struct{})}
}

// longRunning runs once the script has run for noteGroupAfter: it notes
// the group, and unless the output already ended, starts the watcher.
func (w *scriptWait) longRunning() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.l.noteGroup(w.s, w.c.pid, w.token)
	}
	if w.reading {
		return
	}
	w.watching = make(chan struct{})
	go w.watch()
}

// watch awaits the script's exit apart from its output, kills what it left
// in its group (background children that would hold the pipe open), and
// stops the reading after outputDrain should a process outside the group
// still hold it.
func (w *scriptWait) watch() {
	w.c.awaitExit()
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
	close(w.exited)
	_ = syscall.Kill(-w.c.pid, syscall.SIGKILL)
	t := time.NewTimer(outputDrain)
	defer t.Stop()
	select {
	case <-w.copied:
	case <-t.C:
		_ = w.pr.SetReadDeadline(time.Now())
	}
	close(w.watching)
}

// copyOutput copies the script's output to log until every holder of the
// pipe closed it, or the watcher cut the reading short.
func (w *scriptWait) copyOutput(log io.Writer) error {
	buf, _ := w.l.copyBufs.Get().(*[]byte)
	if buf == nil {
		b := make([]byte, 32<<10)
		buf = &b
	}
	// Only Read: *os.File's WriteTo would allocate a buffer of its own.
	_, err := io.CopyBuffer(log, struct{ io.Reader }{w.pr}, *buf)
	w.l.copyBufs.Put(buf)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		// Nobody reads the pipe any more: a script still writing to it
		// gets EPIPE rather than blocking forever.
		w.pr.Close()
	}
	w.mu.Lock()
	w.reading = true
	close(w.copied)
	w.mu.Unlock()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		fmt.Fprintf(log, "gpipe: stopped reading output: a process that left the step's process group still holds it\n")
		return nil
	}
	return err
}

// awaitExit returns once the script has exited (not reaped), after
// copyOutput.
func (w *scriptWait) awaitExit() {
	w.timer.Stop()
	w.mu.Lock()
	watching := w.watching
	w.mu.Unlock()
	if watching != nil {
		<-watching
		return
	}
	if !w.c.exitedSoon(exitAfterEOF) {
		w.c.awaitExit()
	}
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
	close(w.exited)
}
