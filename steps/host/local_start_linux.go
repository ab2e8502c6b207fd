//go:build linux

package host

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// scriptFD returns a descriptor holding body, for bash to read as fd 3: an
// anonymous memory file, written at once, which costs a step less than a
// pipe and a goroutine writing the script into it. It is a raw descriptor
// (an *os.File would ask the kernel for its flags), the caller's to close.
func scriptFD(body string) (int, error) {
	fd, err := unix.MemfdCreate("gpipe-script", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	for b := []byte(body); len(b) > 0; {
		n, err := unix.Write(fd, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("write script: %w", err)
		}
		b = b[n:]
	}
	return fd, nil
}

// logPipe returns a pipe for a script's output: the read end in the
// runtime's poller, and the write end as a raw blocking descriptor for the
// child, the caller's to close. os.Pipe would register both ends with the
// poller and switch the write end back to blocking when the child gets it,
// eight system calls a step more.
func logPipe() (*os.File, int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, -1, fmt.Errorf("pipe2: %w", err)
	}
	// O_NONBLOCK belongs to each end's open file: the child's end blocks.
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETFL, 0); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, -1, fmt.Errorf("pipe2: %w", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), p[1], nil
}

// child is a script's process, started by startChild.
type child struct {
	pid   int
	pidfd int // -1 where the kernel gives none
}

// startChild starts path in a process group of its own with stdin as fd 0,
// out as stdout and stderr, and script as fd 3. It forks without os/exec:
// exec.Cmd copies and deduplicates the environment, opens /dev/null and
// dups a pidfd on every start, which a run of short steps pays once per
// step. The descriptors are the caller's to close.
func startChild(path string, argv, env []string, stdin, out, script int) (*child, error) {
	pidfd := -1
	attr := &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{uintptr(stdin), uintptr(out), uintptr(out), uintptr(script)},
		Sys:   &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd},
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	return &child{pid: pid, pidfd: pidfd}, nil
}

// waitid waits for the process to exit without reaping it, so that its pid
// still names it (see noteGroup); with WNOHANG it only looks.
func (c *child) waitid(options int) (exited bool, err error) {
	options |= unix.WEXITED | unix.WNOWAIT
	for {
		var info unix.Siginfo // zero: Signo stays 0 while the process runs
		if c.pidfd >= 0 {
			err = unix.Waitid(unix.P_PIDFD, c.pidfd, &info, options, nil)
		} else {
			err = unix.Waitid(unix.P_PID, c.pid, &info, options, nil)
		}
		if !errors.Is(err, syscall.EINTR) {
			return err != nil || info.Signo != 0, err
		}
	}
}

// exitedSoon reports whether the process has exited, waiting up to d for
// it in a poll of its pidfd (this thread blocks), without reaping it: a
// script's output pipe closes a moment before the kernel reports the exit
// (bash closes its files first), and one poll is cheaper than handing the
// pidfd to the runtime's poller.
func (c *child) exitedSoon(d time.Duration) bool {
	if c.pidfd < 0 {
		done, _ := c.waitid(unix.WNOHANG)
		return done
	}
	fds := []unix.PollFd{{Fd: int32(c.pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d.Milliseconds()))
		if errors.Is(err, syscall.EINTR) {
			continue // the wait starts over; it is short
		}
		return err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0
	}
}

// awaitExit returns once the process has exited, without reaping it. It
// waits in the runtime's poller on the pidfd (handing it to the poller,
// which closes it) rather than in a thread blocked in waitid; without a
// pidfd, or should polling fail, a thread waits.
func (c *child) awaitExit() {
	fd := c.pidfd
	c.pidfd = -1
	if fd < 0 {
		_, _ = c.waitid(0)
		return
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		_, _ = c.waitid(0)
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd") // closes fd
	defer f.Close()
	rc, err := f.SyscallConn()
	if err == nil {
		err = rc.Read(func(uintptr) bool {
			done, err := c.waitid(unix.WNOHANG)
			return done || err != nil
		})
	}
	if err != nil {
		_, _ = c.waitid(0)
	}
}

// reap waits for the process to end (at once after exited or awaitExit)
// and returns how it ended.
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
