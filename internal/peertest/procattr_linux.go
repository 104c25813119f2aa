package peertest

import "syscall"

// procAttr puts a peer in a process group of its own, which sig reaches when this process dies,
// however it dies: no peer outlives its test.
func procAttr(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
}
