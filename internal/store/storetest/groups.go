package storetest

// Tests of what issue 11 point 4 added to the store: shard groups read through a backend, the
// merged stream of a group's results, and per-system figures (Systems).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// shardScan is a scan of run name (seed 7) with the given shard, started at t0 plus n hours.
func shardScan(name, shard string, n int) store.Scan {
	sc := newScan()
	sc.Name, sc.Shard, sc.Seed, sc.Started = name, shard, 7, t0.Add(time.Duration(n)*time.Hour)
	return sc
}

func testGroups(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)

	plain := newScan()
	plain.Shard = ""
	plain.Started = t0
	a := createScan(t, s, plain)
	b0 := createScan(t, s, shardScan("run", "0/2", 1))
	b1 := createScan(t, s, shardScan("run", "1/2", 2))
	c1 := createScan(t, s, shardScan("run", "1/2", 3)) // the next run: shard 1 of b is taken
	c0 := createScan(t, s, shardScan("run", "0/2", 4))
	other := shardScan("run", "0/2", 5)
	other.Seed = 8 // another key
	d := createScan(t, s, other)
	bad := createScan(t, s, shardScan("run", "2/2", 6)) // not I/N with I < N: a group of its own

	scans, err := s.Scans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups := store.Groups(scans)
	var got [][]string
	for _, g := range groups {
		got = append(got, g.IDs())
	}
	want := [][]string{{a.ID}, {b0.ID, b1.ID}, {c1.ID, c0.ID}, {d.ID}, {bad.ID}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Groups = %v, want %v", got, want)
	}
	if k := groups[1].Key; k != (store.GroupKey{Name: "run", Seed: 7, Shards: 2}) || groups[0].Key.Shards != 1 || groups[4].Key.Shards != 1 {
		t.Errorf("keys %+v, %+v, %+v; want run/7/2, and 1 shard for the unsharded and the malformed", k, groups[0].Key, groups[4].Key)
	}
	if i, ok := store.GroupOf(groups, c0.ID); !ok || i != 2 {
		t.Errorf("GroupOf(%s) = %d, %v, want 2", c0.ID, i, ok)
	}
	if _, ok := store.GroupOf(groups, "no-such-scan"); ok {
		t.Error("GroupOf an unknown scan found one")
	}

	// A group is finished when all its shards are.
	if err := s.FinishScan(ctx, b1.ID, t0.Add(9*time.Hour)); err != nil {
		t.Fatal(err)
	}
	g := regroup(t, s)[1]
	if g.Finished() || !g.FinishedAt().IsZero() || g.ShardsFinished() != 1 {
		t.Errorf("one shard of two finished: Finished %v at %v, %d shards finished", g.Finished(), g.FinishedAt(), g.ShardsFinished())
	}
	if err := s.FinishScan(ctx, b0.ID, t0.Add(8*time.Hour)); err != nil {
		t.Fatal(err)
	}
	g = regroup(t, s)[1]
	if !g.Finished() || !g.FinishedAt().Equal(t0.Add(9*time.Hour)) || !g.Started().Equal(b0.Started) || g.Total() != b0.Total+b1.Total {
		t.Errorf("both shards finished: Finished %v at %v, started %v, total %d", g.Finished(), g.FinishedAt(), g.Started(), g.Total())
	}
	if sc, ok := g.Shard(1); !ok || sc.ID != b1.ID {
		t.Errorf("Shard(1) = %s, %v, want %s", sc.ID, ok, b1.ID)
	}

	// The unfinished scan to resume: the latest, or the latest of the shard asked for.
	for _, tc := range []struct{ shard, want string }{{"", bad.ID}, {"1/2", c1.ID}, {"0/2", d.ID}, {"0/3", ""}} {
		sc, err := store.Unfinished(ctx, s, tc.shard)
		switch {
		case tc.want == "" && !errors.Is(err, store.ErrNotFound):
			t.Errorf("Unfinished(%q) = %s, %v, want ErrNotFound", tc.shard, sc.ID, err)
		case tc.want != "" && (err != nil || sc.ID != tc.want):
			t.Errorf("Unfinished(%q) = %s, %v, want %s", tc.shard, sc.ID, err, tc.want)
		}
	}
}

