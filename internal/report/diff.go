package report

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"net/netip"
	"time"

	"github.com/pacswatch/pacswatch/internal/history"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// ChangeKind is how a system changed between two scans.
type ChangeKind uint8

const (
	ChangeAppeared     ChangeKind = iota + 1 // accessible now; not accessible, or not scanned, before
	ChangeClosed                             // accessible before; scanned now and not accessible
	ChangeGrew                               // accessible in both; more studies (or images, or retrieval gained)
	ChangeShrank                             // accessible in both; fewer studies (or images, or retrieval lost)
	ChangeNotRescanned                       // accessible before; the new scan did not probe it
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeAppeared:
		return "appeared"
	case ChangeClosed:
		return "closed"
	case ChangeGrew:
		return "grew"
	case ChangeShrank:
		return "shrank"
	case ChangeNotRescanned:
		return "not-rescanned"
	}
	return fmt.Sprintf("ChangeKind(%d)", uint8(k))
}

// MarshalText implements encoding.TextMarshaler.
func (k ChangeKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *ChangeKind) UnmarshalText(b []byte) error {
	for c := ChangeAppeared; c <= ChangeNotRescanned; c++ {
		if string(b) == c.String() {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("report: unknown change %q", b)
}

// System is one system's state in one scan.
type System struct {
	Level   probe.Level `json:"level"` // closed when the scan did not probe it
	Studies int64       `json:"studies"`
	Images  int64       `json:"images"`
}

// Change is one system that changed.
type Change struct {
	IP      netip.Addr `json:"ip"`
	Kind    ChangeKind `json:"change"`
	Old     System     `json:"old"`
	New     System     `json:"new"`
	Country string     `json:"country,omitempty"` // with a location database
	Region  string     `json:"region,omitempty"`
	ASN     uint32     `json:"asn,omitempty"` // with an ASN database

	// For a system fixed (ChangeClosed): when it was first seen exposed in the episode the new
	// scan ended, and the time to fix (SPEC "serve and watch"), from its history across runs.
	FirstSeenExposed time.Time `json:"first_seen_exposed,omitzero"`
	TimeToFixSeconds int64     `json:"time_to_fix_seconds,omitempty"`
}

// DiffSummary is what changed between two scans, in counts and per group.
type DiffSummary struct {
	Old    ScanInfo   `json:"old"`
	New    ScanInfo   `json:"new"`
	Counts DiffCounts `json:"counts"`
	Total  Row        `json:"total"` // figures of NEW with their change since OLD
	Tables []Table    `json:"tables"`
	Rule   string     `json:"trend_rule"`
}

// DiffCounts are the numbers of systems per kind of change.
type DiffCounts struct {
	Appeared     int64 `json:"appeared"`
	Closed       int64 `json:"closed"`
	Grew         int64 `json:"grew"`
	Shrank       int64 `json:"shrank"`
	NotRescanned int64 `json:"not_rescanned"`
	Unchanged    int64 `json:"unchanged"` // accessible in both, same figures
}

func (c *DiffCounts) add(k ChangeKind) {
	switch k {
	case ChangeAppeared:
		c.Appeared++
	case ChangeClosed:
		c.Closed++
	case ChangeGrew:
		c.Grew++
	case ChangeShrank:
		c.Shrank++
	case ChangeNotRescanned:
		c.NotRescanned++
	}
}

// Diff compares two scans host by host, each with the other shards of its run (--shard I/N),
// streaming both (the store orders results by address) in one merge: fn gets each system that changed, in address order; the summary holds the
// counts and the per-group figures of Options.Groups (Options.Scan and Compare are ignored).
func Diff(ctx context.Context, st store.Reader, oldID, newID string, opt Options, fn func(Change) error) (*DiffSummary, error) {
	th := opt.Thresholds
	if th == (Thresholds{}) {
		th = Thresholds{GoodDrop: DefaultGoodDrop, UglyRise: DefaultUglyRise}
	}
	if err := th.Validate(); err != nil {
		return nil, err
	}
	groups, err := groupings(opt)
	if err != nil {
		return nil, err
	}
	scans, err := st.Scans(ctx)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	runs := store.Groups(scans)
	oldRun, err := runOf(runs, oldID)
	if err != nil {
		return nil, err
	}
	newRun, err := runOf(runs, newID)
	if err != nil {
		return nil, err
	}
	oldAgg, newAgg := newAggregate(groups), newAggregate(groups)
	// A finished run over the same target space probed every address of the old one: one it
	// stored nothing for answered nothing (closed targets are counted, not stored) — fixed, not
	// "not rescanned".
	rescanned := history.SameSpace(oldRun, newRun) && !newRun.FinishedAt().IsZero()

	nextOld, stopOld := iter.Pull2(hosts(ctx, st, oldRun.IDs()))
	defer stopOld()
	nextNew, stopNew := iter.Pull2(hosts(ctx, st, newRun.IDs()))
	defer stopNew()
	o, oerr, ook := nextOld()
	n, nerr, nok := nextNew()
	var sum DiffSummary
	for ook || nok {
		if oerr != nil {
			return nil, oerr
		}
		if nerr != nil {
			return nil, nerr
		}
		var oh, nh *host
		switch {
		case !nok || (ook && o.ip.Less(n.ip)):
			oh = o
		case !ook || n.ip.Less(o.ip):
			nh = n
		default:
			oh, nh = o, n
		}
		var ip netip.Addr
		if oh != nil {
			ip = oh.ip
		} else {
			ip = nh.ip
		}
		p := locate(ip, opt.Geo, opt.ASN)
		if oh != nil {
			oldAgg.add(oh, p)
			o, oerr, ook = nextOld()
		}
		if nh != nil {
			newAgg.add(nh, p)
			n, nerr, nok = nextNew()
		}
		c, changed := change(oh, nh, rescanned)
		if !changed {
			if oh != nil && nh != nil && oh.accessible() {
				sum.Counts.Unchanged++
			}
			continue
		}
		if err := describe(ctx, st, &c, ip, p, newRun); err != nil {
			return nil, err
		}
		sum.Counts.add(c.Kind)
		if err := fn(c); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	sum.Old, sum.New = scanInfo(oldRun, oldAgg), scanInfo(newRun, newAgg)
	sum.Rule = th.Rule()
	sum.Total = Row{Key: "all", Name: "all systems", Metrics: newAgg.total, Apart: newAgg.apart}
	compare(&sum.Total, oldAgg.total, th)
	for _, g := range groups {
		sum.Tables = append(sum.Tables, table(g, newAgg, oldAgg, th))
	}
	return &sum, nil
}

func state(h *host) System {
	if h == nil {
		return System{}
	}
	s := System{Level: h.level}
	if h.accessible() {
		s.Studies, s.Images = h.rep.Exposure.Studies, h.rep.Exposure.Instances
	}
	return s
}

// describe names a change's system: its address, its place, and for a fixed one its time to fix.
func describe(ctx context.Context, st store.Reader, c *Change, ip netip.Addr, p place, newRun store.Group) error {
	c.IP = ip
	if p.hasLoc {
		c.Country, c.Region = p.loc.Country, p.loc.Region
	}
	if p.hasASN {
		c.ASN = p.asn.Number
	}
	if c.Kind != ChangeClosed {
		return nil
	}
	return timeToFix(ctx, st, c, newRun)
}

// timeToFix fills a fixed system's FirstSeenExposed and TimeToFixSeconds from its history: the
// episode of exposure that the new run ended.
func timeToFix(ctx context.Context, st store.Reader, c *Change, newRun store.Group) error {
	h, err := history.HostHistory(ctx, st, c.IP)
	if err != nil {
		return fmt.Errorf("diff: history of %s: %w", c.IP, err)
	}
	for _, e := range h.Episodes {
		if !e.FixedAt.IsZero() && e.FixedAt.Equal(newRun.Started()) {
			c.FirstSeenExposed, c.TimeToFixSeconds = e.FirstSeenExposed, e.TimeToFixSeconds
		}
	}
	return nil
}

// change classifies one host seen in the old scan (oh), the new one (nh) or both; rescanned says
// the new scan probed every address of the old one.
func change(oh, nh *host, rescanned bool) (Change, bool) {
	c := Change{Old: state(oh), New: state(nh)}
	wasOpen := oh != nil && oh.accessible()
	isOpen := nh != nil && nh.accessible()
	switch {
	case isOpen && !wasOpen:
		c.Kind = ChangeAppeared
	case wasOpen && nh == nil && !rescanned:
		c.Kind = ChangeNotRescanned
	case wasOpen && !isOpen:
		c.Kind = ChangeClosed
	case wasOpen && isOpen:
		d := cmpSystems(c.New, c.Old, nh.imageAccess(), oh.imageAccess())
		switch {
		case d > 0:
			c.Kind = ChangeGrew
		case d < 0:
			c.Kind = ChangeShrank
		default:
			return c, false
		}
	default:
		return c, false
	}
	return c, true
}

// cmpSystems orders two accessible states by studies, then images, then retrieval.
func cmpSystems(a, b System, aRetrieve, bRetrieve bool) int {
	r := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	return cmp.Or(cmp.Compare(a.Studies, b.Studies), cmp.Compare(a.Images, b.Images), cmp.Compare(r(aRetrieve), r(bRetrieve)))
}

// runOf returns the run (shard group) of scan id; an unknown scan's error quotes its ID once,
// capped.
func runOf(runs []store.Group, id string) (store.Group, error) {
	i, ok := store.GroupOf(runs, id)
	if !ok {
		return store.Group{}, fmt.Errorf("diff: scan %s: %w", quote(id), store.ErrNotFound)
	}
	return runs[i], nil
}
