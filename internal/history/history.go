// Package history is a system's time series across runs (SPEC "serve and watch": per system,
// first seen exposed, last seen, fixed at, time to fix), derived from the store's scans rather
// than kept apart: what one address showed in each run (State, counted as report counts it), and
// its episodes of exposure. serve's host page, watch's alerts and report's fixed systems read it.
package history

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// State is what one system (an address) showed in one run, counted as report counts it: the
// figures of its representative port (store.Outranks), ports flagged as honeypots left out.
type State struct {
	Level       probe.Level   `json:"level"`
	Studies     int64         `json:"studies"`      // exposure.studies when accessible, else 0
	Images      int64         `json:"images"`       // exposure.instances when accessible, else 0
	ImageAccess bool          `json:"image_access"` // accessible, and C-GET/C-MOVE accepted or verified
	Product     string        `json:"product,omitempty"`
	Version     string        `json:"implementation_version,omitempty"`
	AECheck     probe.AECheck `json:"ae_check"`
	TLS         bool          `json:"tls"`      // a DICOM port at level protected or above spoke TLS
	Ports       []uint16      `json:"ports"`    // every stored port of the address, honeypots too
	Honeypot    bool          `json:"honeypot"` // a port was flagged as a honeypot (and left out)
}

// Found reports whether the system counts as found: an association answered at all.
func (s State) Found() bool { return s.Level >= probe.LevelProtected }

// Accessible reports whether the system counts as accessible: level query or above.
func (s State) Accessible() bool { return s.Level >= probe.LevelQuery }

// StateOf folds the results of one address in one run (its ports, whatever shard holds them).
func StateOf(rs []probe.Result) State {
	var s State
	var rep *probe.Result
	for i := range rs {
		r := &rs[i]
		s.Ports = append(s.Ports, r.Port)
		if r.DICOM != nil && r.DICOM.Honeypot {
			s.Honeypot = true
			continue
		}
		if r.DICOM != nil && r.DICOM.TLS && r.Level() >= probe.LevelProtected {
			s.TLS = true
		}
		if rep == nil || store.Outranks(r, rep) || !store.Outranks(rep, r) && r.Port < rep.Port {
			rep = r
		}
	}
	slices.Sort(s.Ports)
	s.Ports = slices.Compact(s.Ports)
	if rep == nil {
		return s
	}
	s.Level = rep.Level()
	if d := rep.DICOM; d != nil {
		s.Product, s.Version, s.AECheck = d.Product, d.ImplementationVersion, d.AECheck
	}
	if e := rep.Exposure; e != nil && s.Accessible() {
		s.Studies, s.Images = e.Studies, e.Instances
		s.ImageAccess = s.Level >= probe.LevelRetrieve || e.Retrieve >= probe.RetrieveAccepted
	}
	return s
}

// RunState is one system in one run (a scan, or the shards of one).
type RunState struct {
	Run      string    `json:"run"` // the run's first scan ID
	Name     string    `json:"name,omitempty"`
	Started  time.Time `json:"started"`
	Finished bool      `json:"finished"` // every shard of the run finished
	Seen     bool      `json:"seen"`     // the address has a stored result in the run
	State    *State    `json:"state,omitempty"`
}

// Episode is a period a system was exposed (accessible): from the first run that saw it so to
// the run that saw it fixed. Times are the runs' start times.
type Episode struct {
	FirstSeenExposed time.Time `json:"first_seen_exposed"`
	LastSeenExposed  time.Time `json:"last_seen_exposed"`
	// FixedAt is when the first run that found it no longer accessible started: a run that
	// stored it below level query, or a finished run over the same target space that stored
	// nothing for it (closed or filtered). Zero while it is still exposed.
	FixedAt time.Time `json:"fixed_at,omitzero"`
	// TimeToFixSeconds is FixedAt − FirstSeenExposed, in whole seconds; 0 while exposed.
	TimeToFixSeconds int64 `json:"time_to_fix_seconds,omitempty"`
}

