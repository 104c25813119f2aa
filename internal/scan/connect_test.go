//go:build linux

package scan_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// silentOn makes addr:port a loopback port whose SYNs go unanswered: a listening socket with
// a backlog of 0 that never accepts, its queue filled. Attempts to it time out as a filtered
// port's do.
func silentOn(t *testing.T, addr netip.Addr, port uint16) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: addr.As4(), Port: int(port)}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for range 1 { // backlog 0 queues one connection; SYNs after it are dropped
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, port).String(), time.Second)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
}

// connectFleet listens on 127.0.42.1-4 at an open port that counts its connections and reads
// one byte from each, and makes the same addresses silent at a second port; 127.0.42.5-8 have
// nothing. It returns the ports and the counters.
func connectFleet(t *testing.T) (open, silent uint16, accepted, greeted *atomic.Int64) {
	t.Helper()
	accepted, greeted = new(atomic.Int64), new(atomic.Int64)
	first, err := net.Listen("tcp4", "127.0.42.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open = uint16(first.Addr().(*net.TCPAddr).Port)
	probeL, err := net.Listen("tcp4", "127.0.42.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent = uint16(probeL.Addr().(*net.TCPAddr).Port)
	probeL.Close()
	for i := 1; i <= 4; i++ {
		addr := netip.AddrFrom4([4]byte{127, 0, 42, byte(i)})
		l := first
		if i > 1 {
			if l, err = net.Listen("tcp4", netip.AddrPortFrom(addr, open).String()); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(2 * time.Second))
					if n, _ := c.Read(make([]byte, 1)); n == 1 {
						greeted.Add(1)
					}
				}()
			}
		}()
		silentOn(t, addr, silent)
	}
	return open, silent, accepted, greeted
}

// greeter is a probe that connects through the Dialer, sends one byte and closes: open.
func greeter(d *scan.Dialer) scan.Prober {
	return proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
		r := probe.Result{IP: tg.Addr, Port: tg.Port, Time: when}
		c, err := d.DialContext(ctx, "tcp", tg.String())
		if err != nil {
			r.Status, r.Error = probe.Classify(err)
			return r
		}
		defer c.Close()
		if _, err := c.Write([]byte{1}); err != nil {
			r.Status, r.Error = probe.Classify(err)
			return r
		}
		r.Status = probe.StatusOpen
		return r
	})
}

// TestConnectStage: with a connect stage, open targets go on to the probe, which takes over the
// connect stage's connection (one connection per open target; two with Redial); closed and
// filtered targets are counted, after the connect timeout for the filtered ones.
func TestConnectStage(t *testing.T) {
	open, silent, accepted, greeted := connectFleet(t)
	for _, mode := range []string{"connect", "redial", "syn"} {
		redial, syn := mode == "redial", mode == "syn"
		t.Run(mode, func(t *testing.T) {
			if syn && discover.SYNAvailable() != nil {
				needRaw(t)
			}
			accepted.Store(0)
			greeted.Store(0)
			ctx := context.Background()
			st := openStore(t)
			sp := newSpace(t, "127.0.42.1-127.0.42.8", fmt.Sprintf("%d,%d,%d", open, silent, silent+1))
			sc := createScan(t, st, sp.Len())
			d := scan.NewDialer(scan.DialerConfig{MaxSockets: 64})
			start := time.Now()
			stats, err := scan.Run(ctx, st, sc, sp.Order(3, 0, 1), greeter(d),
				scan.Config{Dialer: d, Concurrency: 4, ConnectTimeout: 300 * time.Millisecond, Redial: redial, SYN: syn})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < 300*time.Millisecond {
				t.Errorf("scan took %v, less than the connect timeout the silent ports need", took)
			}
			var stored []string
			err = st.Results(ctx, sc.ID, func(r probe.Result) error {
				stored = append(stored, fmt.Sprintf("%v %v", netip.AddrPortFrom(r.IP, r.Port), r.Status))
				if r.Status != probe.StatusOpen || r.Port != open {
					t.Errorf("stored %v %v %q", netip.AddrPortFrom(r.IP, r.Port), r.Status, r.Error)
				}
				return nil
			})
			if err != nil || len(stored) != 4 {
				t.Errorf("stored %q, %v: want the 4 open targets", stored, err)
			}
			got, err := st.Scan(ctx, sc.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := map[uint16]store.Tally{open: {Closed: 4}, silent: {Closed: 4, Filtered: 4}, silent + 1: {Closed: 8}}
			if !got.Progress.Equal(store.Progress{Done: got.Progress.Done, Tallies: want}) {
				t.Errorf("tallies %+v, want %+v", got.Progress.Tallies, want)
			}
			if stats.Open != 4 || stats.Filtered != 4 || stats.Closed != 16 {
				t.Errorf("stats %+v: want 4 open, 4 filtered, 16 closed", stats)
			}
			wantConns := int64(4)
			if redial {
				wantConns = 8
			}
			deadline := time.Now().Add(2 * time.Second)
			for greeted.Load() < 4 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if accepted.Load() != wantConns || greeted.Load() != 4 {
				t.Errorf("the fleet accepted %d connections, %d with the probe's byte: want %d and 4", accepted.Load(), greeted.Load(), wantConns)
			}
			if n := d.Open(); n != 0 {
				t.Errorf("%d connections left open", n)
			}
		})
	}
}
