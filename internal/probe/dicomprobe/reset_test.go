package dicomprobe

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// resetAtOnce listens on loopback and resets every connection it accepts, telling reset after
// each; the test's cleanup stops it.
func resetAtOnce(t *testing.T) (addr net.Addr, reset <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
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
			ch <- struct{}{}
		}
	}()
	return ln.Addr(), ch
}

// TestResetOnConnect: a server that accepts and resets at once gets one record, whichever side
// of the reset the dial returned on: open, not-dicom, "connection reset" (at depth connect:
// open). Before, a reset the dial saw was an error result, one the association's read saw an
// open port: the same server counted apart from scan to scan.
func TestResetOnConnect(t *testing.T) {
	addr, reset := resetAtOnce(t)
	tg := target(t, addr.String())
	var d net.Dialer
	// After the reset: the dial returned a connection, and the reset waits on it.
	after := func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, a)
		if err == nil {
			<-reset
		}
		return c, err
	}
	// Before: the dial saw the reset, as Linux's connect does when it comes first.
	before := func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := after(ctx, network, a)
		if err != nil {
			return nil, err
		}
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNRESET)}
	}
	for _, depth := range []Depth{DepthConnect, DepthQuery} {
		probeWith := func(dial func(context.Context, string, string) (net.Conn, error)) probe.Result {
			return New(Config{Depth: depth, Timeout: 2 * time.Second, TLS: TLSOff, Dial: dial}).Probe(context.Background(), tg)
		}
		a, b := probeWith(after), probeWith(before)
		sameRecord(t, a, b)
		if b.Status != probe.StatusOpen || b.DICOM != nil {
			t.Errorf("depth %v: status %v, dicom %+v; want open, no dicom", depth, b.Status, b.DICOM)
		}
		if depth == DepthQuery && (b.Exposure == nil || b.Exposure.Level != probe.LevelNotDICOM || b.Error != "connection reset") {
			t.Errorf("depth %v: exposure %+v, error %q; want not-dicom, connection reset", depth, b.Exposure, b.Error)
		}
	}
}
