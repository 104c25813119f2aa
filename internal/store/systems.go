package store

import (
	"cmp"
	"math"
	"net/netip"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// Systems are the figures of the 2019 reports (SPEC "report") over a set of results. A system
// is an address: its ports count once, with the figures of its representative port, the one
// that Outranks the others, ports flagged as honeypots (dicom.honeypot) left out. Sums saturate
// at math.MaxInt64: a server's claims cannot wrap a total.
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

// Add counts the system whose representative port is rep.
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
		if r.DICOM != nil && r.DICOM.Honeypot {
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
