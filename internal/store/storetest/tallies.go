package storetest

import (
	"context"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// testTallies: Progress.Tallies are stored with the checkpoint, replaced by the next, read back
// by Scan, Scans and LatestScan, left alone by a failed batch, summed by Summary (Probed), and
// kept apart per scan.
func testTallies(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	other := createScan(t, s, newScan())

	check := func(what string, want store.Progress) {
		t.Helper()
		got, err := s.Scan(ctx, sc.ID)
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		if !got.Progress.Equal(want) {
			t.Errorf("%s: Progress = %+v, want %+v", what, got.Progress, want)
		}
		all, err := s.Scans(ctx)
		if err != nil {
			t.Fatalf("Scans: %v", err)
		}
		for _, a := range all {
			if a.ID == sc.ID && !a.Progress.Equal(want) {
				t.Errorf("%s: Scans gives Progress %+v, want %+v", what, a.Progress, want)
			}
			if a.ID == other.ID && len(a.Progress.Tallies) != 0 {
				t.Errorf("%s: the other scan has tallies %+v", what, a.Progress.Tallies)
			}
		}
	}

	first := store.Progress{Done: 40, Excluded: 3, Tallies: map[uint16]store.Tally{
		104:   {Closed: 20, Filtered: 5, Unreachable: 1, Excluded: 2},
		11112: {Closed: 8, Excluded: 1},
	}}
	rs := []probe.Result{result(sc.ID, "127.0.0.1", 104, probe.StatusOpen), result(sc.ID, "127.0.0.2", 104, probe.StatusError)}
	if err := s.PutResults(ctx, sc.ID, rs, first); err != nil {
		t.Fatalf("PutResults: %v", err)
	}
	check("first checkpoint", first)
	latest, err := s.LatestScan(ctx)
	if err != nil {
		t.Fatalf("LatestScan: %v", err)
	}
	if latest.ID == sc.ID && !latest.Progress.Equal(first) {
		t.Errorf("LatestScan gives Progress %+v, want %+v", latest.Progress, first)
	}
	sum, err := s.Summary(ctx, sc.ID)
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	if sum.Closed != 28 || sum.Filtered != 5 || sum.Unreachable != 1 || sum.Excluded != 3 || sum.Results != 2 || sum.Probed() != 36 {
		t.Errorf("Summary = %+v (probed %d), want closed 28, filtered 5, unreachable 1, excluded 3, results 2, probed 36", sum, sum.Probed())
	}

	// A failed batch leaves the tallies as they were.
	bad := result(sc.ID, "127.0.0.3", 104, probe.StatusOpen)
	bad.Status = 0
	next := store.Progress{Done: 50, Excluded: 3, Tallies: map[uint16]store.Tally{104: {Closed: 99}}}
	if err := s.PutResults(ctx, sc.ID, []probe.Result{bad}, next); err == nil {
		t.Error("PutResults of a result without status = nil error")
	}
	check("after a failed batch", first)

	// The next checkpoint replaces them: a port it does not name has none left.
	if err := s.PutResults(ctx, sc.ID, nil, next); err != nil {
		t.Fatalf("PutResults: %v", err)
	}
	check("second checkpoint", next)
	if sum, err := s.Summary(ctx, other.ID); err != nil || sum.Probed() != 0 {
		t.Errorf("other scan's Summary = %+v, %v, want nothing probed", sum, err)
	}

	// A checkpoint without tallies clears them.
	if err := s.PutResults(ctx, sc.ID, nil, store.Progress{Done: 51, Excluded: 3}); err != nil {
		t.Fatalf("PutResults: %v", err)
	}
	check("checkpoint without tallies", store.Progress{Done: 51, Excluded: 3})
}
