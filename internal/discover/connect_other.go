//go:build !linux

package discover

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// A Connector makes TCP connection attempts with a timeout. This portable version dials with
// net.Dialer in the caller's goroutine; on Linux each attempt is a non-blocking socket watched
// by epoll instead, and costs far less memory. It is safe for concurrent use.
type Connector struct {
	timeout time.Duration
	pending atomic.Int64
	closed  atomic.Bool
}

// NewConnector returns a Connector whose attempts wait timeout for an answer (0: the default).
func NewConnector(timeout time.Duration) (*Connector, error) {
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	return &Connector{timeout: timeout}, nil
}

// Timeout returns how long an attempt waits for an answer.
func (c *Connector) Timeout() time.Duration { return c.timeout }

// Pending returns how many attempts are in flight.
func (c *Connector) Pending() int { return int(c.pending.Load()) }

// Connect opens a TCP connection to ap, waiting at most the Connector's timeout for an answer;
// see the Linux version.
func (c *Connector) Connect(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	c.pending.Add(1)
	defer c.pending.Add(-1)
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", ap.String())
	if err != nil && ctx.Err() == nil && errors.Is(dctx.Err(), context.DeadlineExceeded) {
		return nil, ErrTimeout
	}
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return conn, err
}

// Close makes later attempts fail with ErrClosed.
func (c *Connector) Close() error {
	c.closed.Store(true)
	return nil
}
