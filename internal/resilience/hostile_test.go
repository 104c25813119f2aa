package resilience

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"github.com/pacswatch/pacswatch/internal/peertest"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/probe/webprobe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// hostileModes returns every hostile personality of the test SCP, including any added after this
// test was written: the modes are numbered from HostileNone+1 up to the first without a name.
func hostileModes() []dicomtest.Hostile {
	var hs []dicomtest.Hostile
	for h := dicomtest.HostileNone + 1; !strings.HasPrefix(h.String(), "Hostile("); h++ {
		hs = append(hs, h)
	}
	return hs
}

// A webHostile is a misbehaving HTTP front end: serve runs it on a listener until the test ends.
type webHostile struct {
	name  string
	serve func(t *testing.T, l net.Listener) (stop func())
}

// webHostiles are the HTTP front ends of the suite. Each answers over plain TCP or TLS as its name
// says; the probe tries HTTPS first, then HTTP.
func webHostiles(t *testing.T) []webHostile {
	cert := selfSigned(t)
	bomb := gzipBomb(t, 1024) // 1 GiB of zeros once inflated, about 1 MiB on the wire
	quiet := log.New(io.Discard, "", 0)
	httpServer := func(h http.HandlerFunc, useTLS bool) func(*testing.T, net.Listener) func() {
		return func(t *testing.T, l net.Listener) func() {
			srv := httptest.NewUnstartedServer(h)
			srv.Listener.Close()
			srv.Listener = l
			srv.Config.ErrorLog = quiet
			if useTLS {
				srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
				srv.StartTLS()
			} else {
				srv.Start()
			}
			stop := sync.OnceFunc(func() {
				srv.CloseClientConnections()
				srv.Close()
			})
			t.Cleanup(stop)
			return stop
		}
	}
	endless := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := bytes.Repeat([]byte(`{"Version":"1.10.1",`), 2048)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	gz := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb)
	}
	raw := func(useTLS bool, fn func(net.Conn)) func(*testing.T, net.Listener) func() {
		return func(t *testing.T, l net.Listener) func() {
			return connServer(t, l, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if useTLS {
					tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
					if tc.Handshake() != nil {
						return
					}
					c = tc
				}
				fn(c)
			})
		}
	}
	garbage := func(c net.Conn) {
		b := make([]byte, 4096)
		rand.Read(b)
		c.Write(b)
		io.Copy(io.Discard, c)
	}
	return []webHostile{
		{"redirect-loop", httpServer(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
		}, false)},
		{"redirect-chain", httpServer(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"x", http.StatusMovedPermanently)
		}, true)},
		{"redirect-away", httpServer(func(w http.ResponseWriter, r *http.Request) {
			// TEST-NET-1 (RFC 5737): the probe must neither follow it nor connect there.
			http.Redirect(w, r, "http://192.0.2.1"+r.URL.Path, http.StatusFound)
		}, false)},
		{"endless-body", httpServer(endless, false)},
		{"endless-body-tls", httpServer(endless, true)},
		{"gzip-bomb", httpServer(gz, false)},
		{"gzip-bomb-tls", httpServer(gz, true)},
		{"tls-then-garbage", raw(true, garbage)},
		{"garbage", raw(false, garbage)},
		{"trickled-headers", raw(false, func(c net.Conn) {
			for _, b := range []byte("HTTP/1.1 200 OK\r\nServer: " + strings.Repeat("a", 1000)) {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})},
		{"endless-headers", raw(false, func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\n"))
			line := []byte("X-Pad: " + strings.Repeat("a", 1000) + "\r\n")
			for {
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		})},
		{"silent", raw(false, func(c net.Conn) { io.Copy(io.Discard, c) })},
	}
}

// byPort sends each target to the DICOM or the web prober by its port, as pacswatch scan --web
// does, and records how long each probe took.
type byPort struct {
	dicom, web scan.Prober
	webPort    uint16

	mu      sync.Mutex // protects elapsed
	elapsed map[netip.AddrPort]time.Duration
}