// regroup reads the store's scans and groups them.
func regroup(t *testing.T, s store.Reader) []store.Group {
	t.Helper()
	scans, err := s.Scans(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return store.Groups(scans)
}

func testMergeResults(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	s0 := createScan(t, s, shardScan("run", "0/3", 0))
	s1 := createScan(t, s, shardScan("run", "1/3", 1))
	s2 := createScan(t, s, shardScan("run", "2/3", 2)) // empty
	put := func(id string, addrs ...string) {
		var rs []probe.Result
		for _, a := range addrs {
			ap := netip.MustParseAddrPort(a)
			rs = append(rs, result(id, ap.Addr().String(), ap.Port(), probe.StatusOpen))
		}
		if err := s.PutResults(ctx, id, rs, store.Progress{Done: uint64(len(rs))}); err != nil {
			t.Fatal(err)
		}
	}
	put(s0.ID, "127.0.0.1:104", "127.0.0.3:104", "[::1]:104", "127.0.0.10:4242")
	put(s1.ID, "127.0.0.1:11112", "127.0.0.2:104", "127.0.0.10:104")

	var got []string
	err := store.MergeResults(ctx, s, []string{s0.ID, s1.ID, s2.ID}, func(r probe.Result) error {
		got = append(got, netip.AddrPortFrom(r.IP, r.Port).String()+"@"+r.ScanID)
		return nil
	})
	want := []string{"127.0.0.1:104@" + s0.ID, "127.0.0.1:11112@" + s1.ID, "127.0.0.2:104@" + s1.ID,
		"127.0.0.3:104@" + s0.ID, "127.0.0.10:104@" + s1.ID, "127.0.0.10:4242@" + s0.ID, "[::1]:104@" + s0.ID}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("MergeResults = %v, %v\nwant %v", got, err, want)
	}

	stop := errors.New("stop here")
	calls := 0
	err = store.MergeResults(ctx, s, []string{s0.ID, s1.ID}, func(probe.Result) error {
		if calls++; calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("MergeResults with fn failing on call 3: %v after %d calls", err, calls)
	}
	err = store.MergeResults(ctx, s, []string{s0.ID, "no-such-scan"}, func(probe.Result) error { return nil })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("MergeResults with an unknown scan: %v, want ErrNotFound", err)
	}
}

// port returns an open DICOM port at level l, with studies and instances, retrieve r.
func port(scanID, ip string, p uint16, l probe.Level, studies, instances int64, r probe.Retrieve) probe.Result {
	res := result(scanID, ip, p, probe.StatusOpen)
	res.Exposure = &probe.Exposure{Level: l, Studies: studies, Instances: instances, StudiesExact: true, Retrieve: r}
	if l == probe.LevelProtected {
		res.DICOM.Association = probe.AssociationRejected
	}
	return res
}

