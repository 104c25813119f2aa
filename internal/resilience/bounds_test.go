package resilience

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// scpChildEnv, set to a number of studies, makes the test binary a DICOM SCP holding a virtual
// tree of that many studies (see childSCP), so that a test can measure the prober's heap alone.
const scpChildEnv = "PACSWATCH_RESILIENCE_SCP_STUDIES"

func TestMain(m *testing.M) {
	if n := os.Getenv(scpChildEnv); n != "" {
		os.Exit(serveChild(n))
	}
	os.Exit(m.Run())
}

// serveChild serves a virtual tree of n studies with computed counts on 127.0.0.1, prints the
// address on stdout, and returns when stdin closes (the parent ended it, or died).
func serveChild(n string) int {
	studies, err := strconv.Atoi(n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s := dicomtest.New(dicomtest.Config{Tree: dicomtest.NewVirtualTree(1, studies), ComputedCounts: true, Timeout: time.Minute})
	go s.Serve(context.Background(), l)
	fmt.Println(l.Addr())
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	return 0
}

// childSCP starts serveChild in a copy of this test binary and returns its address.
func childSCP(t *testing.T, studies int) targets.Target {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", scpChildEnv, studies))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child SCP: %v", err)
	}
	ap, err := netip.ParseAddrPort(line[:len(line)-1])
	if err != nil || !ap.Addr().IsLoopback() {
		t.Fatalf("child SCP listens on %q", line)
	}
	return targets.Target{Addr: ap.Addr(), Port: ap.Port()}
}

// TestBoundsMillionFind counts an archive whose one STUDY-level C-FIND streams 1,000,000 pending
// responses (a query budget of one: no date slices), and 100,000 for comparison, with the server
// in another process so that the heap measured is the prober's. The prober keeps 8 bytes of
// keyed hash per distinct study (dicomprobe's maxStudies, 2^20, bounds them) and nothing per
// response: its heap grows with distinct studies, not responses, by about 40 bytes each (the map
// of hashes, with its spare slots and the copy made when it grows), up to that bound; the bound
// below holds for any stream.
func TestBoundsMillionFind(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1,100,000 C-FIND responses; skipped with -short")
	}
	// Measured with the collector at GOGC=10, so that the peak is what the prober holds, not the
	// garbage a collection has yet to reclaim (at the default GOGC=100 the peak is about twice).
	// 48 MiB covers the dedup set at dicomprobe's bound of 2^20 studies, whatever a server
	// streams.
	const bound = 48 << 20
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	ctx := context.Background()
	var peaks [2]uint64
	for i, n := range []int{100_000, 1_000_000} {
		tg := childSCP(t, n)
		var g guard
		p := dicomprobe.New(dicomprobe.Config{Depth: dicomprobe.DepthQuery, Timeout: 10 * time.Second, QueryBudget: 1, Dial: g.dial})
		base := heapInUse()
		smp := startSampler()
		start := time.Now()
		r := p.Probe(ctx, tg)
		took := time.Since(start)
		peak, peakRSS := smp.peaks()
		if r.Exposure == nil || r.Exposure.Studies != int64(n) || r.Level() < probe.LevelQuery {
			t.Fatalf("%d studies: probe says %v, %+v, error %q", n, r.Level(), r.Exposure, r.Error)
		}
		peaks[i] = peak - min(peak, base)
		t.Logf("%d C-FIND responses in %v (%.0f/s): peak heap %s above %s in use before (peak RSS %s)",
			n, took.Round(time.Millisecond), float64(n)/took.Seconds(), mib(peaks[i]), mib(base), mib(peakRSS))
		if peaks[i] > bound {
			t.Errorf("%d responses: peak heap %s above the baseline, over the bound %s", n, mib(peaks[i]), mib(bound))
		}
	}
	t.Logf("heap per distinct study between 100,000 and 1,000,000: %.1f bytes",
		float64(peaks[1]-min(peaks[1], peaks[0]))/900_000)
}

// instant is a prober that finds every port closed at once: the engine and the store alone.
type instant struct{ probes atomic.Int64 }

func (p *instant) Probe(context.Context, targets.Target) probe.Result {
	p.probes.Add(1)
	return probe.Result{Status: probe.StatusClosed, Error: "connection refused"}
}

