//go:build linux

package scan_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// needRaw skips a test of the SYN stage where raw sockets are refused, or fails it under
// PACSWATCH_REQUIRE_PEERS=1 (CI runs as root).
func needRaw(t *testing.T) {
	t.Helper()
	err := discover.SYNAvailable()
	if err == nil {
		if _, errN := exec.LookPath("nft"); errN == nil {
			return
		}
		err = errors.New("nft is not installed")
	}
	if os.Getenv("PACSWATCH_REQUIRE_PEERS") == "1" {
		t.Fatalf("the SYN stage's tests need raw sockets and nft: %v (PACSWATCH_REQUIRE_PEERS=1)", err)
	}
	t.Skipf("the SYN stage's tests need raw sockets and nft: %v", err)
}

// synFleet makes, in the test's empty namespace, port 1001 open on every loopback address,
// 1003 filtered (nftables drops its SYNs) and 1002 closed.
func synFleet(t *testing.T) {
	t.Helper()
	rules := `add table inet t
add chain inet t in { type filter hook input priority 0; }
add rule inet t in tcp dport 1003 tcp flags & (syn|ack) == syn drop
`
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	l, err := net.Listen("tcp4", "0.0.0.0:1001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Second))
				c.Read(make([]byte, 1))
			}()
		}
	}()
}

// TestSYNStageMatchesConnect: on 3,072 targets (1,024 open, closed and filtered each), a scan
// through the SYN stage stores and counts what a scan through connect() does, and so does a
// SYN scan cancelled halfway and resumed.
func TestSYNStageMatchesConnect(t *testing.T) {
	if !isChild(t) {
		needRaw(t)
		inChild(t, t.Name())
		return
	}
	requireIsolated(t)
	loopbackUp(t)
	synFleet(t)
	sp := newSpace(t, "127.50.0.0/22", "1001,1002,1003")
	type outcome struct {
		stats    scan.Stats
		progress store.Progress
		stored   map[probe.Status]int
	}
	scanOnce := func(syn bool, cancelAfter time.Duration) outcome {
		st := openStore(t)
		sc := createScan(t, st, sp.Len())
		var stats scan.Stats
		for run := 0; ; run++ {
			d := scan.NewDialer(scan.DialerConfig{})
			ctx, cancel := context.WithCancel(context.Background())
			if run == 0 && cancelAfter > 0 {
				time.AfterFunc(cancelAfter, cancel)
			}
			var err error
			stats, err = scan.Run(ctx, st, sc, sp.Order(5, 0, 1), greeter(d),
				scan.Config{Dialer: d, ConnectTimeout: 500 * time.Millisecond, SYN: syn})
			cancel()
			if sc, _ = st.Scan(context.Background(), sc.ID); err == nil {
				if run == 0 && cancelAfter > 0 {
					t.Fatalf("syn %v: the scan ended before it was cancelled", syn)
				}
				break
			}
			if !errors.Is(err, context.Canceled) || run > 0 {
				t.Fatalf("syn %v run %d: %v", syn, run, err)
			}
			t.Logf("syn %v: cancelled at checkpoint %d of %d", syn, sc.Progress.Done, sp.Len())
		}
		by, _ := statuses(t, st, sc.ID)
		return outcome{stats, sc.Progress, by}
	}
	conn, syn, resumed := scanOnce(false, 0), scanOnce(true, 0), scanOnce(true, 250*time.Millisecond)
	want := map[uint16]store.Tally{1002: {Closed: 1024}, 1003: {Filtered: 1024}}
	for name, o := range map[string]outcome{"connect": conn, "syn": syn, "syn resumed": resumed} {
		if !o.progress.Equal(store.Progress{Done: sp.Len(), Tallies: want}) {
			t.Errorf("%s: progress %+v, want done %d, tallies %+v", name, o.progress, sp.Len(), want)
		}
		if fmt.Sprint(o.stored) != fmt.Sprint(map[probe.Status]int{probe.StatusOpen: 1024}) {
			t.Errorf("%s: stored %v, want 1024 open", name, o.stored)
		}
	}
	if syn.stats.Open != 1024 || syn.stats.Closed != 1024 || syn.stats.Filtered != 1024 || syn.stats.Errors != 0 {
		t.Errorf("syn stats %+v: want 1024 open, closed and filtered each", syn.stats)
	}
	if conn.stats.Open != syn.stats.Open || conn.stats.Closed != syn.stats.Closed || conn.stats.Filtered != syn.stats.Filtered {
		t.Errorf("stats differ: connect %+v, syn %+v", conn.stats, syn.stats)
	}
}

