package scan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// Errors of a Dialer, which Run also returns.
var (
	// ErrOwnLimit is wrapped by the error of a dial that could not start before its deadline
	// because of the scanner's own limits: its turn under the rate, a free socket, or a free
	// file descriptor. Under Run such a probe's result is dropped and the target probed again:
	// the scanner's own limits are never a target's result (SPEC "Scale and discovery").
	ErrOwnLimit = errors.New("scan: no connection started before the deadline: the scanner's own limit")
	// ErrOutOfFiles is wrapped by the error Run returns when the process has no file descriptor
	// for a new socket for OutOfFilesAfter while the Dialer holds none: nothing the scan waits for
	// will free one. The scan stays resumable.
	ErrOutOfFiles = errors.New("scan: out of file descriptors")
)

// OutOfFilesAfter is how long a Dialer that holds no socket keeps retrying a dial that fails
// for want of a file descriptor (EMFILE, ENFILE) before it gives up with ErrOutOfFiles.
const OutOfFilesAfter = 5 * time.Second

var outOfFilesAfter = OutOfFilesAfter // tests shorten it

// DialerConfig configures a Dialer. The zero value of each field has the documented default.
type DialerConfig struct {
	// Rate is how many new connections may start per second, whatever the target or step that
	// opens them (SPEC --rate: AE guesses, TLS retries, retrieval tests and web requests
	// count). 0 means no limit.
	Rate float64
	// Burst is how many connections may start at once after a pause. Default 1.
	Burst int
	// MaxSockets bounds the connections open at once through the Dialer, each from its dial
	// until it is closed. Default SocketBudget(FileLimit()).
	MaxSockets int
	// Dial opens a connection. Default a net.Dialer's DialContext. Tests inject theirs.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives a warning, at most one every 10 s, while the process is out of file
	// descriptors. Nil discards it.
	Logger *slog.Logger
}

// A Dialer opens the connections of a scan's probes: pass its DialContext as their
// Config.Dial, and the Dialer itself as Config.Dialer to Run. It takes one token of a rate
// limiter shared by every probe for each connection; it holds one of MaxSockets slots for each
// connection from its dial until it is closed, so that the sockets in flight stay within the
// process's file-descriptor limit; and it waits and retries when a dial fails for want of a
// descriptor (EMFILE, ENFILE), which is the scanner's limit, not a target's answer. It also
// watches the first UnreachableAfter connection attempts of each Run (see
// ErrNetworkUnreachable). It is safe for concurrent use.
type Dialer struct {
	cfg   DialerConfig
	err   error         // an invalid DialerConfig, returned by every dial and by Run
	lim   *rate.Limiter // nil: no rate limit
	slots chan struct{} // one element per connection open
	log   *slog.Logger
	live  atomic.Int64 // connections opened and not closed yet
	reach reachWatch
	warn  atomic.Int64 // time of the last out-of-descriptors warning, in Unix nanoseconds
}

// NewDialer returns a Dialer with cfg's defaults filled in. An invalid cfg (a negative or NaN
// rate, a negative burst or socket count) makes every dial, and Run, fail with an error saying so.
func NewDialer(cfg DialerConfig) *Dialer {
	d := &Dialer{}
	switch {
	case math.IsNaN(cfg.Rate) || cfg.Rate < 0:
		d.err = fmt.Errorf("scan: rate %v: want a number of connections per second, or 0 for no limit", cfg.Rate)
	case cfg.Burst < 0:
		d.err = fmt.Errorf("scan: burst %d: want at least 1", cfg.Burst)
	case cfg.MaxSockets < 0:
		d.err = fmt.Errorf("scan: sockets %d: want at least 1", cfg.MaxSockets)
	}
	if cfg.Burst == 0 {
		cfg.Burst = 1
	}
	if cfg.Rate > 0 && d.err == nil {
		d.lim = rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)
	}
	if cfg.MaxSockets == 0 {
		cfg.MaxSockets = SocketBudget(FileLimit())
	}
	if cfg.Dial == nil {
		var nd net.Dialer
		cfg.Dial = nd.DialContext
	}
	d.log = cfg.Logger
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.cfg = cfg
	d.slots = make(chan struct{}, max(cfg.MaxSockets, 1)) // elements of size 0: no buffer is allocated
	d.reach.reset()
	return d
}

