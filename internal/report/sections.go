package report

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// isUnknown reports whether a row is a group the databases did not place ("??", or a country's
// "CC/??"): such rows are listed after the named ones.
func isUnknown(r Row) bool { return r.Key == Unknown || strings.HasSuffix(r.Key, "/"+Unknown) }

// Verdict is one trend class of the good / bad / ugly section (the 2019 reports' "the good,
// the bad and the ugly"), with the groups in it.
type Verdict struct {
	Trend  Trend
	Groups []string // "Maharashtra (IN)", most accessible studies first
}

// maxVerdictGroups caps the groups one verdict names; the rest are counted.
const maxVerdictGroups = 30

// Verdicts returns, for a table of a compared report, its named groups by trend class: good,
// bad, ugly (each possibly empty), and how many a class left unnamed beyond maxVerdictGroups.
// Groups the databases did not place are left out.
func Verdicts(t Table) (vs []Verdict, more [3]int) {
	vs = []Verdict{{Trend: TrendGood}, {Trend: TrendBad}, {Trend: TrendUgly}}
	for _, r := range t.Rows {
		i := int(r.Trend) - int(TrendGood)
		if r.Trend == TrendNone || i < 0 || i > 2 || isUnknown(r) {
			continue
		}
		if len(vs[i].Groups) == maxVerdictGroups {
			more[i]++
			continue
		}
		vs[i].Groups = append(vs[i].Groups, r.Name+" ("+keyCell(t.Group, r)+")")
	}
	return vs, more
}

// band is one shade of the map: countries with accessible studies from Lo to Hi (Hi 0: no
// upper bound).
type band struct {
	Class  string
	Lo, Hi int64
}

// maxBands is how many shades of accessible studies the map has at most.
const maxBands = 4

// bands fits the map's shades to the countries shown: breaks at the quartiles of their
// accessible studies, rounded down to two significant digits, so that the countries fall in
// different shades rather than all in one; fewer shades when fewer distinct values.
func bands(rows []Row) []band {
	var vals []int64
	for _, r := range rows {
		if r.Studies > 0 && !isUnknown(r) {
			vals = append(vals, r.Studies)
		}
	}
	slices.Sort(vals)
	breaks := []int64{1}
	for q := 1; q < maxBands && len(vals) > 0; q++ {
		b := roundDown2(vals[len(vals)*q/maxBands])
		if b > breaks[len(breaks)-1] {
			breaks = append(breaks, b)
		}
	}
	out := make([]band, len(breaks))
	for i, lo := range breaks {
		out[i] = band{Class: "s" + strconv.Itoa(i+1), Lo: lo}
		if i+1 < len(breaks) {
			out[i].Hi = breaks[i+1] - 1
		}
	}
	return out
}

// roundDown2 rounds n down to two significant digits: 4,924 → 4,900.
func roundDown2(n int64) int64 {
	if n < 100 {
		return n
	}
	p := int64(math.Pow10(int(math.Log10(float64(n))) - 1))
	return n / p * p
}

// shade returns the class of a country's figures among bs: none without systems, f0 with
// systems found but no accessible study, else its band's.
func shade(m Metrics, bs []band) string {
	switch {
	case m.SystemsFound == 0 && m.Studies == 0:
		return "none"
	case m.Studies < 1:
		return "f0"
	}
	class := bs[0].Class
	for _, b := range bs {
		if m.Studies >= b.Lo {
			class = b.Class
		}
	}
	return class
}

// label is a band's legend text: "1–99 accessible studies", "4,900 or more".
func (b band) label(first bool) string {
	s := num(b.Lo) + "–" + num(b.Hi)
	if b.Hi == 0 {
		s = num(b.Lo) + " or more"
	} else if b.Lo == b.Hi {
		s = num(b.Lo)
	}
	if first {
		s += " accessible studies"
	}
	return s
}

// pointLabel is what the trend chart's axis says under a run: its name (--name, as the 2019
// reports said "2019-09"), else its start date.
func pointLabel(p Point) string {
	if p.Name != "" {
		return truncate(p.Name, 16)
	}
	return p.Started.UTC().Format("2006-01-02")
}

// Percent is the change from old to cur as the reports print it: "+61 %", "-50 %", "0 %", or
// "new" from zero.
func Percent(old, cur int64) string {
	switch {
	case old == cur:
		return "0 %"
	case old == 0:
		return "new"
	}
	v := math.Round(float64(cur-old) / float64(old) * 100)
	s := strconv.FormatFloat(v, 'f', 0, 64) + " %"
	if v > 0 {
		s = "+" + s
	}
	return s
}
