package probe

import (
	"fmt"
	"math"
	"slices"
)

// Plausibility bounds (SPEC "Result record"): a count beyond them is not believed. It is kept
// apart, in an implausible caveat's reason, never in the record's counts, and the record is
// left out of totals (Exposure.Summable).
const (
	MaxStudyInstances = 100_000    // instances in one study
	MaxHostStudies    = 10_000_000 // studies on one host
)

// AddCaveat adds a caveat of kind with reason to e, unless e holds that very caveat already.
func (e *Exposure) AddCaveat(kind, reason string) {
	c := Caveat{Kind: kind, Reason: reason}
	if !slices.Contains(e.Caveats, c) {
		e.Caveats = append(e.Caveats, c)
	}
}

// HasCaveat reports whether e holds a caveat of kind.
func (e *Exposure) HasCaveat(kind string) bool {
	return slices.ContainsFunc(e.Caveats, func(c Caveat) bool { return c.Kind == kind })
}

// Summable reports whether e's counts, and those of the record's web front ends, may go into a
// report's totals: not when a caveat calls them implausible or the system a honeypot. A capped
// count is summable, as the lower bound it is (StudiesExact false); an estimate, as the
// estimate it is (InstancesSource says so).
func (e *Exposure) Summable() bool {
	return !e.HasCaveat(CaveatImplausible) && !e.HasCaveat(CaveatHoneypot)
}

// BoundWeb checks the counts of a web front end against the plausibility bounds. Counts beyond
// them are kept apart: w's Studies and Instances are set to 0 and the caveats returned say what
// was claimed (nil when the counts are plausible). Instances are implausible beyond
// MaxStudyInstances for each study claimed (at least one): some study would hold more.
func BoundWeb(w *Web) []Caveat {
	name := w.URL
	if w.Product != "" {
		name = w.Product + " at " + w.URL
	}
	var cs []Caveat
	if w.Studies > MaxHostStudies {
		cs = append(cs, Caveat{CaveatImplausible, fmt.Sprintf("web: %s claims %d studies, more than %d on one host", name, w.Studies, MaxHostStudies)})
	}
	if studies := max(w.Studies, 1); studies <= math.MaxInt64/MaxStudyInstances && w.Instances > studies*MaxStudyInstances {
		cs = append(cs, Caveat{CaveatImplausible, fmt.Sprintf("web: %s claims %d instances in %d studies, more than %d in a study", name, w.Instances, w.Studies, MaxStudyInstances)})
	}
	if cs != nil {
		w.Studies, w.Instances = 0, 0
	}
	return cs
}
