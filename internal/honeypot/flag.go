package honeypot

import (
	"context"
	"fmt"
	"slices"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// Flag finds the honeypots of scan scanID's run (the scan and the other shards of its --shard
// run: a cluster may straddle shards) and writes a caveat "honeypot" with its reason to each
// flagged result (store.Store.AddCaveats), which also sets its dicom.honeypot: the store leaves
// them out of every total from then on. It returns what it flagged, in address order. Running
// it again adds nothing new; a shard that finishes later may widen a cluster, and flagging
// again then marks the new members and those of the earlier shards alike.
func Flag(ctx context.Context, st store.Store, scanID string, cfg Config) ([]Flagged, error) {
	scans, err := st.Scans(ctx)
	if err != nil {
		return nil, fmt.Errorf("honeypot: %w", err)
	}
	runs := store.Groups(scans)
	i, ok := store.GroupOf(runs, scanID)
	if !ok {
		return nil, fmt.Errorf("honeypot: scan %q: %w", scanID, store.ErrNotFound)
	}
	d := NewDetector(cfg)
	err = store.MergeResults(ctx, st, runs[i].IDs(), func(r probe.Result) error {
		d.Add(&r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("honeypot: read scan %q: %w", scanID, err)
	}
	flagged := d.Flagged()
	marks := map[string][]store.Mark{}
	for _, f := range flagged {
		marks[f.ScanID] = append(marks[f.ScanID], store.Mark{IP: f.Addr.Addr(), Port: f.Addr.Port(), Caveat: f.Caveat})
	}
	for _, id := range runs[i].IDs() {
		if len(marks[id]) == 0 {
			continue
		}
		if err := st.AddCaveats(ctx, id, marks[id]); err != nil {
			return nil, fmt.Errorf("honeypot: flag scan %q: %w", id, err)
		}
	}
	return slices.Clip(flagged), nil
}