// TimeToFix returns FixedAt − FirstSeenExposed, rounded to the second; 0 while exposed.
func (e Episode) TimeToFix() time.Duration { return time.Duration(e.TimeToFixSeconds) * time.Second }

// History is one system across every run of a store, oldest first.
type History struct {
	IP       netip.Addr `json:"ip"`
	Runs     []RunState `json:"runs"`
	Episodes []Episode  `json:"episodes"` // periods exposed, oldest first; the last may be open
	LastSeen time.Time  `json:"last_seen,omitzero"`
	Exposed  bool       `json:"exposed"` // the last episode is open
}

// Current returns the latest episode, if any.
func (h *History) Current() (Episode, bool) {
	if len(h.Episodes) == 0 {
		return Episode{}, false
	}
	return h.Episodes[len(h.Episodes)-1], true
}

// HostHistory reads one address's results in every run of the store (store.HostResults: one
// look-up per scan, not a read of each scan) and derives its exposure episodes.
func HostHistory(ctx context.Context, r store.Reader, ip netip.Addr) (*History, error) {
	scans, err := r.Scans(ctx)
	if err != nil {
		return nil, err
	}
	runs := store.Groups(scans)
	h := &History{IP: ip, Runs: make([]RunState, 0, len(runs)), Episodes: []Episode{}}
	states := make([]*State, len(runs))
	for i, run := range runs {
		rs, err := hostResults(ctx, r, run, ip)
		if err != nil {
			return nil, err
		}
		rst := RunState{Run: run.ID(), Name: run.Scans[0].Name, Started: run.Started(), Finished: run.Finished(), Seen: len(rs) > 0}
		if rst.Seen {
			s := StateOf(rs)
			rst.State, states[i] = &s, &s
			h.LastSeen = rst.Started
		}
		h.Runs = append(h.Runs, rst)
	}
	h.Episodes = episodes(runs, states)
	if e, ok := h.Current(); ok && e.FixedAt.IsZero() {
		h.Exposed = true
	}
	return h, nil
}

// hostResults reads ip's results in every scan of a run, ordered by port.
func hostResults(ctx context.Context, r store.Reader, run store.Group, ip netip.Addr) ([]probe.Result, error) {
	var rs []probe.Result
	for _, id := range run.IDs() {
		if err := store.HostResults(ctx, r, id, ip, func(x probe.Result) error {
			rs = append(rs, x)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(rs, func(a, b probe.Result) int { return int(a.Port) - int(b.Port) })
	return rs, nil
}

// episodes walks the runs oldest first: states[i] is the system in runs[i], nil when that run
// stored nothing for it.
func episodes(runs []store.Group, states []*State) []Episode {
	out := []Episode{}
	var cur *Episode
	var exposedIn store.Group
	for i, run := range runs {
		s := states[i]
		switch {
		case s != nil && s.Accessible():
			if cur == nil {
				cur = &Episode{FirstSeenExposed: run.Started()}
			}
			cur.LastSeenExposed, exposedIn = run.Started(), run
		case cur == nil:
		case s != nil || run.Finished() && SameSpace(run, exposedIn):
			cur.FixedAt = run.Started()
			cur.TimeToFixSeconds = int64(cur.FixedAt.Sub(cur.FirstSeenExposed).Round(time.Second) / time.Second)
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// SameSpace reports whether two runs walked the same target space: the same target-space
// digests, shard for shard. A run without digests (an old store) is never the same.
func SameSpace(a, b store.Group) bool {
	da, db := digests(a), digests(b)
	return len(da) > 0 && slices.Equal(da, db)
}

func digests(g store.Group) []string {
	var ds []string
	for _, s := range g.Scans {
		if s.SpaceDigest == "" {
			return nil
		}
		ds = append(ds, s.SpaceDigest)
	}
	slices.Sort(ds)
	return ds
}
