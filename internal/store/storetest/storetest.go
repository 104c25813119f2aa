// Package storetest is the conformance suite of store.Store: every backend
// runs it from its own tests, so that the scanner, report and diff can rely
// on one behaviour whatever the --db. Run tests a store; RunReader tests a
// backend's read-only handle (store.Reader) against what a store wrote.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// Run runs the suite. open returns a Store on an empty database the first
// time it is called with a given t, and a Store on that same database when
// called again with the same t (the suite closes the first one before, except
// where several handles write one database at once, as shard processes do).
// Run closes every store it opens.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"CreateScan", testCreateScan},
		{"Scans", testScans},
		{"NotFound", testNotFound},
		{"FinishScan", testFinishScan},
		{"PutResults", testPutResults},
		{"Replace", testReplace},
		{"Atomic", testAtomic},
		{"ScanID", testScanID},
		{"Callbacks", testCallbacks},
		{"Secret", testSecret},
		{"Reopen", testReopen},
		{"LargeBatch", testLargeBatch},
		{"Concurrent", testConcurrent},
		{"SpaceFields", testSpaceFields},
		{"Excluded", testExcluded},
		{"Tallies", testTallies},
		{"Lease", testLease},
		{"LeaseNotFound", testLeaseNotFound},
		{"LeaseRace", testLeaseRace},
		{"Summary", testSummary},
		{"Groups", testGroups},
		{"MergeResults", testMergeResults},
		{"Systems", testSystems},
		{"ShardWriters", testShardWriters},
		{"HostResults", testHostResults},
		{"SystemsApart", testSystemsApart},
		{"AddCaveats", testAddCaveats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// mustOpen opens a store and closes it when the test ends.
func mustOpen(t *testing.T, open func(t *testing.T) store.Store) store.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2026, 11, 4, 12, 0, 0, 123456789, time.UTC)

func newScan() store.Scan {
	return store.Scan{
		Name:     "monthly",
		Started:  t0,
		Targets:  []string{"127.0.0.0/24", "::1"},
		Settings: map[string]string{"ports": "104,11112", "rate": "1000"},
		Total:    512,
		Seed:     1<<64 - 3, // the high bit must survive
		Shard:    "0/1",
	}
}

func createScan(t *testing.T, s store.Store, sc store.Scan) store.Scan {
	t.Helper()
	got, err := s.CreateScan(context.Background(), sc)
	if err != nil {
		t.Fatalf("CreateScan: %v", err)
	}
	return got
}

// diffScan describes how got differs from want, or returns "".
func diffScan(got, want store.Scan) string {
	if !got.Started.Equal(want.Started) || !got.Finished.Equal(want.Finished) {
		return fmt.Sprintf("times %v..%v, want %v..%v", got.Started, got.Finished, want.Started, want.Finished)
	}
	if got.Started.Location() != time.UTC || got.Finished.Location() != time.UTC {
		return fmt.Sprintf("times in %v and %v, want UTC", got.Started.Location(), got.Finished.Location())
	}
	got.Started, got.Finished, want.Started, want.Finished = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("\n got %+v\nwant %+v", got, want)
	}
	return ""
}

func testCreateScan(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)

	in := newScan()
	in.Progress = store.Progress{Done: 9} // ignored
	a := createScan(t, s, in)
	if a.ID == "" {
		t.Fatal("CreateScan returned an empty ID")
	}
	want := newScan()
	want.ID = a.ID
	if d := diffScan(a, want); d != "" {
		t.Errorf("CreateScan returned %s", d)
	}
	got, err := s.Scan(ctx, a.ID)
	if err != nil {
		t.Fatalf("Scan(%q): %v", a.ID, err)
	}
	if d := diffScan(got, want); d != "" {
		t.Errorf("Scan(%q) = %s", a.ID, d)
	}

	b := createScan(t, s, store.Scan{Name: "defaults"})
	if b.ID == "" || b.ID == a.ID {
		t.Errorf("second CreateScan ID = %q, want new and not %q", b.ID, a.ID)
	}
	if b.Started.IsZero() {
		t.Error("CreateScan with zero Started left it zero")
	}
	got, err = s.Scan(ctx, b.ID)
	if err != nil {
		t.Fatalf("Scan(%q): %v", b.ID, err)
	}
	if d := diffScan(got, b); d != "" {
		t.Errorf("Scan(%q) = %s", b.ID, d)
	}

	chosen := newScan()
	chosen.ID = "shard-3-of-8"
	c := createScan(t, s, chosen)
	if c.ID != chosen.ID {
		t.Errorf("CreateScan with ID %q returned ID %q", chosen.ID, c.ID)
	}
	if _, err := s.CreateScan(ctx, chosen); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateScan with a taken ID: err = %v, want ErrExists", err)
	}

	// IDs a caller chose do not collide with the ones the store assigns.
	for range 3 {
		d := createScan(t, s, store.Scan{})
		for _, id := range []string{a.ID, b.ID, c.ID} {
			if d.ID == id {
				t.Fatalf("CreateScan assigned ID %q again", id)
			}
		}
		createScan(t, s, store.Scan{ID: nextNumber(d.ID)})
	}
}

