package watch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/history"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

// Kind is what an alert is about.
type Kind uint8

const (
	KindNewExposure Kind = iota + 1 // accessible now, not in the previous run
	KindGrowth                      // accessible in both, studies up by more than the threshold
	KindFixed                       // accessible before, not any more (or closed: nothing stored over the same space)
)

func (k Kind) String() string {
	switch k {
	case KindNewExposure:
		return "new-exposure"
	case KindGrowth:
		return "growth"
	case KindFixed:
		return "fixed"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	for c := KindNewExposure; c <= KindFixed; c++ {
		if string(b) == c.String() {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("watch: unknown alert kind %q", capText(string(b)))
}

// Alert is one system that changed between two runs of a watch. Its JSON is what the webhook
// receives (in Delivery.Alerts).
type Alert struct {
	// ID identifies the alert whatever the delivery attempt: the same run, address and kind
	// give the same ID, so that a receiver can drop what it already has.
	ID       string        `json:"id"`
	Kind     Kind          `json:"kind"`
	IP       netip.Addr    `json:"ip"`
	Run      string        `json:"run"`          // the new run (its first scan ID)
	Previous string        `json:"previous_run"` // the run it is compared with
	Old      report.System `json:"old"`
	New      report.System `json:"new"`
	Country  string        `json:"country,omitempty"` // with a location database
	Region   string        `json:"region,omitempty"`

	// FirstSeenExposed is when the exposure began (the start of the first run that saw it).
	FirstSeenExposed time.Time `json:"first_seen_exposed,omitzero"`
	// FixedAt and TimeToFixSeconds, for a fix: when the run that saw it fixed started, and how
	// long after FirstSeenExposed, in whole seconds.
	FixedAt          time.Time `json:"fixed_at,omitzero"`
	TimeToFixSeconds int64     `json:"time_to_fix_seconds,omitempty"`
	// GrowthPercent, for growth: how much the studies grew.
	GrowthPercent float64 `json:"growth_percent,omitempty"`
}

// TimeToFix returns a fix's time to fix; 0 for other alerts.
func (a Alert) TimeToFix() time.Duration { return time.Duration(a.TimeToFixSeconds) * time.Second }

// alertID is the stable ID of an alert.
func alertID(run string, ip netip.Addr, k Kind) string {
	sum := sha256.Sum256([]byte(run + "\x00" + ip.String() + "\x00" + k.String()))
	return hex.EncodeToString(sum[:12])
}

// Changes compares two runs of a watch (report.Diff: streaming both, in address order) and
// returns the alerts: new exposure, growth beyond growth percent, and fixes with their time to
// fix. A system the new run stored nothing for counts as fixed when both runs walked the same
// target space (it was probed and found closed or filtered), and is left alone otherwise.
func Changes(ctx context.Context, st store.Reader, prev, cur store.Group, g *geo.DB, growth float64) ([]Alert, error) {
	same := history.SameSpace(prev, cur)
	var out []Alert
	_, err := report.Diff(ctx, st, prev.ID(), cur.ID(), report.Options{Geo: g, Groups: []report.Grouping{}}, func(c report.Change) error {
		a := Alert{IP: c.IP, Run: cur.ID(), Previous: prev.ID(), Old: c.Old, New: c.New, Country: c.Country, Region: c.Region}
		switch c.Kind {
		case report.ChangeAppeared:
			a.Kind, a.FirstSeenExposed = KindNewExposure, cur.Started()
		case report.ChangeGrew:
			if c.Old.Studies > 0 {
				a.GrowthPercent = float64(c.New.Studies-c.Old.Studies) * 100 / float64(c.Old.Studies)
			}
			if c.New.Studies <= c.Old.Studies || c.Old.Studies > 0 && a.GrowthPercent <= growth {
				return nil // images or retrieval gained, or studies within the threshold
			}
			a.Kind = KindGrowth
		case report.ChangeClosed:
			a.Kind = KindFixed
		case report.ChangeNotRescanned:
			if !same {
				return nil
			}
			a.Kind = KindFixed
		default:
			return nil
		}
		a.ID = alertID(cur.ID(), c.IP, a.Kind)
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Kind != KindFixed && out[i].Kind != KindGrowth {
			continue
		}
		if err := episodeOf(ctx, st, &out[i], cur); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// episodeOf fills a fix's or a growth's exposure times from the system's history.
func episodeOf(ctx context.Context, st store.Reader, a *Alert, cur store.Group) error {
	h, err := history.HostHistory(ctx, st, a.IP)
	if err != nil {
		return err
	}
	for _, e := range h.Episodes {
		switch {
		case a.Kind == KindFixed && e.FixedAt.Equal(cur.Started()):
			a.FirstSeenExposed, a.FixedAt, a.TimeToFixSeconds = e.FirstSeenExposed, e.FixedAt, e.TimeToFixSeconds
		case a.Kind == KindGrowth && e.FixedAt.IsZero():
			a.FirstSeenExposed = e.FirstSeenExposed
		}
	}
	return nil
}