func (b *byPort) Probe(ctx context.Context, t targets.Target) probe.Result {
	start := time.Now()
	var r probe.Result
	if t.Port == b.webPort {
		r = b.web.Probe(ctx, t)
	} else {
		r = b.dicom.Probe(ctx, t)
	}
	b.mu.Lock()
	b.elapsed[netip.AddrPortFrom(t.Addr, t.Port)] = time.Since(start)
	b.mu.Unlock()
	return r
}

// TestHostileFleet scans, in one run of the scan engine with both probes and the SQLite store,
// 532 DICOM servers cycling through every hostile mode of the test SCP, 96 HTTP front ends
// misbehaving in 12 ways, 16 honest archives among them, and the closed ports between. Every
// target must be stored once, classified, within --max-host-time; the honest archives must be
// measured as if their neighbours were polite; and heap and goroutines must come back to where
// they were, with the servers still up and once they are gone.
func TestHostileFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("hostile fleet: 644 servers, 20 to 30 s; skipped with -short")
	}
	const (
		perMode     = 28
		perWeb      = 8
		honest      = 16
		honestSize  = 7
		step        = time.Second // dicomprobe's per-step timeout
		webTimeout  = 2 * time.Second
		maxHostTime = 10 * time.Second
		cidr        = "127.77.0.0/22"
		concurrency = 100
	)
	ctx := context.Background()
	// net/http's transport prints bytes a server sent on an idle connection through the standard
	// logger; the binary discards it (cmd/pacswatch), and so does this test, counting the lines.
	var stdlog lineCounter
	defer log.SetOutput(log.Writer())
	log.SetOutput(&stdlog)
	goroutines0, heap0 := runtime.NumGoroutine(), heapInUse()

	// The fleet: from 127.77.0.1 up, DICOM servers on one port and web servers on another. Each
	// address listens on one of the two ports; the other, and every other address, is closed.
	type host struct {
		kind string
		port uint16
	}
	hosts := map[netip.Addr]host{}
	var stops []func()
	addr := netip.MustParseAddr("127.77.0.1")
	var dport, wport uint16
	next := func(port *uint16, kind string) net.Listener {
		t.Helper()
		l := listen(t, addr, *port)
		*port = portOf(l) // the first listener of each kind chooses the port
		hosts[addr] = host{kind, *port}
		addr = addr.Next()
		return l
	}
	serve := func(l net.Listener, cfg dicomtest.Config) {
		s := dicomtest.New(cfg)
		errc := make(chan error, 1)
		go func() { errc <- s.Serve(ctx, l) }()
		stop := sync.OnceFunc(func() {
			s.Close()
			if err := <-errc; err != nil {
				t.Errorf("dicomtest: %v", err)
			}
		})
		t.Cleanup(stop)
		stops = append(stops, stop)
	}
	modes := hostileModes()
	// The modes that end every association before a DIMSE response: no level above protected.
	neverExposed := map[string]bool{}
	for _, h := range modes {
		if h <= dicomtest.AbortAfterEcho || h == dicomtest.HugePDataLength {
			neverExposed[h.String()] = true
		}
	}
	for i := range perMode * len(modes) {
		h := modes[i%len(modes)]
		serve(next(&dport, h.String()), dicomtest.Config{Hostile: h, Tree: dicomtest.NewTree(uint64(i), 3), Timeout: 10 * time.Second})
	}
	honestTree := dicomtest.NewTree(99, honestSize)
	for range honest {
		serve(next(&dport, "honest"), dicomtest.Config{Tree: honestTree, ComputedCounts: true, Timeout: 10 * time.Second})
	}
	for _, w := range webHostiles(t) {
		for range perWeb {
			l := next(&wport, "web:"+w.name)
			if wport == dport {
				t.Skipf("the system chose port %d for both DICOM and web servers", dport)
			}
			stops = append(stops, w.serve(t, l))
		}
	}
	if !netip.MustParsePrefix(cidr).Contains(addr.Prev()) {
		t.Fatalf("fleet overflows %s", cidr)
	}

	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hostile.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	space, err := targets.Parse(ctx, []string{cidr}, targets.Options{Ports: []uint16{dport, wport}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := st.CreateScan(ctx, store.Scan{Targets: []string{cidr}, Total: space.Len(), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	var g guard
	p := &byPort{
		dicom: dicomprobe.New(dicomprobe.Config{
			Depth: dicomprobe.DepthQuery, VerifyRetrieve: true, Timeout: step, QueryBudget: 50, Dial: g.dial,
		}),
		web:     webprobe.New(webprobe.Config{Timeout: webTimeout, Dial: g.dial}),
		webPort: wport,
		elapsed: map[netip.AddrPort]time.Duration{},
	}
	goroutines1, heap1 := runtime.NumGoroutine(), heapInUse()
	smp := startSampler()
	start := time.Now()
	stats, err := scan.Run(ctx, st, sc, space.Order(7, 0, 1), p, scan.Config{Concurrency: concurrency, MaxHostTime: maxHostTime, AllTargets: true})
	took := time.Since(start)
	peakHeap, peakRSS := smp.peaks()
	if err != nil {
		t.Fatalf("scan: %v", err)
	}

	// Every target stored once, classified, and in time. The engine abandons a probe a grace
	// period after --max-host-time (scan.Config.MaxHostTime): none may need it.
	grace := min(max(maxHostTime/10, 250*time.Millisecond), 5*time.Second)
	type outcome struct {
		status probe.Status
		assoc  probe.Association
		level  probe.Level
		err    string
	}
	byKind := map[string]map[outcome]int{}
	slowestOf := map[string]time.Duration{}
	var slowest time.Duration
	var slowestKind string
	n := 0
	err = st.Results(ctx, sc.ID, func(r probe.Result) error {
		n++
		ap := netip.AddrPortFrom(r.IP, r.Port)
		kind := "closed"
		if h, ok := hosts[r.IP]; ok && h.port == r.Port {
			kind = h.kind
		}
		if r.Status == 0 || r.Error == scan.TextOverrun || r.Error == scan.TextPanic || r.Error == scan.TextNoStatus {
			t.Errorf("%v (%s): status %v, error %q", ap, kind, r.Status, r.Error)
		}
		if d := p.elapsed[ap]; d > maxHostTime+grace {
			t.Errorf("%v (%s): probe took %v, over --max-host-time %v", ap, kind, d, maxHostTime)
		} else if d > slowest {
			slowest, slowestKind = d, kind
		}
		slowestOf[kind] = max(slowestOf[kind], p.elapsed[ap])
		o := outcome{status: r.Status, level: r.Level(), err: r.Error}
		if r.DICOM != nil {
			o.assoc = r.DICOM.Association
		}
		if byKind[kind] == nil {
			byKind[kind] = map[outcome]int{}
		}
		byKind[kind][o]++
		switch {
		case kind == "closed" && r.Status != probe.StatusClosed:
			t.Errorf("%v: closed port reported %v (%s)", ap, r.Status, r.Error)
		case kind != "closed" && r.Status != probe.StatusOpen:
			t.Errorf("%v (%s): listening port reported %v (%s)", ap, kind, r.Status, r.Error)
		case kind == "honest" && (r.Level() < probe.LevelQuery || r.Exposure.Studies != honestSize || !r.Exposure.StudiesExact):
			t.Errorf("%v: honest archive among hostile ones measured as %v, %+v (%s)", ap, r.Level(), r.Exposure, r.Error)
		case neverExposed[kind] && r.Level() > probe.LevelProtected:
			t.Errorf("%v (%s): a server that answers no DIMSE request measured as %v", ap, kind, r.Level())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(n) != space.Len() || stats.Done != space.Len() {
		t.Errorf("stored %d results, scan says %d done, of %d targets", n, stats.Done, space.Len())
	}
	if r := g.refused.Load(); r > 0 {
		t.Errorf("the probes tried %d times to connect beyond loopback", r)
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		var parts []string
		for o, c := range byKind[k] {
			parts = append(parts, fmt.Sprintf("%d× %v/%v/%v %q", c, o.status, o.assoc, o.level, o.err))
		}
		slices.Sort(parts)
		t.Logf("%-24s slowest %5.2fs: %s", k, slowestOf[k].Seconds(), strings.Join(parts, ", "))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d targets (%d listening) in %v; slowest probe %v (%s); peak heap %s, peak RSS %s; net/http's standard logger got %d lines",
		n, len(hosts), took.Round(time.Millisecond), slowest.Round(time.Millisecond), slowestKind, mib(peakHeap), mib(peakRSS), stdlog.lines())

	// Back to the baseline with the servers still up: the scan left nothing behind on either
	// side of any connection.
	if g := settleGoroutines(goroutines1, 15*time.Second); g > goroutines1+2 {
		t.Errorf("goroutines: %d before the scan, %d after", goroutines1, g)
	}
	heap2 := heapInUse()
	t.Logf("heap in use: %s before the scan, %s after", mib(heap1), mib(heap2))
	if heap2 > heap1+8<<20 {
		t.Errorf("heap in use grew from %s to %s across the scan", mib(heap1), mib(heap2))
	}
	// And once the servers are gone.
	for _, stop := range stops {
		stop()
	}
	if g := settleGoroutines(goroutines0, 15*time.Second); g > goroutines0+2 {
		t.Errorf("goroutines: %d before the fleet started, %d after it stopped", goroutines0, g)
	}
	heap3 := heapInUse()
	t.Logf("heap in use: %s before the fleet started, %s after it stopped", mib(heap0), mib(heap3))
	if heap3 > heap0+8<<20 {
		t.Errorf("heap in use grew from %s to %s across the fleet", mib(heap0), mib(heap3))
	}
}

// gzipBomb returns a gzip stream that inflates to n MiB of zeros: one member of 1 MiB of zeros,
// repeated (gzip members concatenate).
func gzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	if _, err := zw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(member.Bytes(), n)
}

// selfSigned returns a self-signed server certificate for 127.0.0.1 (peertest.SelfSigned).
func selfSigned(t *testing.T) tls.Certificate { return peertest.SelfSigned(t).TLS }

// lineCounter is an io.Writer that counts the lines written to it.
type lineCounter struct {
	mu sync.Mutex // protects n
	n  int
}

func (c *lineCounter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += bytes.Count(b, []byte("\n"))
	return len(b), nil
}

func (c *lineCounter) lines() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// dropSYNs listens on addr with a backlog of 0 and never accepts, then fills the accept queue:
// the kernel drops later SYNs, as a firewall does, so connections to addr time out. It reports
// false where the queue does not fill that way (not Linux).
func dropSYNs(t *testing.T, addr netip.AddrPort) bool {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err != nil {
			return true // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	return false
}

// TestFilteredPort probes a port that drops SYNs (a firewall's "filtered") with both probes: each
// must say filtered, within its deadline, and not mistake the silence for an open port.
func TestFilteredPort(t *testing.T) {
	var g guard
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.77.8.1"), freePort(t))
	if !dropSYNs(t, addr) {
		t.Skip("cannot make the kernel drop SYNs here")
	}
	const timeout = time.Second
	tg := targets.Target{Addr: addr.Addr(), Port: addr.Port()}
	for _, tt := range []struct {
		name string
		p    scan.Prober
	}{
		{"dicom", dicomprobe.New(dicomprobe.Config{Depth: dicomprobe.DepthQuery, Timeout: timeout, Dial: g.dial})},
		{"web", webprobe.New(webprobe.Config{Timeout: timeout, Dial: g.dial})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := tt.p.Probe(context.Background(), tg)
			took := time.Since(start)
			if r.Status != probe.StatusFiltered || r.Level() != probe.LevelClosed || r.Web != nil {
				t.Errorf("status %v, level %v, error %q, web %+v; want filtered, closed, no web", r.Status, r.Level(), r.Error, r.Web)
			}
			if took > 3*timeout {
				t.Errorf("probe took %v, want about %v", took, timeout)
			}
		})
	}
}
