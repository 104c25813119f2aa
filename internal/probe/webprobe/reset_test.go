package webprobe_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/webprobe"
)

// TestResetOnConnect: a web port that accepts and resets at once gets one record, whichever
// side of the reset the dial returned on: open, not-dicom, "connection reset", no web. Before,
// a reset the dial saw was an error result.
func TestResetOnConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reset := make(chan struct{}, 16)
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
			reset <- struct{}{}
		}
	}()
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
	var got [2]string
	for i, dial := range []func(context.Context, string, string) (net.Conn, error){after, before} {
		r := webprobe.New(webprobe.Config{Timeout: 2 * time.Second, Dial: dial}).Probe(context.Background(), targetOf(t, ln.Addr()))
		if r.Status != probe.StatusOpen || r.Error != "connection reset" || r.Exposure == nil || r.Exposure.Level != probe.LevelNotDICOM || r.Web != nil {
			t.Errorf("status %v, error %q, exposure %+v, web %+v; want open, connection reset, not-dicom, no web", r.Status, r.Error, r.Exposure, r.Web)
		}
		r.Time = time.Time{}
		b, _ := json.Marshal(r)
		got[i] = string(b)
	}
	if got[0] != got[1] {
		t.Errorf("records differ:\n%s\n%s", got[0], got[1])
	}
}
