package scan

import (
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// tallies are per-port counts of targets done without a stored result (store.Progress.Tallies):
// excluded ones, and without Config.AllTargets the closed, filtered and unreachable ones. A
// job carries those between it and the job before it until the checkpoint passes them, so
// that the counts stored with a checkpoint are exactly those below it, and a resumed scan
// counts each target once. A nil tallies is empty.
type tallies map[uint16]store.Tally

// add adds u to port's tally and returns t, made if nil.
func (t tallies) add(port uint16, u store.Tally) tallies {
	if t == nil {
		t = make(tallies, 1)
	}
	v := t[port]
	v.Add(u)
	t[port] = v
	return t
}

// merge adds u to t and returns t; either may be nil. u is not used afterwards.
func (t tallies) merge(u tallies) tallies {
	if t == nil {
		return u
	}
	for port, v := range u {
		t = t.add(port, v)
	}
	return t
}

// clone returns a copy of t.
func (t tallies) clone() tallies {
	c := make(tallies, len(t))
	for port, v := range t {
		c[port] = v
	}
	return c
}

// excluded returns how many excluded targets t counts.
func (t tallies) excluded() uint64 {
	var n uint64
	for _, v := range t {
		n += v.Excluded
	}
	return n
}

// tallyOf returns how r counts when it is not stored: a closed, filtered or unreachable target
// that told nothing more. ok is false for a result that is stored.
func tallyOf(r *probe.Result) (t store.Tally, ok bool) {
	if r.DICOM != nil || r.Exposure != nil || len(r.Web) > 0 {
		return t, false
	}
	switch {
	case r.Status == probe.StatusClosed:
		t.Closed = 1
	case r.Status == probe.StatusFiltered && r.Error == TextUnreachable:
		t.Unreachable = 1
	case r.Status == probe.StatusFiltered:
		t.Filtered = 1
	default:
		return t, false
	}
	return t, true
}
