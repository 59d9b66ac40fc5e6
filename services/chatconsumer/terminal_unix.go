//go:build linux || darwin || freebsd || netbsd || openbsd

package main

import (
	"os"
	"os/signal"
	"syscall"
	"unsafe"
)

// takeTerminal makes the process its own process group and the terminal's
// foreground group, so that Ctrl-C reaches the consumer alone. `make run`
// sets CHATCONSUMER_TAKE_TERMINAL=1 for this: otherwise make receives the
// same SIGINT and dies of it (exit 130) although the consumer drained and
// exited 0. Ctrl-Z is ignored meanwhile, since make could not pass a stop
// on. It does nothing unless standard input is a terminal whose foreground
// group is the process's own. The returned function gives the terminal
// back.
func takeTerminal() (restore func()) {
	fd := int(os.Stdin.Fd())
	orig, err := tcgetpgrp(fd)
	if err != nil || orig != syscall.Getpgrp() {
		return func() {}
	}
	if err := syscall.Setpgid(0, 0); err != nil {
		return func() {}
	}
	// A background group that sets the foreground group gets SIGTTOU.
	signal.Ignore(syscall.SIGTTOU, syscall.SIGTSTP)
	if err := tcsetpgrp(fd, syscall.Getpid()); err != nil {
		_ = syscall.Setpgid(0, orig)
		return func() {}
	}
	return func() { _ = tcsetpgrp(fd, orig) }
}

func tcgetpgrp(fd int) (int, error) {
	var pgid int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(syscall.TIOCGPGRP), uintptr(unsafe.Pointer(&pgid))); errno != 0 {
		return 0, errno
	}
	return int(pgid), nil
}

func tcsetpgrp(fd, pgid int) error {
	p := int32(pgid)
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(syscall.TIOCSPGRP), uintptr(unsafe.Pointer(&p))); errno != 0 {
		return errno
	}
	return nil
}
