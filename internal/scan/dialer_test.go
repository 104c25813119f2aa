package scan_test

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/webprobe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// acceptLog is a loopback listener that records when each connection arrived, and closes it.
type acceptLog struct {
	ln    net.Listener
	mu    sync.Mutex
	times []time.Time
}

func listen(t *testing.T) *acceptLog {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptLog{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.times = append(a.times, time.Now())
			a.mu.Unlock()
			c.Close()
		}
	})
	return a
}

func (a *acceptLog) addr() string { return a.ln.Addr().String() }

// within returns how many connections arrived within d of the first.
func (a *acceptLog) within(d time.Duration) (n, all int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ts := slices.Clone(a.times)
	slices.SortFunc(ts, time.Time.Compare)
	for _, t := range ts {
		if t.Sub(ts[0]) < d {
			n++
		}
	}
	return n, len(ts)
}

// TestDialerRatePerConnection: --rate counts connections, not targets (issue 10 item 12). Each
// target's probe opens 10 connections, as AE guesses and retries do; at rate 5 the listener sees
// at most 5 + burst connections in the first second, whatever the concurrency.
func TestDialerRatePerConnection(t *testing.T) {
	const rate, burst, perTarget = 5.0, 1, 10
	ln := listen(t)
	d := scan.NewDialer(scan.DialerConfig{Rate: rate})
	var dialErrors atomic.Int64
	p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
		for range perTarget {
			c, err := d.DialContext(ctx, "tcp", ln.addr())
			if err != nil {
				if ctx.Err() == nil {
					dialErrors.Add(1)
				}
				break
			}
			c.Close()
		}
		return resultFor(tg)
	})
	st := openStore(t)
	sp := newSpace(t, "127.0.20.0/24", "104")
	it := sp.Order(7, 0, 1)
	sc := createScan(t, st, it.Len())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(1500*time.Millisecond, cancel)
	_, err := scan.Run(ctx, st, sc, it, p, scan.Config{Dialer: d, Concurrency: 50, MaxHostTime: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v, want context.Canceled", err)
	}
	n, all := ln.within(time.Second)
	t.Logf("%d connections in the first second, %d in all", n, all)
	if n > rate+burst {
		t.Errorf("%d connections in the first second at rate %v, want at most %v", n, rate, rate+burst)
	}
	if all < 6 { // 1.5 s at 5/s: the limiter let connections through at its rate
		t.Errorf("%d connections in 1.5 s at rate %v, want at least 6", all, rate)
	}
	if n := dialErrors.Load(); n > 0 {
		t.Errorf("%d dials failed before the scan ended", n)
	}
}

