package scan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// The connect stage (Config.ConnectTimeout): each worker connects to its target through a
// discover.Connector, which costs a socket and a few bytes per attempt rather than a
// dialer's goroutine, contexts and timer, so that tens of thousands of attempts can wait for
// their answer at once; the targets that accept go on to the probe stage, Concurrency at a
// time, whose first dial takes over the connection (attempt.pre). The others have their
// result at once: closed, filtered or unreachable, counted rather than stored.

// connectWorkers returns how many workers a Run with a connect stage starts: one per
// connection attempt in flight, as many as the Dialer's sockets allow once each probe running
// has a socket for its next connection besides the one it took over from the connect stage
// (a worker holds one socket at most, its probe's next connection one more), and at least
// concurrency. A probe that opens more at once waits for a socket, at worst until its deadline,
// and is then probed again (ErrOwnLimit): never a deadlock.
func connectWorkers(maxSockets, concurrency int) int {
	return max(maxSockets-concurrency, concurrency)
}

// preConn is the connect stage's connection, for the probe's first dial to addr.
type preConn struct {
	conn net.Conn
	addr string
}

// takePre returns the connect stage's connection to addr for a's probe, once; nil otherwise.
func (a *attempt) takePre(addr string) net.Conn {
	if a == nil {
		return nil
	}
	p := a.pre.Load()
	if p == nil || p.addr != addr || !a.pre.CompareAndSwap(p, nil) {
		return nil
	}
	return p.conn
}

// closePre closes the connect stage's connection if the probe did not take it.
func (a *attempt) closePre() {
	if a == nil {
		return
	}
	if p := a.pre.Swap(nil); p != nil {
		p.conn.Close()
	}
}

// connect is the connect stage for j: it reports whether j's target accepted, its connection
// then left in a for the probe; otherwise j.res holds the outcome. ok is false when ctx ended
// (the attempt says nothing), or a is out of files (see attempt.outOfFiles).
func (e *engine) connect(ctx context.Context, j *job, a *attempt) (open, ok bool) {
	d := e.cfg.Dialer
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return false, false
	}
	ap := netip.AddrPortFrom(j.t.Addr, j.t.Port)
	c, err := e.connectRetry(ctx, ap, a)
	if probe.ResetOnConnect(err) {
		// Accepted, then reset before the stage saw it: the port is open. The probe connects
		// again, with a rate token of its own, and records what it finds, as for a target whose
		// reset the stage did not see.
		<-d.slots
		d.reach.report(nil, a)
		a.credit.Store(false)
		return true, true
	}
	if err != nil {
		<-d.slots
		if ctx.Err() != nil || a.outOfFiles.Load() || errors.Is(err, discover.ErrClosed) {
			return false, false
		}
		d.reach.report(err, a)
		j.res = connectResult(j.t, err, e.cfg.Now())
		return false, true
	}
	d.reach.report(nil, a)
	d.live.Add(1)
	wrapped := &conn{Conn: c, d: d}
	if ctx.Err() != nil {
		wrapped.Close()
		return false, false
	}
	if e.cfg.Redial {
		wrapped.Close() // the probe connects again, with a rate token of its own
		a.credit.Store(false)
	} else {
		a.pre.Store(&preConn{conn: wrapped, addr: j.t.String()})
	}
	return true, true
}

// connectRetry connects to ap, waiting and trying again while the process is out of file
// descriptors (see fileWait), as Dialer.dial does.
func (e *engine) connectRetry(ctx context.Context, ap netip.AddrPort, a *attempt) (net.Conn, error) {
	var w fileWait
	for {
		c, err := e.connector.Connect(ctx, ap)
		if err == nil || !outOfFiles(err) {
			return c, err
		}
		if w.short(e.cfg.Dialer) {
			a.outOfFiles.Store(true)
			return nil, fmt.Errorf("%w: %w", ErrOutOfFiles, errnoOf(err))
		}
		if !w.pause(ctx) {
			return nil, ctx.Err()
		}
	}
}

// connectResult is the result of a target whose connection attempt failed, as the probes
// word it: closed, filtered (no answer, or unreachable), or error.
func connectResult(t targets.Target, err error, now time.Time) probe.Result {
	r := probe.Result{IP: t.Addr, Port: t.Port, Time: now.UTC()}
	switch discover.Classify(err) {
	case discover.Closed:
		r.Status, r.Error = probe.StatusClosed, "connection refused"
	case discover.Filtered:
		r.Status = probe.StatusFiltered // no answer to SYN: filtered, as nmap says
	case discover.Unreachable:
		r.Status, r.Error = probe.StatusFiltered, TextUnreachable
	default:
		r.Status, r.Error = probe.Classify(err)
	}
	return r
}
