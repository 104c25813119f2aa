package peertest

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
)

// A Resetter is a loopback server that accepts every connection and resets it at once (a
// zero linger close: RST, not FIN), as some firewalls and port-knocking daemons do. Whether a
// client's connect returns before the reset or sees it is a race; DialAfter and DialBefore play
// each side of it.
type Resetter struct {
	Addr  net.Addr
	reset chan struct{} // one value for each connection reset
}

// StartResetter starts a Resetter; the test's cleanup stops it.
func StartResetter(t testing.TB) *Resetter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Resetter{Addr: ln.Addr(), reset: make(chan struct{}, 64)}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			select {
			case r.reset <- struct{}{}:
			default: // nobody waits for it (a client dialing on its own)
			}
		}
	}()
	return r
}

// DialAfter connects and returns the connection once the server has reset it: the reset waits
// for the client's first read or write.
func (r *Resetter) DialAfter(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	select {
	case <-r.reset:
	case <-ctx.Done():
	}
	return c, nil
}

// DialBefore connects, waits for the reset as DialAfter does, and returns the error a connect
// returns on Linux when the reset arrives before the socket is seen established.
func (r *Resetter) DialBefore(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := r.DialAfter(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.Close()
	return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNRESET)}
}