// nextNumber returns id+1 when id is a number, else id+"x".
func nextNumber(id string) string {
	var n int
	if _, err := fmt.Sscanf(id, "%d", &n); err == nil && fmt.Sprint(n) == id {
		return fmt.Sprint(n + 1)
	}
	return id + "x"
}

func testScans(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)

	if got, err := s.Scans(ctx); err != nil || len(got) != 0 {
		t.Errorf("Scans on an empty store = %v, %v, want none", got, err)
	}
	if _, err := s.LatestScan(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LatestScan on an empty store: err = %v, want ErrNotFound", err)
	}

	// Created out of order; two share a start time.
	starts := []time.Duration{2 * time.Hour, 0, 3 * time.Hour, 2 * time.Hour}
	var ids []string
	for i, d := range starts {
		sc := newScan()
		sc.Name = fmt.Sprint("scan ", i)
		sc.Started = t0.Add(d).In(time.FixedZone("CET", 3600))
		ids = append(ids, createScan(t, s, sc).ID)
	}
	want := []string{ids[1], ids[0], ids[3], ids[2]}

	list, err := s.Scans(ctx)
	if err != nil {
		t.Fatalf("Scans: %v", err)
	}
	var got []string
	for _, sc := range list {
		got = append(got, sc.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Scans IDs = %v, want %v (oldest first, then creation order)", got, want)
	}
	latest, err := s.LatestScan(ctx)
	if err != nil || latest.ID != ids[2] {
		t.Errorf("LatestScan = %q, %v, want %q", latest.ID, err, ids[2])
	}
	if len(list) == len(want) {
		if d := diffScan(list[len(list)-1], latest); d != "" {
			t.Errorf("Scans and LatestScan disagree: %s", d)
		}
	}
}

func testNotFound(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	createScan(t, s, newScan())

	const id = "no-such-scan"
	r := result("", "127.0.0.1", 104, probe.StatusClosed)
	tests := []struct {
		name string
		err  error
	}{
		{"Scan", func() error { _, err := s.Scan(ctx, id); return err }()},
		{"FinishScan", s.FinishScan(ctx, id, t0)},
		{"PutResults", s.PutResults(ctx, id, []probe.Result{r}, store.Progress{Done: 1})},
		{"PutResults empty", s.PutResults(ctx, id, nil, store.Progress{Done: 1})},
		{"Done", s.Done(ctx, id, func(netip.Addr, uint16) error { return nil })},
		{"Results", s.Results(ctx, id, func(probe.Result) error { return nil })},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, store.ErrNotFound) {
			t.Errorf("%s(%q): err = %v, want ErrNotFound", tt.name, id, tt.err)
		}
	}
}

func testFinishScan(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	other := createScan(t, s, newScan())

	end := t0.Add(90*time.Minute + 7).In(time.FixedZone("IST", 5*3600+1800))
	if err := s.FinishScan(ctx, sc.ID, end); err != nil {
		t.Fatalf("FinishScan: %v", err)
	}
	want := sc
	want.Finished = end
	got, err := s.Scan(ctx, sc.ID)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if d := diffScan(got, want); d != "" {
		t.Errorf("after FinishScan, Scan = %s", d)
	}
	if got, _ := s.Scan(ctx, other.ID); !got.Finished.IsZero() {
		t.Errorf("FinishScan finished another scan too: %v", got.Finished)
	}
}

