package report

import "fmt"

// Trend is how a group's accessible studies moved against the compared scan.
type Trend uint8

const (
	TrendNone Trend = iota // no compared scan
	TrendGood              // down by at least Thresholds.GoodDrop percent, or to zero
	TrendBad               // neither good nor ugly
	TrendUgly              // up by more than Thresholds.UglyRise percent
)

func (t Trend) String() string {
	switch t {
	case TrendGood:
		return "good"
	case TrendBad:
		return "bad"
	case TrendUgly:
		return "ugly"
	}
	return ""
}

// MarshalText implements encoding.TextMarshaler.
func (t Trend) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Trend) UnmarshalText(b []byte) error {
	for c := TrendNone; c <= TrendUgly; c++ {
		if string(b) == c.String() {
			*t = c
			return nil
		}
	}
	return fmt.Errorf("report: unknown trend %q", b)
}

// Thresholds are the trend rule's parameters, in percent.
type Thresholds struct {
	GoodDrop float64 `json:"good_drop_percent"` // good: down by at least this much (default 50)
	UglyRise float64 `json:"ugly_rise_percent"` // ugly: up by more than this much (default 10)
}

// Default thresholds: halved is good, more than 10 % up is ugly.
const (
	DefaultGoodDrop = 50
	DefaultUglyRise = 10
)

// Validate reports thresholds outside their range.
func (t Thresholds) Validate() error {
	if !(t.GoodDrop > 0 && t.GoodDrop <= 100) {
		return fmt.Errorf("report: good-drop %v%% is not in (0, 100]", t.GoodDrop)
	}
	if !(t.UglyRise >= 0 && t.UglyRise <= 1e6) {
		return fmt.Errorf("report: ugly-rise %v%% is not in [0, 1000000]", t.UglyRise)
	}
	return nil
}

// Classify applies the trend rule to accessible studies before (old) and now (cur):
// good when cur ≤ old × (1 − GoodDrop/100) or cur = 0; ugly when cur > old × (1 + UglyRise/100);
// bad otherwise. Studies counts are below 2⁵³, so the products are exact in float64 for
// thresholds with few decimals.
func Classify(old, cur int64, t Thresholds) Trend {
	o, c := float64(old), float64(cur)
	switch {
	case cur == 0 || c*100 <= o*(100-t.GoodDrop):
		return TrendGood
	case c*100 > o*(100+t.UglyRise):
		return TrendUgly
	}
	return TrendBad
}

// Rule is the trend rule in words, as the report prints it.
func (t Thresholds) Rule() string {
	return fmt.Sprintf("Trend per group, on accessible studies against the compared scan: good when down by at least %s %% or to zero; ugly when up by more than %s %%; bad otherwise.",
		pct(t.GoodDrop), pct(t.UglyRise))
}

func pct(v float64) string { return fmt.Sprintf("%g", v) }