// TestSYNStageUnreachable: with no route to the targets, the SYN stage stops the scan after
// UnreachableAfter attempts, as connect() does, and the scan resumes where it stopped.
func TestSYNStageUnreachable(t *testing.T) {
	if !isChild(t) {
		needRaw(t)
		inChild(t, t.Name())
		return
	}
	requireIsolated(t) // before anything is sent to 198.51.100.0/24
	st := openStore(t)
	sp := newSpace(t, "198.51.100.0/24", targets.DefaultPorts)
	sc := createScan(t, st, sp.Len())
	d := scan.NewDialer(scan.DialerConfig{})
	stats, err := scan.Run(context.Background(), st, sc, sp.Order(7, 0, 1), greeter(d),
		scan.Config{Dialer: d, ConnectTimeout: time.Second, SYN: true, AllTargets: true})
	if !errors.Is(err, scan.ErrNetworkUnreachable) {
		t.Fatalf("Run: %v, want ErrNetworkUnreachable", err)
	}
	by, _ := statuses(t, st, sc.ID)
	after, _ := st.Scan(context.Background(), sc.ID)
	if len(by) != 0 || stats.Done != 0 || after.Progress.Done != 0 {
		t.Errorf("stored %v, done %d, checkpoint %d: want nothing", by, stats.Done, after.Progress.Done)
	}
}

// TestSYNStageIPv6: with the SYN stage on, IPv6 targets go through connect() and IPv4 targets
// through the SYN stage, in the same scan.
func TestSYNStageIPv6(t *testing.T) {
	needRaw(t)
	l6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l6.Close()
	port := l6.Addr().(*net.TCPAddr).Port
	l4, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skipf("port %d taken on 127.0.0.1: %v", port, err)
	}
	defer l4.Close()
	for _, l := range []net.Listener{l4, l6} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	st := openStore(t)
	sp, err := targets.Parse(context.Background(), []string{"127.0.0.1", "::1"}, targets.Options{Ports: []uint16{uint16(port)}})
	if err != nil {
		t.Fatal(err)
	}
	sc := createScan(t, st, sp.Len())
	d := scan.NewDialer(scan.DialerConfig{})
	stats, err := scan.Run(context.Background(), st, sc, sp.Order(1, 0, 1), greeter(d),
		scan.Config{Dialer: d, ConnectTimeout: time.Second, SYN: true})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Open != 2 || stats.Done != 2 {
		t.Errorf("stats %+v: want both targets open", stats)
	}
}

// TestSYNStageOneAttemptPerHost: the SYN stage keeps one attempt per address at a time, as the
// probes do: four silent ports of one address take four connect timeouts, one after another.
func TestSYNStageOneAttemptPerHost(t *testing.T) {
	needRaw(t)
	addr := netip.MustParseAddr("127.0.43.1")
	var ports []string
	for range 4 {
		l, err := net.Listen("tcp4", "127.0.43.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := uint16(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		silentOn(t, addr, port)
		ports = append(ports, fmt.Sprint(port))
	}
	st := openStore(t)
	sp := newSpace(t, addr.String(), strings.Join(ports, ","))
	sc := createScan(t, st, sp.Len())
	d := scan.NewDialer(scan.DialerConfig{})
	const timeout = 200 * time.Millisecond
	start := time.Now()
	stats, err := scan.Run(context.Background(), st, sc, sp.Order(1, 0, 1), greeter(d),
		scan.Config{Dialer: d, ConnectTimeout: timeout, SYN: true})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); stats.Filtered != 4 || took < 4*timeout {
		t.Errorf("%d of 4 filtered in %v: want all, one after another (at least %v)", stats.Filtered, took, 4*timeout)
	}
}
