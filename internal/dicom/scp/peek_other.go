//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package scp

import "net"

// peeker would tell whether a socket has bytes waiting; on this platform it
// cannot, and a C-CANCEL-RQ is seen only when an operation ends.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return &peeker{} }

func (*peeker) readable() bool { return false }
