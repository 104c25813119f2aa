package web_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/geotest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// fixtureCountries place the fixture's hosts: 127.C.x.y is in country C of this list (C below
// its length), region x%4 of it.
var fixtureCountries = []string{"IN", "TR", "US", "BR", "DE", "ZA", "AU", "MX", "VN", "FR"}

// writeGeo writes a city database that places 127.C.R.0/24 networks as fixtureCountries says.
func writeGeo(tb testing.TB, path string) {
	tb.Helper()
	var ps []geotest.Place
	for c, cc := range fixtureCountries {
		for x := range 256 {
			loc := geo.Location{Country: cc, CountryName: geo.CountryName(cc), Region: fmt.Sprintf("Region %d", x%4)}
			ps = append(ps, geotest.Place{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(c), byte(x), 0}), 24), Location: loc})
		}
	}
	if err := geotest.WriteCity(path, "GeoLite2-City", geo.LayoutMaxMind, ps); err != nil {
		tb.Fatal(err)
	}
}

// bigResult is result i of a scan of the big fixture: most ports answer without DICOM, one in
// five speaks DICOM, one in ten exposes an archive.
func bigResult(id string, i int, rng *rand.Rand, t time.Time) probe.Result {
	host := i / 2
	j := host / len(fixtureCountries)
	ip := netip.AddrFrom4([4]byte{127, byte(host % len(fixtureCountries)), byte(j >> 8), byte(j)})
	r := probe.Result{ScanID: id, IP: ip, Port: []uint16{104, 11112}[i%2], Time: t, Status: probe.StatusOpen,
		Exposure: &probe.Exposure{Level: probe.LevelNotDICOM}}
	switch rng.IntN(10) {
	case 0:
		r.DICOM = &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH",
			Product: "Orthanc", ImplementationVersion: "OFFIS_DCMTK_367", Services: probe.Services{Echo: true, FindStudy: true}}
		r.Exposure = &probe.Exposure{Level: probe.LevelQuery, Studies: 1 + rng.Int64N(5000), StudiesExact: true,
			InstancesSource: probe.InstancesSourceStudyAttr, Modalities: map[string]int64{"CT": 1}}
		r.Exposure.Instances = r.Exposure.Studies * 70
	case 1:
		r.DICOM = &probe.DICOM{Association: probe.AssociationRejected, CallingAE: "PACSWATCH", AECheck: probe.AECheckCalled}
		r.Exposure = &probe.Exposure{Level: probe.LevelProtected}
	}
	return r
}

// bigStore returns a SQLite store of scans × perScan results (bigResult), every scan finished,
// and a city database that places them. With PACSWATCH_BENCH_DIR set, both are kept there and
// reused by later runs (a million results take about a minute to write).
func bigStore(tb testing.TB, scans, perScan int) (db, city string) {
	tb.Helper()
	dir := os.Getenv("PACSWATCH_BENCH_DIR")
	if dir == "" {
		dir = tb.TempDir()
	}
	db = filepath.Join(dir, fmt.Sprintf("big-%dx%d.db", scans, perScan))
	city = filepath.Join(dir, "big-city.mmdb")
	if _, err := os.Stat(city); err != nil {
		writeGeo(tb, city)
	}
	if _, err := os.Stat(db); err == nil {
		return db, city
	}
	ctx := context.Background()
	tmp := db + ".tmp"
	os.Remove(tmp)
	st, err := sqlite.Open(ctx, tmp)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	const batch = 5000
	for s := range scans {
		start := time.Date(2026, time.Month(1+s), 1, 0, 0, 0, 0, time.UTC)
		sc, err := st.CreateScan(ctx, store.Scan{Name: fmt.Sprint("month ", s), Started: start, Total: uint64(perScan)})
		if err != nil {
			tb.Fatal(err)
		}
		rs := make([]probe.Result, 0, batch)
		for i := 0; i < perScan; i++ {
			rs = append(rs, bigResult(sc.ID, i, rng, start))
			if len(rs) == batch || i == perScan-1 {
				if err := st.PutResults(ctx, sc.ID, rs, store.Progress{Done: uint64(i + 1)}); err != nil {
					tb.Fatal(err)
				}
				rs = rs[:0]
			}
		}
		if err := st.FinishScan(ctx, sc.ID, start.Add(time.Hour)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, db); err != nil {
		tb.Fatal(err)
	}
	return db, city
}
