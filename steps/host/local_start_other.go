//go:build !linux

package host

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// pipe returns a pipe whose ends are closed on exec.
func pipe() (r, w int, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	err = syscall.Pipe(p[:])
	if err == nil {
		syscall.CloseOnExec(p[0])
		syscall.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	return p[0], p[1], err
}

// scriptFD returns the read end of a pipe that body is written into, for
// bash to read as fd 3; the caller's to close.
func scriptFD(body string) (int, error) {
	r, w, err := pipe()
	if err != nil {
		return -1, fmt.Errorf("make script pipe: %w", err)
	}
	go func() {
		// bash reads the script as it runs; an early exit closes the read end
		// and this write fails, which is fine.
		for b := []byte(body); len(b) > 0; {
			n, err := syscall.Write(w, b)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil {
				break
			}
			b = b[n:]
		}
		syscall.Close(w)
	}()
	return r, nil
}

// logPipe returns a pipe for a script's output: the read end in the
// runtime's poller, the write end a raw descriptor, the caller's to close.
func logPipe() (*os.File, int, error) {
	r, w, err := pipe()
	if err != nil {
		return nil, -1, fmt.Errorf("make log pipe: %w", err)
	}
	if err := syscall.SetNonblock(r, true); err != nil {
		syscall.Close(r)
		syscall.Close(w)
		return nil, -1, fmt.Errorf("make log pipe: %w", err)
	}
	return os.NewFile(uintptr(r), "|0"), w, nil
}

// child is a script's process, started by startChild. Without waitid's
// WNOWAIT here, seeing it exit reaps it.
type child struct {
	pid  int
	ws   syscall.WaitStatus
	err  error
	done bool
}

// startChild starts path in a process group of its own with stdin as fd 0,
// out as stdout and stderr, and script as fd 3.
func startChild(path string, argv, env []string, stdin, out, script int) (*child, error) {
	attr := &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{uintptr(stdin), uintptr(out), uintptr(out), uintptr(script)},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	return &child{pid: pid}, nil
}

func (c *child) wait(options int) bool {
	for !c.done {
		pid, err := syscall.Wait4(c.pid, &c.ws, options, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid == c.pid {
			c.err, c.done = err, true
		}
		break
	}
	return c.done
}

// exitedSoon reports whether the process has exited, without waiting: a
// wait would reap it here.
func (c *child) exitedSoon(time.Duration) bool { return c.wait(syscall.WNOHANG) }

// awaitExit returns once the process has exited; here it also reaps it.
func (c *child) awaitExit() { c.wait(0) }

// reap returns how the process ended.
func (c *child) reap() (syscall.WaitStatus, error) {
	c.wait(0)
	return c.ws, c.err
}
