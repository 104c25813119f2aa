package scp

import (
	"context"
	"encoding/binary"
	"net"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// framedConn hands its reader at most the rest of the current PDU in one
// Read, so that ul's buffered reader never holds the start of the next PDU:
// whatever the peer sent beyond the PDU being read stays in the socket, where
// a peeker can see it. That is how a C-CANCEL-RQ is noticed between two
// responses without a second reader.
type framedConn struct {
	net.Conn
	hdr  [ul.HeaderLen]byte
	nhdr int    // header bytes of the current PDU read so far
	rest uint32 // body bytes of the current PDU not yet read
}

func (c *framedConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.nhdr < len(c.hdr) {
		n, err := c.Conn.Read(p[:min(len(p), len(c.hdr)-c.nhdr)])
		c.nhdr += copy(c.hdr[c.nhdr:], p[:n])
		if c.nhdr == len(c.hdr) {
			c.rest = binary.BigEndian.Uint32(c.hdr[2:])
			if c.rest == 0 {
				c.nhdr = 0
			}
		}
		return n, err
	}
	n, err := c.Conn.Read(p[:min(uint64(len(p)), uint64(c.rest))])
	c.rest -= uint32(n)
	if c.rest == 0 {
		c.nhdr = 0
	}
	return n, err
}

// deadlines hands out the contexts that bound each wait for the peer.
type deadlines struct {
	parent  context.Context
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc
	renew   time.Time
}

// fresh returns a context that expires timeout from now.
func (d *deadlines) fresh() context.Context {
	d.stop()
	now := time.Now()
	d.ctx, d.cancel = context.WithTimeout(d.parent, d.timeout)
	d.renew = now.Add(d.timeout / 2)
	return d.ctx
}

// stream returns a context with at least half of timeout left, renewing it
// only when needed, so that streaming responses allocates no context per
// message.
func (d *deadlines) stream() context.Context {
	if d.ctx == nil || time.Now().After(d.renew) {
		return d.fresh()
	}
	return d.ctx
}

func (d *deadlines) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// sleep waits for dur, or until ctx is done, which it reports as false.
func sleep(ctx context.Context, dur time.Duration) bool {
	if dur <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// deadline returns the time d from now.
func deadline(d time.Duration) time.Time { return time.Now().Add(d) }
