package msd

import (
	"os"
	"syscall"
)

const oDirect = syscall.O_DIRECT

// clearDirect turns O_DIRECT off for f.
func clearDirect(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		fl, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		if e != 0 {
			ferr = e
			return
		}
		if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFL, fl&^syscall.O_DIRECT); e != 0 {
			ferr = e
		}
	})
	if err != nil {
		return err
	}
	return ferr
}
