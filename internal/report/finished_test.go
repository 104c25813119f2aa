package report_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

// finishedStore holds scans a, b, c, d in that order, a scan n with one accessible host of
// 100·(n+1) studies, and leaves the scans named in unfinished unfinished and empty (as a
// failed start leaves one).
func finishedStore(unfinished ...string) *memStore {
	st := newMemStore()
	for i, id := range []string{"a", "b", "c", "d"} {
		if slices.Contains(unfinished, id) {
			st.addUnfinished(id)
			continue
		}
		st.add(id, &probe.Exposure{Level: probe.LevelQuery, Studies: int64(100 * (i + 1)), StudiesExact: true})
	}
	return st
}

// TestCompareFinishedOnly: the default comparison is the latest finished scan before the
// reported one; an empty unfinished scan left by a failed start is skipped, not compared.
func TestCompareFinishedOnly(t *testing.T) {
	for _, tc := range []struct {
		name        string
		unfinished  []string
		scan        string
		compare     string
		wantScan    string
		wantCompare string // "" for no comparison
	}{
		{"all finished", nil, "", "", "d", "c"},
		{"failed start before the latest", []string{"c"}, "", "", "d", "b"},
		{"two failed starts", []string{"b", "c"}, "", "", "d", "a"},
		{"latest unfinished", []string{"d"}, "", "", "d", "c"},
		{"latest and the one before unfinished", []string{"c", "d"}, "", "", "d", "b"},
		{"nothing finished before", []string{"a", "b", "c"}, "", "", "d", ""},
		{"explicit scan", []string{"b"}, "c", "", "c", "a"},
		{"explicit unfinished scan", []string{"b", "c"}, "c", "", "c", "a"},
		{"first scan", nil, "a", "", "a", ""},
		{"explicit finished compare", []string{"c"}, "", "a", "d", "a"},
		{"explicit later compare", nil, "b", "d", "b", "d"},
		{"none", nil, "", report.NoCompare, "d", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := finishedStore(tc.unfinished...)
			r, err := report.Build(context.Background(), st, report.Options{Scan: tc.scan, Compare: tc.compare})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if r.Compare != nil {
				got = r.Compare.ID
				if r.Compare.Finished.IsZero() {
					t.Errorf("compared with unfinished scan %s", got)
				}
			}
			if r.Scan.ID != tc.wantScan || got != tc.wantCompare {
				t.Errorf("scan %s compared with %q, want %s with %q", r.Scan.ID, got, tc.wantScan, tc.wantCompare)
			}
			if got == "" && (r.Total.Change != nil || r.Total.Trend != report.TrendNone) {
				t.Errorf("no comparison, yet change %+v and trend %v", r.Total.Change, r.Total.Trend)
			}
		})
	}
}

// TestFailedStartNoUglyTrend is issue 10's case: a failed start left an empty unfinished scan
// between two finished ones; the next report compares with the first (400 against 200 studies
// of b), not with the empty one (which made it "ugly, +400").
func TestFailedStartNoUglyTrend(t *testing.T) {
	st := newMemStore()
	st.add("b", &probe.Exposure{Level: probe.LevelQuery, Studies: 380, StudiesExact: true})
	st.addUnfinished("c")
	st.add("d", &probe.Exposure{Level: probe.LevelQuery, Studies: 400, StudiesExact: true})
	r, err := report.Build(context.Background(), st, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Compare == nil || r.Compare.ID != "b" || r.Total.Trend != report.TrendBad || r.Total.Change.Studies != 20 {
		t.Errorf("compare %+v, trend %v, change %+v; want b, bad, +20 studies", r.Compare, r.Total.Trend, r.Total.Change)
	}
}

// TestCompareUnfinishedRefused: an explicit --compare of an unfinished scan is an error of one
// line naming it.
func TestCompareUnfinishedRefused(t *testing.T) {
	st := finishedStore("b")
	for _, opt := range []report.Options{{Compare: "b"}, {Scan: "a", Compare: "b"}, {Scan: "d", Compare: "b"}} {
		_, err := report.Build(context.Background(), st, opt)
		if err == nil || !strings.Contains(err.Error(), `scan "b" is not finished`) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Build(%+v) = %v, want one line saying scan \"b\" is not finished", opt, err)
		}
	}
	// Reporting on an unfinished scan is allowed (the command notes that its figures are partial).
	r, err := report.Build(context.Background(), st, report.Options{Scan: "b"})
	if err != nil || !r.Scan.Finished.IsZero() {
		t.Errorf("report on unfinished b: %v, finished %v", err, r.Scan.Finished)
	}
}

// TestLongIDCapped: an error quotes a huge scan ID cut to 200 bytes and "…".
func TestLongIDCapped(t *testing.T) {
	st := finishedStore()
	huge := strings.Repeat("x", 70000)
	for name, opt := range map[string]report.Options{"scan": {Scan: huge}, "compare": {Compare: huge}} {
		_, err := report.Build(context.Background(), st, opt)
		if err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), strings.Repeat("x", 200)+`…"`) {
			t.Errorf("%s: error of %d bytes, want one quoting the ID cut to 200 bytes and …", name, len(err.Error()))
		}
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v is not ErrNotFound", name, err)
		}
	}
	_, err := report.Diff(context.Background(), st, huge, "a", report.Options{}, func(report.Change) error { return nil })
	if err == nil || len(err.Error()) > 300 || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Diff with a huge ID: %d bytes (%.80v)", len(err.Error()), err)
	}
}

// TestDiffUnknownScanOnce: the ID appears once in diff's error, not `scan "2": scan "2"`.
func TestDiffUnknownScanOnce(t *testing.T) {
	st := finishedStore()
	_, err := report.Diff(context.Background(), st, "a", "2", report.Options{}, func(report.Change) error { return nil })
	if err == nil || err.Error() != `diff: scan "2": store: not found` {
		t.Errorf("error %v, want %q", err, `diff: scan "2": store: not found`)
	}
}