// MaxSockets returns how many connections the Dialer holds open at once, at most.
func (d *Dialer) MaxSockets() int { return cap(d.slots) }

// Open returns how many connections opened through the Dialer are not closed yet.
func (d *Dialer) Open() int { return int(d.live.Load()) }

// attempt is what the Dialer and the engine tell each other about one probe of one target,
// through the probe's context.
type attempt struct {
	credit     atomic.Bool             // the engine took the rate token of the probe's first connection
	ownLimit   atomic.Bool             // a wait for the scanner's own limits spoilt a connection attempt
	waiting    atomic.Int32            // dials waiting for the scanner's own limits now
	outOfFiles atomic.Bool             // ErrOutOfFiles: no descriptor, and none of ours to wait for
	unreach    atomic.Bool             // an attempt found no route before the network was found reachable
	pre        atomic.Pointer[preConn] // the connect stage's connection, for the probe's first dial
}

// spoilt reports whether the scanner's own limits spoilt the probe: a dial waited out its
// deadline, or still waits now that the probe has returned (net/http gives up on a dial it
// started in another goroutine when the request's deadline passes).
func (a *attempt) spoilt() bool { return a.ownLimit.Load() || a.waiting.Load() > 0 }

// wait adds n to the dials of a waiting for the scanner's limits; a may be nil.
func (a *attempt) wait(n int32) {
	if a != nil {
		a.waiting.Add(n)
	}
}

type attemptKey struct{}

// attemptOf returns the attempt the engine put in ctx; nil outside Run.
func attemptOf(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// DialContext connects to addr on the named network, as net.Dialer.DialContext does, once the
// Dialer's limits allow a new connection: a free socket slot, then a rate token. The returned
// connection frees its slot when it is closed: close every one. A dial that cannot start before
// ctx's deadline fails with an error wrapping ErrOwnLimit.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.err != nil {
		return nil, d.err
	}
	a := attemptOf(ctx)
	if c := a.takePre(addr); c != nil {
		return c, nil // the connect stage's: its slot and rate token are taken
	}
	start := time.Now()
	a.wait(1)
	select {
	case d.slots <- struct{}{}:
	default:
		select {
		case d.slots <- struct{}{}:
		case <-ctx.Done():
			defer a.wait(-1) // after ownLimit marks a
			return nil, d.ownLimit(ctx, a, start, "a free socket")
		}
	}
	if d.lim != nil && (a == nil || !a.credit.CompareAndSwap(true, false)) {
		if err := d.lim.Wait(ctx); err != nil {
			<-d.slots
			defer a.wait(-1)
			return nil, d.ownLimit(ctx, a, start, "its turn under the rate")
		}
	}
	a.wait(-1)
	waited := time.Since(start)
	c, waitedFiles, err := d.dial(ctx, a, network, addr)
	if err != nil {
		<-d.slots
		if errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, ErrOwnLimit) || errors.Is(err, ErrOutOfFiles) {
			return nil, err // the scan stopped, or no attempt was made
		}
		d.reach.report(err, a)
		if waited += waitedFiles; a != nil && isTimeout(err) {
			if dl, ok := ctx.Deadline(); ok && waited > dl.Sub(start)/10 {
				// The connect had less time than the target was given: the wait may have
				// made it time out, so its timeout says nothing true about the target.
				a.ownLimit.Store(true)
				return nil, fmt.Errorf("%w: waited %v of the connect timeout: %w", ErrOwnLimit, waited.Round(time.Millisecond), err)
			}
		}
		return nil, err
	}
	d.reach.report(nil, a)
	d.live.Add(1)
	return &conn{Conn: c, d: d}, nil
}