// TestDialerSockets: a connection holds its slot from dial to close; a dial that finds none
// free before its deadline fails with ErrOwnLimit.
func TestDialerSockets(t *testing.T) {
	ln := listen(t)
	d := scan.NewDialer(scan.DialerConfig{MaxSockets: 2})
	if got := d.MaxSockets(); got != 2 {
		t.Fatalf("MaxSockets() = %d, want 2", got)
	}
	ctx := context.Background()
	a, err := d.DialContext(ctx, "tcp", ln.addr())
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.DialContext(ctx, "tcp", ln.addr())
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Open(); got != 2 {
		t.Errorf("Open() = %d, want 2", got)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if c, err := d.DialContext(short, "tcp", ln.addr()); !errors.Is(err, scan.ErrOwnLimit) {
		t.Fatalf("third dial: got %v, %v; want ErrOwnLimit", c, err)
	}
	got := make(chan error, 1)
	go func() {
		c, err := d.DialContext(ctx, "tcp", ln.addr())
		if err == nil {
			c.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("third dial returned %v while two connections were open", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.Close()
	a.Close() // a second Close frees nothing more
	if err := <-got; err != nil {
		t.Fatalf("dial after a close: %v", err)
	}
	b.Close()
	if got := d.Open(); got != 0 {
		t.Errorf("Open() after closing all = %d, want 0", got)
	}
	for range 2 { // both slots are free again
		c, err := d.DialContext(ctx, "tcp", ln.addr())
		if err != nil {
			t.Fatalf("dial with free slots: %v", err)
		}
		defer c.Close()
	}
}

// emfile is a Dial that fails with EMFILE, as socket(2) does out of descriptors, fail times.
type emfile struct {
	fail  atomic.Int64
	calls atomic.Int64
}

func (e *emfile) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	e.calls.Add(1)
	if e.fail.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("socket", syscall.EMFILE)}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// TestDialerOutOfFiles: EMFILE from a dial is the scanner's own limit: the Dialer waits and
// retries, and gives up with ErrOutOfFiles only when it holds no socket that could free one.
func TestDialerOutOfFiles(t *testing.T) {
	ln := listen(t)
	t.Run("passing", func(t *testing.T) {
		e := &emfile{}
		e.fail.Store(3)
		d := scan.NewDialer(scan.DialerConfig{Dial: e.dial})
		c, err := d.DialContext(context.Background(), "tcp", ln.addr())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
		if got := e.calls.Load(); got != 4 {
			t.Errorf("dials: got %d, want 4 (3 out of descriptors, then one)", got)
		}
	})
	t.Run("lasting", func(t *testing.T) {
		defer scan.SetOutOfFilesAfter(100 * time.Millisecond)()
		e := &emfile{}
		e.fail.Store(math.MaxInt64)
		d := scan.NewDialer(scan.DialerConfig{Dial: e.dial})
		_, err := d.DialContext(context.Background(), "tcp", ln.addr())
		if !errors.Is(err, scan.ErrOutOfFiles) || !strings.Contains(err.Error(), "too many open files") {
			t.Fatalf("dial: got %v, want ErrOutOfFiles saying too many open files", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		e := &emfile{}
		e.fail.Store(math.MaxInt64)
		d := scan.NewDialer(scan.DialerConfig{Dial: e.dial})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := d.DialContext(ctx, "tcp", ln.addr())
		if !errors.Is(err, scan.ErrOwnLimit) {
			t.Fatalf("dial: got %v, want ErrOwnLimit", err)
		}
	})
}

func TestDialerBadConfig(t *testing.T) {
	st := openStore(t)
	sp := newSpace(t, "127.0.21.1", "104")
	sc := createScan(t, st, 1)
	tests := []struct {
		name string
		d    scan.DialerConfig
		rate float64
		want string
	}{
		{"NaN rate", scan.DialerConfig{Rate: nan()}, 0, "rate NaN"},
		{"negative rate", scan.DialerConfig{Rate: -1}, 0, "rate -1"},
		{"negative burst", scan.DialerConfig{Burst: -1}, 0, "burst"},
		{"negative sockets", scan.DialerConfig{MaxSockets: -1}, 0, "sockets"},
		{"rate on both", scan.DialerConfig{Rate: 5}, 5, "set the rate on the dialer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := scan.NewDialer(tt.d)
			p := &counting{p: instant}
			_, err := scan.Run(context.Background(), st, sc, sp.Order(7, 0, 1), p, scan.Config{Dialer: d, Rate: tt.rate})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: got %v, want an error about %s", err, tt.want)
			}
			if len(p.calls) != 0 {
				t.Errorf("probes: got %d, want 0", len(p.calls))
			}
			if tt.rate != 0 {
				return
			}
			if _, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9"); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DialContext: got %v, want an error about %s", err, tt.want)
			}
		})
	}
}

// TestRunRetriesOwnLimit: a probe whose dial waited out its deadline for a socket slot says
// nothing about its target: Run probes the target again instead of storing that result.
// releaseOnFirst returns a function that, on its first call, closes held after d: the slot is
// held from the first probe on, however long the store took to open (the race detector on a
// loaded machine can take longer than d to get there).
func releaseOnFirst(held net.Conn, d time.Duration) func() {
	var once sync.Once
	return func() { once.Do(func() { time.AfterFunc(d, func() { held.Close() }) }) }
}

func TestRunRetriesOwnLimit(t *testing.T) {
	ln := listen(t)
	d := scan.NewDialer(scan.DialerConfig{MaxSockets: 1})
	held, err := d.DialContext(context.Background(), "tcp", ln.addr()) // the only slot, for 300 ms
	if err != nil {
		t.Fatal(err)
	}
	release := releaseOnFirst(held, 300*time.Millisecond)
	p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
		release()
		sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond) // one step's timeout
		defer cancel()
		c, err := d.DialContext(sctx, "tcp", ln.addr())
		r := probe.Result{Time: when}
		if r.Status, r.Error = probe.Classify(err); err == nil {
			c.Close()
		}
		return r
	})
	st := openStore(t)
	sp := newSpace(t, "127.0.22.1-127.0.22.3", "104")
	sc := createScan(t, st, sp.Len())
	stats, err := scan.Run(context.Background(), st, sc, sp.Order(7, 0, 1), p, scan.Config{Dialer: d, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Retried == 0 || stats.Open != sp.Len() || stats.Errors != 0 {
		t.Errorf("stats %+v: want every target open, none an error, and retries", stats)
	}
	for _, js := range storedJSON(t, st, sc.ID) {
		if !strings.Contains(js, `"status":"open"`) {
			t.Errorf("stored %s, want status open", js)
		}
	}
}

func TestSocketBudget(t *testing.T) {
	for _, tc := range []struct {
		limit uint64
		want  int
	}{
		{0, math.MaxInt32},
		{1, 1},
		{64, 32},
		{128, 64},
		{1024, 960},
		{20000, 19000},
		{1 << 20, 1<<20 - 4096},
		{math.MaxUint64, math.MaxInt32},
	} {
		if got := scan.SocketBudget(tc.limit); got != tc.want {
			t.Errorf("SocketBudget(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}

func TestRaiseFileLimit(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Max < 256 {
		t.Skipf("hard limit %d: too low to lower the soft one", rl.Max)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	low := rl
	low.Cur = 200
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	if got := scan.FileLimit(); got != 200 {
		t.Errorf("FileLimit() = %d, want 200", got)
	}
	got, err := scan.RaiseFileLimit()
	if err != nil || got != uint64(rl.Max) {
		t.Errorf("RaiseFileLimit() = %d, %v; want %d, nil", got, err, rl.Max)
	}
	if got := scan.FileLimit(); got != uint64(rl.Max) {
		t.Errorf("FileLimit() after raising = %d, want %d", got, rl.Max)
	}
}

// TestRunRetriesOwnLimitWeb: the web probe's connections, which net/http opens, are tied to
// their probe too: a dial that waited out its deadline for a slot makes Run probe again.
// TestRunRetriesCancelledWait: a prober that cancels a dial still waiting for the scanner's own
// limits (as net/http does when the request that wanted it times out) and reports a timeout gets
// the target probed again, not recorded filtered.
func TestRunRetriesCancelledWait(t *testing.T) {
	ln := listen(t)
	d := scan.NewDialer(scan.DialerConfig{MaxSockets: 1})
	held, err := d.DialContext(context.Background(), "tcp", ln.addr()) // the only slot, for 300 ms
	if err != nil {
		t.Fatal(err)
	}
	release := releaseOnFirst(held, 300*time.Millisecond)
	p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
		release()
		dctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(50*time.Millisecond, cancel) // the request gave up: no deadline, a cancel
		c, err := d.DialContext(dctx, "tcp", ln.addr())
		cancel()
		r := probe.Result{Time: when, Status: probe.StatusFiltered, Error: "i/o timeout"}
		if err == nil {
			c.Close()
			r.Status, r.Error = probe.StatusOpen, ""
		}
		return r
	})
	st := openStore(t)
	sp := newSpace(t, "127.0.24.1", "104")
	sc := createScan(t, st, sp.Len())
	stats, err := scan.Run(context.Background(), st, sc, sp.Order(7, 0, 1), p, scan.Config{Dialer: d})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Retried == 0 || stats.Open != 1 || stats.Filtered != 0 {
		t.Errorf("stats %+v: want the target open after retries", stats)
	}
}

func TestRunRetriesOwnLimitWeb(t *testing.T) {
	ln := listen(t) // accepts and closes: open, not HTTP
	d := scan.NewDialer(scan.DialerConfig{MaxSockets: 1})
	held, err := d.DialContext(context.Background(), "tcp", ln.addr())
	if err != nil {
		t.Fatal(err)
	}
	release := releaseOnFirst(held, 300*time.Millisecond)
	web := webprobe.New(webprobe.Config{Timeout: 50 * time.Millisecond, Dial: d.DialContext})
	p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
		release()
		ap := netip.MustParseAddrPort(ln.addr())
		return web.Probe(ctx, targets.Target{Addr: ap.Addr(), Port: ap.Port()})
	})
	st := openStore(t)
	sp := newSpace(t, "127.0.23.1", "80")
	sc := createScan(t, st, sp.Len())
	stats, err := scan.Run(context.Background(), st, sc, sp.Order(7, 0, 1), p, scan.Config{Dialer: d})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Retried == 0 || stats.Open != 1 {
		t.Errorf("stats %+v: want the target open after retries", stats)
	}
}
