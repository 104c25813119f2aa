package storetest

// Tests of a store's durability and load: reopening, large batches,
// concurrent writers and readers.

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

func testReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	sc := createScan(t, s, newScan())
	rs := []probe.Result{result(sc.ID, "127.0.0.1", 104, probe.StatusOpen), result(sc.ID, "::1", 11112, probe.StatusClosed)}
	if err := s.PutResults(ctx, sc.ID, rs, store.Progress{Done: 2}); err != nil {
		t.Fatalf("PutResults: %v", err)
	}
	if err := s.FinishScan(ctx, sc.ID, t0.Add(time.Hour)); err != nil {
		t.Fatalf("FinishScan: %v", err)
	}
	secret, err := s.Secret(ctx)
	if err != nil {
		t.Fatalf("Secret: %v", err)
	}
	wantScan, err := s.Scan(ctx, sc.ID)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	closed = true
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = mustOpen(t, open)
	got, err := s.Secret(ctx)
	if err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Secret after reopen = %x, %v, want %x", got, err, secret)
	}
	gotScan, err := s.Scan(ctx, sc.ID)
	if err != nil {
		t.Fatalf("Scan after reopen: %v", err)
	}
	if d := diffScan(gotScan, wantScan); d != "" {
		t.Errorf("Scan after reopen = %s", d)
	}
	equalResults(t, readResults(t, s, sc.ID), rs)
}

func testLargeBatch(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	const n = 10_000
	rs := make([]probe.Result, 0, n)
	for i := range n {
		// Descending, so that the store has to order them.
		j := n - 1 - i
		status := probe.StatusClosed
		if j%100 == 0 {
			status = probe.StatusOpen
		}
		rs = append(rs, result(sc.ID, fmt.Sprintf("127.1.%d.%d", j/250, j%250+1), 104, status))
	}
	if err := s.PutResults(ctx, sc.ID, rs, store.Progress{Done: n}); err != nil {
		t.Fatalf("PutResults(%d): %v", n, err)
	}
	got := readResults(t, s, sc.ID)
	if len(got) != n {
		t.Fatalf("Results gave %d, want %d", len(got), n)
	}
	for i := range got {
		if w := rs[n-1-i]; got[i].IP != w.IP || got[i].Status != w.Status {
			t.Fatalf("result %d = %v %v, want %v %v", i, got[i].IP, got[i].Status, w.IP, w.Status)
		}
	}
	if done := readDone(t, s, sc.ID); len(done) != n {
		t.Errorf("Done gave %d, want %d", len(done), n)
	}
}

func testConcurrent(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	const writers, batches, batch = 4, 5, 50
	ids := make([]string, writers)
	for i := range ids {
		ids[i] = createScan(t, s, newScan()).ID
	}
	var wg sync.WaitGroup
	for w, id := range ids {
		wg.Go(func() {
			for b := range batches {
				rs := make([]probe.Result, batch)
				for i := range rs {
					rs[i] = result(id, fmt.Sprintf("127.%d.%d.%d", w, b, i+1), 104, probe.StatusClosed)
				}
				if err := s.PutResults(ctx, id, rs, store.Progress{Done: uint64((b + 1) * batch)}); err != nil {
					t.Errorf("PutResults(%q): %v", id, err)
					return
				}
			}
		})
		wg.Go(func() { // a reader alongside, as report or serve would be
			for range batches {
				if err := s.Results(ctx, id, func(probe.Result) error { return nil }); err != nil {
					t.Errorf("Results(%q): %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if got := readResults(t, s, id); len(got) != batches*batch {
			t.Errorf("scan %q has %d results, want %d", id, len(got), batches*batch)
		}
		if sc, err := s.Scan(ctx, id); err != nil || sc.Progress.Done != batches*batch {
			t.Errorf("scan %q Progress = %+v, %v, want Done %d", id, sc.Progress, err, batches*batch)
		}
	}
}
