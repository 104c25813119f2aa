package resilience

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A guard is the probes' Dial in these tests: it refuses any address outside 127.0.0.0/8 and ::1,
// whatever a server or a URL says, and counts the refusals.
type guard struct{ refused atomic.Int64 }

func (g *guard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		g.refused.Add(1)
		return nil, fmt.Errorf("test: refusing to dial %q: not loopback", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// listen listens on addr:port (port 0: one of the system's choosing), and closes the listener when
// the test ends.
func listen(t testing.TB, addr netip.Addr, port uint16) net.Listener {
	t.Helper()
	if !addr.IsLoopback() {
		t.Fatalf("listen on %v: not loopback", addr)
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, port).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// portOf returns a listener's port.
func portOf(l net.Listener) uint16 { return uint16(l.Addr().(*net.TCPAddr).Port) }

// freePort returns a TCP port that nothing listens on, on any address, when it returns.
func freePort(t testing.TB) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return portOf(l)
}

// A sampler records the peak of the Go heap (objects, live or not yet swept) and of the resident
// set while it runs, every few milliseconds. runtime/metrics reads the heap without stopping the
// world.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	heap uint64 // peaks; written by the sampling goroutine until done closes
	rss  uint64
}

func startSampler() *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			metrics.Read(m)
			s.heap = max(s.heap, m[0].Value.Uint64())
			if n%5 == 0 {
				s.rss = max(s.rss, rss())
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// peaks stops the sampler and returns the highest heap and resident set it saw, in bytes.
func (s *sampler) peaks() (heap, rss uint64) {
	close(s.stop)
	<-s.done
	return s.heap, s.rss
}

// rss returns the process's resident set in bytes (Linux), or 0.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// settleGoroutines waits up to d for the goroutine count to fall to at most want, and returns it.
func settleGoroutines(want int, d time.Duration) int {
	deadline := time.Now().Add(d)
	n := runtime.NumGoroutine()
	for n > want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// mib formats a byte count in MiB.
func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// connServer accepts connections on l and runs fn on each in its own goroutine, closing the
// connection when fn returns. The function it returns (also run when the test ends; it may be
// called again) closes l and every connection still open, and waits for every fn to return.
func connServer(t testing.TB, l net.Listener, fn func(net.Conn)) (stop func()) {
	t.Helper()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex // protects the two below
		conns   = map[net.Conn]struct{}{}
		stopped bool
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if stopped {
				mu.Unlock()
				c.Close()
				continue
			}
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				fn(c)
			})
		}
	})
	stop = sync.OnceFunc(func() {
		l.Close()
		mu.Lock()
		stopped = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	t.Cleanup(stop)
	return stop
}
