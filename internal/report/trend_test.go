package report_test

import (
	"testing"

	"github.com/pacswatch/pacswatch/internal/report"
)

// TestClassify: the trend rule at each threshold's edge.
func TestClassify(t *testing.T) {
	def := report.Thresholds{GoodDrop: report.DefaultGoodDrop, UglyRise: report.DefaultUglyRise}
	for _, tc := range []struct {
		name     string
		old, cur int64
		th       report.Thresholds
		want     report.Trend
	}{
		{"halved exactly", 1000, 500, def, report.TrendGood},
		{"one short of halved", 1000, 501, def, report.TrendBad},
		{"odd old, just under half", 1001, 500, def, report.TrendGood},
		{"odd old, just over half", 1001, 501, def, report.TrendBad},
		{"to zero", 1000, 0, def, report.TrendGood},
		{"zero to zero", 0, 0, def, report.TrendGood},
		{"unchanged", 1000, 1000, def, report.TrendBad},
		{"up 10 % exactly", 1000, 1100, def, report.TrendBad},
		{"up just over 10 %", 1000, 1101, def, report.TrendUgly},
		{"from zero", 0, 1, def, report.TrendUgly},
		{"one study to two", 1, 2, def, report.TrendUgly},
		{"large counts at the edge", 1_010_000_000, 1_111_000_000, def, report.TrendBad},
		{"large counts past the edge", 1_010_000_000, 1_111_000_001, def, report.TrendUgly},
		// Other thresholds.
		{"good-drop 20: down 20 %", 1000, 800, report.Thresholds{GoodDrop: 20, UglyRise: 5}, report.TrendGood},
		{"good-drop 20: down 19.9 %", 1000, 801, report.Thresholds{GoodDrop: 20, UglyRise: 5}, report.TrendBad},
		{"ugly-rise 5: up 5 %", 1000, 1050, report.Thresholds{GoodDrop: 20, UglyRise: 5}, report.TrendBad},
		{"ugly-rise 5: up 5.1 %", 1000, 1051, report.Thresholds{GoodDrop: 20, UglyRise: 5}, report.TrendUgly},
		{"ugly-rise 0: any rise", 1000, 1001, report.Thresholds{GoodDrop: 50, UglyRise: 0}, report.TrendUgly},
		{"ugly-rise 0: flat", 1000, 1000, report.Thresholds{GoodDrop: 50, UglyRise: 0}, report.TrendBad},
		{"good-drop 100: only zero", 1000, 1, report.Thresholds{GoodDrop: 100, UglyRise: 10}, report.TrendBad},
		{"good-drop 100: zero", 1000, 0, report.Thresholds{GoodDrop: 100, UglyRise: 10}, report.TrendGood},
		{"fractional threshold 12.5", 800, 700, report.Thresholds{GoodDrop: 12.5, UglyRise: 10}, report.TrendGood},
		{"fractional threshold 12.5, short", 800, 701, report.Thresholds{GoodDrop: 12.5, UglyRise: 10}, report.TrendBad},
	} {
		if got := report.Classify(tc.old, tc.cur, tc.th); got != tc.want {
			t.Errorf("%s: Classify(%d, %d, %+v) = %v, want %v", tc.name, tc.old, tc.cur, tc.th, got, tc.want)
		}
	}
}

func TestThresholdsValidate(t *testing.T) {
	for _, tc := range []struct {
		th    report.Thresholds
		valid bool
	}{
		{report.Thresholds{GoodDrop: 50, UglyRise: 10}, true},
		{report.Thresholds{GoodDrop: 100, UglyRise: 0}, true},
		{report.Thresholds{GoodDrop: 0, UglyRise: 10}, false},
		{report.Thresholds{GoodDrop: 100.5, UglyRise: 10}, false},
		{report.Thresholds{GoodDrop: 50, UglyRise: -0.1}, false},
	} {
		if err := tc.th.Validate(); (err == nil) != tc.valid {
			t.Errorf("%+v: Validate() = %v, want valid %v", tc.th, err, tc.valid)
		}
	}
}

func TestRule(t *testing.T) {
	got := report.Thresholds{GoodDrop: 20, UglyRise: 2.5}.Rule()
	want := "Trend per group, on accessible studies against the compared scan: good when down by at least 20 % or to zero; ugly when up by more than 2.5 %; bad otherwise."
	if got != want {
		t.Errorf("Rule() = %q\nwant     %q", got, want)
	}
}