func testSystems(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	s0 := createScan(t, s, shardScan("run", "0/2", 0))
	s1 := createScan(t, s, shardScan("run", "1/2", 1))
	empty := createScan(t, s, newScan())

	honeypot := port(s0.ID, "127.0.0.5", 104, probe.LevelRetrieve, 1000, 1000, probe.RetrieveVerified)
	honeypot.DICOM.Honeypot = true
	rs0 := []probe.Result{
		// .1: its ports straddle the shards; 11112 (shard 1) represents it.
		port(s0.ID, "127.0.0.1", 104, probe.LevelEcho, 0, 0, probe.RetrieveUntested),
		// .2: same level, more studies wins.
		port(s0.ID, "127.0.0.2", 104, probe.LevelQuery, 5, 50, probe.RetrieveRefused),
		port(s0.ID, "127.0.0.2", 4242, probe.LevelQuery, 7, 10, probe.RetrieveRefused),
		// .3: a tie on level, studies and instances goes to the lower port (retrieve refused).
		port(s0.ID, "127.0.0.3", 104, probe.LevelQuery, 3, 30, probe.RetrieveRefused),
		port(s0.ID, "127.0.0.3", 4242, probe.LevelQuery, 3, 30, probe.RetrieveAccepted),
		// .4: found, not accessible. .5: a honeypot only: left out. .6: not DICOM.
		port(s0.ID, "127.0.0.4", 104, probe.LevelProtected, 0, 0, probe.RetrieveUntested),
		honeypot,
		port(s0.ID, "127.0.0.6", 80, probe.LevelNotDICOM, 0, 0, probe.RetrieveUntested),
		result(s0.ID, "127.0.0.7", 104, probe.StatusClosed),
		// .8: claims beyond any total saturate.
		port(s0.ID, "127.0.0.8", 104, probe.LevelRetrieve, math.MaxInt64, math.MaxInt64-1, probe.RetrieveUntested),
	}
	rs1 := []probe.Result{
		port(s1.ID, "127.0.0.1", 11112, probe.LevelQuery, 2, 20, probe.RetrieveAccepted),
		port(s1.ID, "127.0.0.9", 104, probe.LevelRetrieve, 11, 110, probe.RetrieveUntested),
		port(s1.ID, "::1", 104, probe.LevelQuery, 1, 1, probe.RetrieveVerified),
	}
	for id, rs := range map[string][]probe.Result{s0.ID: rs0, s1.ID: rs1} {
		if err := s.PutResults(ctx, id, rs, store.Progress{Done: uint64(len(rs))}); err != nil {
			t.Fatal(err)
		}
	}

	check := func(name string, ids []string, want store.Systems) {
		t.Helper()
		got, err := s.Systems(ctx, ids...)
		if err != nil || got != want {
			t.Errorf("%s: Systems = %+v, %v\nwant %+v", name, got, err, want)
		}
		var rs []probe.Result
		for _, id := range ids {
			rs = append(rs, readResults(t, s, id)...)
		}
		if ref := store.SystemsOf(rs); ref != want {
			t.Errorf("%s: SystemsOf = %+v\nwant %+v", name, ref, want)
		}
	}
	check("no scan", nil, store.Systems{})
	check("empty scan", []string{empty.ID}, store.Systems{})
	check("shard 1", []string{s1.ID}, store.Systems{Found: 3, Accessible: 3, Studies: 14, Images: 131,
		StudiesImageAccess: 14, ImagesAccessible: 131})
	check("both shards", []string{s0.ID, s1.ID}, store.Systems{
		Found: 7, Accessible: 6,
		Studies: math.MaxInt64, Images: math.MaxInt64, // .8 saturates; the rest: 2+7+3+11+1 studies
		StudiesImageAccess: math.MaxInt64, ImagesAccessible: math.MaxInt64,
	})
	// Without .8: exact sums. .1 (2 studies, accepted), .2 (7, refused), .3 (3, refused at port
	// 104), .9 (11, level retrieve), ::1 (1, verified).
	again := port(s0.ID, "127.0.0.8", 104, probe.LevelProtected, 0, 0, probe.RetrieveUntested)
	if err := s.PutResults(ctx, s0.ID, []probe.Result{again}, store.Progress{Done: 10}); err != nil {
		t.Fatal(err)
	}
	check("both shards, .8 protected", []string{s1.ID, s0.ID}, store.Systems{
		Found: 7, Accessible: 5, Studies: 2 + 7 + 3 + 11 + 1, Images: 20 + 10 + 30 + 110 + 1,
		StudiesImageAccess: 2 + 11 + 1, ImagesAccessible: 20 + 110 + 1,
	})
	if _, err := s.Systems(ctx, s0.ID, "no-such-scan"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Systems with an unknown scan: %v, want ErrNotFound", err)
	}
}
