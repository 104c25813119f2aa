package scan_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// tallyResult is resultFor with unreachable targets too: port 4242 closed, port 5 unreachable,
// the other ports but 104 and 11112 filtered.
func tallyResult(t targets.Target) probe.Result {
	r := resultFor(t)
	if t.Port == 5 {
		r.Status, r.Error = probe.StatusFiltered, scan.TextUnreachable
	}
	return r
}

// wantTallies returns the tallies and stored targets a scan of all with tallyResult gives.
func wantTallies(all []targets.Target) (map[uint16]store.Tally, map[targets.Target]bool) {
	tallies := make(map[uint16]store.Tally)
	stored := make(map[targets.Target]bool)
	for _, tg := range all {
		r := tallyResult(tg)
		v := tallies[tg.Port]
		switch {
		case r.Status == probe.StatusClosed:
			v.Closed++
		case r.Status == probe.StatusFiltered && r.Error == scan.TextUnreachable:
			v.Unreachable++
		case r.Status == probe.StatusFiltered:
			v.Filtered++
		default:
			stored[tg] = true
			continue
		}
		tallies[tg.Port] = v
	}
	return tallies, stored
}

// tallyStore checks at every checkpoint that each target below it is counted exactly once:
// stored, or in the tallies.
type tallyStore struct {
	store.Store
	t      *testing.T
	order  []targets.Target
	pos    []uint64
	mu     sync.Mutex
	stored map[targets.Target]bool
	puts   int
}

func (s *tallyStore) PutResults(ctx context.Context, id string, rs []probe.Result, p store.Progress) error {
	if err := s.Store.PutResults(ctx, id, rs, p); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	for _, r := range rs {
		s.stored[targets.Target{Addr: r.IP, Port: r.Port}] = true
	}
	below := make(map[uint16]uint64)
	for i, tg := range s.order {
		if s.pos[i] < p.Done && !s.stored[tg] {
			below[tg.Port]++
		}
	}
	for port, n := range below {
		if got := p.Tallies[port].Probed() + p.Tallies[port].Excluded; got != n {
			s.t.Errorf("checkpoint %d: port %d tallies %+v count %d targets, want the %d below it not stored", p.Done, port, p.Tallies[port], got, n)
		}
	}
	for port, v := range p.Tallies {
		if below[port] == 0 && v != (store.Tally{}) {
			s.t.Errorf("checkpoint %d: port %d has tallies %+v but no target below it unstored", p.Done, port, v)
		}
	}
	return nil
}

// TestRunTallies: closed, filtered and unreachable targets are counted per port with the
// checkpoint, neither stored nor passed to OnResult; Stats count them.
func TestRunTallies(t *testing.T) {
	ctx := context.Background()
	sp := newSpace(t, "127.0.40.0/26", "104,4242,11112,5,6")
	all := shardTargets(sp, 0, 1)
	st := &tallyStore{Store: openStore(t), t: t, stored: make(map[targets.Target]bool)}
	it := sp.Order(7, 0, 1)
	for tg, pos, ok := it.Next(); ok; tg, pos, ok = it.Next() {
		st.order, st.pos = append(st.order, tg), append(st.pos, pos)
	}
	it.Seek(0)
	sc := createScan(t, st, it.Len())
	var outputs int
	stats, err := scan.Run(ctx, st, sc, it, proberFunc(func(_ context.Context, tg targets.Target) probe.Result { return tallyResult(tg) }),
		scan.Config{Concurrency: 16, BatchSize: 7, OnResult: func(r probe.Result) error {
			if _, tallied := map[probe.Status]bool{probe.StatusClosed: true, probe.StatusFiltered: true}[r.Status]; tallied {
				t.Errorf("OnResult got %v %v", netip.AddrPortFrom(r.IP, r.Port), r.Status)
			}
			outputs++
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	wantT, wantStored := wantTallies(all)
	got, err := st.Scan(ctx, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Progress.Equal(store.Progress{Done: got.Progress.Done, Tallies: wantT}) {
		t.Errorf("tallies %+v, want %+v", got.Progress.Tallies, wantT)
	}
	if n := len(storedJSON(t, st, sc.ID)); n != len(wantStored) || outputs != n {
		t.Errorf("stored %d results, OnResult %d, want %d each", n, outputs, len(wantStored))
	}
	var tl store.Tally
	for _, v := range wantT {
		tl.Add(v)
	}
	if stats.Closed != tl.Closed || stats.Filtered != tl.Filtered || stats.Unreachable != tl.Unreachable || stats.Done != uint64(len(all)) {
		t.Errorf("stats %+v, want closed %d, filtered %d, unreachable %d, done %d", stats, tl.Closed, tl.Filtered, tl.Unreachable, len(all))
	}
	sum, err := st.Summary(ctx, sc.ID)
	if err != nil || sum.Probed() != uint64(len(all)) {
		t.Errorf("Summary %+v (probed %d), %v: want all %d probed", sum, sum.Probed(), err, len(all))
	}
	if st.puts < 3 {
		t.Errorf("%d checkpoints: want several to check", st.puts)
	}
}

// TestRunResumeTallies: a scan killed at several points and resumed ends with the tallies and
// results of an uninterrupted run: no target counted twice, none lost.
func TestRunResumeTallies(t *testing.T) {
	ctx := context.Background()
	sp := newSpace(t, "127.0.41.0/26", "104,4242,11112,5,6")
	all := shardTargets(sp, 0, 1)
	wantT, wantStored := wantTallies(all)
	st := &tallyStore{Store: openStore(t), t: t, stored: make(map[targets.Target]bool)}
	it := sp.Order(7, 0, 1)
	for tg, pos, ok := it.Next(); ok; tg, pos, ok = it.Next() {
		st.order, st.pos = append(st.order, tg), append(st.pos, pos)
	}
	id := createScan(t, st, it.Len()).ID
	var cutShort atomic.Int64
	for run, cancelAfter := range []int64{30, 45, 60, 0} {
		sc, err := st.Scan(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		var started atomic.Int64
		p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
			if cancelAfter > 0 && started.Add(1) == cancelAfter {
				cancel()
			}
			select {
			case <-time.After(time.Duration(tg.Addr.As16()[15]%4) * time.Millisecond):
				return tallyResult(tg)
			case <-ctx.Done():
				cutShort.Add(1)
				return probe.Result{Status: probe.StatusFiltered} // would be counted wrongly
			}
		})
		_, err = scan.Run(runCtx, st, sc, sp.Order(7, 0, 1), p, scan.Config{Concurrency: 12, BatchSize: 5, FlushInterval: 2 * time.Millisecond})
		cancel()
		if cancelAfter > 0 && err == nil {
			t.Fatalf("run %d: not interrupted", run)
		}
		if cancelAfter == 0 && err != nil {
			t.Fatalf("last run: %v", err)
		}
	}
	got, err := st.Scan(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Finished.IsZero() || !got.Progress.Equal(store.Progress{Done: got.Progress.Done, Tallies: wantT}) {
		t.Errorf("after the resumed runs: finished %v, tallies %+v, want %+v", !got.Finished.IsZero(), got.Progress.Tallies, wantT)
	}
	if len(st.stored) != len(wantStored) {
		t.Errorf("stored %d targets, want %d", len(st.stored), len(wantStored))
	}
	for tg := range wantStored {
		if !st.stored[tg] {
			t.Errorf("%v not stored", tg)
		}
	}
	if cutShort.Load() == 0 {
		t.Error("no probe was cut short: the test did not test dropping them")
	}
}
