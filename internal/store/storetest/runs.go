package storetest

// Tests of what issue 10 ("Trustworthy runs") added to the store: the scan's
// target-space digest and exclusions, the excluded count of the checkpoint,
// leases and whole-scan summaries.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

func testSpaceFields(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})

	in := newScan()
	in.SpaceDigest = "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	in.Exclusions = []string{"127.0.0.128/25", "::1", "# opt-out 2026-11-02"}
	a := createScan(t, s, in)
	if a.SpaceDigest != in.SpaceDigest || !slices.Equal(a.Exclusions, in.Exclusions) {
		t.Errorf("CreateScan returned digest %q, exclusions %q, want %q, %q", a.SpaceDigest, a.Exclusions, in.SpaceDigest, in.Exclusions)
	}
	plain := newScan()
	plain.Exclusions = []string{} // empty reads back as nil
	b := createScan(t, s, plain)
	if b.Exclusions != nil {
		t.Errorf("CreateScan with empty exclusions returned %#v, want nil", b.Exclusions)
	}

	check := func(when string, s store.Store) {
		t.Helper()
		for _, want := range []store.Scan{a, b} {
			got, err := s.Scan(ctx, want.ID)
			if err != nil {
				t.Fatalf("%s: Scan(%q): %v", when, want.ID, err)
			}
			if d := diffScan(got, want); d != "" {
				t.Errorf("%s: Scan(%q) = %s", when, want.ID, d)
			}
		}
		list, err := s.Scans(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("%s: Scans = %d scans, %v, want 2", when, len(list), err)
		}
		for i, want := range []store.Scan{a, b} {
			if d := diffScan(list[i], want); d != "" {
				t.Errorf("%s: Scans()[%d] = %s", when, i, d)
			}
		}
		latest, err := s.LatestScan(ctx)
		if err != nil {
			t.Fatalf("%s: LatestScan: %v", when, err)
		}
		if d := diffScan(latest, b); d != "" {
			t.Errorf("%s: LatestScan = %s", when, d)
		}
	}
	check("same store", s)
	closed = true
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check("reopened", mustOpen(t, open))
}

func testExcluded(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	other := createScan(t, s, newScan())

	progress := func(id string) store.Progress {
		t.Helper()
		got, err := s.Scan(ctx, id)
		if err != nil {
			t.Fatalf("Scan(%q): %v", id, err)
		}
		return got.Progress
	}
	rs := []probe.Result{result(sc.ID, "127.0.0.1", 104, probe.StatusOpen)}
	want := store.Progress{Done: 7, Excluded: 5}
	if err := s.PutResults(ctx, sc.ID, rs, want); err != nil {
		t.Fatalf("PutResults: %v", err)
	}
	if got := progress(sc.ID); !got.Equal(want) {
		t.Errorf("Progress = %+v, want %+v", got, want)
	}
	if got := progress(other.ID); !got.Equal(store.Progress{}) {
		t.Errorf("other scan's Progress = %+v, want zero", got)
	}
	if sum, err := s.Summary(ctx, sc.ID); err != nil || sum.Excluded != want.Excluded {
		t.Errorf("Summary = %+v, %v, want Excluded %d", sum, err, want.Excluded)
	}

	// A failed batch moves neither count.
	bad := result(sc.ID, "127.0.0.2", 104, probe.StatusOpen)
	bad.Status = 0
	if err := s.PutResults(ctx, sc.ID, []probe.Result{bad}, store.Progress{Done: 9, Excluded: 6}); err == nil {
		t.Error("PutResults of a result without status = nil error")
	}
	if got := progress(sc.ID); !got.Equal(want) {
		t.Errorf("after a failed PutResults, Progress = %+v, want %+v", got, want)
	}

	// An empty batch moves the checkpoint, excluded count included.
	want = store.Progress{Done: 12, Excluded: 9}
	if err := s.PutResults(ctx, sc.ID, nil, want); err != nil {
		t.Fatalf("PutResults(nil): %v", err)
	}
	if got := progress(sc.ID); !got.Equal(want) {
		t.Errorf("after an empty batch, Progress = %+v, want %+v", got, want)
	}
}

// lease returns a lease of holder expiring at exp.
func lease(holder string, exp time.Time) store.Lease {
	return store.Lease{Holder: holder, Host: "scanner-" + holder, PID: 1000 + len(holder), Expires: exp}
}

func equalLease(a, b store.Lease) bool {
	return a.Holder == b.Holder && a.Host == b.Host && a.PID == b.PID && a.Expires.Equal(b.Expires)
}

func neverStale(t *testing.T) func(store.Lease) bool {
	return func(l store.Lease) bool {
		t.Errorf("stale(%+v) called, want no call", l)
		return false
	}
}