// dial calls the configured Dial, waiting and retrying while the process is out of file
// descriptors (see fileWait). It returns how long it waited.
func (d *Dialer) dial(ctx context.Context, a *attempt, network, addr string) (net.Conn, time.Duration, error) {
	var w fileWait
	for {
		c, err := d.cfg.Dial(ctx, network, addr)
		if err == nil || !outOfFiles(err) {
			var waited time.Duration
			if !w.since.IsZero() {
				waited = time.Since(w.since)
			}
			return c, waited, err
		}
		if w.since.IsZero() {
			a.wait(1) // until this loop returns: the wait for a descriptor is ours
			defer a.wait(-1)
		}
		if w.short(d) {
			if a != nil {
				a.outOfFiles.Store(true)
			}
			return nil, 0, fmt.Errorf("%w: no descriptor for a socket in %v although the scan holds none: %w",
				ErrOutOfFiles, outOfFilesAfter, errnoOf(err))
		}
		if !w.pause(ctx) {
			return nil, 0, d.ownLimit(ctx, a, w.since, "a free file descriptor")
		}
	}
}

// fileWait paces an attempt that tries again while the process is out of file descriptors:
// nothing was sent, so no new rate token is due. The zero value is a wait not yet begun.
type fileWait struct {
	since   time.Time     // the first failure for want of a descriptor; zero: none yet
	backoff time.Duration // the last pause: 5 ms at first, doubling up to 200 ms
}

// short records a failure for want of a descriptor and logs it through d (every 10 s at most).
// It reports whether to give up: no connection of d's is open, so none will close and free a
// descriptor, and outOfFilesAfter has passed since the first failure.
func (w *fileWait) short(d *Dialer) bool {
	now := time.Now()
	if w.since.IsZero() {
		w.since = now
	}
	d.warnOutOfFiles(now)
	return d.Open() == 0 && now.Sub(w.since) >= outOfFilesAfter
}

// pause waits before the next try; false when ctx ended first.
func (w *fileWait) pause(ctx context.Context) bool {
	w.backoff = min(max(2*w.backoff, 5*time.Millisecond), 200*time.Millisecond)
	t := time.NewTimer(w.backoff)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ownLimit is the error of a dial whose wait for the scanner's own limits began at start and
// did not end before ctx did; it marks the attempt so that the engine probes the target again.
// A cancelled wait marks it too: net/http cancels a dial as soon as the request that wanted it
// times out, so the probe's timeout was our wait's doing. When it is the scan that stopped,
// the engine sees its own context done and probes nothing again.
func (d *Dialer) ownLimit(ctx context.Context, a *attempt, start time.Time, what string) error {
	if a != nil {
		a.ownLimit.Store(true)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return fmt.Errorf("%w: waited %v for %s", ErrOwnLimit, time.Since(start).Round(time.Millisecond), what)
}

// warnOutOfFiles logs that the process is out of descriptors, at most every 10 s.
func (d *Dialer) warnOutOfFiles(now time.Time) {
	last := d.warn.Load()
	if now.UnixNano()-last < int64(10*time.Second) || !d.warn.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	d.log.Warn("out of file descriptors: waiting for sockets to close; raise the limit (ulimit -n) or lower --concurrency",
		"open", d.Open(), "max_sockets", d.MaxSockets(), "file_limit", FileLimit())
}

// outOfFiles reports whether err says the process or the system is out of file descriptors.
func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// errnoOf returns the errno in err's chain, or err.
func errnoOf(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// conn is a connection opened through a Dialer: closing it frees its slot, once.
type conn struct {
	net.Conn
	d    *Dialer
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.d.live.Add(-1)
		<-c.d.slots
	})
	return err
}

// SocketBudget returns how many sockets a scan may hold at once in a process allowed limit
// file descriptors: the limit minus a reserve of a twentieth of it, at least 64 and at most
// 4096, and never less than half the limit. The reserve covers what the process holds besides
// the probes' sockets: standard streams, the SQLite store with its -wal and -shm files and
// temporary files, the JSON Lines output, the runtime's poller, and listeners and accepted
// connections when a test fleet (sim, demo) runs in the same process; a dial that still finds
// no descriptor waits and retries. A limit of 0 (unknown) gives no bound.
func SocketBudget(limit uint64) int {
	if limit == 0 || limit > math.MaxInt32 {
		return math.MaxInt32
	}
	n := int(limit)
	reserve := min(max(n/20, 64), 4096)
	return max(n-reserve, n/2, 1)
}
