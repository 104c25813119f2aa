package scan_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// feed sends hits on a channel and closes it.
func feed(hits []discover.Hit) <-chan discover.Hit {
	ch := make(chan discover.Hit)
	go func() {
		defer close(ch)
		for _, h := range hits {
			ch <- h
		}
	}()
	return ch
}

// TestRunHits: the hits of a discovery are probed once each, closed ones counted without a
// probe; a discovery that fails leaves the scan unfinished, and the next run (discovery again)
// probes only what is not stored, with the same tallies.
func TestRunHits(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	sc := createScan(t, st, 1000)
	hit := func(s string, closed bool) discover.Hit {
		return discover.Hit{Addr: netip.MustParseAddrPort(s), Closed: closed}
	}
	hits := []discover.Hit{
		hit("127.0.50.1:104", false), hit("127.0.50.2:104", false), hit("127.0.50.1:11112", false),
		hit("127.0.50.3:4242", true), hit("127.0.50.1:104", false), // a duplicate
		hit("127.0.50.4:104", true),
	}
	failed := errors.New("discover: zmap on port 104 failed: no such interface")

	// A run whose discovery fails after two hits.
	p := &counting{p: instant}
	_, err := scan.RunHits(ctx, st, sc, feed(hits[:2]), func() error { return failed }, p, scan.Config{Concurrency: 4})
	if !errors.Is(err, failed) {
		t.Fatalf("RunHits with a failed discovery = %v, want its error", err)
	}
	if got, _ := st.Scan(ctx, sc.ID); !got.Finished.IsZero() {
		t.Error("scan finished although discovery failed")
	}

	// The next run: discovery again, every hit.
	p2 := &counting{p: instant}
	stats, err := scan.RunHits(ctx, st, sc, feed(hits), func() error { return nil }, p2, scan.Config{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.calls) != 1 || p2.calls[targetOf("127.0.50.1:11112")] != 1 {
		t.Errorf("second run probed %v, want only 127.0.50.1:11112 (the rest stored or closed)", p2.calls)
	}
	if stats.Skipped != 2 || stats.Closed != 2 {
		t.Errorf("stats %+v: want 2 skipped (stored), 2 closed", stats)
	}
	got, err := st.Scan(ctx, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint16]store.Tally{4242: {Closed: 1}, 104: {Closed: 1}}
	if got.Finished.IsZero() || !got.Progress.Equal(store.Progress{Done: got.Progress.Done, Tallies: want}) {
		t.Errorf("finished %v, tallies %+v, want finished with %+v", !got.Finished.IsZero(), got.Progress.Tallies, want)
	}
	if n := len(storedJSON(t, st, sc.ID)); n != 3 {
		t.Errorf("%d results stored, want 3", n)
	}
}

func targetOf(s string) targets.Target {
	ap := netip.MustParseAddrPort(s)
	return targets.Target{Addr: ap.Addr(), Port: ap.Port()}
}
