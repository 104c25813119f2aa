package report_test

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

// accessible is an open port at level query with n studies.
func accessible(ip string, port uint16, n int64) probe.Result {
	return probe.Result{IP: netip.MustParseAddr(ip), Port: port, Status: probe.StatusOpen,
		DICOM:    &probe.DICOM{Association: probe.AssociationAccepted},
		Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: n, StudiesExact: true}}
}

// shardedStore holds scan a (unsharded, finished, 100 studies), the two shards b0 and b1 of
// run "b" (b1 unfinished when finished is false), and scan c (finished, 300 studies). Host
// 127.0.0.1 has port 104 in shard 0 (echo) and port 11112 in shard 1 (query, 40 studies); host
// 127.0.0.2 is in shard 0 only (query, 60 studies).
func shardedStore(finished bool) *memStore {
	st := newMemStore()
	st.put("a", accessible("127.0.0.1", 104, 100))
	st.create("b0", "b", "0/2", true)
	st.create("b1", "b", "1/2", finished)
	echo := accessible("127.0.0.1", 104, 0)
	echo.Exposure = &probe.Exposure{Level: probe.LevelEcho}
	st.put("b0", echo, accessible("127.0.0.2", 104, 60))
	st.put("b1", accessible("127.0.0.1", 11112, 40))
	st.put("c", accessible("127.0.0.1", 104, 300))
	return st
}

// TestShardedCompare: a run of two shards with one unfinished is skipped by the default
// comparison and refused as --compare; once both shards finished, it is compared.
func TestShardedCompare(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		finished    bool
		opt         report.Options
		wantScan    string
		wantCompare string
	}{
		{"latest, one shard unfinished", false, report.Options{}, "c", "a"},
		{"latest, both shards finished", true, report.Options{}, "c", "b0"},
		{"the run by its unfinished shard", false, report.Options{Scan: "b1"}, "b0", "a"},
		{"the run by its finished shard", true, report.Options{Scan: "b0"}, "b0", "a"},
		{"compare by the other shard", true, report.Options{Compare: "b1"}, "c", "b0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := report.Build(ctx, shardedStore(tc.finished), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if r.Compare != nil {
				got = r.Compare.ID
			}
			if r.Scan.ID != tc.wantScan || got != tc.wantCompare {
				t.Errorf("scan %s compared with %q, want %s with %q", r.Scan.ID, got, tc.wantScan, tc.wantCompare)
			}
		})
	}
	_, err := report.Build(ctx, shardedStore(false), report.Options{Compare: "b0"})
	if err == nil || !strings.Contains(err.Error(), `scan "b0" is not finished`) {
		t.Errorf("--compare of a run with an unfinished shard: %v, want it refused", err)
	}
	_, err = report.Build(ctx, shardedStore(true), report.Options{Scan: "b0", Compare: "b1"})
	if err == nil || !strings.Contains(err.Error(), "compared with itself") {
		t.Errorf("a run compared with its own shard: %v, want it refused", err)
	}
}

// TestShardedFold: a report over a run folds its shards together: a host whose ports fall in
// two shards counts once, with its best port; the run's info says how many shards finished.
func TestShardedFold(t *testing.T) {
	r, err := report.Build(context.Background(), shardedStore(false), report.Options{Scan: "b1", Compare: report.NoCompare})
	if err != nil {
		t.Fatal(err)
	}
	want := report.Metrics{SystemsFound: 2, SystemsAccessible: 2, Studies: 100}
	if r.Total.Metrics != want || r.Scan.Hosts != 2 {
		t.Errorf("run b: %+v over %d hosts, want %+v over 2", r.Total.Metrics, r.Scan.Hosts, want)
	}
	if r.Scan.Shards != 2 || r.Scan.ShardsFinished != 1 || !r.Scan.Finished.IsZero() || r.Scan.Name != "b" {
		t.Errorf("run b: %+v, want 2 shards, 1 finished, unfinished, named b", r.Scan)
	}
	if len(r.Trend) != 3 || r.Trend[1].Scan != "b0" || r.Trend[1].Metrics != want {
		t.Errorf("trend %+v, want 3 runs, the second b0 with %+v", r.Trend, want)
	}
	var md strings.Builder
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "not finished (2 shards, 1 finished)") {
		t.Errorf("Markdown does not say how many shards finished:\n%s", md.String())
	}
	// The trend point of a run not reported comes from the store's figures: the same.
	r, err = report.Build(context.Background(), shardedStore(false), report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Trend) != 3 || r.Trend[1].Metrics != want {
		t.Errorf("trend %+v, want the second run with %+v", r.Trend, want)
	}
}

// TestShardedDiff: diff takes a scan with the other shards of its run.
func TestShardedDiff(t *testing.T) {
	var changes []report.Change
	sum, err := report.Diff(context.Background(), shardedStore(true), "a", "b1", report.Options{}, func(c report.Change) error {
		changes = append(changes, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.New.ID != "b0" || sum.Counts.Appeared != 1 || sum.Counts.Shrank != 1 || len(changes) != 2 {
		t.Errorf("diff a → b: new %s, counts %+v; want run b0, .2 appeared and .1 shrank (100 → 40)", sum.New.ID, sum.Counts)
	}
}

// TestTrendMatchesFold: for random runs, sharded and not, the trend point of every run (the
// store's Systems) equals the total a report of that run folds from its results, on the
// memory store and on SQLite.
func TestTrendMatchesFold(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	stores := map[string]store.Store{"memstore": newMemStore(), "sqlite": trendStore(t, 0, 0)}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			fillRuns(t, st, rng)
			all, err := report.Build(ctx, st, report.Options{Compare: report.NoCompare})
			if err != nil {
				t.Fatal(err)
			}
			if len(all.Trend) != 4 {
				t.Fatalf("%d runs, want 4", len(all.Trend))
			}
			for _, p := range all.Trend {
				r, err := report.Build(ctx, st, report.Options{Scan: p.Scan, Compare: report.NoCompare})
				if err != nil {
					t.Fatal(err)
				}
				if r.Total.Metrics != p.Metrics || r.Total.SystemsFound == 0 {
					t.Errorf("run %s: trend %+v, folded %+v", p.Scan, p.Metrics, r.Total.Metrics)
				}
			}
		})
	}
}

// fillRuns stores an unsharded scan, a run of three shards, and two unsharded scans, with
// random results; a run's shards split one set of host:port pairs.
func fillRuns(t *testing.T, st store.Store, rng *rand.Rand) {
	ctx := context.Background()
	for i, shards := range []string{"", "0/3 1/3 2/3", "", ""} {
		names := strings.Fields(shards)
		if len(names) == 0 {
			names = []string{""}
		}
		var ids []string
		for j, shard := range names {
			start := time.Date(2026, 1, 1+i, j, 0, 0, 0, time.UTC)
			sc, err := st.CreateScan(ctx, store.Scan{Name: "run", Seed: uint64(i), Shard: shard, Started: start, Finished: start.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, sc.ID)
		}
		batches := make([][]probe.Result, len(ids))
		for _, r := range manyResults("", 3000, rng) {
			j := rng.IntN(len(ids))
			r.ScanID = ids[j]
			batches[j] = append(batches[j], r)
		}
		for j, id := range ids {
			if err := st.PutResults(ctx, id, batches[j], store.Progress{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
