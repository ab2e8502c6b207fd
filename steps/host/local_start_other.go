//go:build !linux

package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// scriptFile returns the read end of a pipe that body is written into, for
// bash to read as fd 3.
func scriptFile(body string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("make script pipe: %w", err)
	}
	go func() {
		// bash reads the script as it runs; an early exit closes the read end
		// and this write fails, which is fine.
		_, _ = io.WriteString(w, body)
		w.Close()
	}()
	return r, nil
}

// child is a script's process, started by startChild.
type child struct {
	pid  int
	cmd  *exec.Cmd
	err  error
	done bool
}

// startChild starts path in a process group of its own with stdin, out as
// stdout and stderr, and script as fd 3.
func startChild(path string, argv, env []string, stdin int, out, script *os.File) (*child, error) {
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Stdout: out, Stderr: out,
		ExtraFiles: []*os.File{script}, SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
	// stdin is /dev/null; exec.Cmd opens its own for a nil Stdin.
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &child{pid: cmd.Process.Pid, cmd: cmd}, nil
}

// awaitExit returns once the process has exited; here it also reaps it.
func (c *child) awaitExit() {
	c.err, c.done = c.cmd.Wait(), true
}

// reap returns how the process ended.
func (c *child) reap() (syscall.WaitStatus, error) {
	if !c.done {
		c.awaitExit()
	}
	var ee *exec.ExitError
	if c.err != nil && !errors.As(c.err, &ee) {
		return 0, c.err
	}
	ws, _ := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws, nil
}