// TestBoundsTargets scans a /18 (16,384 targets) and a /15 (131,072) of loopback addresses with
// the DICOM prober at full depth and the SQLite store, at the default concurrency: mostly closed
// ports, with a few archives at the same addresses in both. The peak heap must not grow with the
// number of targets: the engine holds O(concurrency) of them.
func TestBoundsTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 147,456 targets; skipped with -short")
	}
	ctx := context.Background()
	port := freePort(t)
	for i := range 32 { // open archives inside the /18
		addr := netip.AddrFrom4([4]byte{127, 80, byte(i), 7})
		s := dicomtest.New(dicomtest.Config{Tree: dicomtest.NewTree(uint64(i), 3), ComputedCounts: true})
		go s.Serve(ctx, listen(t, addr, port))
		t.Cleanup(func() { s.Close() })
	}
	var g guard
	p := dicomprobe.New(dicomprobe.Config{Depth: dicomprobe.DepthQuery, Timeout: 5 * time.Second, Dial: g.dial})
	var peaks [2]uint64
	for i, cidr := range []string{"127.80.0.0/18", "127.80.0.0/15"} {
		space, err := targets.Parse(ctx, []string{cidr}, targets.Options{Ports: []uint16{port}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bounds.db"))
		if err != nil {
			t.Fatal(err)
		}
		sc, err := st.CreateScan(ctx, store.Scan{Targets: []string{cidr}, Total: space.Len(), Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		base := heapInUse()
		smp := startSampler()
		start := time.Now()
		stats, err := scan.Run(ctx, st, sc, space.Order(3, 0, 1), p, scan.Config{})
		took := time.Since(start)
		peak, peakRSS := smp.peaks()
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if stats.Done != space.Len() || stats.Exposed != 32 {
			t.Errorf("%s: %d of %d done, %d exposed, want all and 32", cidr, stats.Done, space.Len(), stats.Exposed)
		}
		peaks[i] = peak - min(peak, base)
		t.Logf("%s: %d targets in %v (%.0f/s): peak heap %s above %s in use before, peak RSS %s",
			cidr, space.Len(), took.Round(time.Millisecond), float64(space.Len())/took.Seconds(), mib(peaks[i]), mib(base), mib(peakRSS))
	}
	// Eight times the targets; the heap's peak may differ by what a collection happens to catch.
	if peaks[1] > peaks[0]*3/2+16<<20 {
		t.Errorf("peak heap grew from %s at 16,384 targets to %s at 131,072", mib(peaks[0]), mib(peaks[1]))
	}
}

// TestBoundsResume resumes a scan of 262,144 targets whose store already holds 250,000 results
// below its checkpoint and a few far past it (stored out of order by the run that was killed):
// the resumed run must probe exactly the others, and hold no set of the stored results, so its
// heap stays that of a fresh run of the remaining targets.
func TestBoundsResume(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 250,000 results; skipped with -short")
	}
	ctx := context.Background()
	space, err := targets.Parse(ctx, []string{"127.96.0.0/14"}, targets.Options{Ports: []uint16{104}})
	if err != nil {
		t.Fatal(err)
	}
	const checkpoint = 250_000
	ahead := []uint64{checkpoint + 3, checkpoint + 777, checkpoint + 9_000} // beyond the first look-ahead
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "resume.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sc, err := st.CreateScan(ctx, store.Scan{Targets: []string{"127.96.0.0/14"}, Total: space.Len(), Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	// The killed run's results, as the engine stores them: in batches, each with its checkpoint.
	it := space.Order(5, 0, 1)
	skipped := map[targets.Target]bool{} // those past the checkpoint
	stored := 0
	batch := make([]probe.Result, 0, 50_000)
	put := func(done uint64) {
		if err := st.PutResults(ctx, sc.ID, batch, store.Progress{Done: done}); err != nil {
			t.Fatal(err)
		}
		stored += len(batch)
		batch = batch[:0]
	}
	for {
		tg, pos, ok := it.Next()
		if !ok {
			break
		}
		if len(ahead) > 0 && pos == ahead[0] {
			ahead = ahead[1:]
			skipped[tg] = true
		} else if pos >= checkpoint {
			continue
		}
		batch = append(batch, probe.Result{IP: tg.Addr, Port: tg.Port, Time: time.Now(), Status: probe.StatusClosed})
		if len(batch) == cap(batch) {
			put(min(pos+1, checkpoint))
		}
	}
	put(checkpoint)
	if stored != checkpoint+3 || len(skipped) != 3 {
		t.Fatalf("stored %d results, %d past the checkpoint; want %d and 3", stored, len(skipped), checkpoint+3)
	}
	if sc, err = st.Scan(ctx, sc.ID); err != nil {
		t.Fatal(err)
	}

	p := &instant{}
	var again atomic.Int64
	check := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
		if skipped[tg] {
			again.Add(1)
		}
		return p.Probe(ctx, tg)
	})
	base := heapInUse()
	smp := startSampler()
	stats, err := scan.Run(ctx, st, sc, space.Order(5, 0, 1), check, scan.Config{AllTargets: true}) // about resuming: every target stored
	peak, _ := smp.peaks()
	if err != nil {
		t.Fatal(err)
	}
	// Probing each of the others once, and none stored, is storing every target.
	want := int64(space.Len()) - int64(stored)
	if again.Load() > 0 || p.probes.Load() != want || stats.Skipped != uint64(stored) || stats.Done != space.Len() {
		t.Errorf("probed %d (%d of those past the checkpoint), skipped %d, done %d; want %d probed, %d skipped, %d done",
			p.probes.Load(), again.Load(), stats.Skipped, stats.Done, want, stored, space.Len())
	}
	n := 0
	if err := st.Done(ctx, sc.ID, func(netip.Addr, uint16) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if uint64(n) != space.Len() {
		t.Errorf("store holds %d results, want %d", n, space.Len())
	}
	// A set of the 250,000 stored targets would take about 40 MiB at its peak.
	grew := peak - min(peak, base)
	t.Logf("resumed over %d stored results: %d probed, peak heap %s above %s in use before", stored, want, mib(grew), mib(base))
	if grew > 16<<20 {
		t.Errorf("peak heap %s above the baseline while resuming: the stored results are held in memory", mib(grew))
	}
}

type proberFunc func(context.Context, targets.Target) probe.Result

func (f proberFunc) Probe(ctx context.Context, t targets.Target) probe.Result { return f(ctx, t) }
