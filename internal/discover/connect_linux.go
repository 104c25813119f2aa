//go:build linux

package discover

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pacswatch/pacswatch/internal/fifo"
)

// A Connector makes TCP connection attempts with many in flight at little cost: each attempt
// is a non-blocking socket watched by one epoll instance, so that an attempt in flight holds a
// socket and a few dozen bytes, not a goroutine with a dialer's stack, contexts and a timer
// (issue 12: tens of thousands of filtered targets at once). Every attempt has the same
// timeout, so a FIFO gives their deadlines in order. It is safe for concurrent use; the caller
// bounds the attempts in flight (each holds a file descriptor).
type Connector struct {
	timeout time.Duration
	epfd    int
	base    time.Time // deadlines are nanoseconds since base, on the monotonic clock
	stopped chan struct{}
	stall   func() // tests: called at each turn of the loop, to make it late

	mu      sync.Mutex           // protects the fields below
	pending map[int32]*pend      // by file descriptor
	fifo    fifo.Queue[deadline] // in deadline order (every attempt waits as long); entries no longer pending are skipped
	seq     uint32               // tells an attempt's epoll events from those of an earlier socket of the same number
	closed  bool
}

// pend is one attempt in flight.
type pend struct {
	fd   int32
	seq  uint32
	done chan result // buffered: whoever takes the attempt out of pending sends once
}

// deadline is an attempt's entry in the FIFO: no pointer, so that an attempt answered early
// holds no memory but these 16 bytes until the entries before it are gone.
type deadline struct {
	fd  int32
	seq uint32
	at  int64 // nanoseconds since Connector.base
}

// pends are reused: once Connect has its answer, nothing else refers to its pend.
var pends = sync.Pool{New: func() any { return &pend{done: make(chan result, 1)} }}

type result struct {
	conn net.Conn
	err  error
}

// NewConnector returns a Connector whose attempts wait timeout for an answer (0: the
// default). Close it when done.
func NewConnector(timeout time.Duration) (*Connector, error) { return startConnector(timeout, nil) }

// startConnector is NewConnector with a stall hook for tests.
func startConnector(timeout time.Duration, stall func()) (*Connector, error) {
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	c := &Connector{timeout: timeout, epfd: epfd, base: time.Now(), stopped: make(chan struct{}),
		pending: make(map[int32]*pend), stall: stall}
	go c.loop()
	return c, nil
}

// Timeout returns how long an attempt waits for an answer.
func (c *Connector) Timeout() time.Duration { return c.timeout }

// Pending returns how many attempts are in flight.
func (c *Connector) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Connect opens a TCP connection to ap, waiting at most the Connector's timeout for an answer.
// A target that does not answer in time gives an error wrapping ErrTimeout; otherwise the
// error wraps the system's (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EMFILE…): Classify tells
// the outcome. The connection returned is the caller's to close. When ctx ends first, the
// attempt is abandoned and Connect returns ctx.Err().
func (c *Connector) Connect(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	fd, sa, err := socketFor(ap)
	if err != nil {
		return nil, err
	}
	switch err := syscall.Connect(fd, sa); err {
	case nil:
		return adopt(fd)
	case syscall.EINPROGRESS:
	default:
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	p := pends.Get().(*pend)
	p.fd = int32(fd)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		syscall.Close(fd)
		return nil, ErrClosed
	}
	c.seq++
	p.seq = c.seq
	ev := syscall.EpollEvent{Events: syscall.EPOLLOUT | syscall.EPOLLONESHOT, Fd: p.fd, Pad: int32(p.seq)}
	if err := syscall.EpollCtl(c.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		c.mu.Unlock()
		syscall.Close(fd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	c.pending[p.fd] = p
	c.fifo.Push(deadline{fd: p.fd, seq: p.seq, at: int64(time.Since(c.base) + c.timeout)})
	c.mu.Unlock()

	select {
	case r := <-p.done:
		pends.Put(p)
		return r.conn, r.err
	case <-ctx.Done():
		if c.take(p) {
			syscall.Close(fd)
			pends.Put(p)
			return nil, ctx.Err()
		}
		if r := <-p.done; r.conn != nil { // completed meanwhile
			r.conn.Close()
		}
		pends.Put(p)
		return nil, ctx.Err()
	}
}

// live returns FIFO entry d's attempt if it is still in flight. c.mu must be held.
func (c *Connector) live(d deadline) (*pend, bool) {
	p := c.pending[d.fd]
	return p, p != nil && p.seq == d.seq
}

// take removes p from the attempts in flight and reports whether it was still there: the
// caller then owns its socket and its answer.
func (c *Connector) take(p *pend) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[p.fd] != p {
		return false
	}
	delete(c.pending, p.fd)
	return true
}

// socketFor returns a non-blocking TCP socket for ap's family and ap as a sockaddr.
func socketFor(ap netip.AddrPort) (int, syscall.Sockaddr, error) {
	family := syscall.AF_INET
	var sa syscall.Sockaddr
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	} else {
		family = syscall.AF_INET6
		sa6 := &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
		if z := a.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = sa6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	return fd, sa, nil
}

// adopt turns a connected socket into a net.Conn of Go's poller (it takes a duplicate and
// closes fd), with Nagle's algorithm off as net.Dial leaves it.
func adopt(fd int) (net.Conn, error) {
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	f := os.NewFile(uintptr(fd), "")
	conn, err := net.FileConn(f)
	f.Close()
	return conn, err
}

// loop waits for answers and deadlines until Close.
func (c *Connector) loop() {
	defer close(c.stopped)
	events := make([]syscall.EpollEvent, 512)
	for {
		// Every answer already in is taken before any deadline is looked at, so that an attempt
		// the loop is slow to see (a busy machine) is never taken for a timeout: the scanner's
		// own limits are never a target's result.
		if c.stall != nil {
			c.stall()
		}
		wait := c.nextWait()
		for {
			n, err := syscall.EpollWait(c.epfd, events, wait)
			if err != nil && err != syscall.EINTR {
				c.fail(os.NewSyscallError("epoll_wait", err))
				return
			}
			for _, ev := range events[:max(n, 0)] {
				c.complete(ev.Fd, uint32(ev.Pad))
			}
			if n < len(events) {
				break
			}
			wait = 0
		}
		c.expire()
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			c.fail(ErrClosed)
			return
		}
	}
}

