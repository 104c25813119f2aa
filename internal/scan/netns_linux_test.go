package scan_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// These tests run their scans in a child process (this test binary again) in a network
// namespace of its own, where nothing can leave the machine: only a loopback interface exists.
// The child checks that before it sends anything, and fails otherwise.

const childEnv = "PACSWATCH_SCAN_TEST_CHILD"

// inChild runs the test named name in a child process in a new network namespace, its
// environment marking it as the child, and fails with its output if it fails. It skips when
// this machine allows no namespace.
func inChild(t *testing.T, name string) {
	t.Helper()
	candidates := []*syscall.SysProcAttr{{Cloneflags: syscall.CLONE_NEWNET}}
	if uid, gid := os.Getuid(), os.Getgid(); uid != 0 {
		candidates = []*syscall.SysProcAttr{{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
		}}
	}
	for _, attr := range candidates {
		cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+name)
		cmd.SysProcAttr = attr
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			continue // the namespace was refused: try the next way
		}
		t.Logf("child:\n%s", out)
		if err != nil {
			t.Fatalf("child failed: %v", err)
		}
		if !strings.Contains(string(out), "--- PASS: "+name) {
			t.Fatalf("child did not run %s", name)
		}
		return
	}
	t.Skip("no network namespace available here")
}

// isChild reports whether this process is the child of inChild for the running test.
func isChild(t *testing.T) bool { return os.Getenv(childEnv) == t.Name() }

// requireIsolated fails the test unless this process's network namespace has no interface but
// loopback: nothing it sends can leave the machine.
func requireIsolated(t *testing.T) {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatalf("list interfaces: %v", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			t.Fatalf("interface %s is not loopback: not in an isolated network namespace, refusing to go on", i.Name)
		}
	}
}

// loopbackUp brings the namespace's loopback interface up.
func loopbackUp(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
}

// connectProber probes as the CLI does at --depth connect, through dial.
func connectProber(dial func(context.Context, string, string) (net.Conn, error), timeout time.Duration) scan.Prober {
	return dicomprobe.New(dicomprobe.Config{Depth: dicomprobe.DepthConnect, Dial: dial, Timeout: timeout})
}

