//go:build linux

package discover

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// silentListener returns a loopback address whose SYNs go unanswered: a listening socket with
// a backlog of 0 that never accepts, its one queue slot taken. New attempts to it time out
// as a filtered port's do. It stays on loopback.
func silentListener(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue (backlog 0 holds one, and the kernel lets one more in).
	for range 1 { // backlog 0 queues one connection; SYNs after it are dropped
		c, err := net.DialTimeout("tcp", ap.String(), time.Second)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return ap
}

func newConnector(t *testing.T, timeout time.Duration) *Connector {
	t.Helper()
	c, err := NewConnector(timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnectOpen(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	c := newConnector(t, time.Second)
	conn, err := c.Connect(context.Background(), netip.MustParseAddrPort(l.Addr().String()))
	if err != nil {
		t.Fatalf("Connect to a listener: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 5)
	if _, err := conn.Read(buf); err != nil || string(buf) != "hello" {
		t.Errorf("read %q, %v from the connection, want hello", buf, err)
	}
	if got := conn.RemoteAddr().String(); got != l.Addr().String() {
		t.Errorf("RemoteAddr = %s, want %s", got, l.Addr())
	}
	if Classify(err) != Open {
		t.Errorf("Classify(nil) = %v, want open", Classify(err))
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("Pending = %d after the answer, want 0", n)
	}
}

func TestConnectRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(l.Addr().String())
	l.Close() // nothing listens there now
	c := newConnector(t, time.Second)
	conn, err := c.Connect(context.Background(), ap)
	if conn != nil || !errors.Is(err, syscall.ECONNREFUSED) || Classify(err) != Closed {
		t.Errorf("Connect to a closed port = %v, %v (%v), want connection refused, closed", conn, err, Classify(err))
	}
}

func TestConnectTimeout(t *testing.T) {
	ap := silentListener(t)
	c := newConnector(t, 300*time.Millisecond)
	start := time.Now()
	conn, err := c.Connect(context.Background(), ap)
	took := time.Since(start)
	if conn != nil || !errors.Is(err, ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) || Classify(err) != Filtered {
		t.Fatalf("Connect to a silent port = %v, %v (%v), want ErrTimeout, filtered", conn, err, Classify(err))
	}
	if took < 300*time.Millisecond {
		t.Errorf("timed out after %v, before the 300 ms timeout", took)
	}
}

// TestConnectMany: thousands of attempts in flight at once, every one answered once with the
// right outcome, and every socket closed (no descriptor left behind).
func TestConnectMany(t *testing.T) {
	silent := silentListener(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := netip.MustParseAddrPort(l.Addr().String())
	before := openFiles(t)
	c := newConnector(t, 500*time.Millisecond)
	const n = 3000
	var wg sync.WaitGroup
	outcomes := make([]Outcome, n)
	for i := range n {
		wg.Go(func() {
			ap := silent
			if i%3 == 0 {
				ap = open
			}
			conn, err := c.Connect(context.Background(), ap)
			outcomes[i] = Classify(err)
			if conn != nil {
				conn.Close()
			}
		})
	}
	wg.Wait()
	for i, o := range outcomes {
		want := Filtered
		if i%3 == 0 {
			want = Open
		}
		if o != want {
			t.Fatalf("attempt %d: %v, want %v", i, o, want)
		}
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("Pending = %d after every answer, want 0", n)
	}
	time.Sleep(50 * time.Millisecond)
	if after := openFiles(t); after > before+2 {
		t.Errorf("%d descriptors open after the attempts, %d before: sockets left open", after, before)
	}
}

func TestConnectCancel(t *testing.T) {
	ap := silentListener(t)
	c := newConnector(t, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Connect(ctx, ap)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Connect after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Connect did not return after its context was cancelled")
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("Pending = %d after the cancel, want 0", n)
	}
}

func TestConnectClose(t *testing.T) {
	ap := silentListener(t)
	c, err := NewConnector(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Connect(context.Background(), ap)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Connect in flight at Close = %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Connect did not return after Close")
	}
	if _, err := c.Connect(context.Background(), ap); !errors.Is(err, ErrClosed) {
		t.Errorf("Connect after Close = %v, want ErrClosed", err)
	}
}

// openFiles counts the process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestConnectLateLoop: when the connector's loop runs late (a busy machine), the answers that
// came in meanwhile are taken before any deadline is judged: no target that answered is
// reported as a timeout, however many answers wait.
func TestConnectLateLoop(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ap := netip.MustParseAddrPort(l.Addr().String())
	var once sync.Once
	release := make(chan struct{})
	stall := func() { once.Do(func() { time.Sleep(60 * time.Millisecond); <-release }) } // the loop's first turn waits
	c, err := startConnector(100*time.Millisecond, stall)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 1500
	var wg sync.WaitGroup
	var late atomic.Int64
	for range n {
		wg.Go(func() {
			conn, err := c.Connect(context.Background(), ap)
			if errors.Is(err, ErrTimeout) {
				late.Add(1)
			}
			if conn != nil {
				conn.Close()
			}
		})
	}
	time.Sleep(400 * time.Millisecond) // every deadline passes while the loop stalls
	close(release)
	wg.Wait()
	if late.Load() != 0 {
		t.Errorf("%d of %d answered attempts reported as timeouts because the loop ran late", late.Load(), n)
	}
}