// nextWait returns how many milliseconds epoll may wait: until the oldest deadline, and at
// most 50 ms, so that Close is seen soon.
func (c *Connector) nextWait() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.fifo.Len() > 0 {
		if _, ok := c.live(c.fifo.First()); ok {
			break
		}
		c.fifo.Pop()
	}
	if c.fifo.Len() == 0 {
		return 50
	}
	d := time.Duration(c.fifo.First().at) - time.Since(c.base)
	return int(min(max((d+time.Millisecond-1)/time.Millisecond, 0), 50))
}

// complete answers the attempt of an epoll event: its socket is connected or failed.
func (c *Connector) complete(fd int32, seq uint32) {
	c.mu.Lock()
	p := c.pending[fd]
	if p == nil || p.seq != seq {
		c.mu.Unlock()
		return // an earlier socket of that number, already answered
	}
	delete(c.pending, fd)
	c.mu.Unlock()
	c.resolve(p, false)
}

// resolve answers p, taken out of pending, from its socket's state: failed (SO_ERROR),
// connected, or, when late, still waiting: a timeout.
func (c *Connector) resolve(p *pend, late bool) {
	fd := int(p.fd)
	_ = syscall.EpollCtl(c.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	errno, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
	switch {
	case err != nil:
		syscall.Close(fd)
		p.done <- result{err: os.NewSyscallError("getsockopt", err)}
	case errno != 0:
		syscall.Close(fd)
		p.done <- result{err: os.NewSyscallError("connect", syscall.Errno(errno))}
	case late && !connected(fd):
		syscall.Close(fd)
		p.done <- result{err: ErrTimeout}
	default:
		conn, err := adopt(fd)
		p.done <- result{conn: conn, err: err}
	}
}

// connected reports whether socket fd has a peer: its connection is established.
func connected(fd int) bool {
	_, err := syscall.Getpeername(fd)
	return err == nil
}

// expire fails the attempts whose deadline has passed.
func (c *Connector) expire() {
	now := int64(time.Since(c.base))
	var late []*pend
	c.mu.Lock()
	for c.fifo.Len() > 0 && c.fifo.First().at <= now {
		if p, ok := c.live(c.fifo.First()); ok {
			delete(c.pending, p.fd)
			late = append(late, p)
		}
		c.fifo.Pop()
	}
	c.mu.Unlock()
	for _, p := range late {
		c.resolve(p, true) // an answer that came in just now still counts
	}
}

// fail ends every attempt in flight with err.
func (c *Connector) fail(err error) {
	c.mu.Lock()
	c.closed = true
	ps := make([]*pend, 0, len(c.pending))
	for _, p := range c.pending {
		ps = append(ps, p)
	}
	clear(c.pending)
	c.fifo.Reset()
	c.mu.Unlock()
	for _, p := range ps {
		syscall.Close(int(p.fd))
		p.done <- result{err: err}
	}
}

// Close ends the attempts in flight (their Connect returns ErrClosed) and releases the
// Connector's resources.
func (c *Connector) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	<-c.stopped
	return syscall.Close(c.epfd)
}
