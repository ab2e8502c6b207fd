//go:build linux

package host

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// scriptFile returns a file holding body, for bash to read as fd 3: an
// anonymous memory file, written at once, which costs a step less than a
// pipe and a goroutine writing the script into it.
func scriptFile(body string) (*os.File, error) {
	fd, err := unix.MemfdCreate("gpipe-script", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "gpipe-script")
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return nil, fmt.Errorf("write script: %w", err)
	}
	return f, nil
}

// child is a script's process, started by startChild.
type child struct {
	pid   int
	pidfd int // -1 where the kernel gives none
}

// startChild starts path in a process group of its own with stdin, out as
// stdout and stderr, and script as fd 3. It forks without os/exec: exec.Cmd
// copies and deduplicates the environment, opens /dev/null and dups a pidfd
// on every start, which a run of short steps pays once per step. stdin is a
// raw descriptor, the caller's to close.
func startChild(path string, argv, env []string, stdin int, out, script *os.File) (*child, error) {
	pidfd := -1
	attr := &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{uintptr(stdin), out.Fd(), out.Fd(), script.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd},
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	return &child{pid: pid, pidfd: pidfd}, nil
}

// awaitExit returns once the process has exited, without reaping it, so
// that its pid still names it (see noteGroup). It waits in the runtime's
// poller on the pidfd rather than in a thread blocked in waitid per step.
// Without a pidfd, or should polling fail, reap waits instead.
func (c *child) awaitExit() {
	if c.pidfd < 0 {
		return
	}
	fd := c.pidfd
	c.pidfd = -1
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd") // closes fd
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo // zero: Signo stays 0 while the process runs
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if errors.Is(err, syscall.EINTR) {
			return false
		}
		return err != nil || info.Signo != 0
	})
}

// reap waits for the process to end (at once after awaitExit) and returns
// how it ended.
func (c *child) reap() (syscall.WaitStatus, error) {
	if c.pidfd >= 0 {
		syscall.Close(c.pidfd)
		c.pidfd = -1
	}
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(c.pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			return ws, err
		}
	}
}
