package storetest

// Many writers on one run (issue 13, SPEC "many machines"): the shards of a run written at
// once through as many handles as there are shard processes, one of them killed and re-run.

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// shardTargets returns shard i's results: n targets of its own, every tenth one open.
func shardTargets(scanID string, i, n int) []probe.Result {
	rs := make([]probe.Result, n)
	for j := range rs {
		status := probe.StatusClosed
		if j%10 == 0 {
			status = probe.StatusOpen
		}
		rs[j] = result(scanID, fmt.Sprintf("127.%d.%d.%d", i+1, j/250, j%250+1), uint16(104+j%3), status)
	}
	return rs
}

// writeShard stores rs[from:to] in batches, each with its checkpoint.
func writeShard(ctx context.Context, s store.Store, id string, rs []probe.Result, from, to, batch int) error {
	for b := from; b < to; b += batch {
		end := min(b+batch, to)
		if err := s.PutResults(ctx, id, rs[b:end], store.Progress{Done: uint64(end)}); err != nil {
			return err
		}
	}
	return nil
}

func testShardWriters(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	const shards, perShard, batch, killed, killedAfter = 4, 300, 25, 2, 5 * 25
	handles := make([]store.Store, shards)
	for i := range handles {
		handles[i] = mustOpen(t, open) // one per shard process, all open at once
	}

	// Every shard process at once: its own scan, lease, results and checkpoints.
	ids := make([]string, shards)
	var wg sync.WaitGroup
	for i, s := range handles {
		wg.Go(func() {
			sc, err := s.CreateScan(ctx, shardScan("many", fmt.Sprintf("%d/%d", i, shards), 0))
			if err != nil {
				t.Errorf("shard %d: CreateScan: %v", i, err)
				return
			}
			ids[i] = sc.ID
			if _, err := s.AcquireLease(ctx, sc.ID, lease(fmt.Sprint("pod-", i), time.Now().Add(time.Hour)), nil); err != nil {
				t.Errorf("shard %d: AcquireLease: %v", i, err)
				return
			}
			rs := shardTargets(sc.ID, i, perShard)
			to := perShard
			if i == killed {
				to = killedAfter // killed here: no finish, its lease left behind
			}
			if err := writeShard(ctx, s, sc.ID, rs, 0, to, batch); err != nil {
				t.Errorf("shard %d: PutResults: %v", i, err)
				return
			}
			if i != killed {
				if err := s.FinishScan(ctx, sc.ID, t0.Add(time.Hour)); err != nil {
					t.Errorf("shard %d: FinishScan: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	g := regroup(t, handles[0])
	if len(g) != 1 || len(g[0].Scans) != shards || g[0].Finished() || g[0].ShardsFinished() != shards-1 {
		t.Fatalf("before the re-run: %d groups, want one of %d scans with %d finished", len(g), shards, shards-1)
	}

	// The killed shard's pod restarts: it finds its own scan and checkpoint, takes over the
	// lease of the process that died, and goes on from the checkpoint, probing again the batch
	// before it (a crash may fall between a probe and its batch's commit).
	again := mustOpen(t, open)
	sc, err := store.Unfinished(ctx, again, fmt.Sprintf("%d/%d", killed, shards))
	if err != nil || sc.ID != ids[killed] || sc.Progress.Done != killedAfter {
		t.Fatalf("Unfinished(shard %d) = %s at %d, %v; want %s at %d", killed, sc.ID, sc.Progress.Done, err, ids[killed], killedAfter)
	}
	gone := func(l store.Lease) bool { return l.Holder == fmt.Sprint("pod-", killed) }
	if _, err := again.AcquireLease(ctx, sc.ID, lease("pod-restarted", time.Now().Add(time.Hour)), gone); err != nil {
		t.Fatalf("re-run: AcquireLease: %v", err)
	}
	if _, err := handles[0].AcquireLease(ctx, sc.ID, lease("pod-0", time.Now().Add(time.Hour)), nil); err == nil {
		t.Error("another shard's process took the re-run's lease")
	}
	rs := shardTargets(sc.ID, killed, perShard)
	if err := writeShard(ctx, again, sc.ID, rs, killedAfter-batch, perShard, batch); err != nil {
		t.Fatalf("re-run: PutResults: %v", err)
	}
	if err := again.FinishScan(ctx, sc.ID, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}

	// One finished run; every target once, in order; totals over the shards.
	checkRun(t, handles, ids, shards*perShard, perShard)
}

// checkRun checks the run the shard writers wrote: one finished group, each of its total
// targets once and in order in the merged stream, each shard's summary, and its systems.
func checkRun(t *testing.T, handles []store.Store, ids []string, total, perShard int) {
	ctx := context.Background()
	g := regroup(t, handles[1])
	if len(g) != 1 || !g[0].Finished() {
		t.Fatalf("after the re-run: %d groups, the first finished %v; want one finished", len(g), len(g) > 0 && g[0].Finished())
	}
	var all []probe.Result
	var last netip.AddrPort
	err := store.MergeResults(ctx, handles[3], g[0].IDs(), func(r probe.Result) error {
		k := netip.AddrPortFrom(r.IP, r.Port)
		if len(all) > 0 && k.Compare(last) <= 0 {
			return fmt.Errorf("%v after %v: out of order or twice", k, last)
		}
		last = k
		all = append(all, r)
		return nil
	})
	if err != nil || len(all) != total {
		t.Fatalf("MergeResults: %d results, %v; want %d, each once", len(all), err, total)
	}
	for i, id := range ids {
		sum, err := handles[i].Summary(ctx, id)
		if err != nil || sum.Results != uint64(perShard) || sum.Open != uint64(perShard/10) {
			t.Errorf("shard %d: Summary = %+v, %v; want %d results, %d open", i, sum, err, perShard, perShard/10)
		}
	}
	if got, want := mustSystems(t, handles[2], g[0].IDs()), store.SystemsOf(all); got != want {
		t.Errorf("Systems of the run = %+v, want %+v", got, want)
	}
}

func mustSystems(t *testing.T, s store.Reader, ids []string) store.Systems {
	t.Helper()
	v, err := s.Systems(context.Background(), ids...)
	if err != nil {
		t.Fatalf("Systems: %v", err)
	}
	return v
}
