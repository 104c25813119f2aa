//go:build !linux

package peertest

import "syscall"

// procAttr puts a peer in a process group of its own. Only Linux signals a child when its
// parent dies; elsewhere the test's cleanup is what stops it.
func procAttr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
