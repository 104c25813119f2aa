package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// RunReader runs the reader's part of the suite. open is as for Run; openReader returns a
// Reader on the database that open made for the same t (a read-only handle, as report, diff and
// serve hold one). The Reader reads what the store wrote, and what it writes later; when it has
// the write methods too (a read-only store.Store), they fail with store.ErrReadOnly. RunReader
// closes every store it opens.
func RunReader(t *testing.T, open func(t *testing.T) store.Store, openReader func(t *testing.T) store.Reader) {
	t.Run("Reader", func(t *testing.T) { testReader(t, open, openReader) })
	t.Run("ReaderWrites", func(t *testing.T) { testReaderWrites(t, open, openReader) })
}

// mustOpenReader opens a reader and closes it when the test ends.
func mustOpenReader(t *testing.T, openReader func(t *testing.T) store.Reader) store.Reader {
	t.Helper()
	r := openReader(t)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// sameReads describes the first difference between what two readers read, or returns "".
func sameReads(t *testing.T, got, want store.Reader) string {
	ctx := context.Background()
	ws, err := want.Scans(ctx)
	if err != nil {
		t.Fatalf("Scans: %v", err)
	}
	gs, err := got.Scans(ctx)
	if err != nil {
		return fmt.Sprintf("Scans: %v", err)
	}
	if len(gs) != len(ws) {
		return fmt.Sprintf("%d scans, want %d", len(gs), len(ws))
	}
	for i, w := range ws {
		if d := diffScan(gs[i], w); d != "" {
			return fmt.Sprintf("scan %d: %s", i, d)
		}
		if d := sameScanReads(t, got, want, w.ID); d != "" {
			return fmt.Sprintf("scan %s: %s", w.ID, d)
		}
	}
	for _, g := range store.Groups(ws) {
		a, errA := got.Systems(ctx, g.IDs()...)
		b, errB := want.Systems(ctx, g.IDs()...)
		if a != b || errA != nil || errB != nil {
			return fmt.Sprintf("Systems(%v) = %+v, %v, want %+v, %v", g.IDs(), a, errA, b, errB)
		}
	}
	gl, errG := got.LatestScan(ctx)
	wl, errW := want.LatestScan(ctx)
	if d := diffScan(gl, wl); d != "" || !errors.Is(errG, errW) && errW != nil {
		return fmt.Sprintf("LatestScan = %s, %v (want error %v)", d, errG, errW)
	}
	return ""
}

// sameScanReads compares what two readers read of scan id.
func sameScanReads(t *testing.T, got, want store.Reader, id string) string {
	ctx := context.Background()
	g, errG := got.Scan(ctx, id)
	w, errW := want.Scan(ctx, id)
	if d := diffScan(g, w); d != "" || errG != nil || errW != nil {
		return fmt.Sprintf("Scan = %s, %v, %v", d, errG, errW)
	}
	gr, wr := readResults(t, got, id), readResults(t, want, id)
	if len(gr) != len(wr) {
		return fmt.Sprintf("%d results, want %d", len(gr), len(wr))
	}
	for i := range wr {
		if a, b := encode(t, gr[i]), encode(t, wr[i]); a != b {
			return fmt.Sprintf("result %d:\n got %s\nwant %s", i, a, b)
		}
	}
	if gd, wd := readDone(t, got, id), readDone(t, want, id); !reflect.DeepEqual(gd, wd) {
		return fmt.Sprintf("Done = %v, want %v", gd, wd)
	}
	gsum, errG := got.Summary(ctx, id)
	wsum, errW := want.Summary(ctx, id)
	if gsum != wsum || errG != nil || errW != nil {
		return fmt.Sprintf("Summary = %+v, %v, want %+v, %v", gsum, errG, wsum, errW)
	}
	return ""
}

func testReader(t *testing.T, open func(t *testing.T) store.Store, openReader func(t *testing.T) store.Reader) {
	ctx := context.Background()
	s := mustOpen(t, open)
	a := createScan(t, s, newScan())
	b0 := createScan(t, s, shardScan("run", "0/2", 1))
	b1 := createScan(t, s, shardScan("run", "1/2", 2))
	for _, id := range []string{a.ID, b0.ID, b1.ID} {
		rs := variedResults(id, "127.0."+id[len(id)-1:])
		if err := s.PutResults(ctx, id, rs, store.Progress{Done: uint64(len(rs)), Excluded: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishScan(ctx, b0.ID, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}

	r := mustOpenReader(t, openReader)
	if d := sameReads(t, r, s); d != "" {
		t.Errorf("the reader reads otherwise than the store: %s", d)
	}
	for name, err := range map[string]error{
		"Scan":    func() error { _, err := r.Scan(ctx, "no-such-scan"); return err }(),
		"Results": r.Results(ctx, "no-such-scan", func(probe.Result) error { return nil }),
		"Done":    r.Done(ctx, "no-such-scan", func(netip.Addr, uint16) error { return nil }),
		"Summary": func() error { _, err := r.Summary(ctx, "no-such-scan"); return err }(),
		"Systems": func() error { _, err := r.Systems(ctx, "no-such-scan"); return err }(),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("reader's %s of an unknown scan: %v, want ErrNotFound", name, err)
		}
	}

	// What the store writes while the reader is open, the reader reads.
	more := []probe.Result{result(b1.ID, "127.0.9.1", 104, probe.StatusOpen)}
	if err := s.PutResults(ctx, b1.ID, more, store.Progress{Done: 12}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishScan(ctx, b1.ID, t0.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := createScan(t, s, shardScan("later", "", 5))
	if d := sameReads(t, r, s); d != "" {
		t.Errorf("after more writes, the reader reads otherwise than the store: %s", d)
	}
	if g := regroup(t, r); len(g) != 3 || !g[1].Finished() || g[2].ID() != c.ID {
		t.Errorf("the reader's groups: %d, want 3, the second finished, the last %s", len(g), c.ID)
	}
}

func testReaderWrites(t *testing.T, open func(t *testing.T) store.Store, openReader func(t *testing.T) store.Reader) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	r := mustOpenReader(t, openReader)
	w, ok := r.(store.Store)
	if !ok {
		t.Skip("the reader has no write methods")
	}
	for name, err := range map[string]error{
		"CreateScan":   func() error { _, err := w.CreateScan(ctx, newScan()); return err }(),
		"FinishScan":   w.FinishScan(ctx, sc.ID, t0),
		"PutResults":   w.PutResults(ctx, sc.ID, []probe.Result{result(sc.ID, "127.0.0.1", 104, probe.StatusOpen)}, store.Progress{Done: 1}),
		"AcquireLease": func() error { _, err := w.AcquireLease(ctx, sc.ID, lease("h", t0.Add(time.Hour)), nil); return err }(),
		"RenewLease":   w.RenewLease(ctx, sc.ID, "h", t0),
		"ReleaseLease": w.ReleaseLease(ctx, sc.ID, "h"),
	} {
		if !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("reader's %s: %v, want ErrReadOnly", name, err)
		}
	}
	if d := sameReads(t, r, s); d != "" {
		t.Errorf("after refused writes: %s", d)
	}
}