// statuses counts the stored results of a scan by status, and their error texts.
func statuses(t *testing.T, st store.Store, id string) (map[probe.Status]int, map[string]int) {
	t.Helper()
	by, texts := map[probe.Status]int{}, map[string]int{}
	err := st.Results(context.Background(), id, func(r probe.Result) error {
		by[r.Status]++
		if r.Error != "" {
			texts[r.Error]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return by, texts
}

// TestUnreachableNetworkStops: when the first 1,000 connection attempts all find no route, the
// scan stops with ErrNetworkUnreachable, stores nothing for those targets and resumes later
// without losing one (issue 10 item 3). A scan too small to judge completes.
func TestUnreachableNetworkStops(t *testing.T) {
	if !isChild(t) {
		inChild(t, t.Name())
		return
	}
	requireIsolated(t) // before anything is sent to 198.51.100.0/24
	ctx := context.Background()

	t.Run("too few attempts to judge", func(t *testing.T) {
		st := openStore(t)
		sp := newSpace(t, "198.51.100.0/26", targets.DefaultPorts) // 320 targets
		sc := createScan(t, st, sp.Len())
		d := scan.NewDialer(scan.DialerConfig{})
		stats, err := scan.Run(ctx, st, sc, sp.Order(7, 0, 1), connectProber(d.DialContext, time.Second), scan.Config{Dialer: d, Concurrency: 50, AllTargets: true})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		by, texts := statuses(t, st, sc.ID)
		if stats.Done != sp.Len() || by[probe.StatusFiltered] != int(sp.Len()) {
			t.Errorf("done %d, stored %v %v; want all %d filtered as unreachable", stats.Done, by, texts, sp.Len())
		}
	})

	st := openStore(t)
	sp := newSpace(t, "198.51.100.0/24", targets.DefaultPorts) // 1,280 targets
	sc := createScan(t, st, sp.Len())
	d := scan.NewDialer(scan.DialerConfig{})
	stats, err := scan.Run(ctx, st, sc, sp.Order(7, 0, 1), connectProber(d.DialContext, time.Second), scan.Config{Dialer: d, Concurrency: 100, AllTargets: true})
	if !errors.Is(err, scan.ErrNetworkUnreachable) {
		t.Fatalf("Run: got %v, want ErrNetworkUnreachable", err)
	}
	t.Logf("stopped: %v", err)
	by, _ := statuses(t, st, sc.ID)
	after, err := st.Scan(ctx, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(by) != 0 || stats.Done != 0 || after.Progress.Done != sc.Progress.Done || !after.Finished.IsZero() {
		t.Fatalf("after the stop: stored %v, done %d, checkpoint %d → %d, finished %v; want nothing stored, resumable",
			by, stats.Done, sc.Progress.Done, after.Progress.Done, after.Finished)
	}

	// The network is back (here: every target refuses, on loopback): the resumed scan probes
	// every target, none lost.
	loopbackUp(t)
	back := scan.NewDialer(scan.DialerConfig{Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, network, "127.0.0.1:9")
	}})
	stats, err = scan.Run(ctx, st, after, sp.Order(7, 0, 1), connectProber(back.DialContext, time.Second), scan.Config{Dialer: back, Concurrency: 100, AllTargets: true})
	if err != nil {
		t.Fatalf("resumed Run: %v", err)
	}
	by, texts := statuses(t, st, sc.ID)
	if stats.Done != sp.Len() || by[probe.StatusClosed] != int(sp.Len()) {
		t.Errorf("resumed: done %d, stored %v %v; want all %d closed", stats.Done, by, texts, sp.Len())
	}
}

// TestDescriptorLimit: with RLIMIT_NOFILE at 128, part of it taken by other files, a scan of
// 2,048 refused and filtered loopback targets at concurrency 2,000 stores no result with status
// error: the Dialer keeps sockets within the limit and waits out EMFILE (issue 10 item 13). The
// same scan without it makes the process's own limit the targets' results.
func TestDescriptorLimit(t *testing.T) {
	if !isChild(t) {
		inChild(t, t.Name())
		return
	}
	requireIsolated(t) // the filtered listener below binds every address of the namespace
	loopbackUp(t)
	port := filteredListener(t)

	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 128, Max: 128}); err != nil {
		t.Fatalf("lower RLIMIT_NOFILE: %v", err)
	}
	if got := scan.FileLimit(); got != 128 {
		t.Fatalf("FileLimit() = %d, want 128", got)
	}
	for range 60 { // other files the process holds: beyond the Dialer's reserve, so that dials meet EMFILE
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	ctx := context.Background()
	sp := newSpace(t, "127.1.0.0/22", fmt.Sprintf("9,%d", port)) // 1,024 refused, 1,024 filtered
	const timeout = 200 * time.Millisecond

	t.Run("without the dialer", func(t *testing.T) {
		st := openStore(t)
		sc := createScan(t, st, sp.Len())
		var nd net.Dialer
		stats, err := scan.Run(ctx, st, sc, sp.Order(7, 0, 1), connectProber(nd.DialContext, timeout), scan.Config{Concurrency: 2000, AllTargets: true})
		by, texts := statuses(t, st, sc.ID)
		t.Logf("without the dialer: %v, stats %+v, stored %v %v", err, stats, by, texts)
		if err == nil && by[probe.StatusError] == 0 {
			t.Errorf("no error result and no failure: the test puts no pressure on descriptors")
		}
	})

	st := openStore(t)
	sc := createScan(t, st, sp.Len())
	d := scan.NewDialer(scan.DialerConfig{})
	start := time.Now()
	stats, err := scan.Run(ctx, st, sc, sp.Order(7, 0, 1), connectProber(d.DialContext, timeout),
		scan.Config{Dialer: d, Concurrency: 2000, FlushInterval: 50 * time.Millisecond, AllTargets: true})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	by, texts := statuses(t, st, sc.ID)
	t.Logf("with the dialer (%d sockets): %v, stats %+v, stored %v %v", d.MaxSockets(), time.Since(start).Round(time.Millisecond), stats, by, texts)
	if by[probe.StatusError] != 0 || stats.Errors != 0 {
		t.Errorf("%d results with status error (%v), want none", by[probe.StatusError], texts)
	}
	if stats.Done != sp.Len() || by[probe.StatusClosed] != 1024 || by[probe.StatusFiltered]+by[probe.StatusOpen] != 1024 {
		t.Errorf("done %d, stored %v: want 1,024 closed and 1,024 filtered (one may be open: the listener's queue)", stats.Done, by)
	}

	// The connect() stage's attempts wait out EMFILE the same way (engine.connectRetry).
	st = openStore(t)
	sc = createScan(t, st, sp.Len())
	d = scan.NewDialer(scan.DialerConfig{})
	stats, err = scan.Run(ctx, st, sc, sp.Order(7, 0, 1), connectProber(d.DialContext, timeout),
		scan.Config{Dialer: d, Concurrency: 2000, ConnectTimeout: timeout, FlushInterval: 50 * time.Millisecond, AllTargets: true})
	if err != nil {
		t.Fatalf("Run with the connect stage: %v", err)
	}
	by, texts = statuses(t, st, sc.ID)
	t.Logf("with the connect stage: stats %+v, stored %v %v", stats, by, texts)
	if by[probe.StatusError] != 0 || stats.Errors != 0 || stats.Done != sp.Len() {
		t.Errorf("connect stage: done %d, %d results with status error (%v), want %d done and none", stats.Done, by[probe.StatusError], texts, sp.Len())
	}
}

// filteredListener listens on every address of the namespace with an accept queue of one that
// is never accepted from: once it is full, connection attempts get no answer, as to a filtered
// port. It returns the port.
func filteredListener(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
