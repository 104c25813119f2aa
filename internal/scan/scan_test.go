package scan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// when is the time of every result the fake probers return.
var when = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// resultFor is a fake probe's deterministic result for t.
func resultFor(t targets.Target) probe.Result {
	r := probe.Result{IP: t.Addr, Port: t.Port, Time: when, Status: probe.StatusFiltered}
	switch t.Port {
	case 104:
		r.Status = probe.StatusOpen
		r.DICOM = &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH"}
		r.Exposure = &probe.Exposure{Level: probe.LevelQuery, Studies: int64(t.Addr.As16()[15]), StudiesExact: true}
	case 11112:
		r.Status = probe.StatusOpen
		r.Exposure = &probe.Exposure{Level: probe.LevelNotDICOM}
	case 4242:
		r.Status = probe.StatusClosed
	}
	return r
}

// proberFunc is a Prober made of a function.
type proberFunc func(ctx context.Context, t targets.Target) probe.Result

func (f proberFunc) Probe(ctx context.Context, t targets.Target) probe.Result { return f(ctx, t) }

// instant is a prober that answers resultFor at once.
var instant = proberFunc(func(_ context.Context, t targets.Target) probe.Result { return resultFor(t) })

// counting wraps p, counting the calls per target.
type counting struct {
	p     scan.Prober
	mu    sync.Mutex
	calls map[targets.Target]int
}

func (c *counting) Probe(ctx context.Context, t targets.Target) probe.Result {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = make(map[targets.Target]int)
	}
	c.calls[t]++
	c.mu.Unlock()
	return c.p.Probe(ctx, t)
}