func testPutResults(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	other := createScan(t, s, newScan())

	hostile := result(sc.ID, "127.0.0.9", 104, probe.StatusOpen)
	hostile.DICOM.CalledAE = "\x00ANY-SCP-WITH-A-VERY-LONG-NAME\n"
	hostile.DICOM.Product = "Orthanc\u202e<script>"
	hostile.Error = strings.Repeat("e", 1000)
	hostile.Exposure.Modalities["\x1bCT"] = 1
	hostile.Web = []probe.Web{{URL: "http://127.0.0.9:8042/\r\n", Auth: probe.AuthNone}}

	// Given out of order; the order Results must give is by ip then port.
	in := []probe.Result{
		result(sc.ID, "::1", 104, probe.StatusFiltered),
		result(sc.ID, "127.0.0.10", 11112, probe.StatusOpen),
		result(sc.ID, "127.0.1.1", 104, probe.StatusError),
		hostile,
		result("", "127.0.0.10", 104, probe.StatusClosed), // ScanID filled in
		result(sc.ID, "::ffff:127.0.0.1", 104, probe.StatusClosed),
		result(sc.ID, "127.0.0.200", 4242, probe.StatusOpen),
		result(sc.ID, "::1%lo", 104, probe.StatusClosed),
		result(sc.ID, "127.0.0.10", 4242, probe.StatusFiltered),
	}
	in[2].Error = "read A-ASSOCIATE-AC: connection reset by peer"
	before := make([]string, len(in))
	for i, r := range in {
		before[i] = encode(t, r)
	}

	if err := s.PutResults(ctx, sc.ID, in, store.Progress{Done: 9}); err != nil {
		t.Fatalf("PutResults: %v", err)
	}
	if err := s.PutResults(ctx, other.ID, []probe.Result{result(other.ID, "127.0.0.10", 104, probe.StatusOpen)}, store.Progress{Done: 1}); err != nil {
		t.Fatalf("PutResults(other): %v", err)
	}
	for i, r := range in {
		if got := encode(t, r); got != before[i] {
			t.Errorf("PutResults modified its input %d:\n got %s\nwant %s", i, got, before[i])
		}
	}

	want := make([]probe.Result, len(in))
	for i, r := range in {
		r.ScanID = sc.ID
		r.Sanitize()
		want[i] = r
	}
	slices.SortStableFunc(want, func(a, b probe.Result) int {
		return netip.AddrPortFrom(a.IP, a.Port).Compare(netip.AddrPortFrom(b.IP, b.Port))
	})
	equalResults(t, readResults(t, s, sc.ID), want)

	for _, r := range readResults(t, s, sc.ID) {
		if r.IP == hostile.IP && (r.DICOM == nil || r.DICOM.CalledAE != "ANY-SCP-WITH-A-V") {
			t.Errorf("stored called AE is not sanitized: %+v", r.DICOM)
		}
	}

	wantDone := make(map[netip.AddrPort]bool)
	for _, r := range in {
		wantDone[netip.AddrPortFrom(r.IP, r.Port)] = true
	}
	if got := readDone(t, s, sc.ID); !reflect.DeepEqual(got, wantDone) {
		t.Errorf("Done = %v, want %v", got, wantDone)
	}
	if got, err := s.Scan(ctx, sc.ID); err != nil || got.Progress.Done != 9 {
		t.Errorf("Scan.Progress = %+v, %v, want Done 9", got.Progress, err)
	}

	// The other scan holds only its own result.
	if got := readResults(t, s, other.ID); len(got) != 1 || got[0].ScanID != other.ID {
		t.Errorf("Results(other) = %v, want its one result", got)
	}

	// An empty batch moves the checkpoint only.
	if err := s.PutResults(ctx, sc.ID, nil, store.Progress{Done: 12}); err != nil {
		t.Fatalf("PutResults(nil): %v", err)
	}
	if got, err := s.Scan(ctx, sc.ID); err != nil || got.Progress.Done != 12 {
		t.Errorf("after an empty batch, Scan.Progress = %+v, %v, want Done 12", got.Progress, err)
	}
	if got := readResults(t, s, sc.ID); len(got) != len(in) {
		t.Errorf("after an empty batch, %d results, want %d", len(got), len(in))
	}
}

func testReplace(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())

	first := []probe.Result{
		result(sc.ID, "127.0.0.1", 104, probe.StatusFiltered),
		result(sc.ID, "127.0.0.2", 104, probe.StatusClosed),
	}
	if err := s.PutResults(ctx, sc.ID, first, store.Progress{Done: 2}); err != nil {
		t.Fatalf("PutResults: %v", err)
	}
	// A resumed scan probes 127.0.0.1:104 again, and it is open now.
	again := result(sc.ID, "127.0.0.1", 104, probe.StatusOpen)
	if err := s.PutResults(ctx, sc.ID, []probe.Result{again, again}, store.Progress{Done: 2}); err != nil {
		t.Fatalf("PutResults again: %v", err)
	}
	equalResults(t, readResults(t, s, sc.ID), []probe.Result{again, first[1]})
	if got := readDone(t, s, sc.ID); len(got) != 2 {
		t.Errorf("Done has %d targets, want 2", len(got))
	}
}