func testLease(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	other := createScan(t, s, newScan())
	later := time.Now().Add(time.Hour).In(time.FixedZone("CET", 3600))
	a, b, c := lease("a", later), lease("bb", later.Add(time.Minute)), lease("ccc", later.Add(2*time.Minute))

	acquire := func(l store.Lease, stale func(store.Lease) bool, wantHolder string) {
		t.Helper()
		got, err := s.AcquireLease(ctx, sc.ID, l, stale)
		switch {
		case wantHolder == l.Holder && err != nil:
			t.Fatalf("AcquireLease(%s): %v, want the lease", l.Holder, err)
		case wantHolder == l.Holder && (!equalLease(got, l) || got.Expires.Location() != time.UTC):
			t.Errorf("AcquireLease(%s) = %+v, want %+v in UTC", l.Holder, got, l)
		case wantHolder != l.Holder && !errors.Is(err, store.ErrLeased):
			t.Fatalf("AcquireLease(%s): err = %v, want ErrLeased", l.Holder, err)
		case wantHolder != l.Holder && got.Holder != wantHolder:
			t.Errorf("AcquireLease(%s) refused with current lease %+v, want %s's", l.Holder, got, wantHolder)
		}
	}

	acquire(a, neverStale(t), "a")
	// The lease is per scan.
	if _, err := s.AcquireLease(ctx, other.ID, b, neverStale(t)); err != nil {
		t.Errorf("AcquireLease of another scan: %v", err)
	}
	// Current and not stale: refused, whether stale is nil or says no.
	acquire(b, nil, "a")
	var asked []store.Lease
	acquire(b, func(l store.Lease) bool { asked = append(asked, l); return false }, "a")
	if len(asked) != 1 || !equalLease(asked[0], a) {
		t.Errorf("stale was asked about %+v, want once about %+v", asked, a)
	}
	got, _ := s.AcquireLease(ctx, sc.ID, b, nil)
	if !equalLease(got, a) {
		t.Errorf("refused AcquireLease returned %+v, want the current lease %+v", got, a)
	}

	// Re-acquiring one's own lease renews it, stale or not.
	a.Expires = later.Add(time.Hour)
	acquire(a, neverStale(t), "a")
	acquire(c, nil, "a")
	if got, _ := s.AcquireLease(ctx, sc.ID, c, nil); !got.Expires.Equal(a.Expires) {
		t.Errorf("after re-acquiring, the lease expires %v, want %v", got.Expires, a.Expires)
	}

	// A stale lease (its holder died) is taken over; its holder has lost it.
	acquire(b, func(store.Lease) bool { return true }, "bb")
	if err := s.RenewLease(ctx, sc.ID, "a", later); !errors.Is(err, store.ErrLeased) {
		t.Errorf("RenewLease by the previous holder: err = %v, want ErrLeased", err)
	}
	if err := s.ReleaseLease(ctx, sc.ID, "a"); err != nil {
		t.Errorf("ReleaseLease of a lease not held: %v, want nil", err)
	}
	acquire(c, nil, "bb") // releasing it did not end bb's lease

	// Renewing moves the expiry; an expired lease is taken without asking.
	if err := s.RenewLease(ctx, sc.ID, "bb", time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	acquire(c, neverStale(t), "ccc")
	if err := s.RenewLease(ctx, sc.ID, "ccc", later.Add(3*time.Hour)); err != nil {
		t.Errorf("RenewLease by the holder: %v", err)
	}
	c.Expires = later.Add(3 * time.Hour)
	acquire(a, nil, "ccc")
	if got, _ := s.AcquireLease(ctx, sc.ID, a, nil); !equalLease(got, c) {
		t.Errorf("after RenewLease, current lease = %+v, want %+v", got, c)
	}

	// Released, it is anyone's; renewing it then is refused.
	if err := s.ReleaseLease(ctx, sc.ID, "ccc"); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	if err := s.RenewLease(ctx, sc.ID, "ccc", later); !errors.Is(err, store.ErrLeased) {
		t.Errorf("RenewLease after ReleaseLease: err = %v, want ErrLeased", err)
	}
	acquire(a, neverStale(t), "a")
	if got, _ := s.AcquireLease(ctx, other.ID, c, nil); got.Holder != "bb" {
		t.Errorf("the other scan's lease is held by %q, want bb", got.Holder)
	}
}

func testLeaseNotFound(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	createScan(t, s, newScan())
	const id = "no-such-scan"
	_, acquireErr := s.AcquireLease(ctx, id, lease("a", time.Now().Add(time.Hour)), nil)
	_, summaryErr := s.Summary(ctx, id)
	for name, err := range map[string]error{
		"AcquireLease": acquireErr,
		"RenewLease":   s.RenewLease(ctx, id, "a", time.Now().Add(time.Hour)),
		"ReleaseLease": s.ReleaseLease(ctx, id, "a"),
		"Summary":      summaryErr,
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s(%q): err = %v, want ErrNotFound", name, id, err)
		}
	}
}

