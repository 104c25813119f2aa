package report_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// manyResults returns n results of scan id over hosts in 127.1-10.x.y, one or two ports each,
// with every level and a few honeypots, drawn from rng.
func manyResults(id string, n int, rng *rand.Rand) []probe.Result {
	rs := make([]probe.Result, 0, n)
	for i := 0; len(rs) < n; i++ {
		ip := netip.AddrFrom4([4]byte{127, byte(1 + i%10), byte(i >> 8), byte(i)})
		for _, port := range []uint16{104, 11112}[:1+rng.IntN(2)] {
			if len(rs) == n {
				break
			}
			rs = append(rs, variedResult(id, ip, port, rng))
		}
	}
	return rs
}

// variedResult is one port at a random level, with random figures.
func variedResult(id string, ip netip.Addr, port uint16, rng *rand.Rand) probe.Result {
	r := probe.Result{ScanID: id, IP: ip, Port: port, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Status: probe.StatusOpen}
	l := probe.Level(rng.IntN(int(probe.LevelRetrieve) + 1))
	switch l {
	case probe.LevelClosed:
		r.Status = probe.StatusClosed
		return r
	case probe.LevelNotDICOM:
		r.Exposure = &probe.Exposure{Level: l}
		return r
	}
	r.DICOM = &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", Product: "Orthanc",
		ImplementationVersion: "OFFIS_DCMTK_367", Honeypot: rng.IntN(50) == 0}
	if l == probe.LevelProtected {
		r.DICOM.Association = probe.AssociationRejected
	}
	r.Exposure = &probe.Exposure{Level: l, Retrieve: probe.Retrieve(rng.IntN(4))}
	if l >= probe.LevelQuery {
		r.Exposure.Studies, r.Exposure.Instances = rng.Int64N(5), rng.Int64N(50)
		r.Exposure.StudiesExact, r.Exposure.InstancesSource = true, probe.InstancesSourceStudyAttr
		r.Exposure.Modalities = map[string]int64{"CT": r.Exposure.Studies}
	}
	return r
}

// trendStore is a SQLite store of scans × perScan results, every scan finished.
func trendStore(tb testing.TB, scans, perScan int) store.Store {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "trend.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range scans {
		start := time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC)
		sc, err := st.CreateScan(ctx, store.Scan{Name: fmt.Sprint("month ", i), Started: start, Finished: start.Add(time.Hour)})
		if err != nil {
			tb.Fatal(err)
		}
		if err := st.PutResults(ctx, sc.ID, manyResults(sc.ID, perScan, rng), store.Progress{Done: uint64(perScan)}); err != nil {
			tb.Fatal(err)
		}
	}
	return st
}

// BenchmarkReportTrend is a report on a store of 20 scans × 10,000 results: the reported and
// the compared scan by country, region and AS, and the trend over every scan.
func BenchmarkReportTrend(b *testing.B) {
	st := trendStore(b, 20, 10000)
	g, a := fixtureGeo(b)
	b.ResetTimer()
	for b.Loop() {
		r, err := report.Build(context.Background(), st, report.Options{Geo: g, ASN: a})
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Trend) != 20 {
			b.Fatalf("trend of %d scans, want 20", len(r.Trend))
		}
	}
}
