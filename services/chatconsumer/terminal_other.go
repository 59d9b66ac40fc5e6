//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package main

// takeTerminal does nothing on this system; see terminal_unix.go.
func takeTerminal() (restore func()) { return func() {} }
