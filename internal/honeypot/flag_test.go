package honeypot_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/honeypot"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
)

// TestFlag: a cluster that straddles the shards of a run and a fingerprinted host are flagged
// in their own shards' results, left out of Systems, and a second Flag changes nothing.
func TestFlag(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	mk := func(shard string) store.Scan {
		sc, err := st.CreateScan(ctx, store.Scan{Name: "run", Seed: 1, Shard: shard, Started: t0})
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	s0, s1 := mk("0/2"), mk("1/2")
	put := func(id string, rs ...probe.Result) {
		for i := range rs {
			rs[i].ScanID = id
		}
		if err := st.PutResults(ctx, id, rs, store.Progress{Done: uint64(len(rs))}); err != nil {
			t.Fatal(err)
		}
	}
	dicompot := host("192.0.2.50", 11112, "", 4)
	dicompot.DICOM.ImplementationClassUID, dicompot.DICOM.ImplementationVersion, dicompot.DICOM.MaxPDU = "", "", 4194304
	put(s0.ID, host("192.0.2.1", 104, "feed", 10), host("192.0.2.2", 104, "feed", 10), host("192.0.2.9", 104, "real", 40), dicompot)
	put(s1.ID, host("192.0.2.3", 104, "feed", 10), host("192.0.2.10", 104, "other", 25))

	for range 2 {
		got, err := honeypot.Flag(ctx, st, s1.ID, honeypot.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 {
			t.Fatalf("flagged %+v, want the three of the cluster and dicompot", got)
		}
	}
	for _, id := range []string{s0.ID, s1.ID} {
		if err := st.Results(ctx, id, func(r probe.Result) error {
			want := r.Exposure.StudySet == "feed" || r.IP == dicompot.IP
			if got := r.DICOM.Honeypot; got != want || want && len(r.Exposure.Caveats) != 1 {
				t.Errorf("%s: honeypot %v, caveats %+v; want flagged %v, once", r.IP, got, r.Exposure.Caveats, want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	sys, err := st.Systems(ctx, s0.ID, s1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Systems{Found: 2, Accessible: 2, Studies: 65, Images: 65}); sys != want {
		t.Errorf("Systems = %+v, want %+v (only the real archives)", sys, want)
	}
	if _, err := honeypot.Flag(ctx, st, "nope", honeypot.Config{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Flag of an unknown scan: %v", err)
	}
}
