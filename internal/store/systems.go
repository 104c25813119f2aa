package store

import (
	"cmp"
	"math"
	"net/netip"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// Systems are the figures of the 2019 reports (SPEC "report") over a set of results. A system
// is an address: its ports count once, with the figures of its representative port, the one
// that Outranks the others, ports left out by ApartOf (honeypots, implausible counts) not
// considered. Totals sum only exact and labelled-estimate counts (SPEC "report"): a
// representative port whose count is a lower bound (ApartLowerBound) counts as a system found
// and accessible, but its studies and images are in no sum. Sums saturate at math.MaxInt64: a
// server's claims cannot wrap a total.
type Systems struct {
	Found      int64 // representative level protected or above: an association answered at all
	Accessible int64 // representative level query or above
	Studies    int64 // exposure.studies of accessible systems
	Images     int64 // exposure.instances of accessible systems
	// StudiesImageAccess and ImagesAccessible are the studies and instances of accessible
	// systems at level retrieve, or whose exposure.retrieve is accepted or verified.
	StudiesImageAccess int64
	ImagesAccessible   int64
}

// Outranks reports whether port result a represents its system before b: a higher level
// (probe.Result.Level); at one level, with both an Exposure, more studies, then more
// instances; else a Exposure where b has none. Ties go to the lower port.
func Outranks(a, b *probe.Result) bool {
	if c := cmp.Compare(a.Level(), b.Level()); c != 0 {
		return c > 0
	}
	ea, eb := a.Exposure, b.Exposure
	if ea == nil || eb == nil {
		return eb == nil && ea != nil
	}
	if ea.Studies != eb.Studies {
		return ea.Studies > eb.Studies
	}
	return ea.Instances > eb.Instances
}

// Apart says how a result's counts enter the totals (SPEC "report": totals sum only exact and
// labelled-estimate counts of confirmed systems; capped, implausible and honeypot counts
// apart).
type Apart uint8

const (
	// ApartNone: the result counts in full: an exact count, or an estimate labelled as one.
	ApartNone Apart = iota
	// ApartLowerBound: a caveat "capped" says the count is a lower bound: the system counts as
	// found and accessible, its studies and images in no total.
	ApartLowerBound
	// ApartLeftOut: a honeypot (dicom.honeypot, or a caveat "honeypot") or a count beyond the
	// plausibility bounds (a caveat "implausible"): the port is left out of every figure, as if
	// it had not answered.
	ApartLeftOut
)

// ApartOf returns how r's counts enter the totals. Only caveats (and dicom.honeypot) set a
// result apart: a count without them, exact or not, is summed, as records written before
// caveats existed were.
func ApartOf(r *probe.Result) Apart {
	a := ApartNone
	if r.DICOM != nil && r.DICOM.Honeypot {
		return ApartLeftOut
	}
	if r.Exposure == nil {
		return a
	}
	for _, c := range r.Exposure.Caveats {
		switch c.Kind {
		case probe.CaveatHoneypot, probe.CaveatImplausible:
			return ApartLeftOut
		case probe.CaveatCapped:
			a = ApartLowerBound
		}
	}
	return a
}

// Add counts the system whose representative port is rep (a port ApartOf does not leave out).
func (s *Systems) Add(rep *probe.Result) {
	l := rep.Level()
	if l < probe.LevelProtected {
		return
	}
	s.Found++
	if l < probe.LevelQuery {
		return
	}
	e := rep.Exposure
	s.Accessible++
	if ApartOf(rep) != ApartNone {
		return
	}
	s.Studies = addSat(s.Studies, e.Studies)
	s.Images = addSat(s.Images, e.Instances)
	if l >= probe.LevelRetrieve || e.Retrieve >= probe.RetrieveAccepted {
		s.StudiesImageAccess = addSat(s.StudiesImageAccess, e.Studies)
		s.ImagesAccessible = addSat(s.ImagesAccessible, e.Instances)
	}
}

// addSat adds two non-negative counts, saturating.
func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// SystemsOf returns the Systems of rs, sanitized results in any order: the reference every
// backend's Reader.Systems is tested against, and the memory store's implementation.
func SystemsOf(rs []probe.Result) Systems {
	reps := map[netip.Addr]*probe.Result{}
	var order []netip.Addr
	for i := range rs {
		r := &rs[i]
		if ApartOf(r) == ApartLeftOut {
			continue
		}
		cur, ok := reps[r.IP]
		switch {
		case !ok:
			order = append(order, r.IP)
			reps[r.IP] = r
		case Outranks(r, cur) || !Outranks(cur, r) && r.Port < cur.Port:
			reps[r.IP] = r
		}
	}
	var s Systems
	for _, ip := range order {
		s.Add(reps[ip])
	}
	return s
}