func newSpace(t testing.TB, spec, ports string) *targets.Space {
	t.Helper()
	ps, err := targets.ParsePorts(ports)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := targets.Parse(context.Background(), []string{spec}, targets.Options{Ports: ps})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "pacswatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func createScan(t testing.TB, st store.Store, total uint64) store.Scan {
	t.Helper()
	sc, err := st.CreateScan(context.Background(), store.Scan{Total: total, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// shardTargets returns the targets of a shard in permutation order.
func shardTargets(sp *targets.Space, shard, shards uint64) []targets.Target {
	var ts []targets.Target
	it := sp.Order(7, shard, shards)
	for t, _, ok := it.Next(); ok; t, _, ok = it.Next() {
		ts = append(ts, t)
	}
	return ts
}

// storedJSON returns the stored results of a scan, one JSON record each,
// in the store's order.
func storedJSON(t testing.TB, st store.Store, id string) []string {
	t.Helper()
	var got []string
	err := st.Results(context.Background(), id, func(r probe.Result) error {
		r.ScanID = ""
		b, err := json.Marshal(r)
		got = append(got, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// wantJSON returns what storedJSON should return for ts.
func wantJSON(t testing.TB, ts []targets.Target) []string {
	t.Helper()
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b targets.Target) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	var want []string
	for _, tg := range ts {
		b, err := json.Marshal(resultFor(tg))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, string(b))
	}
	return want
}

// checkGoroutines fails t unless the number of goroutines comes back to
// base within a second.
func checkGoroutines(t testing.TB, base int) {
	t.Helper()
	var n int
	for range 100 {
		if n = runtime.NumGoroutine(); n <= base {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("goroutines after Run: got %d, want at most %d\n%s", n, base, buf[:runtime.Stack(buf, true)])
}

func TestRunScansEveryTargetOnce(t *testing.T) {
	tests := []struct {
		name          string
		spec, ports   string
		shard, shards uint64
		cfg           scan.Config
	}{
		{"one target", "127.0.0.1", "104", 0, 1, scan.Config{AllTargets: true}},
		{"addresses x ports", "127.0.1.0/24", "104,4242,11112", 0, 1, scan.Config{Concurrency: 50, BatchSize: 7, AllTargets: true}},
		{"shard 1 of 3", "127.0.2.0/24", "104,11112", 1, 3, scan.Config{Concurrency: 8, AllTargets: true}},
		{"one address, many ports", "127.0.3.1", "1-300", 0, 1, scan.Config{Concurrency: 16, AllTargets: true}},
		{"batch of one", "127.0.4.0/28", "104", 0, 1, scan.Config{Concurrency: 4, BatchSize: 1, AllTargets: true}},
		{"empty shard", "127.0.5.1", "104,4242", 3, 4, scan.Config{AllTargets: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := openStore(t)
			sp := newSpace(t, tt.spec, tt.ports)
			it := sp.Order(7, tt.shard, tt.shards)
			all := shardTargets(sp, tt.shard, tt.shards)
			sc := createScan(t, st, it.Len())
			base := runtime.NumGoroutine()

			p := &counting{p: instant}
			var outputs []string
			tt.cfg.OnResult = func(r probe.Result) error {
				outputs = append(outputs, netip.AddrPortFrom(r.IP, r.Port).String())
				return nil
			}
			stats, err := scan.Run(ctx, st, sc, it, p, tt.cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkGoroutines(t, base)

			for _, tg := range all {
				if got := p.calls[tg]; got != 1 {
					t.Errorf("probes of %v: got %d, want 1", tg, got)
				}
			}
			if got, want := len(p.calls), len(all); got != want {
				t.Errorf("targets probed: got %d, want %d", got, want)
			}
			if got, want := storedJSON(t, st, sc.ID), wantJSON(t, all); !slices.Equal(got, want) {
				t.Errorf("stored results:\ngot  %q\nwant %q", got, want)
			}
			if got, want := len(outputs), len(all); got != want {
				t.Errorf("OnResult calls: got %d, want %d", got, want)
			}
			var want scan.Stats
			want.Total, want.Done, want.Started = uint64(len(all)), uint64(len(all)), stats.Started
			for _, tg := range all {
				r := resultFor(tg)
				if r.Status == probe.StatusOpen {
					want.Open++
				}
				if r.DICOM != nil {
					want.DICOM++
				}
				if r.Level() >= probe.LevelQuery {
					want.Exposed++
				}
			}
			if stats != want {
				t.Errorf("stats: got %+v, want %+v", stats, want)
			}

			got, err := st.Scan(ctx, sc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Finished.IsZero() {
				t.Errorf("scan not finished")
			}
			rest := sp.Order(7, tt.shard, tt.shards)
			rest.Seek(got.Progress.Done)
			if tg, pos, ok := rest.Next(); ok {
				t.Errorf("checkpoint %d leaves %v at position %d", got.Progress.Done, tg, pos)
			}
		})
	}
}

func TestRunConcurrency(t *testing.T) {
	tests := []struct {
		name        string
		spec, ports string
		concurrency int
		want        int64 // most targets in flight at once
	}{
		{"distinct addresses reach the limit", "127.0.6.0/26", "104", 16, 16},
		{"three addresses", "127.0.7.1-127.0.7.3", "1-20", 16, 3},
		{"one address", "127.0.7.9", "1-50", 8, 1},
		{"limit of one", "127.0.8.0/28", "104,4242", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			sp := newSpace(t, tt.spec, tt.ports)
			it := sp.Order(7, 0, 1)
			sc := createScan(t, st, it.Len())

			var (
				inFlight, most atomic.Int64
				mu             sync.Mutex
				perAddr        = make(map[netip.Addr]*atomic.Int64)
				addrMost       atomic.Int64
			)
			for _, tg := range shardTargets(sp, 0, 1) {
				perAddr[tg.Addr] = new(atomic.Int64)
			}
			p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
				mu.Lock()
				a := perAddr[tg.Addr]
				mu.Unlock()
				if n := a.Add(1); n > addrMost.Load() {
					addrMost.Store(n)
				}
				defer a.Add(-1)
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for {
					if m := most.Load(); n > m && !most.CompareAndSwap(m, n) {
						continue
					}
					break
				}
				// Wait (briefly) for the others to come in.
				for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
					if inFlight.Load() >= tt.want {
						break
					}
					time.Sleep(time.Millisecond)
				}
				return resultFor(tg)
			})
			stats, err := scan.Run(context.Background(), st, sc, it, p, scan.Config{Concurrency: tt.concurrency})
			if err != nil {
				t.Fatal(err)
			}
			if stats.Done != it.Len() {
				t.Errorf("done: got %d, want %d", stats.Done, it.Len())
			}
			if got := addrMost.Load(); got != 1 {
				t.Errorf("most probes of one address at once: got %d, want 1", got)
			}
			if got := most.Load(); got != tt.want {
				t.Errorf("most probes at once: got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRunRate(t *testing.T) {
	const (
		n    = 40
		rate = 50.0 // per second
	)
	st := openStore(t)
	sp := newSpace(t, "127.0.9.0/24", "104")
	it := sp.Order(7, 0, 1)
	sc := createScan(t, st, it.Len())

	var (
		mu     sync.Mutex
		starts []time.Time
	)
	var count atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := proberFunc(func(_ context.Context, tg targets.Target) probe.Result {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		if count.Add(1) == n {
			cancel()
		}
		return resultFor(tg)
	})
	if _, err := scan.Run(ctx, st, sc, it, p, scan.Config{Rate: rate, Concurrency: 100}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(starts, time.Time.Compare)
	if len(starts) < n {
		t.Fatalf("starts: got %d, want at least %d", len(starts), n)
	}
	starts = starts[:n]
	// Loose bounds, so that a slow machine cannot fail the test: n starts
	// take at least most of (n-1)/rate, and no window of 200 ms holds more
	// than its share plus the burst of 1 and some slack.
	if got, want := starts[n-1].Sub(starts[0]), time.Duration(0.8*(n-1)/rate*float64(time.Second)); got < want {
		t.Errorf("%d starts took %v, want at least %v", n, got, want)
	}
	const window, most = 200 * time.Millisecond, 1 + rate*0.2 + 10
	for i := range starts {
		j := i
		for j < len(starts) && starts[j].Sub(starts[i]) < window {
			j++
		}
		if j-i > most {
			t.Errorf("%d starts in %v from start %d, want at most %d", j-i, window, i, int(most))
			break
		}
	}
}

func TestRunProbeFailures(t *testing.T) {
	release := make(chan struct{}) // lets the probe that ignores its context go
	tests := []struct {
		name       string
		probe      func(ctx context.Context) probe.Result
		wantStatus probe.Status
		wantError  string
		wantLog    string
		minTime    time.Duration
	}{
		{
			name:       "panic",
			probe:      func(context.Context) probe.Result { panic("boom 42") },
			wantStatus: probe.StatusError,
			wantError:  scan.TextPanic,
			wantLog:    "boom 42",
		},
		{
			name: "ignores its deadline",
			probe: func(context.Context) probe.Result {
				<-release
				return probe.Result{Status: probe.StatusOpen}
			},
			wantStatus: probe.StatusError,
			wantError:  scan.TextOverrun,
			wantLog:    "abandoned",
			minTime:    200*time.Millisecond + 250*time.Millisecond, // MaxHostTime + grace
		},
		{
			name: "honours its deadline",
			probe: func(ctx context.Context) probe.Result {
				<-ctx.Done()
				return probe.Result{Status: probe.StatusFiltered, Error: "i/o timeout"}
			},
			wantStatus: probe.StatusFiltered,
			wantError:  "i/o timeout",
			minTime:    200 * time.Millisecond,
		},
		{
			name:       "no status",
			probe:      func(context.Context) probe.Result { return probe.Result{} },
			wantStatus: probe.StatusError,
			wantError:  scan.TextNoStatus,
		},
		{
			name: "sanitized",
			probe: func(context.Context) probe.Result {
				return probe.Result{Status: probe.StatusError, Error: "bad\x00 \x1b[31mpeer"}
			},
			wantStatus: probe.StatusError,
			wantError:  "bad [31mpeer",
		},
	}
	base := runtime.NumGoroutine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			// 127.0.10.1:104 is the failing target; the others answer.
			sp := newSpace(t, "127.0.10.1-127.0.10.4", "104,4242")
			it := sp.Order(7, 0, 1)
			sc := createScan(t, st, it.Len())
			bad := targets.Target{Addr: netip.MustParseAddr("127.0.10.1"), Port: 104}
			p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
				if tg == bad {
					return tt.probe(ctx)
				}
				return resultFor(tg)
			})
			var logs bytes.Buffer
			var logMu sync.Mutex
			logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
			var got *probe.Result
			var gotAfter time.Duration
			start := time.Now()
			cfg := scan.Config{
				MaxHostTime: 200 * time.Millisecond,
				AllTargets:  true, // a probe that honours its deadline says filtered
				Logger:      logger,
				OnResult: func(r probe.Result) error {
					if r.IP == bad.Addr && r.Port == bad.Port {
						got, gotAfter = &r, time.Since(start)
					}
					return nil
				},
				FlushInterval: 10 * time.Millisecond,
			}
			stats, err := scan.Run(context.Background(), st, sc, it, p, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatalf("no result for %v", bad)
			}
			if got.Status != tt.wantStatus || got.Error != tt.wantError {
				t.Errorf("result: got %v %q, want %v %q", got.Status, got.Error, tt.wantStatus, tt.wantError)
			}
			if got.ScanID != sc.ID || !got.Time.Equal(got.Time.UTC()) || got.Time.IsZero() {
				t.Errorf("result: got scan %q time %v, want scan %q and a time", got.ScanID, got.Time, sc.ID)
			}
			if gotAfter < tt.minTime || gotAfter > tt.minTime+2*time.Second {
				t.Errorf("result after %v, want between %v and %v", gotAfter, tt.minTime, tt.minTime+2*time.Second)
			}
			if stats.Done != it.Len() {
				t.Errorf("done: got %d, want %d", stats.Done, it.Len())
			}
			wantErrors := uint64(0)
			if tt.wantStatus == probe.StatusError {
				wantErrors = 1
			}
			if stats.Errors != wantErrors {
				t.Errorf("errors: got %d, want %d", stats.Errors, wantErrors)
			}
			logMu.Lock()
			defer logMu.Unlock()
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log: got %q, want it to contain %q", logs.String(), tt.wantLog)
			}
		})
	}
	close(release)
	checkGoroutines(t, base)
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// checkStore is a store that checks, at every PutResults, that the
// checkpoint never falls and that every position below it has a stored
// result.
type checkStore struct {
	store.Store
	t     testing.TB
	order []targets.Target // the shard's targets by position
	pos   []uint64         // their positions

	mu     sync.Mutex
	last   uint64
	stored map[targets.Target]bool
}

func (s *checkStore) PutResults(ctx context.Context, id string, rs []probe.Result, p store.Progress) error {
	if err := s.Store.PutResults(ctx, id, rs, p); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Done < s.last {
		s.t.Errorf("checkpoint fell from %d to %d", s.last, p.Done)
	}
	s.last = p.Done
	for _, r := range rs {
		s.stored[targets.Target{Addr: r.IP, Port: r.Port}] = true
	}
	for i, tg := range s.order {
		if s.pos[i] >= p.Done {
			break
		}
		if !s.stored[tg] {
			s.t.Errorf("checkpoint %d passes position %d (%v), which has no stored result", p.Done, s.pos[i], tg)
		}
	}
	return nil
}

func TestRunResume(t *testing.T) {
	tests := []struct {
		name          string
		spec, ports   string
		shard, shards uint64
		cancelAfter   []int64 // probes started before each interrupted run is cancelled
		cfg           scan.Config
	}{
		{"early", "127.0.11.0/25", "104,4242,11112", 0, 1, []int64{3}, scan.Config{Concurrency: 16, BatchSize: 10, AllTargets: true}},
		{"halfway", "127.0.11.0/25", "104,4242,11112", 0, 1, []int64{190}, scan.Config{Concurrency: 32, BatchSize: 25, AllTargets: true}},
		{"near the end", "127.0.11.0/25", "104,4242,11112", 0, 1, []int64{370}, scan.Config{Concurrency: 8, AllTargets: true}},
		{"three times", "127.0.12.0/26", "104,4242,11112,1-5", 0, 1, []int64{50, 50, 100}, scan.Config{Concurrency: 20, BatchSize: 15, AllTargets: true}},
		{"shard 2 of 3", "127.0.13.0/24", "104,11112", 2, 3, []int64{60, 30}, scan.Config{Concurrency: 12, BatchSize: 9, AllTargets: true}},
		{"shared addresses", "127.0.14.1-127.0.14.4", "1-60", 0, 1, []int64{40, 100}, scan.Config{Concurrency: 16, BatchSize: 6, AllTargets: true}},
	}
	// Over all cases: results stored past the checkpoint (which the resumed
	// run must skip), and probes cut short (whose results it must drop).
	var pastCheckpoint, cutShort atomic.Int64
	defer func() {
		if pastCheckpoint.Load() == 0 || cutShort.Load() == 0 {
			t.Errorf("stored past a checkpoint %d, cut short %d: want both tested", pastCheckpoint.Load(), cutShort.Load())
		}
	}()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			sp := newSpace(t, tt.spec, tt.ports)
			all := shardTargets(sp, tt.shard, tt.shards)
			// Each probe takes 0-3 ms, or returns a wrong result when it is
			// cut short: storing that one would fail the comparison.
			slow := func(ctx context.Context, tg targets.Target) probe.Result {
				select {
				case <-time.After(time.Duration(tg.Addr.As16()[15]%4) * time.Millisecond):
					return resultFor(tg)
				case <-ctx.Done():
					cutShort.Add(1)
					return probe.Result{Status: probe.StatusFiltered, Error: "cut short"}
				}
			}

			// The uninterrupted run.
			ref := openStore(t)
			refScan := createScan(t, ref, uint64(len(all)))
			cfg := tt.cfg
			cfg.FlushInterval = 5 * time.Millisecond
			if _, err := scan.Run(ctx, ref, refScan, sp.Order(7, tt.shard, tt.shards), proberFunc(slow), cfg); err != nil {
				t.Fatal(err)
			}
			want := storedJSON(t, ref, refScan.ID)
			if len(want) != len(all) {
				t.Fatalf("uninterrupted run stored %d results, want %d", len(want), len(all))
			}

			// The interrupted runs, then the last.
			db := openStore(t)
			st := &checkStore{Store: db, t: t, stored: make(map[targets.Target]bool)}
			for it := sp.Order(7, tt.shard, tt.shards); ; {
				tg, pos, ok := it.Next()
				if !ok {
					break
				}
				st.order, st.pos = append(st.order, tg), append(st.pos, pos)
			}
			id := createScan(t, st, uint64(len(all))).ID
			for run := 0; run <= len(tt.cancelAfter); run++ {
				sc, err := st.Scan(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				before := make(map[targets.Target]bool)
				err = st.Done(ctx, id, func(ip netip.Addr, port uint16) error {
					before[targets.Target{Addr: ip, Port: port}] = true
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				runCtx, cancel := context.WithCancel(ctx)
				var started atomic.Int64
				var mu sync.Mutex
				probed := make(map[targets.Target]bool)
				p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
					mu.Lock()
					probed[tg] = true
					mu.Unlock()
					if run < len(tt.cancelAfter) && started.Add(1) == tt.cancelAfter[run] {
						cancel()
					}
					return slow(ctx, tg)
				})
				base := runtime.NumGoroutine()
				stats, err := scan.Run(runCtx, st, sc, sp.Order(7, tt.shard, tt.shards), p, cfg)
				cancel()
				checkGoroutines(t, base)
				last := run == len(tt.cancelAfter)
				switch {
				case last && err != nil:
					t.Fatalf("run %d: %v", run, err)
				case !last && !errors.Is(err, context.Canceled):
					t.Fatalf("run %d: got %v, want context.Canceled", run, err)
				}
				for i, tg := range st.order {
					if before[tg] && st.pos[i] >= sc.Progress.Done {
						pastCheckpoint.Add(1)
					}
				}
				for tg := range probed {
					if before[tg] {
						t.Errorf("run %d probed %v again", run, tg)
					}
				}
				if got, want := stats.Skipped, uint64(len(before)); got != want {
					t.Errorf("run %d: skipped %d, want %d", run, got, want)
				}
				after, err := st.Scan(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if after.Progress.Done < sc.Progress.Done {
					t.Errorf("run %d: checkpoint fell from %d to %d", run, sc.Progress.Done, after.Progress.Done)
				}
				if got := !after.Finished.IsZero(); got != last {
					t.Errorf("run %d: finished %v, want %v", run, got, last)
				}
				if last && stats.Done != uint64(len(all)) {
					t.Errorf("run %d: done %d, want %d", run, stats.Done, len(all))
				}
			}
			if got := storedJSON(t, st, id); !slices.Equal(got, want) {
				t.Errorf("results after resuming:\ngot  %q\nwant %q", got, want)
			}
		})
	}
}

func TestRunFinishedScan(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	sp := newSpace(t, "127.0.15.0/28", "104,4242")
	sc := createScan(t, st, sp.Len())
	if _, err := scan.Run(ctx, st, sc, sp.Order(7, 0, 1), instant, scan.Config{}); err != nil {
		t.Fatal(err)
	}
	done, err := st.Scan(ctx, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := &counting{p: instant}
	stats, err := scan.Run(ctx, st, done, sp.Order(7, 0, 1), p, scan.Config{Now: func() time.Time { return when }})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.calls) != 0 {
		t.Errorf("probes: got %d, want 0", len(p.calls))
	}
	want := scan.Stats{Total: sp.Len(), Done: sp.Len(), Skipped: sp.Len(), Started: when}
	if stats != want {
		t.Errorf("stats: got %+v, want %+v", stats, want)
	}
	again, err := st.Scan(ctx, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Finished.Equal(done.Finished) {
		t.Errorf("finished: got %v, want %v kept", again.Finished, done.Finished)
	}
}

// failStore fails PutResults after ok successful calls.
type failStore struct {
	store.Store
	ok    atomic.Int64
	calls atomic.Int64
}

var errDisk = errors.New("disk full")

func (s *failStore) PutResults(ctx context.Context, id string, rs []probe.Result, p store.Progress) error {
	if s.calls.Add(1) > s.ok.Load() {
		return errDisk
	}
	return s.Store.PutResults(ctx, id, rs, p)
}

func TestRunErrors(t *testing.T) {
	errOutput := errors.New("broken pipe")
	tests := []struct {
		name     string
		ok       int64 // successful PutResults
		onResult func(probe.Result) error
		want     error
	}{
		{"store fails at once", 0, nil, errDisk},
		{"store fails later", 3, nil, errDisk},
		{"output fails", 1 << 30, func(probe.Result) error { return errOutput }, errOutput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := openStore(t)
			st := &failStore{Store: db}
			st.ok.Store(tt.ok)
			sp := newSpace(t, "127.0.16.0/24", "104,4242")
			sc := createScan(t, st, sp.Len())
			base := runtime.NumGoroutine()
			p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
				select { // slow enough for the failure to stop the scan
				case <-time.After(time.Millisecond):
				case <-ctx.Done():
				}
				return resultFor(tg)
			})
			cfg := scan.Config{Concurrency: 10, BatchSize: 5, OnResult: tt.onResult}
			stats, err := scan.Run(ctx, st, sc, sp.Order(7, 0, 1), p, cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Run: got %v, want %v", err, tt.want)
			}
			checkGoroutines(t, base)
			if stats.Done >= sp.Len() {
				t.Errorf("done: got %d, want fewer than %d", stats.Done, sp.Len())
			}
			after, err := db.Scan(ctx, sc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !after.Finished.IsZero() {
				t.Errorf("scan finished after an error")
			}
		})
	}
}

func TestRunBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  scan.Config
		want string
	}{
		{"negative rate", scan.Config{Rate: -1}, "rate"},
		{"NaN rate", scan.Config{Rate: nan()}, "rate"},
		{"negative concurrency", scan.Config{Concurrency: -1}, "concurrency"},
		{"negative max host time", scan.Config{MaxHostTime: -time.Second}, "max host time"},
		{"negative batch", scan.Config{BatchSize: -1}, "batch size"},
		{"negative flush interval", scan.Config{FlushInterval: -1}, "flush interval"},
	}
	st := openStore(t)
	sp := newSpace(t, "127.0.17.1", "104")
	sc := createScan(t, st, 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &counting{p: instant}
			_, err := scan.Run(context.Background(), st, sc, sp.Order(7, 0, 1), p, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: got %v, want an error about %s", err, tt.want)
			}
			if len(p.calls) != 0 {
				t.Errorf("probes: got %d, want 0", len(p.calls))
			}
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestRunUnknownScan(t *testing.T) {
	st := openStore(t)
	sp := newSpace(t, "127.0.17.1", "104")
	_, err := scan.Run(context.Background(), st, store.Scan{ID: "nope"}, sp.Order(7, 0, 1), instant, scan.Config{})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Run: got %v, want store.ErrNotFound", err)
	}
}

func TestRunProgress(t *testing.T) {
	st := openStore(t)
	sp := newSpace(t, "127.0.18.0/28", "104")
	sc := createScan(t, st, sp.Len())
	var (
		mu    sync.Mutex
		calls []scan.Stats
	)
	p := proberFunc(func(_ context.Context, tg targets.Target) probe.Result {
		time.Sleep(60 * time.Millisecond)
		return resultFor(tg)
	})
	cfg := scan.Config{
		Concurrency:   2,
		FlushInterval: 10 * time.Millisecond,
		Progress: func(s scan.Stats) {
			mu.Lock()
			calls = append(calls, s)
			mu.Unlock()
		},
	}
	start := time.Now()
	final, err := scan.Run(context.Background(), st, sc, sp.Order(7, 0, 1), p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// 16 targets, 2 at a time, 60 ms each: about 480 ms, so 2 calls at least.
	if len(calls) < 2 || len(calls) > int(time.Since(start)/scan.ProgressInterval)+1 {
		t.Fatalf("progress calls: got %d in %v, want one per %v", len(calls), time.Since(start), scan.ProgressInterval)
	}
	for i, s := range calls {
		if s.Total != sp.Len() || s.Started != final.Started {
			t.Errorf("call %d: got %+v, want total %d, started %v", i, s, sp.Len(), final.Started)
		}
		if i > 0 && s.Done < calls[i-1].Done {
			t.Errorf("call %d: done fell from %d to %d", i, calls[i-1].Done, s.Done)
		}
	}
	if calls[0].Done >= final.Done {
		t.Errorf("first call: done %d, want less than the final %d", calls[0].Done, final.Done)
	}
}

func TestRunHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("65,536 targets")
	}
	st := openStore(t)
	sp := newSpace(t, "127.2.0.0/16", "104")
	it := sp.Order(7, 0, 1)
	sc := createScan(t, st, it.Len())

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var n int
	var most uint64
	cfg := scan.Config{OnResult: func(probe.Result) error {
		if n++; n%8192 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			most = max(most, ms.HeapInuse)
		}
		return nil
	}}
	stats, err := scan.Run(context.Background(), st, sc, it, instant, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Done != 1<<16 || n != 1<<16 {
		t.Fatalf("done %d, results %d, want %d", stats.Done, n, 1<<16)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	const slack = 8 << 20
	t.Logf("heap in use: before %d KiB, most %d KiB, after %d KiB", before>>10, most>>10, ms.HeapInuse>>10)
	if most > before+slack || ms.HeapInuse > before+slack {
		t.Errorf("heap in use grew from %d KiB to %d KiB (most %d KiB), want at most %d KiB more",
			before>>10, ms.HeapInuse>>10, most>>10, slack>>10)
	}
}

func BenchmarkEngine(b *testing.B) {
	const perRun = 10000
	st := openStore(b)
	sp := newSpace(b, fmt.Sprintf("127.3.0.0-127.3.%d.%d", (perRun-1)/256, (perRun-1)%256), "104")
	if sp.Len() != perRun {
		b.Fatalf("space: got %d targets, want %d", sp.Len(), perRun)
	}
	var runs int
	start := time.Now()
	for b.Loop() {
		sc := createScan(b, st, perRun)
		if _, err := scan.Run(context.Background(), st, sc, sp.Order(uint64(runs), 0, 1), instant, scan.Config{}); err != nil {
			b.Fatal(err)
		}
		runs++
	}
	b.ReportMetric(float64(runs*perRun)/time.Since(start).Seconds(), "targets/s")
}
