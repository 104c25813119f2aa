package report_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
)

// TestDiffClosedNotStored: closed targets are counted, not stored (issue 12), so a system that
// closed leaves no result in the new scan. When the new scan finished over the same target
// space, it is "closed" with its time to fix — not "not rescanned"; over another space it is.
func TestDiffClosedNotStored(t *testing.T) {
	for _, tc := range []struct {
		name       string
		newDigest  string
		wantKind   report.ChangeKind
		wantFixSec int64
	}{
		{"same space", "sha256:aa", report.ChangeClosed, 7 * 86400},
		{"another space", "sha256:bb", report.ChangeNotRescanned, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := memstore.New()
			defer st.Close()
			start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
			res := probe.Result{IP: netip.MustParseAddr("127.0.0.9"), Port: 104, Time: start, Status: probe.StatusOpen,
				DICOM:    &probe.DICOM{Association: probe.AssociationAccepted},
				Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: 5, StudiesExact: true, Instances: 50}}
			for i, digest := range []string{"sha256:aa", tc.newDigest} {
				at := start.Add(time.Duration(i) * 7 * 24 * time.Hour)
				sc, err := st.CreateScan(ctx, store.Scan{Name: "weekly", Started: at, Targets: []string{"127.0.0.0/24"}, Total: 256, SpaceDigest: digest})
				if err != nil {
					t.Fatal(err)
				}
				var rs []probe.Result
				if i == 0 {
					rs = []probe.Result{res}
				}
				if err := st.PutResults(ctx, sc.ID, rs, store.Progress{Done: 256}); err != nil {
					t.Fatal(err)
				}
				if err := st.FinishScan(ctx, sc.ID, at.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			var got []report.Change
			if _, err := report.Diff(ctx, st, "1", "2", report.Options{}, func(c report.Change) error { got = append(got, c); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Kind != tc.wantKind || got[0].TimeToFixSeconds != tc.wantFixSec {
				t.Fatalf("changes %+v; want one %v with time to fix %d s", got, tc.wantKind, tc.wantFixSec)
			}
		})
	}
}
