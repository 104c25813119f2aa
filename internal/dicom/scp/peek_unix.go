//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package scp

import (
	"net"
	"syscall"
)

// peeker tells, without blocking or consuming anything, whether a socket has
// bytes (or the end of the stream) waiting to be read.
type peeker struct {
	rc    syscall.RawConn // nil: the connection is not a socket
	fn    func(fd uintptr) bool
	ready bool
	b     [1]byte
}

func newPeeker(c net.Conn) *peeker {
	p := &peeker{}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			p.rc = rc
		}
	}
	p.fn = func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.ready = err == nil && n >= 0 // n == 0: the end of the stream, which a read reports
		return true
	}
	return p
}

// readable reports whether a read would not block. It is always false for a
// connection that is not a socket, such as one end of a net.Pipe.
func (p *peeker) readable() bool {
	if p.rc == nil {
		return false
	}
	p.ready = false
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	return p.ready
}
