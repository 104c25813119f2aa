package report

import (
	"testing"
	"time"
)

// TestBands: the demo's countries (120 to 4,924 accessible studies, scaled from 2019) fall in
// four different shades, where fixed decades put them all in one; labels read as ranges.
func TestBands(t *testing.T) {
	var rows []Row
	for i, v := range []int64{120, 250, 300, 310, 350, 420, 950, 1007, 1800, 4924} {
		rows = append(rows, Row{Key: string(rune('A'+i)) + "X", Metrics: Metrics{SystemsFound: 1, SystemsAccessible: 1, Studies: v}})
	}
	rows = append(rows, Row{Key: Unknown, Metrics: Metrics{SystemsFound: 1, Studies: 1_000_000}})
	bs := bands(rows)
	if len(bs) != maxBands {
		t.Fatalf("bands %+v, want %d", bs, maxBands)
	}
	seen := map[string]bool{}
	for _, r := range rows[:10] {
		seen[shade(r.Metrics, bs)] = true
	}
	if len(seen) != maxBands {
		t.Errorf("the countries fall in %d shades (%v), want %d", len(seen), seen, maxBands)
	}
	if got := bs[0].label(true); got != "1–299 accessible studies" {
		t.Errorf("first label %q", got)
	}
	if got := bs[len(bs)-1].label(false); got != "1,000 or more" {
		t.Errorf("last label %q", got)
	}
	if got := shade(Metrics{SystemsFound: 2}, bs); got != "f0" {
		t.Errorf("found, none accessible: %q", got)
	}
	if got := bands(nil); len(got) != 1 || got[0].Lo != 1 || got[0].Hi != 0 {
		t.Errorf("no data: %+v, want one band from 1", got)
	}
}

// TestVerdictsAndLabels: verdicts leave out unplaced groups; the trend axis says the scan's name.
func TestVerdictsAndLabels(t *testing.T) {
	tb := Table{Group: GroupRegion, Rows: []Row{
		{Key: "IN/Maharashtra", Name: "Maharashtra", Country: "IN", Trend: TrendUgly},
		{Key: "IN/Gujarat", Name: "Gujarat", Country: "IN", Trend: TrendGood},
		{Key: "IN/??", Name: "unknown", Country: "IN", Trend: TrendUgly},
	}}
	vs, _ := Verdicts(tb)
	if len(vs) != 3 || len(vs[0].Groups) != 1 || len(vs[1].Groups) != 0 || len(vs[2].Groups) != 1 || vs[2].Groups[0] != "Maharashtra (IN)" {
		t.Errorf("verdicts %+v", vs)
	}
	start := time.Date(2019, 11, 15, 8, 0, 0, 0, time.UTC)
	if got := pointLabel(Point{Name: "2019-11", Started: start}); got != "2019-11" {
		t.Errorf("label %q, want the scan's name", got)
	}
	if got := pointLabel(Point{Started: start}); got != "2019-11-15" {
		t.Errorf("label %q, want the date", got)
	}
}
