package scan_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// exclStore checks, at every PutResults, the checkpoint's promise with exclusions: every
// position below it has a stored result or was left alone, and Progress.Excluded counts
// exactly those left alone. It keeps Progress.Excluded itself, so that Scan returns it whatever
// the backend stores.
type exclStore struct {
	store.Store
	t     testing.TB
	order []targets.Target // the shard's targets by position
	pos   []uint64         // their positions
	skip  func(targets.Target) bool

	mu       sync.Mutex
	stored   map[targets.Target]bool
	excluded uint64
	puts     int
}

func newExclStore(t testing.TB, st store.Store, it *targets.Iter, skip func(targets.Target) bool) *exclStore {
	s := &exclStore{Store: st, t: t, skip: skip, stored: make(map[targets.Target]bool)}
	for tg, pos, ok := it.Next(); ok; tg, pos, ok = it.Next() {
		s.order, s.pos = append(s.order, tg), append(s.pos, pos)
	}
	it.Seek(0)
	return s
}

func (s *exclStore) PutResults(ctx context.Context, id string, rs []probe.Result, p store.Progress) error {
	if err := s.Store.PutResults(ctx, id, rs, p); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	for _, r := range rs {
		tg := targets.Target{Addr: r.IP, Port: r.Port}
		if s.stored[tg] {
			s.t.Errorf("%v stored twice", tg)
		}
		s.stored[tg] = true
	}
	var left uint64
	for i, tg := range s.order {
		if s.pos[i] >= p.Done {
			break
		}
		if !s.stored[tg] {
			left++
			if !s.skip(tg) {
				s.t.Errorf("checkpoint %d passes %v, neither stored nor excluded", p.Done, tg)
			}
		}
	}
	if p.Excluded != left {
		s.t.Errorf("checkpoint %d: Excluded %d, want %d (targets below it left alone)", p.Done, p.Excluded, left)
	}
	if p.Excluded < s.excluded {
		s.t.Errorf("Excluded fell from %d to %d", s.excluded, p.Excluded)
	}
	s.excluded = p.Excluded
	return nil
}

func (s *exclStore) Scan(ctx context.Context, id string) (store.Scan, error) {
	sc, err := s.Store.Scan(ctx, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	sc.Progress.Excluded = s.excluded
	return sc, err
}

// excludedBy is an opt-out list: every address whose last byte is a multiple of 3.
func excludedBy(tg targets.Target) bool { return tg.Addr.As16()[15]%3 == 0 }

// TestRunExclude: excluded targets are never probed, get no result, and are counted.
func TestRunExclude(t *testing.T) {
	ctx := context.Background()
	sp := newSpace(t, "127.0.30.0/26", "104,4242,11112")
	all := shardTargets(sp, 0, 1)
	it := sp.Order(7, 0, 1)
	st := newExclStore(t, openStore(t), it, excludedBy)
	sc := createScan(t, st, it.Len())
	p := &counting{p: instant}
	stats, err := scan.Run(ctx, st, sc, it, p, scan.Config{Concurrency: 8, BatchSize: 7, Exclude: excludedBy, AllTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	var want []targets.Target
	var excluded uint64
	for _, tg := range all {
		if excludedBy(tg) {
			excluded++
		} else {
			want = append(want, tg)
		}
		if got := p.calls[tg]; got != 0 && excludedBy(tg) || got != 1 && !excludedBy(tg) {
			t.Errorf("%v probed %d times, excluded %v", tg, got, excludedBy(tg))
		}
	}
	if excluded == 0 || excluded == uint64(len(all)) {
		t.Fatalf("%d of %d excluded: the test needs both kinds", excluded, len(all))
	}
	if got := storedJSON(t, st, sc.ID); !slices.Equal(got, wantJSON(t, want)) {
		t.Errorf("stored %d results, want %d (the targets not excluded)", len(got), len(want))
	}
	if stats.Excluded != excluded || stats.Done != uint64(len(all)) {
		t.Errorf("stats: excluded %d, done %d; want %d, %d", stats.Excluded, stats.Done, excluded, len(all))
	}
	after, err := st.Scan(ctx, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Progress.Excluded != excluded || after.Finished.IsZero() {
		t.Errorf("stored progress %+v, finished %v; want %d excluded, finished", after.Progress, after.Finished, excluded)
	}
}

// TestRunExcludeResume: an exclusion that arrives mid-scan, with runs killed and resumed,
// neither loses nor double-counts a target: at every checkpoint Excluded counts exactly the
// targets below it left alone, and at the end every target is stored or excluded, once.
func TestRunExcludeResume(t *testing.T) {
	ctx := context.Background()
	sp := newSpace(t, "127.0.31.0/25", "104,4242,11112,1-5")
	all := shardTargets(sp, 0, 1)
	it := sp.Order(7, 0, 1)
	st := newExclStore(t, openStore(t), it, excludedBy)
	id := createScan(t, st, it.Len()).ID
	cancelAfter := []int64{60, 150, 90, 200} // probes started before each run but the last is killed
	probed := make(map[targets.Target]int)
	var mu sync.Mutex
	var stats scan.Stats
	for run := 0; run <= len(cancelAfter); run++ {
		sc, err := st.Scan(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		var started atomic.Int64
		p := proberFunc(func(ctx context.Context, tg targets.Target) probe.Result {
			if run < len(cancelAfter) && started.Add(1) == cancelAfter[run] {
				cancel()
			}
			select {
			case <-time.After(time.Duration(tg.Addr.As16()[15]%4) * time.Millisecond):
			case <-ctx.Done():
				return probe.Result{Status: probe.StatusFiltered, Error: "cut short"}
			}
			mu.Lock()
			probed[tg]++
			mu.Unlock()
			return resultFor(tg)
		})
		cfg := scan.Config{Concurrency: 12, BatchSize: 9, FlushInterval: 5 * time.Millisecond, AllTargets: true}
		if run > 0 { // the opt-out arrives after the first run
			cfg.Exclude = excludedBy
		}
		stats, err = scan.Run(runCtx, st, sc, sp.Order(7, 0, 1), p, cfg)
		cancel()
		switch last := run == len(cancelAfter); {
		case last && err != nil:
			t.Fatalf("run %d: %v", run, err)
		case !last && !errors.Is(err, context.Canceled):
			t.Fatalf("run %d: got %v, want context.Canceled", run, err)
		}
		if stats.Excluded != st.excluded {
			t.Errorf("run %d: stats say %d excluded, the store %d", run, stats.Excluded, st.excluded)
		}
	}
	var excluded uint64
	for _, tg := range all {
		switch {
		case st.stored[tg] && probed[tg] == 0:
			t.Errorf("%v stored, never probed", tg)
		case !st.stored[tg] && !excludedBy(tg):
			t.Errorf("%v neither stored nor excluded", tg)
		case !st.stored[tg]:
			excluded++
		}
	}
	if excluded == 0 || st.excluded != excluded || stats.Excluded != excluded || stats.Done != uint64(len(all)) {
		t.Errorf("excluded: store %d, stats %d, want %d (not 0); done %d of %d",
			st.excluded, stats.Excluded, excluded, stats.Done, len(all))
	}
	t.Logf("%d targets, %d excluded, %d stored, %d PutResults", len(all), excluded, len(st.stored), st.puts)
}