// testLeaseRace has processes (goroutines here; two stores on one database
// where a backend's tests can) race for one lease: exactly one wins.
func testLeaseRace(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	for round := range 5 {
		sc := createScan(t, s, newScan())
		const racers = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
			seen    = map[string]bool{}
		)
		for i := range racers {
			wg.Go(func() {
				l := lease(fmt.Sprint("racer-", i), time.Now().Add(time.Hour))
				got, err := s.AcquireLease(ctx, sc.ID, l, nil)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, l.Holder)
				case errors.Is(err, store.ErrLeased):
					seen[got.Holder] = true
				default:
					t.Errorf("round %d: AcquireLease(%s): %v", round, l.Holder, err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d racers got the lease (%v), want 1", round, len(winners), winners)
		}
		delete(seen, winners[0])
		if len(seen) > 0 {
			t.Errorf("round %d: losers saw leases of %v, want only the winner %s", round, seen, winners[0])
		}
	}
}

// summarize counts rs as scan.Stats does.
func summarize(rs []probe.Result, excluded uint64) store.Summary {
	sum := store.Summary{Excluded: excluded}
	for _, r := range rs {
		sum.Add(&r)
	}
	return sum
}

// variedResults returns results of every kind Summary tells apart.
func variedResults(scanID, prefix string) []probe.Result {
	open := result(scanID, prefix+".1", 104, probe.StatusOpen) // query
	retrieve := result(scanID, prefix+".2", 104, probe.StatusOpen)
	retrieve.Exposure.Level = probe.LevelRetrieve
	rejected := result(scanID, prefix+".3", 11112, probe.StatusOpen)
	rejected.DICOM.Association = probe.AssociationRejected
	rejected.Exposure = &probe.Exposure{Level: probe.LevelProtected}
	notDICOM := result(scanID, prefix+".4", 104, probe.StatusOpen)
	notDICOM.DICOM = &probe.DICOM{Association: probe.AssociationNone}
	notDICOM.Exposure = &probe.Exposure{Level: probe.LevelNotDICOM}
	echo := result(scanID, prefix+".5", 4242, probe.StatusOpen)
	echo.Exposure.Level = probe.LevelEcho
	failed := result(scanID, prefix+".6", 104, probe.StatusError)
	failed.Error = "read A-ASSOCIATE-AC: connection reset by peer"
	aborted := result(scanID, prefix+".7", 104, probe.StatusError)
	aborted.DICOM = &probe.DICOM{Association: probe.AssociationAborted}
	return []probe.Result{open, retrieve, rejected, notDICOM, echo, failed, aborted,
		result(scanID, prefix+".8", 104, probe.StatusClosed),
		result(scanID, prefix+".9", 104, probe.StatusFiltered)}
}

func testSummary(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	other := createScan(t, s, newScan())
	empty := createScan(t, s, newScan())

	check := func(when, id string, want store.Summary) {
		t.Helper()
		got, err := s.Summary(ctx, id)
		if err != nil {
			t.Fatalf("%s: Summary(%q): %v", when, id, err)
		}
		if got != want {
			t.Errorf("%s: Summary(%q) = %+v, want %+v", when, id, got, want)
		}
	}
	check("no results", empty.ID, store.Summary{})

	// The first run stores a batch and is interrupted.
	first := variedResults(sc.ID, "127.0.0")
	if err := s.PutResults(ctx, sc.ID, first, store.Progress{Done: 9, Excluded: 0}); err != nil {
		t.Fatalf("PutResults: %v", err)
	}
	if err := s.PutResults(ctx, other.ID, variedResults(other.ID, "127.0.9")[:2], store.Progress{Done: 2}); err != nil {
		t.Fatalf("PutResults(other): %v", err)
	}
	check("first run", sc.ID, summarize(first, 0))

	// The resumed run stores more, probes one target again (now closed)
	// and leaves two excluded targets alone: totals are the whole scan's.
	second := variedResults(sc.ID, "127.0.1")
	again := result(sc.ID, "127.0.0.1", 104, probe.StatusClosed)
	if err := s.PutResults(ctx, sc.ID, append(second, again), store.Progress{Done: 20, Excluded: 2}); err != nil {
		t.Fatalf("PutResults (resumed): %v", err)
	}
	want := summarize(readResults(t, s, sc.ID), 2)
	if want.Results != 18 || want.Open != 9 {
		t.Fatalf("fixture: %+v, want 18 results, 9 open", want)
	}
	check("resumed run", sc.ID, want)
	check("other scan", other.ID, summarize(variedResults(other.ID, "127.0.9")[:2], 0))
}