func testAtomic(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	good := result(sc.ID, "127.0.0.1", 104, probe.StatusOpen)
	if err := s.PutResults(ctx, sc.ID, []probe.Result{good}, store.Progress{Done: 1}); err != nil {
		t.Fatalf("PutResults: %v", err)
	}

	noIP := result(sc.ID, "127.0.0.3", 104, probe.StatusOpen)
	noIP.IP = netip.Addr{}
	noStatus := result(sc.ID, "127.0.0.3", 104, probe.StatusOpen)
	noStatus.Status = 0
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		bad  probe.Result
	}{
		{"no IP", ctx, noIP},
		{"zero status", ctx, noStatus},
		{"canceled", canceled, result(sc.ID, "127.0.0.3", 104, probe.StatusOpen)},
	}
	for _, tt := range tests {
		batch := []probe.Result{
			result(sc.ID, "127.0.0.1", 104, probe.StatusClosed), // would replace good
			result(sc.ID, "127.0.0.2", 104, probe.StatusClosed),
			tt.bad,
		}
		if err := s.PutResults(tt.ctx, sc.ID, batch, store.Progress{Done: 3}); err == nil {
			t.Errorf("%s: PutResults = nil error, want an error", tt.name)
		}
		equalResults(t, readResults(t, s, sc.ID), []probe.Result{good})
		if got, err := s.Scan(ctx, sc.ID); err != nil || got.Progress.Done != 1 {
			t.Errorf("%s: after a failed PutResults, Progress = %+v, %v, want Done 1", tt.name, got.Progress, err)
		}
	}
}

func testScanID(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	a := createScan(t, s, newScan())
	b := createScan(t, s, newScan())
	err := s.PutResults(ctx, a.ID, []probe.Result{result(b.ID, "127.0.0.1", 104, probe.StatusClosed)}, store.Progress{})
	if err == nil {
		t.Error("PutResults of a result of another scan = nil error, want an error")
	}
	if got := readResults(t, s, a.ID); len(got) != 0 {
		t.Errorf("scan %q holds %d results, want 0", a.ID, len(got))
	}
	if got := readResults(t, s, b.ID); len(got) != 0 {
		t.Errorf("scan %q holds %d results, want 0", b.ID, len(got))
	}
}

func testCallbacks(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	var rs []probe.Result
	for i := range 10 {
		rs = append(rs, result(sc.ID, fmt.Sprintf("127.0.0.%d", i+1), 104, probe.StatusClosed))
	}
	if err := s.PutResults(ctx, sc.ID, rs, store.Progress{Done: 10}); err != nil {
		t.Fatalf("PutResults: %v", err)
	}

	stop := errors.New("stop here")
	calls := 0
	err := s.Results(ctx, sc.ID, func(probe.Result) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("Results with fn failing on call 3: err = %v after %d calls, want %v after 3", err, calls, stop)
	}

	calls = 0
	err = s.Done(ctx, sc.ID, func(netip.Addr, uint16) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("Done with fn failing on call 2: err = %v after %d calls, want %v after 2", err, calls, stop)
	}

	// A callback may use the store (report reads scans while streaming).
	calls = 0
	err = s.Results(ctx, sc.ID, func(r probe.Result) error {
		calls++
		_, err := s.Scan(ctx, r.ScanID)
		return err
	})
	if err != nil || calls != len(rs) {
		t.Errorf("Results with a callback reading the store: err = %v after %d calls, want nil after %d", err, calls, len(rs))
	}
}

func testSecret(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	a, err := s.Secret(ctx)
	if err != nil {
		t.Fatalf("Secret: %v", err)
	}
	if len(a) != store.SecretSize || bytes.Equal(a, make([]byte, store.SecretSize)) {
		t.Fatalf("Secret = %x, want %d random bytes", a, store.SecretSize)
	}
	b, err := s.Secret(ctx)
	if err != nil || !bytes.Equal(a, b) {
		t.Errorf("second Secret = %x, %v, want %x", b, err, a)
	}

	// Concurrent first use on a fresh database agrees on one secret.
	t.Run("concurrent first use", func(t *testing.T) {
		s := mustOpen(t, open)
		secrets := make([][]byte, 4)
		var wg sync.WaitGroup
		for i := range secrets {
			wg.Go(func() {
				var err error
				if secrets[i], err = s.Secret(ctx); err != nil {
					t.Errorf("Secret: %v", err)
				}
			})
		}
		wg.Wait()
		for i := range secrets {
			if !bytes.Equal(secrets[i], secrets[0]) {
				t.Errorf("Secret %d = %x, want %x", i, secrets[i], secrets[0])
			}
		}
		if bytes.Equal(secrets[0], a) {
			t.Error("two databases have the same secret")
		}
	})
}
